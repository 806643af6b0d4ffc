"""Stochastic gradient descent over shuffled mini-batches (chapters 1 and 3), with callbacks.

One loop serves every run: :func:`train` takes a network, a source of training
data, a :class:`TrainingConfig` (the hyperparameters, plain data), the datasets
to score after each epoch and the callbacks. Anything that watches or steers
training (printing, a progress bar, early stopping, η schedules, checkpoints,
live plots) is a :class:`~nndl.callbacks.Callback`, so the loop itself never
grows a flag for it; BLAS threads and signals belong to the caller.

Every random choice is drawn from a stream keyed by (seed, purpose, epoch), so
any epoch can be replayed, and a run can stop after any mini-batch and resume
exactly (see :class:`Position`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

import numpy as np

from .callbacks import Callback
from .data.pairs import as_dataset
from .device import to_module
from .errors import ConfigError
from .metrics import History, Monitor, evaluate
from .network import Network
from .optimizer import SGD
from .regularization import L2_SCALES, Regularization
from .rng import make_rng
from .settings import check_fields, setting

BACKPROP_MODES = ("matrix", "per-example")
BLOCK_IMAGES = 1024  # images turned into input columns at once; each mini-batch is a slice of them


@dataclass(frozen=True)
class TrainingConfig:
    """The hyperparameters of one SGD run; the defaults are the book's chapter-1 run."""

    epochs: int = setting(30, "passes over the training data", kind="int", minimum=1, metavar="N")
    mini_batch_size: int = setting(10, "examples per gradient step, m", kind="int", minimum=1,
                                  flag="--mini-batch-size", metavar="M")
    eta: float = setting(3.0, "learning rate η", kind="float", above=0.0, metavar="η")
    lmbda: float = setting(0.0, "L2 regularisation (weight decay) λ, scaled by the training-set size n", kind="float",
                           minimum=0.0, metavar="λ")
    l2_scale: str = setting("training-set", "what the L2 term is divided by: training-set = (λ/2n) Σw² as "
                            "network2.py (chapter 3), mini-batches = (λ/2) Σw² / (n/m mini-batches) as network3.py "
                            "(chapter 6: m times the decay at the same λ)", kind="str", choices=L2_SCALES)
    l1: float = setting(0.0, "L1 regularisation λ₁, scaled by n", kind="float", minimum=0.0, metavar="λ1")
    momentum: float = setting(0.0, "momentum coefficient μ; 0 is plain SGD", kind="float", minimum=0.0, below=1.0,
                              metavar="μ")
    backprop: str = setting("matrix", "matrix = the whole mini-batch at once; per-example = the book's loop over "
                            "single images (same result, about 10x slower)", kind="str", choices=BACKPROP_MODES)
    seed: int | None = setting(None, "seed for the initial weights, mini-batch order, dropout and distortions "
                               "(default: random, and recorded)", kind="int", minimum=0, maximum=2**32 - 1,
                               optional=True)

    def __post_init__(self) -> None:
        check_fields(self, "training")

    @property
    def regularization(self) -> Regularization:
        return Regularization(l2=self.lmbda, l1=self.l1, l2_scale=self.l2_scale, mini_batch_size=self.mini_batch_size)


class TrainingData(Protocol):
    """Where training images come from: a plain dataset, or fresh distortions every epoch."""

    labels: np.ndarray
    name: str

    @property
    def n_features(self) -> int: ...

    def __len__(self) -> int: ...

    def epoch_images(self, epoch: int) -> np.ndarray:
        """The images (rows) to train on in ``epoch``, in the order of ``labels``."""


@dataclass
class Position:
    """Where a run stands between two mini-batches: all a resumed run needs besides weights and callbacks."""

    epoch: int = 0
    batch: int = 0  # the next mini-batch of ``epoch``
    eta: float | None = None
    velocities: list[np.ndarray] | None = None
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    dropout_state: dict[str, Any] | None = None  # the dropout stream mid-epoch
    epoch_seconds: float = 0.0  # time already spent in ``epoch``


@dataclass
class TrainingRun:
    """The state of a training run, as callbacks see it."""

    network: Network
    config: TrainingConfig
    optimizer: SGD
    n_batches: int
    seed: int
    history: History = dataclasses.field(default_factory=History)
    epoch: int = 0
    batch: int = 0  # mini-batches of ``epoch`` done so far
    stop_training: bool = False
    interrupted: bool = False  # stopped mid-epoch by request_stop()
    diverged: str | None = None  # why training was stopped as hopeless, where it was
    # the last mini-batch's (nabla_b, nabla_w), one array per layer with weights
    gradients: tuple[list[np.ndarray], list[np.ndarray]] | None = None
    batch_size: int = 0
    dropout_rng: np.random.Generator | None = None
    epoch_seconds: float = 0.0
    stop_requested: bool = False

    @property
    def eta(self) -> float:
        """The current learning rate η."""
        return self.optimizer.eta

    @eta.setter
    def eta(self, value: float) -> None:
        self.optimizer.eta = value

    def request_stop(self) -> None:
        """Stop at the end of the current mini-batch (safe to call from a signal handler or another thread)."""
        self.stop_requested = True

    def position(self) -> Position:
        """Where the run stands now, for a checkpoint."""
        return Position(self.epoch, self.batch, self.eta, self.optimizer.velocities, self.history.epochs,
                        None if self.dropout_rng is None else self.dropout_rng.bit_generator.state,
                        self.epoch_seconds)


def check_data_fits(network: Network, dataset: Any) -> None:
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


def check_monitors(network: Network, training_data: TrainingData, monitors: Sequence[Monitor]) -> None:
    """Every dataset fits the network, and no two monitored datasets share a name."""
    names = [m.dataset.name for m in monitors]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"two evaluation datasets are both called {repeated[0]!r}; give each a different name")
    for dataset in (training_data, *(m.dataset for m in monitors)):
        check_data_fits(network, dataset)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training examples in ``epoch``: a fresh shuffle, then consecutive mini-batches."""
    return make_rng(seed, "shuffle", epoch).permutation(n)


def mini_batches(network: Network, images: np.ndarray, labels: np.ndarray, order: np.ndarray, m: int,
                 first_batch: int = 0) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(batch, x, y)`` for the mini-batches of an epoch from ``first_batch`` on.

    x holds the chosen images as columns in [0, 1], shape (784, m); y their
    one-hot targets y(x), shape (10, m). Images are converted a block of about
    BLOCK_IMAGES at a time, and each mini-batch is a slice of its block: one
    conversion serves many steps. Blocks start at fixed batches, so a resumed
    epoch slices the same blocks as an uninterrupted one.
    """
    targets = network.xp.eye(network.sizes[-1], dtype=network.dtype)
    per_block = max(1, BLOCK_IMAGES // m)
    n_batches = -(-len(order) // m)
    for start in range(first_batch - first_batch % per_block, n_batches, per_block):
        chosen = order[start * m : (start + per_block) * m]
        xs, ys = network.inputs(images[chosen]), targets[:, network.xp.asarray(labels[chosen])]
        for batch in range(max(start, first_batch), min(start + per_block, n_batches)):
            columns = slice((batch - start) * m, (batch - start + 1) * m)
            yield batch, xs[:, columns], ys[:, columns]


def train(
    network: Network,
    training_data: TrainingData,
    config: TrainingConfig = TrainingConfig(),
    *,
    evaluation: Sequence[Monitor] = (),
    callbacks: Sequence[Callback] = (),
    resume: Position | None = None,
) -> TrainingRun:
    """Train ``network`` by mini-batch stochastic gradient descent; return the finished run.

    After each epoch every :class:`~nndl.metrics.Monitor` in ``evaluation`` is
    scored and the record goes to the history and to the callbacks. ``resume``
    continues a run from a checkpoint's :class:`Position` (the network must
    already hold that checkpoint's weights). ``config.seed`` must be set.
    """
    if config.seed is None:
        raise ConfigError("training needs a seed (the runner draws and records one when none is given)")
    training_data = as_dataset(training_data, "training")  # the book's list of (x, y) pairs too
    check_monitors(network, training_data, evaluation)
    labels, n, m = training_data.labels, len(training_data), config.mini_batch_size
    gradient = network.backprop if config.backprop == "matrix" else network.backprop_per_example
    optimizer = SGD(network, config.eta, n, config.momentum, config.regularization)
    resume = resume or Position()
    # callbacks see where a resumed run takes up again from on_train_begin on
    run = TrainingRun(network, config, optimizer, n_batches=-(-n // m), seed=config.seed, epoch=resume.epoch,
                      batch=resume.batch)
    run.history.epochs = list(resume.history)
    run.eta = config.eta if resume.eta is None else resume.eta
    if resume.velocities is not None:
        optimizer.velocities = [to_module(v, network.xp) for v in resume.velocities]

    try:
        for callback in callbacks:
            callback.on_train_begin(run)
        for epoch in range(resume.epoch, config.epochs):
            first_batch = resume.batch if epoch == resume.epoch else 0
            run.epoch, run.batch = epoch, first_batch
            run.dropout_rng = make_rng(config.seed, "dropout", epoch)
            run.epoch_seconds = resume.epoch_seconds if first_batch else 0.0
            if first_batch and resume.dropout_state is not None:
                run.dropout_rng.bit_generator.state = resume.dropout_state
            for callback in callbacks:
                callback.on_epoch_begin(run, epoch)
            started = time.perf_counter()
            images = training_data.epoch_images(epoch)
            order = epoch_order(config.seed, epoch, n)
            for batch, x, y in mini_batches(network, images, labels, order, m, first_batch):
                masks = network.draw_dropout_masks(run.dropout_rng)  # None without dropout
                run.batch_size = x.shape[1]
                run.gradients = gradient(x, y, masks)
                optimizer.step(network, *run.gradients, run.batch_size, masks)
                run.batch = batch + 1
                for callback in callbacks:
                    callback.on_batch_end(run, batch)
                if run.stop_requested and run.batch < run.n_batches:
                    break
            run.epoch_seconds += time.perf_counter() - started
            if run.batch < run.n_batches:  # stopped mid-epoch
                run.interrupted = True
                break
            record: dict[str, Any] = {"epoch": epoch, "seconds": run.epoch_seconds, "eta": run.eta, "metrics": {}}
            for monitor in evaluation:
                record["metrics"][monitor.dataset.name] = evaluate(network, monitor, config.regularization, n)
            run.history.epochs.append(record)
            run.epoch, run.batch, run.epoch_seconds = epoch + 1, 0, 0.0
            for callback in callbacks:
                callback.on_epoch_end(run, record)
            if run.stop_training or run.stop_requested:
                run.interrupted = run.stop_requested and not run.stop_training and run.epoch < config.epochs
                break
        if run.interrupted:
            for callback in callbacks:
                callback.on_interrupt(run)
    finally:
        for callback in callbacks:
            callback.on_train_end(run)
    return run
