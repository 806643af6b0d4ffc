"""Early stopping and learning-rate schedules (chapter 3), as training callbacks.

Both watch a metric (by default validation accuracy) for the book's
"no-improvement-in-n" rule, and both keep a copy of the weights from the best
epoch, which they put back when training ends.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .errors import ConfigError
from .training import Callback, TrainingRun

SCHEDULES = ("halve-on-plateau",)


class KeepBest(Callback):
    """Track the best value of ``metric``, keep that epoch's weights, and restore them at the end."""

    def __init__(self, metric: str = "validation_accuracy", patience: int = 10):
        if patience < 1:
            raise ConfigError(f"patience {patience}: must be at least 1 epoch")
        self.metric, self.patience = metric, patience

    def on_train_begin(self, run: TrainingRun) -> None:
        self.best_value, self.best_epoch, self.epochs_without_improvement = -np.inf, None, 0
        self.best_parameters: list[np.ndarray] | None = None

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        if self.metric not in record:
            raise ConfigError(f"{type(self).__name__} watches {self.metric!r}, which is not being monitored")
        if record[self.metric] > self.best_value:
            self.best_value, self.best_epoch, self.epochs_without_improvement = record[self.metric], record["epoch"], 0
            self.best_parameters = [p.copy() for p in run.network.weights + run.network.biases]
        else:
            self.epochs_without_improvement += 1
            if self.epochs_without_improvement >= self.patience:
                self.on_plateau(run)

    def on_plateau(self, run: TrainingRun) -> None:
        """Called when the metric has not improved in ``patience`` epochs."""

    def on_train_end(self, run: TrainingRun) -> None:
        if self.best_parameters is not None:
            n = len(run.network.weights)
            run.network.weights[:] = self.best_parameters[:n]
            run.network.biases[:] = self.best_parameters[n:]


class EarlyStopping(KeepBest):
    """Stop when ``metric`` has not improved in ``patience`` epochs (no-improvement-in-n)."""

    def on_plateau(self, run: TrainingRun) -> None:
        run.stop_training = True


class HalveOnPlateau(KeepBest):
    """Halve η each time ``metric`` has not improved in ``patience`` epochs; stop once η ≤ η₀/128."""

    def __init__(self, metric: str = "validation_accuracy", patience: int = 10, min_fraction: float = 1 / 128):
        super().__init__(metric, patience)
        self.min_fraction = min_fraction

    def on_train_begin(self, run: TrainingRun) -> None:
        super().on_train_begin(run)
        self.initial_eta = run.eta

    def on_plateau(self, run: TrainingRun) -> None:
        run.eta /= 2
        self.epochs_without_improvement = 0
        if run.eta <= self.initial_eta * self.min_fraction:
            run.stop_training = True


class TimeLimit(Callback):
    """Stop at the end of the first epoch that finishes after ``minutes`` of training."""

    def __init__(self, minutes: float):
        if not minutes > 0:
            raise ConfigError(f"time limit {minutes}: give a positive number of minutes")
        self.seconds = 60.0 * minutes

    def on_train_begin(self, run: TrainingRun) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        if time.perf_counter() - self.started >= self.seconds:
            run.stop_training = True
