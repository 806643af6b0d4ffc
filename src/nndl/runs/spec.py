"""A training run as data: the :class:`Recipe` that ``nndl train`` and every experiment run.

A recipe names everything a run needs (network, cost, initialisation,
hyperparameters, data, what to monitor, schedules, distortions) as plain,
JSON-friendly values, so experiments are declared rather than coded, and one
function, :func:`run_recipe`, turns any recipe into a trained network and its
history.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Sequence

from .. import __version__
from ..data.distortions import parse_distortion
from .blas import DEFAULT_BLAS_THREADS
from ..data.mnist import MNIST
from ..errors import ConfigError
from ..network import Network, check_sizes
from ..schedules import EarlyStopping, HalveOnPlateau, TimeLimit
from ..training import Callback, History, Monitor, TrainingConfig, check_data_fits, evaluate, train

MONITOR_CHOICES = ("training-cost", "training-accuracy", "evaluation-cost", "evaluation-accuracy")


@dataclass(frozen=True)
class Recipe:
    """Everything one training run needs, as plain values (the defaults are chapter 1's run).

    ``hidden`` gives the hidden layers (input and output fit the data) unless
    ``sizes`` gives every layer. ``data`` is a folder of MNIST-layout files
    (None: the usual MNIST). ``evaluate_each_epoch`` False scores the network
    once, after training (the book's more-data experiment does).
    """

    hidden: tuple[int, ...] = (30,)
    sizes: tuple[int, ...] | None = None
    cost: str = "quadratic"
    activation: str = "sigmoid"
    output_activation: str | None = None
    init: str = "large"
    dropout: float = 0.0
    dtype: str = "float32"
    epochs: int = TrainingConfig.epochs  # the hyperparameters' defaults are TrainingConfig's
    mini_batch_size: int = TrainingConfig.mini_batch_size
    eta: float = TrainingConfig.eta
    lmbda: float = TrainingConfig.lmbda
    l1: float = TrainingConfig.l1
    momentum: float = TrainingConfig.momentum
    backprop: str = TrainingConfig.backprop
    train_size: int | None = None
    data: str | None = None
    evaluate_on: str = "test"
    evaluate_each_epoch: bool = True
    monitor: tuple[str, ...] = ()
    early_stopping: int | None = None
    schedule: str | None = None
    patience: int = 10
    augment: str | None = None
    augment_workers: int = 2
    time_limit: float | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.monitor if m not in MONITOR_CHOICES]
        if unknown:
            raise ConfigError(f"monitor {unknown[0]!r}: choose from {', '.join(MONITOR_CHOICES)}")
        if self.evaluate_on not in ("test", "validation"):
            raise ConfigError(f"evaluate_on {self.evaluate_on!r}: choose test or validation")
        if self.schedule not in (None, "halve-on-plateau"):
            raise ConfigError(f"schedule {self.schedule!r}: the one schedule is halve-on-plateau")
        if self.augment is not None:
            parse_distortion(self.augment)
        self.training_config(seed=0)  # validates the hyperparameters
        check_sizes(self.sizes or (1, *self.hidden, 1))
        # a tiny stand-in checks the network settings (names, cost/output pairs, dropout) the same way
        Network([2, 2, 2], cost=self.cost, activation=self.activation, output_activation=self.output_activation,
                init=self.init, dropout=self.dropout, seed=0, dtype=self.dtype)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "recipe") -> "Recipe":
        """Build a recipe from plain values, naming any unknown key and the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown setting {unknown[0]!r}; known settings: {', '.join(sorted(known))}")
        cleaned = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        try:
            return cls(**cleaned)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with some settings changed (validated like any recipe)."""
        return Recipe.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def training_config(self, seed: int | None) -> TrainingConfig:
        return TrainingConfig(epochs=self.epochs, mini_batch_size=self.mini_batch_size, eta=self.eta,
                              lmbda=self.lmbda, l1=self.l1, momentum=self.momentum, seed=seed,
                              backprop=self.backprop)

    def network(self, mnist: MNIST, seed: int | None) -> Network:
        sizes = self.sizes or (mnist.training.n_features, *self.hidden, mnist.n_classes)
        return Network(sizes, cost=self.cost, activation=self.activation, output_activation=self.output_activation,
                       init=self.init, dropout=self.dropout, seed=seed, dtype=self.dtype)

    def monitors(self, mnist: MNIST) -> list[Monitor]:
        evaluation = mnist.split(self.evaluate_on)
        monitors = [Monitor(evaluation, accuracy=True, cost="evaluation-cost" in self.monitor)]
        if {"training-cost", "training-accuracy"} & set(self.monitor):
            monitors.append(Monitor(mnist.training, accuracy="training-accuracy" in self.monitor,
                                    cost="training-cost" in self.monitor))
        return monitors

    def callbacks(self) -> list[Callback]:
        metric = f"{self.evaluate_on}_accuracy"
        callbacks: list[Callback] = []
        if self.schedule == "halve-on-plateau":
            callbacks.append(HalveOnPlateau(metric, self.patience))
        if self.early_stopping:
            callbacks.append(EarlyStopping(metric, self.early_stopping))
        if self.time_limit:
            callbacks.append(TimeLimit(self.time_limit))
        return callbacks


def run_recipe(recipe: Recipe, mnist: MNIST, seed: int, callbacks: Sequence[Callback] = (),
               blas_thread_limit: int | None = DEFAULT_BLAS_THREADS) -> tuple[Network, dict[str, Any]]:
    """Train the recipe's network on ``mnist`` with ``seed``; return it and a JSON-ready summary.

    The summary holds the settings, the per-epoch history, the best and final
    evaluation accuracy (with the best epoch) and the wall time.
    """
    if recipe.train_size is not None and len(mnist.training) > recipe.train_size:
        mnist = dataclasses.replace(mnist, training=mnist.training.head(recipe.train_size))
    network = recipe.network(mnist, seed)
    monitors = recipe.monitors(mnist)
    for monitor in monitors:
        check_data_fits(network, monitor.dataset)
    augmentation = parse_distortion(recipe.augment) if recipe.augment else None
    started = time.perf_counter()
    history = train(network, mnist.training, recipe.training_config(seed),
                    evaluation=monitors if recipe.evaluate_each_epoch else (),
                    callbacks=[*recipe.callbacks(), *callbacks], augmentation=augmentation,
                    augment_workers=recipe.augment_workers, blas_thread_limit=blas_thread_limit)
    if not recipe.evaluate_each_epoch:
        final = history.epochs[-1]
        for monitor in monitors:
            final.update(evaluate(network, monitor, recipe.training_config(seed).regularization,
                                  len(mnist.training)))
    return network, summarize(recipe, network, mnist, seed, history, time.perf_counter() - started)


def summarize(recipe: Recipe, network: Network, mnist: MNIST, seed: int, history: History,
              seconds: float) -> dict[str, Any]:
    """The JSON summary of a finished run."""
    name = recipe.evaluate_on
    key = f"{name}_accuracy"
    best, final = history.best(key), history.final()
    return {
        "nndl_version": __version__,
        "settings": {
            "recipe": recipe.to_dict(),
            "seed": seed,
            "network": network.describe(),
            "data": {"source": str(mnist.source), "train_size": len(mnist.training), "evaluate_on": name},
        },
        "history": history.epochs,
        "best": {"epoch": best["epoch"], "accuracy": best[key], "correct": best[f"{name}_correct"]},
        "final": {"epoch": final["epoch"], "accuracy": final[key], "correct": final[f"{name}_correct"]},
        "seconds": seconds,
    }
