"""Early stopping and learning-rate schedules (chapter 3), as training callbacks.

Early stopping and halve-on-plateau watch a :class:`~nndl.metrics.Measure` (validation accuracy unless told
otherwise; higher or lower is better as the measure says) for the book's
"no-improvement-in-n" rule, and both keep a copy of the weights from the best
epoch, which they put back when training ends. The smooth decays (exponential,
step, cosine) set η from the epoch number alone.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .callbacks import Callback
from .device import copy_into, to_host
from .errors import ConfigError
from .metrics import Measure
from .training import TrainingRun

SCHEDULES = ("halve-on-plateau", "exponential", "step", "cosine")


class KeepBest(Callback):
    """Track the best value of ``measure``, keep that epoch's weights, and restore them at the end."""

    def __init__(self, measure: Measure = Measure("validation"), patience: int = 10):
        if patience < 1:
            raise ConfigError(f"patience {patience}: must be at least 1 epoch")
        self.measure, self.patience = measure, patience
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.epochs_without_improvement = 0
        self.best_parameters: list[np.ndarray] | None = None

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        value = self.measure.of(record)
        if value is None:
            raise ConfigError(f"{type(self).__name__} watches the {self.measure}, which is not being monitored")
        if self.measure.improves(value, self.best_value):
            self.best_value, self.best_epoch, self.epochs_without_improvement = value, record["epoch"], 0
            self.best_parameters = [p.copy() for p in run.network.parameters()]
        else:
            self.epochs_without_improvement += 1
            if self.epochs_without_improvement >= self.patience:
                self.on_plateau(run)

    def on_plateau(self, run: TrainingRun) -> None:
        """Called when the measure has not improved in ``patience`` epochs."""

    def on_train_end(self, run: TrainingRun) -> None:
        if self.best_parameters is not None:
            for param, best in zip(run.network.parameters(), self.best_parameters):
                copy_into(param, best)

    def get_state(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch,
                "epochs_without_improvement": self.epochs_without_improvement,
                "best_parameters": None if self.best_parameters is None else list(map(to_host, self.best_parameters))}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.best_parameters = state["best_parameters"]


class EarlyStopping(KeepBest):
    """Stop when ``measure`` has not improved in ``patience`` epochs (no-improvement-in-n)."""

    def on_plateau(self, run: TrainingRun) -> None:
        run.stop_training = True


class HalveOnPlateau(KeepBest):
    """Halve η each time ``measure`` has not improved in ``patience`` epochs; stop once η ≤ η₀/128."""

    def __init__(self, measure: Measure = Measure("validation"), patience: int = 10, min_fraction: float = 1 / 128):
        super().__init__(measure, patience)
        self.min_fraction = min_fraction

    def on_plateau(self, run: TrainingRun) -> None:
        run.eta /= 2
        self.epochs_without_improvement = 0
        if run.eta <= run.config.eta * self.min_fraction:
            run.stop_training = True


class EpochDecay(Callback):
    """η set at the start of every epoch from a smooth decay of η₀ (Ciresan et al. shrink η a little each epoch).

    ``exponential``: η = η₀ · γ^epoch; ``step``: η = η₀ · γ^⌊epoch / every⌋;
    ``cosine``: η = η_min + (η₀ − η_min)(1 + cos(π · epoch / epochs)) / 2, with η_min = γ · η₀.
    η depends only on the epoch number, so a resumed run needs no extra state.
    """

    def __init__(self, kind: str, gamma: float, every: int = 10):
        if kind not in ("exponential", "step", "cosine"):
            raise ConfigError(f"schedule {kind!r}: choose from exponential, step, cosine")
        if not 0 < gamma <= 1:
            raise ConfigError(f"decay {gamma}: the factor γ must be in (0, 1]")
        self.kind, self.gamma, self.every = kind, gamma, every

    def eta_at(self, eta0: float, epoch: int, epochs: int) -> float:
        """η for ``epoch`` of ``epochs``."""
        if self.kind == "exponential":
            return eta0 * self.gamma ** epoch
        if self.kind == "step":
            return eta0 * self.gamma ** (epoch // self.every)
        low = self.gamma * eta0
        return low + (eta0 - low) * (1 + math.cos(math.pi * epoch / epochs)) / 2

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        run.eta = self.eta_at(run.config.eta, epoch, run.config.epochs)


class TimeLimit(Callback):
    """Stop at the end of the first epoch that finishes after ``minutes`` of training (resumes count on)."""

    def __init__(self, minutes: float):
        if not minutes > 0:
            raise ConfigError(f"time limit {minutes}: give a positive number of minutes")
        self.seconds, self.used = 60.0 * minutes, 0.0

    def on_train_begin(self, run: TrainingRun) -> None:
        self.started = time.perf_counter() - self.used

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        self.used = time.perf_counter() - self.started
        if self.used >= self.seconds:
            run.stop_training = True

    def get_state(self) -> dict[str, Any]:
        return {"used": self.used}

    def set_state(self, state: dict[str, Any]) -> None:
        self.used = float(state["used"])
