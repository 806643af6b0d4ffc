"""Stochastic gradient descent over shuffled mini-batches (chapter 1), with callbacks.

One loop serves every experiment: :func:`train` takes a network, the training
data, a :class:`TrainingConfig` (the hyperparameters, plain data) and the
datasets to evaluate after each epoch. Anything that watches or steers training
(printing, a progress bar, checkpoints, live plots, early stopping) is a
:class:`Callback`, so the loop itself never grows a flag for it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .blas import DEFAULT_BLAS_THREADS, blas_threads
from .data import Dataset
from .errors import ConfigError
from .network import Network
from .rng import make_rng

BACKPROP_MODES = ("matrix", "per-example")


@dataclass(frozen=True)
class TrainingConfig:
    """The hyperparameters of one SGD run; the defaults are the book's chapter-1 run.

    ``eta`` is the learning rate η, ``mini_batch_size`` is m. ``backprop`` is
    "matrix" (the whole mini-batch at once) or "per-example" (chapter 2's loop
    over single images; the same result, slower). ``seed`` fixes the order of
    the mini-batches.
    """

    epochs: int = 30
    mini_batch_size: int = 10
    eta: float = 3.0
    seed: int | None = None
    backprop: str = "matrix"

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs {self.epochs}: must be a whole number ≥ 1")
        if not isinstance(self.mini_batch_size, int) or self.mini_batch_size < 1:
            raise ConfigError(f"mini-batch size {self.mini_batch_size}: must be a whole number ≥ 1")
        if not np.isfinite(self.eta) or self.eta <= 0:
            raise ConfigError(f"eta {self.eta}: the learning rate must be a positive number, e.g. 3.0")
        if self.backprop not in BACKPROP_MODES:
            raise ConfigError(f"backprop {self.backprop!r}: choose from {', '.join(BACKPROP_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


class Callback:
    """Something that watches or steers training; override the hooks you need.

    Every hook receives the :class:`TrainingRun`, which holds the network, the
    config, the history so far, and ``stop_training`` (set it to end training
    after the current epoch).
    """

    def on_train_begin(self, run: "TrainingRun") -> None: ...

    def on_epoch_begin(self, run: "TrainingRun", epoch: int) -> None: ...

    def on_batch_end(self, run: "TrainingRun", batch: int) -> None: ...

    def on_epoch_end(self, run: "TrainingRun", record: dict[str, Any]) -> None: ...

    def on_train_end(self, run: "TrainingRun") -> None: ...


@dataclass
class History:
    """One record per epoch: its number, seconds, η, and each evaluation's metrics."""

    epochs: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def best(self, metric: str) -> dict[str, Any] | None:
        """The record with the highest ``metric`` (the first such epoch on ties)."""
        scored = [r for r in self.epochs if metric in r]
        return max(scored, key=lambda r: r[metric]) if scored else None

    def final(self) -> dict[str, Any] | None:
        """The last epoch's record."""
        return self.epochs[-1] if self.epochs else None


@dataclass
class TrainingRun:
    """The state of a training run, as callbacks see it."""

    network: Network
    config: TrainingConfig
    n_batches: int
    history: History = dataclasses.field(default_factory=History)
    eta: float = 0.0
    epoch: int = 0
    stop_training: bool = False


def evaluate(network: Network, dataset: Dataset, with_cost: bool = False) -> dict[str, Any]:
    """Accuracy on ``dataset`` as a count and a fraction (and the mean cost if asked)."""
    correct = network.evaluate(dataset.images, dataset.labels)
    metrics: dict[str, Any] = {
        f"{dataset.name}_correct": correct,
        f"{dataset.name}_total": len(dataset),
        f"{dataset.name}_accuracy": correct / max(len(dataset), 1),
    }
    if with_cost:
        metrics[f"{dataset.name}_cost"] = network.total_cost(dataset.images, dataset.labels)
    return metrics


def gradient_descent_step(
    network: Network, nabla_b: list[np.ndarray], nabla_w: list[np.ndarray], eta: float, m: int
) -> None:
    """Move every weight and bias against its gradient, averaged over the mini-batch."""
    step = eta / m
    for w, nw in zip(network.weights, nabla_w):
        w -= step * nw  # w → w − (η/m) Σ_x ∂C_x/∂w   (chapter 1, eq. 20)
    for b, nb in zip(network.biases, nabla_b):
        b -= step * nb  # b → b − (η/m) Σ_x ∂C_x/∂b   (chapter 1, eq. 21)


def check_data_fits(network: Network, dataset: Dataset) -> None:
    """Refuse data whose images or labels don't fit the network's input and output layers."""
    if dataset.n_features != network.sizes[0]:
        raise ConfigError(
            f"sizes {network.sizes}: the first layer must have {dataset.n_features} neurons, "
            f"one per pixel of the {dataset.name} images"
        )
    n_classes = int(dataset.labels.max()) + 1 if len(dataset) else 0
    if n_classes > network.sizes[-1]:
        raise ConfigError(
            f"sizes {network.sizes}: the last layer must have at least {n_classes} neurons, "
            f"one per class in the {dataset.name} labels"
        )


def train(
    network: Network,
    training_data: Dataset,
    config: TrainingConfig = TrainingConfig(),
    *,
    evaluation: Sequence[Dataset] = (),
    monitor_cost: bool = False,
    callbacks: Sequence[Callback] = (),
    blas_thread_limit: int | None = DEFAULT_BLAS_THREADS,
) -> History:
    """Train ``network`` by mini-batch stochastic gradient descent; return the history.

    After each epoch every dataset in ``evaluation`` is evaluated (accuracy, and
    the cost if ``monitor_cost``), and the record goes to the history and to the
    callbacks. BLAS runs with ``blas_thread_limit`` threads (None: unchanged).
    """
    for dataset in (training_data, *evaluation):
        check_data_fits(network, dataset)
    images, labels = training_data.images, training_data.labels
    targets = np.eye(network.sizes[-1], dtype=network.dtype)
    n, m = len(training_data), config.mini_batch_size
    rng = make_rng(config.seed, "shuffle")
    gradient = network.backprop if config.backprop == "matrix" else network.backprop_per_example
    run = TrainingRun(network, config, n_batches=-(-n // m), eta=config.eta)

    with blas_threads(blas_thread_limit):
        for callback in callbacks:
            callback.on_train_begin(run)
        for epoch in range(config.epochs):
            run.epoch = epoch
            for callback in callbacks:
                callback.on_epoch_begin(run, epoch)
            started = time.perf_counter()
            order = rng.permutation(n)  # a fresh shuffle each epoch, then consecutive mini-batches
            for batch, first in enumerate(range(0, n, m)):
                chosen = order[first : first + m]
                x = images[chosen].astype(network.dtype, copy=False).T  # the mini-batch as columns, (784, m)
                y = targets[:, labels[chosen]]  # one-hot targets y(x), shape (10, m)
                nabla_b, nabla_w = gradient(x, y)
                gradient_descent_step(network, nabla_b, nabla_w, run.eta, len(chosen))
                for callback in callbacks:
                    callback.on_batch_end(run, batch)
            record: dict[str, Any] = {"epoch": epoch, "seconds": time.perf_counter() - started, "eta": run.eta}
            for dataset in evaluation:
                record.update(evaluate(network, dataset, with_cost=monitor_cost))
            run.history.epochs.append(record)
            for callback in callbacks:
                callback.on_epoch_end(run, record)
            if run.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end(run)
    return run.history
