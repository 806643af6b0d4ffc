"""One runner for every run: a :class:`~nndl.runs.spec.RunSpec` in, a trained network and its summary out.

``nndl train``, the experiments, the sweeps and the web page all call
:func:`run_spec`. It resolves the data section (:func:`load_run_data`), builds
the network and the callbacks the specification asks for, restores a
checkpoint when resuming, controls BLAS threads and the distortion workers,
and returns a JSON-ready summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .. import __version__
from ..callbacks import Callback, LearningSpeed
from ..data.distortions import DistortedEpochs, expand_by_one_pixel, image_side, parse_distortion
from ..data.mnist import MNIST, Dataset, load_mnist
from ..device import array_module
from ..errors import NndlError
from ..metrics import Monitor, ensemble_accuracy, evaluate
from ..network import Network
from ..rng import fresh_seed
from ..schedules import EarlyStopping, EpochDecay, HalveOnPlateau, KeepBest, TimeLimit
from ..training import TrainingRun, train
from .blas import AUTO, blas_threads, cores, default_threads
from .checkpoint import Checkpointer, check_compatible, latest_checkpoint
from .spec import DataSpec, RunSpec


class DataCache:
    """Datasets loaded once per process, keyed by their data section (experiments reuse them)."""

    def __init__(self) -> None:
        self.loaded: dict[tuple[Any, ...], MNIST] = {}

    def get(self, data: DataSpec) -> MNIST:
        key = (data.source, data.expand, data.train_size, data.score_size)
        if key not in self.loaded:
            self.loaded[key] = load_run_data(data)
        return self.loaded[key]


def load_run_data(data: DataSpec) -> MNIST:
    """The training, validation and test data a data section describes (the one loader for every caller)."""
    mnist = load_mnist(data.source, train_size=data.train_size)
    if data.expand == "shift-one-pixel":
        side = image_side(mnist.training.n_features)
        images, labels = expand_by_one_pixel(mnist.training.images.reshape(-1, side, side), mnist.training.labels)
        mnist = dataclasses.replace(mnist, training=Dataset(images.reshape(len(images), -1), labels, "training"))
    if data.score_size is not None:
        mnist = dataclasses.replace(mnist, validation=mnist.validation.head(data.score_size),
                                    test=mnist.test.head(data.score_size))
    return mnist


def data_fingerprint(mnist: MNIST) -> str:
    """A hash of the training and evaluation data, so a run resumes only on the data it started with."""
    digest = hashlib.blake2b(digest_size=12)
    for dataset in (mnist.training, mnist.validation, mnist.test):
        digest.update(np.ascontiguousarray(dataset.labels).tobytes())
        digest.update(np.ascontiguousarray(dataset.images).tobytes())
    return digest.hexdigest()


class DistortedData:
    """Training data whose images are freshly distorted every epoch (the distortions section)."""

    def __init__(self, dataset: Dataset, epochs: DistortedEpochs):
        self.labels, self.name, self.dataset, self.epochs = dataset.labels, dataset.name, dataset, epochs

    @property
    def n_features(self) -> int:
        return self.dataset.n_features

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch_images(self, epoch: int) -> np.ndarray:
        return self.epochs.epoch_images(epoch)


class DivergenceGuard(Callback):
    """Stop a run whose weights or cost become NaN or infinite, keeping the last good epoch's weights."""

    def on_train_begin(self, run: TrainingRun) -> None:
        self.good = [p.copy() for p in run.network.parameters()]

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        values = [v for metrics in record["metrics"].values() for v in metrics.values()]
        finite = all(np.isfinite(p).all() for p in run.network.parameters()) and all(map(math.isfinite, values))
        if finite:
            for good, param in zip(self.good, run.network.parameters()):
                good[...] = param
            return
        for good, param in zip(self.good, run.network.parameters()):
            param[...] = good
        run.stop_training = True
        run.diverged = (f"training diverged at epoch {record['epoch']}: the weights or the cost became NaN or "
                        f"infinite (η = {run.eta:g} or λ = {run.config.lmbda:g} is probably too large); "
                        f"the weights are those of the last good epoch")


@dataclass
class RunResult:
    """A finished (or interrupted) run: the network, the training run's state and the JSON summary."""

    spec: RunSpec
    network: Network
    run: TrainingRun
    summary: dict[str, Any]
    checkpoint: Path | None = None


def monitors_for(spec: RunSpec, mnist: MNIST) -> list[Monitor]:
    """The datasets scored each epoch: the evaluation split, validation when a rule watches it, training if asked."""
    wanted = set(spec.monitoring.monitor)
    evaluation = mnist.split(spec.data.evaluate_on)
    monitors = [Monitor(evaluation, accuracy=True, cost="evaluation-cost" in wanted)]
    if spec.monitoring.keeps_best and spec.data.evaluate_on != spec.watched.dataset:
        monitors.append(Monitor(mnist.split(spec.watched.dataset)))
    if {"training-cost", "training-accuracy"} & wanted:
        monitors.append(Monitor(mnist.training, accuracy="training-accuracy" in wanted, cost="training-cost" in wanted))
    return monitors


def rule_callbacks(spec: RunSpec) -> list[Callback]:
    """The callbacks the monitoring section asks for, in the order they must run."""
    monitoring, callbacks = spec.monitoring, []
    if monitoring.schedule == "halve-on-plateau":
        callbacks.append(HalveOnPlateau(spec.watched, monitoring.patience))
    elif monitoring.schedule is not None:
        callbacks.append(EpochDecay(monitoring.schedule, monitoring.decay, monitoring.decay_every))
    if monitoring.early_stopping:
        callbacks.append(EarlyStopping(spec.watched, monitoring.early_stopping))
    if monitoring.keep_best and not any(isinstance(c, KeepBest) for c in callbacks):
        callbacks.append(KeepBest(spec.watched))
    if monitoring.time_limit:
        callbacks.append(TimeLimit(monitoring.time_limit))
    if monitoring.learning_speed:
        callbacks.append(LearningSpeed())
    return callbacks


@contextlib.contextmanager
def training_source(spec: RunSpec, training: Dataset, seed: int) -> Iterator[Any]:
    """The training data, distorted afresh each epoch when the distortions section asks (workers cleaned up)."""
    if spec.distortions.augment is None:
        yield training
        return
    distortion = parse_distortion(spec.distortions.augment)
    workers = min(spec.distortions.workers, cores())  # more would only share the cores, each with its own memory
    with DistortedEpochs(training.images, distortion, seed, workers) as epochs:
        yield DistortedData(training, epochs)


def run_spec(spec: RunSpec, *, callbacks: Sequence[Callback] = (), cache: DataCache | None = None,
             checkpoint: str | Path | None = None, resume: bool = False,
             blas_thread_limit: int | None = AUTO, outputs: dict[str, str | bool | None] | None = None) -> RunResult:
    """Train the run ``spec`` describes; return the network and a JSON-ready summary.

    A spec without a seed gets a fresh one, recorded in the summary. With
    ``checkpoint`` the run is saved there after every epoch and when
    interrupted; ``resume`` continues from its newest checkpoint (refusing a
    different specification or different data). ``outputs`` (what the caller
    will write, e.g. ``nndl train``'s --save) go into every checkpoint, for a
    resume to restore. Watching and stopping the run
    (printing, Ctrl-C, the web page's controls) are ``callbacks``.
    ``blas_thread_limit`` caps BLAS's threads (None: BLAS's own choice; AUTO:
    by the size of the products, :func:`nndl.runs.blas.default_threads`).
    """
    if resume and checkpoint is None:
        raise NndlError("resuming needs the checkpoint folder")
    array_module(spec.network.device)  # a missing GPU or CuPy is said before any data is read
    saved = latest_checkpoint(Path(checkpoint)) if resume else None
    if saved is not None and spec.training.seed is None:
        spec = spec.replace(seed=saved.spec.training.seed)  # a resumed run keeps the seed it drew
    if spec.training.seed is None:
        spec = spec.replace(seed=fresh_seed())
    seed = spec.training.seed
    mnist = (cache or DataCache()).get(spec.data)
    network = spec.network.build(mnist.training.n_features, mnist.n_classes, seed)
    monitors = monitors_for(spec, mnist)
    rules = rule_callbacks(spec)
    every = [DivergenceGuard(), *rules, *callbacks]
    position = None
    checkpointer = None
    if checkpoint is not None:
        fingerprint = data_fingerprint(mnist)
        checkpointer = Checkpointer(checkpoint, spec, fingerprint, stateful=rules, outputs=outputs)
        if saved is not None:
            check_compatible(saved, spec, fingerprint)
            position = saved.restore(network, rules)
        every.append(checkpointer)  # last: an epoch's decisions are in its checkpoint
    if blas_thread_limit == AUTO:
        blas_thread_limit = default_threads(network, spec.training.mini_batch_size, spec.distortions.augment is not None)
    started = time.perf_counter()
    # Overflow in a diverging run is reported once, as a sentence, by DivergenceGuard, not as NumPy warnings.
    with blas_threads(blas_thread_limit), np.errstate(over="ignore", invalid="ignore"), \
            training_source(spec, mnist.training, seed) as source:
        run = train(network, source, spec.training, evaluation=monitors if spec.monitoring.evaluate_each_epoch
                    else (), callbacks=every, resume=position)
    if not spec.monitoring.evaluate_each_epoch and run.history.epochs and not run.interrupted:
        final = run.history.epochs[-1]
        for monitor in monitors:
            final["metrics"][monitor.dataset.name] = evaluate(network, monitor, spec.training.regularization,
                                                              len(mnist.training))
    return RunResult(spec, network, run, summarize(spec, mnist, run, time.perf_counter() - started),
                     checkpointer.saved if checkpointer else None)


def summarize(spec: RunSpec, mnist: MNIST, run: TrainingRun, seconds: float) -> dict[str, Any]:
    """The JSON summary of a run: settings, history, best and final evaluation accuracy, how it ended."""
    measure = spec.evaluation
    best, final = run.history.best(measure), run.history.final()

    def point(record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None or measure.of(record) is None:
            return None
        metrics = record["metrics"][measure.dataset]
        return {"epoch": record["epoch"], "measure": str(measure), "accuracy": metrics["accuracy"],
                "correct": metrics["correct"]}

    return {
        "nndl_version": __version__,
        "spec": spec.to_dict(),
        "network": run.network.describe(),
        "data": {"source": str(mnist.source), "train_size": len(mnist.training)},
        "history": run.history.epochs,
        "best": point(best),
        "final": point(final),
        "seconds": seconds,
        "interrupted": run.interrupted,
        "diverged": run.diverged,
    }


def kept_scores(network: Network, mnist: MNIST) -> dict[str, float]:
    """The finished network's validation and test accuracy (with early stopping: the best epoch's weights)."""
    return vote_scores([network], mnist)


def vote_scores(networks: Sequence[Network], mnist: MNIST) -> dict[str, float]:
    """The validation and test accuracy of ``networks`` voting with their averaged outputs (one: itself)."""
    return {d.name: ensemble_accuracy(list(networks), d)["accuracy"] for d in (mnist.validation, mnist.test)}
