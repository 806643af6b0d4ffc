"""Stochastic gradient descent over shuffled mini-batches (chapters 1 and 3), with callbacks.

One loop serves every experiment: :func:`train` takes a network, the training
data, a :class:`TrainingConfig` (the hyperparameters, plain data) and what to
monitor after each epoch. Anything that watches or steers training (printing,
a progress bar, early stopping, η schedules, checkpoints, live plots) is a
:class:`Callback`, so the loop itself never grows a flag for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .data.distortions import DistortedEpochs, Distortion
from .runs.blas import DEFAULT_BLAS_THREADS, blas_threads
from .data.mnist import Dataset
from .errors import ConfigError
from .network import Network
from .optimizer import SGD
from .regularization import Regularization
from .rng import fresh_seed, make_rng

BACKPROP_MODES = ("matrix", "per-example")


@dataclass(frozen=True)
class TrainingConfig:
    """The hyperparameters of one SGD run; the defaults are the book's chapter-1 run.

    ``eta`` is the learning rate η, ``mini_batch_size`` is m, ``lmbda`` the L2
    regularisation λ (the book's spelling), ``l1`` the L1 λ, ``momentum`` the
    coefficient μ. ``backprop`` is "matrix" (the whole mini-batch at once) or
    "per-example" (chapter 2's loop over single images; the same result,
    slower). ``seed`` fixes the order of the mini-batches and the dropout masks.
    """

    epochs: int = 30
    mini_batch_size: int = 10
    eta: float = 3.0
    lmbda: float = 0.0
    l1: float = 0.0
    momentum: float = 0.0
    seed: int | None = None
    backprop: str = "matrix"

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs {self.epochs}: must be a whole number ≥ 1")
        if not isinstance(self.mini_batch_size, int) or self.mini_batch_size < 1:
            raise ConfigError(f"mini-batch size {self.mini_batch_size}: must be a whole number ≥ 1")
        if not np.isfinite(self.eta) or self.eta <= 0:
            raise ConfigError(f"eta {self.eta}: the learning rate must be a positive number, e.g. 3.0")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum {self.momentum}: the coefficient μ must be in [0, 1)")
        if self.backprop not in BACKPROP_MODES:
            raise ConfigError(f"backprop {self.backprop!r}: choose from {', '.join(BACKPROP_MODES)}")
        Regularization(l2=self.lmbda, l1=self.l1)  # raises ConfigError for a negative λ

    @property
    def regularization(self) -> Regularization:
        return Regularization(l2=self.lmbda, l1=self.l1)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Monitor:
    """A dataset to score after every epoch, and what to measure on it (network2's monitor_* flags)."""

    dataset: Dataset
    accuracy: bool = True
    cost: bool = False


class Callback:
    """Something that watches or steers training; override the hooks you need.

    Every hook receives the :class:`TrainingRun`, which holds the network, the
    config, the history so far, the current ``eta`` (which a callback may
    change) and ``stop_training`` (set it to end training after this epoch).
    """

    def on_train_begin(self, run: "TrainingRun") -> None: ...

    def on_epoch_begin(self, run: "TrainingRun", epoch: int) -> None: ...

    def on_batch_end(self, run: "TrainingRun", batch: int) -> None: ...

    def on_epoch_end(self, run: "TrainingRun", record: dict[str, Any]) -> None: ...

    def on_train_end(self, run: "TrainingRun") -> None: ...


@dataclass
class History:
    """One record per epoch: its number, seconds, η, and each monitored metric."""

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
    optimizer: SGD
    n_batches: int
    history: History = dataclasses.field(default_factory=History)
    epoch: int = 0
    stop_training: bool = False

    @property
    def eta(self) -> float:
        """The current learning rate η."""
        return self.optimizer.eta

    @eta.setter
    def eta(self, value: float) -> None:
        self.optimizer.eta = value


def evaluate(network: Network, monitor: Monitor | Dataset, regularization: Regularization = Regularization(),
             n_training: int = 1) -> dict[str, Any]:
    """The monitored metrics on one dataset: accuracy as a count and a fraction, and/or the cost.

    The cost includes the regularisation term (λ/2n) Σ w², computed once here,
    with n the training-set size.
    """
    if isinstance(monitor, Dataset):
        monitor = Monitor(monitor, accuracy=True, cost=False)
    dataset, name = monitor.dataset, monitor.dataset.name
    metrics: dict[str, Any] = {}
    if monitor.accuracy:
        correct = network.evaluate(dataset.images, dataset.labels)
        metrics[f"{name}_correct"] = correct
        metrics[f"{name}_total"] = len(dataset)
        metrics[f"{name}_accuracy"] = correct / max(len(dataset), 1)
    if monitor.cost:
        penalty = regularization.penalty(network.weights, n_training) if regularization.active else 0.0
        metrics[f"{name}_cost"] = network.total_cost(dataset.images, dataset.labels) + penalty
    return metrics


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
    evaluation: Sequence[Monitor | Dataset] = (),
    monitor_cost: bool = False,
    callbacks: Sequence[Callback] = (),
    augmentation: Distortion | None = None,
    augment_workers: int = 2,
    blas_thread_limit: int | None = DEFAULT_BLAS_THREADS,
) -> History:
    """Train ``network`` by mini-batch stochastic gradient descent; return the history.

    After each epoch every dataset in ``evaluation`` is scored (a plain Dataset
    gets its accuracy, and its cost too if ``monitor_cost``; a :class:`Monitor`
    says which), and the record goes to the history and to the callbacks. With
    an ``augmentation`` (:class:`nndl.data.distortions.Distortion`), every epoch
    trains on fresh random distortions of the training images, prepared by
    ``augment_workers`` processes (0: in this one). BLAS runs with
    ``blas_thread_limit`` threads (None: unchanged).
    """
    monitors = [m if isinstance(m, Monitor) else Monitor(m, accuracy=True, cost=monitor_cost) for m in evaluation]
    for dataset in (training_data, *(m.dataset for m in monitors)):
        check_data_fits(network, dataset)
    images, labels = training_data.images, training_data.labels
    targets = np.eye(network.sizes[-1], dtype=network.dtype)
    n, m = len(training_data), config.mini_batch_size
    shuffle_rng, dropout_rng = make_rng(config.seed, "shuffle"), make_rng(config.seed, "dropout")
    gradient = network.backprop if config.backprop == "matrix" else network.backprop_per_example
    optimizer = SGD(network, config.eta, n, config.momentum, config.regularization)
    run = TrainingRun(network, config, optimizer, n_batches=-(-n // m))

    with blas_threads(blas_thread_limit), contextlib.ExitStack() as cleanup:
        distorted = None
        if augmentation is not None:
            seed = fresh_seed() if config.seed is None else config.seed
            distorted = cleanup.enter_context(DistortedEpochs(images, augmentation, seed, augment_workers))
        for callback in callbacks:
            callback.on_train_begin(run)
        for epoch in range(config.epochs):
            run.epoch = epoch
            for callback in callbacks:
                callback.on_epoch_begin(run, epoch)
            started = time.perf_counter()
            if distorted is not None:
                images = distorted.epoch_images(epoch)  # this epoch's fresh distortions
            order = shuffle_rng.permutation(n)  # a fresh shuffle each epoch, then consecutive mini-batches
            for batch, first in enumerate(range(0, n, m)):
                chosen = order[first : first + m]
                x = images[chosen].astype(network.dtype, copy=False).T  # the mini-batch as columns, (784, m)
                y = targets[:, labels[chosen]]  # one-hot targets y(x), shape (10, m)
                masks = network.draw_dropout_masks(dropout_rng)  # None without dropout
                nabla_b, nabla_w = gradient(x, y, masks)
                optimizer.step(network, nabla_b, nabla_w, len(chosen), masks)
                for callback in callbacks:
                    callback.on_batch_end(run, batch)
            record: dict[str, Any] = {"epoch": epoch, "seconds": time.perf_counter() - started, "eta": run.eta}
            for monitor in monitors:
                record.update(evaluate(network, monitor, config.regularization, n))
            run.history.epochs.append(record)
            for callback in callbacks:
                callback.on_epoch_end(run, record)
            if run.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end(run)
    return run.history
