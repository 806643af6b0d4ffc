"""The book's experiments (chapters 1, 3 and 5) as data, and one runner for all of them.

Each :class:`Experiment` is a declaration: its runs (flat run-specification
settings, see :class:`nndl.runs.spec.RunSpec`), the rows of its report (what to
measure and what the book reported) and its figures (which measure over which
epochs). Every cross-reference (a row's or figure's run, a measure the run does
not record) is checked when the registry loads. The runner trains every run for
every seed with :func:`nndl.runs.runner.run_spec`, writes the histories as JSON
(a rerun skips the runs already finished), draws the figures and writes a
Markdown report with the book's number beside nndl's (best of the seeds, as the
book did, and the mean). ``quick`` runs a shortened form of every experiment to
check the whole pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..callbacks import Callback, format_epoch
from ..errors import ConfigError
from ..files.atomic import read_json, write_bytes_atomically
from ..files.models import load_model, save_model
from ..files.plots import plot_mistakes, plot_series, plot_spread
from ..metrics import Measure, ensemble_guesses
from ..network import Network
from ..pixels import unit_interval
from ..settings import option_flag
from ..text import plural
from ..unstable import balanced_chain, bias_gradients
from .checkpoint import resumable
from .runner import DataCache, kept_scores, run_spec, vote_scores
from .spec import SECTIONS, RunSpec

HOWS = ("best", "final", "first", "kept", "ensemble", "epoch-of-best", "epoch-of-min")
MISTAKES_SHOWN = 100  # digits in an ensemble's mistakes figure at most (the book's made 33)


@dataclass(frozen=True)
class LayerSpeed:
    """Hidden layer ``layer``'s speed of learning ‖∂C/∂b^l‖ in an epoch record (chapter 5; a run records it with
    learning_speed). With one mini-batch per epoch, epoch 0's value is the gradient at the initial weights."""

    layer: int
    dataset = "training"
    name = "speed"
    higher_is_better = True

    def of(self, record: dict[str, Any]) -> float | None:
        speeds = record.get("learning_speed")
        return speeds[self.layer - 1] if speeds and self.layer < len(speeds) else None  # the last is the output's

    def __str__(self) -> str:
        return f"speed of hidden layer {self.layer}"


def parse_measure(text: str) -> tuple[str, Measure | LayerSpeed | None]:
    """'best test_accuracy' → ('best', Measure('test', 'accuracy')); 'first speed2' → ('first', LayerSpeed(2));
    'epochs' → ('epochs', None)."""
    if text == "epochs":
        return "epochs", None
    how, _, key = text.partition(" ")
    if how not in HOWS:
        raise ConfigError(f"measure {text!r}: begin with one of {', '.join(HOWS)}")
    speed = re.fullmatch(r"speed([1-9]\d*)", key)
    if speed is None:
        return how, Measure.parse(key)
    if how not in ("first", "final"):
        raise ConfigError(f"measure {text!r}: a layer's speed is read at the first or final epoch")
    return how, LayerSpeed(int(speed.group(1)))


@dataclass(frozen=True)
class Row:
    """One line of a report: a measurement of one run, and what the book reported.

    ``measure`` is "best KEY", "final KEY", "first KEY" (epoch 0), "kept KEY"
    (the finished network scored afresh: with early stopping, the best epoch's
    weights), "ensemble KEY" (the finished networks of every seed voting with
    their averaged outputs; an accuracy), "epoch-of-best KEY", "epoch-of-min KEY"
    or "epochs" (how many ran); KEY names a dataset and a measure, such as
    test_accuracy or training_cost.
    """

    label: str
    run: str
    measure: str
    book: float | str | None = None

    def __post_init__(self) -> None:
        how, measure = parse_measure(self.measure)
        if how == "ensemble" and (measure is None or measure.name != "accuracy"):
            raise ConfigError(f"row {self.label!r}: an ensemble is scored by its accuracy, "
                              "e.g. 'ensemble test_accuracy'")


@dataclass(frozen=True)
class Figure:
    """A figure: ``metric`` per epoch for each run (``kind="curve"``, optionally over the run's
    epochs [start, stop)), or the final metric against the training-set size (``kind="by-size"``).
    Chapter 5's kinds take ``metric="learning_speed"``: ``"speed"`` draws one run's hidden layers' speeds
    of learning per epoch on a log scale, ``"speed-at-start"`` every seed's speeds at the initial weights,
    one panel per depth, one colour per network, the book's single draw beside them."""

    name: str
    title: str
    metric: str
    runs: tuple[str, ...] = ()  # empty: every run
    epochs: tuple[int, int] | None = None
    kind: str = "curve"

    @property
    def measures(self) -> list[Measure]:
        return [] if self.kind in SPEED_FIGURES else [Measure.parse(key) for key in self.metric.split(",")]


SPEED_FIGURES = ("speed", "speed-at-start")


def recorded_datasets(spec: RunSpec) -> dict[str, set[str]]:
    """The measures a run records, by dataset (a layer's speed as "speed1", "speed2", … of "training")."""
    wanted = set(spec.monitoring.monitor)
    recorded = {spec.data.evaluate_on: {"accuracy", "correct"} | ({"cost"} if "evaluation-cost" in wanted else set())}
    if spec.monitoring.keeps_best:
        recorded.setdefault("validation", set()).update({"accuracy", "correct"})
    training = {name for name, flag in (("accuracy", "training-accuracy"), ("correct", "training-accuracy"),
                                        ("cost", "training-cost")) if flag in wanted}
    if spec.monitoring.learning_speed:
        training |= {f"speed{layer}" for layer in range(1, len(spec.network.hidden) + 1)}
    if training:
        recorded["training"] = training
    return recorded


@dataclass(frozen=True)
class Experiment:
    """A named experiment: runs (label → flat spec settings), report rows and figures.

    ``folder`` is where its runs are kept (default: its name): experiments that
    share runs share a folder, and a run one of them finished is not run again
    by the other. The run an ensemble row scores trains ``ensemble_size`` seeds,
    or more if more are asked for (two in quick form); each ensemble's test
    mistakes are drawn. ``quick`` settings replace :func:`quick_form`'s where
    its epochs or images are too many for this experiment.
    """

    name: str
    title: str
    book_figure: str
    runs: dict[str, dict[str, Any]]
    rows: tuple[Row, ...]
    figures: tuple[Figure, ...] = ()
    long: bool = False  # left out of `run --all` unless asked: it takes far longer than the rest
    note: str = ""
    folder: str = ""
    ensemble_size: int = 0
    quick: dict[str, Any] = dataclasses.field(default_factory=dict)
    min_seeds: int = 1  # a full run takes at least this many seeds: its rows are a distribution, not a best
    example: Callable[[Path], tuple[list[str], list[dict[str, Any]]]] | None = None  # a worked example, no training

    def __post_init__(self) -> None:
        specs = self.specs()
        for row in self.rows:
            self.check_reference(row.run, f"row {row.label!r}")
            how, measure = parse_measure(row.measure)
            if measure is not None and how not in ("kept", "ensemble"):
                self.check_recorded(specs[row.run], measure, f"row {row.label!r}")
        for figure in self.figures:
            for run in figure.runs or tuple(self.runs):
                self.check_reference(run, f"figure {figure.name!r}")
                for measure in figure.measures or ([LayerSpeed(1)] if figure.kind in SPEED_FIGURES else []):
                    self.check_recorded(specs[run], measure, f"figure {figure.name!r}")

    def check_reference(self, run: str, what: str) -> None:
        if run not in self.runs:
            raise ConfigError(f"experiment {self.name!r}: {what} names run {run!r}, which is not one of its runs")

    def check_recorded(self, spec: RunSpec, measure: Measure | LayerSpeed, what: str) -> None:
        name = f"speed{measure.layer}" if isinstance(measure, LayerSpeed) else measure.name
        if name not in recorded_datasets(spec).get(measure.dataset, set()):
            raise ConfigError(f"experiment {self.name!r}: {what} needs the {measure}, which its run does not record")

    def seed_count(self, seeds: int, quick: bool) -> int:
        """How many seeds a run of this experiment takes when ``seeds`` are asked for."""
        return seeds if quick else max(seeds, self.min_seeds)

    @property
    def ensembles(self) -> set[str]:
        """The runs whose finished networks an ensemble row scores together (their models are kept)."""
        return {row.run for row in self.rows if row.measure.startswith("ensemble ")}

    def seeds_of(self, label: str, seeds: int, quick: bool) -> int:
        """How many seeds run ``label`` trains when ``seeds`` are asked for (an ensemble's run: at least its size)."""
        seeds = self.seed_count(seeds, quick)
        if label not in self.ensembles or not self.ensemble_size:
            return seeds
        return max(seeds, min(self.ensemble_size, 2) if quick else self.ensemble_size)

    def specs(self, quick: bool = False) -> dict[str, RunSpec]:
        """The runs as validated specifications (shortened when ``quick``)."""
        specs = {}
        for label, settings in self.runs.items():
            spec = RunSpec.from_flat(settings, where=f"experiment {self.name!r}, run {label!r}")
            specs[label] = quick_form(spec).replace(**self.quick) if quick else spec
        return specs


def quick_form(spec: RunSpec) -> RunSpec:
    """A short version of a run: a few epochs on at most 1,000 images, for checking the pipeline."""
    epochs = spec.training.epochs
    return spec.replace(
        epochs=min(epochs, 4) if epochs <= 60 else 8,
        train_size=min(spec.data.train_size or 50_000, 1_000),
        patience=min(spec.monitoring.patience, 1),
        early_stopping=1 if spec.monitoring.early_stopping else None,
        time_limit=None,
        workers=0,
    )


CE = {"cost": "cross-entropy", "eta": 0.5}  # chapter 3's first network: cross-entropy, η = 0.5
DEEP = "[1000, 500] relu, affine + scaling + elastic"
OVERFITTING = {**CE, "train_size": 1000, "epochs": 400,
               "monitor": ["training-cost", "training-accuracy", "evaluation-cost"]}
MORE_DATA_SIZES = (100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)  # the book's more_data.py
MORE_DATA_BOOK = (69.09, 76.37, 85.29, 88.85, 91.27, 93.24, 94.89, 95.85, 95.97)
NETWORK2 = {**CE, "init": "normalized", "eta": 0.1, "lmbda": 5.0}  # chapter 5's network2.py runs
DEPTH_BOOK = (96.48, 96.90, 96.57, 96.53)  # best validation accuracy with 1-4 hidden layers of 30
# fig/generate_gradient.py: full-batch gradient descent (η = 0.1, λ = 5.0) on the first 1,000 training images
SPEED = {**NETWORK2, "epochs": 500, "mini_batch_size": 1000, "train_size": 1000, "learning_speed": True,
         "evaluate_each_epoch": False}
SPEED_BOOK = {2: (0.07, 0.31), 3: (0.012, 0.060, 0.283), 4: (0.003, 0.017, 0.070, 0.285)}  # at initialisation
# the book's runs, then with chapter 1's N(0, 1) weights and with chapter 6's ReLU: figure suffix → (label, settings)
SPEED_REMEDIES = {"": ("", {}), "_large_weights": (", N(0, 1) weights", {"init": "large"}),
                  "_relu": (", ReLU", {"activation": "relu"})}


def hidden_label(layers: int, remedy: str = "") -> str:
    return f"{layers} hidden layer{'' if layers == 1 else 's'}{remedy}"


def exploding_gradient(out: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The chapter's chain of four one-neuron layers with every z = 0: ∂C/∂b^l for w = 100 (explodes, ×25 per
    layer), w = 4 (w σ'(z) = 1: stable) and w = 1 (vanishes, ×1/4), as a table and a figure."""
    weights = (100.0, 4.0, 1.0)
    gradients = {w: [abs(g) for g in bias_gradients(balanced_chain(w))] for w in weights}
    lines = ["### The exploding gradient: a chain of one-neuron layers with every z = 0, so σ'(z) = 1/4", "",
             "Input x = 1, target y = 0, quadratic cost; the biases are chosen so that every z = wa + b = 0. "
             "Going one layer back multiplies ∂C/∂b by w σ'(z) = w/4.", "",
             "| layer l | " + " | ".join(f"∂C/∂b^l, w = {w:g}" for w in weights) + " |",
             "|---|" + "---|" * len(weights)]
    for layer in range(len(gradients[weights[0]])):
        cells = []
        for w in weights:
            g = gradients[w]
            ratio = f" (×{g[layer] / g[layer + 1]:.4g})" if layer + 1 < len(g) else ""
            cells.append(f"{g[layer]:.4g}{ratio}")
        lines.append(f"| {layer + 1} | " + " | ".join(cells) + " |")
    series = {f"w = {w:g}, w σ'(z) = {w / 4:g}": (list(range(1, len(g) + 1)), g) for w, g in gradients.items()}
    plot_series(series, out / "exploding_gradient.png", r"$|\partial C/\partial b^l|$ along a chain with every z = 0",
                "layer l (1 is furthest from the output)", r"$|\partial C/\partial b^l|$", markers=True, ylog=True)
    return lines, [{"name": "exploding_gradient", "file": "exploding_gradient.png",
                    "series": {k: {"first": 1, "last": len(g), "points": len(g)} for k, (_, g) in series.items()}}]

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment("chapter1-30", "Chapter 1: [784, 30, 10], quadratic cost, η = 3.0", "-",
               {"[784, 30, 10]": {}}, (Row("best test accuracy", "[784, 30, 10]", "best test_accuracy", 95.42),)),
    Experiment("chapter1-100", "Chapter 1: [784, 100, 10], quadratic cost, η = 3.0", "-",
               {"[784, 100, 10]": {"hidden": [100]}},
               (Row("best test accuracy", "[784, 100, 10]", "best test_accuracy", 96.59),),
               note="The book warns that this run varies a lot: its N(0, 1) weights saturate 100 hidden neurons."),
    Experiment("eta-too-small", "Chapter 1: learning rate too small, [784, 100, 10], η = 0.001", "-",
               {"η = 0.001": {"hidden": [100], "eta": 0.001}},
               (Row("best test accuracy", "η = 0.001", "best test_accuracy", 21.42),)),
    Experiment("eta-too-large", "Chapter 1: learning rate too large, [784, 30, 10], η = 100", "-",
               {"η = 100": {"eta": 100.0}}, (Row("best test accuracy", "η = 100", "best test_accuracy", "~10%"),)),
    Experiment("cross-entropy-30", "Chapter 3: cross-entropy, [784, 30, 10], η = 0.5", "-",
               {"[784, 30, 10]": CE}, (Row("best test accuracy", "[784, 30, 10]", "best test_accuracy", 95.49),)),
    Experiment("cross-entropy-100", "Chapter 3: cross-entropy, [784, 100, 10], η = 0.5", "-",
               {"[784, 100, 10]": {**CE, "hidden": [100]}},
               (Row("best test accuracy", "[784, 100, 10]", "best test_accuracy", 96.82),)),
    Experiment(
        "overfitting", "Chapter 3: overfitting, [784, 30, 10] on 1,000 images for 400 epochs", "overfitting1-4",
        {"1,000 images": OVERFITTING},
        (Row("peak test accuracy", "1,000 images", "best test_accuracy", 82.27),
         Row("epoch of the peak test accuracy", "1,000 images", "epoch-of-best test_accuracy", "~280 (flat after)"),
         Row("epoch of the lowest test cost", "1,000 images", "epoch-of-min test_cost", "~15"),
         Row("final training accuracy", "1,000 images", "final training_accuracy", 100.0)),
        (Figure("overfitting1", "Cost on the training data", "training_cost", epochs=(200, 400)),
         Figure("overfitting2", "Accuracy (%) on the test data", "test_accuracy", epochs=(200, 400)),
         Figure("overfitting3", "Cost on the test data", "test_cost", epochs=(0, 400)),
         Figure("overfitting4", "Accuracy (%) on the training data", "training_accuracy", epochs=(0, 400))),
    ),
    Experiment(
        "overfitting-full", "Chapter 3: the same network on all 50,000 images, 30 epochs", "overfitting_full",
        {"50,000 images": {**CE, "monitor": ["training-accuracy"]}},
        (Row("final training accuracy", "50,000 images", "final training_accuracy", 97.86),
         Row("final test accuracy", "50,000 images", "final test_accuracy", 95.33)),
        (Figure("overfitting_full", "Training and test accuracy (%), 50,000 images", "training_accuracy,test_accuracy"),),
    ),
    Experiment(
        "regularized", "Chapter 3: L2 regularisation λ = 0.1 on the 1,000-image overfitting run", "regularized1-2",
        {"λ = 0.1": {**OVERFITTING, "lmbda": 0.1}},
        (Row("peak test accuracy", "λ = 0.1", "best test_accuracy", 87.1),),
        (Figure("regularized1", "Cost on the training data (λ = 0.1)", "training_cost", epochs=(200, 400)),
         Figure("regularized2", "Accuracy (%) on the test data (λ = 0.1)", "test_accuracy", epochs=(0, 400))),
    ),
    Experiment(
        "regularized-full", "Chapter 3: λ = 5.0 on all 50,000 images, 30 epochs", "regularized_full",
        {"λ = 5.0": {**CE, "lmbda": 5.0, "monitor": ["training-accuracy"]}},
        (Row("best test accuracy", "λ = 5.0", "best test_accuracy", 96.49),),
        (Figure("regularized_full", "Training and test accuracy (%), λ = 5.0", "training_accuracy,test_accuracy"),),
    ),
    Experiment(
        "regularized-100", "Chapter 3: [784, 100, 10], λ = 5.0: η = 0.5 for 30 epochs, then η = 0.1 for 60", "-",
        {"η = 0.5, 30 epochs": {**CE, "hidden": [100], "lmbda": 5.0, "evaluate_on": "validation"},
         "η = 0.1, 60 epochs": {**CE, "hidden": [100], "lmbda": 5.0, "eta": 0.1, "epochs": 60,
                                "evaluate_on": "validation"}},
        (Row("best validation accuracy", "η = 0.5, 30 epochs", "best validation_accuracy", 97.92),
         Row("best validation accuracy", "η = 0.1, 60 epochs", "best validation_accuracy", 98.04)),
    ),
    Experiment(
        "weight-init", "Chapter 3: N(0, 1) against N(0, 1/n_in) weights, η = 0.1, λ = 5.0", "weight_initialization",
        {f"[784, {h}, 10] {label}": {**CE, "eta": 0.1, "lmbda": 5.0, "hidden": [h], "init": init,
                                     "evaluate_on": "validation"}
         for h in (30, 100) for label, init in (("N(0, 1)", "large"), ("N(0, 1/n_in)", "normalized"))},
        (Row("accuracy after epoch 1", "[784, 30, 10] N(0, 1)", "first validation_accuracy", "< 87%"),
         Row("accuracy after epoch 1", "[784, 30, 10] N(0, 1/n_in)", "first validation_accuracy", "~93%"),
         Row("best validation accuracy", "[784, 30, 10] N(0, 1)", "best validation_accuracy", "just over 96%"),
         Row("best validation accuracy", "[784, 30, 10] N(0, 1/n_in)", "best validation_accuracy", "just over 96%"),
         Row("best validation accuracy", "[784, 100, 10] N(0, 1)", "best validation_accuracy", None),
         Row("best validation accuracy", "[784, 100, 10] N(0, 1/n_in)", "best validation_accuracy", None)),
        (Figure("weight_initialization", "Validation accuracy (%), [784, 30, 10]", "validation_accuracy",
                runs=("[784, 30, 10] N(0, 1)", "[784, 30, 10] N(0, 1/n_in)")),
         Figure("weight_initialization_100", "Validation accuracy (%), [784, 100, 10]", "validation_accuracy",
                runs=("[784, 100, 10] N(0, 1)", "[784, 100, 10] N(0, 1/n_in)"))),
    ),
    Experiment(
        "more-data", "Chapter 3: more training data, [784, 30, 10], λ = 5·n/50,000, 30·50,000/n epochs", "more_data",
        {f"n = {n}": {**CE, "lmbda": 5.0 * n / 50_000, "epochs": math.ceil(30 * 50_000 / n), "train_size": n,
                      "evaluate_on": "validation", "evaluate_each_epoch": False}
         for n in MORE_DATA_SIZES},
        tuple(Row("final validation accuracy", f"n = {n}", "final validation_accuracy", book)
              for n, book in zip(MORE_DATA_SIZES, MORE_DATA_BOOK)),
        (Figure("more_data", "Validation accuracy (%) against training-set size", "validation_accuracy",
                kind="by-size"),),
    ),
    Experiment(
        "multiple-eta", "Chapter 3: training cost for η = 0.025, 0.25 and 2.5, [784, 30, 10], λ = 5.0", "multiple_eta",
        {f"η = {eta}": {**CE, "eta": eta, "lmbda": 5.0, "monitor": ["training-cost"]} for eta in (0.025, 0.25, 2.5)},
        (Row("final training cost", "η = 0.025", "final training_cost", "falls smoothly, slowly"),
         Row("final training cost", "η = 0.25", "final training_cost", "falls, flattens after ~20 epochs"),
         Row("final training cost", "η = 2.5", "final training_cost", "oscillates, stays high")),
        (Figure("multiple_eta", "Cost on the training data", "training_cost"),),
    ),
    Experiment(
        "early-stopping", "Chapter 3: no-improvement-in-10 early stopping, [784, 100, 10]", "-",
        {"no-improvement-in-10": {**CE, "hidden": [100], "lmbda": 5.0, "evaluate_on": "validation",
                                  "epochs": 200, "early_stopping": 10}},
        (Row("best validation accuracy", "no-improvement-in-10", "best validation_accuracy", None),
         Row("epochs trained", "no-improvement-in-10", "epochs", None),
         Row("test accuracy of the kept weights", "no-improvement-in-10", "kept test_accuracy", None)),
    ),
    Experiment(
        "eta-schedule", "Chapter 3: halve η after 10 epochs without improvement, stop at η/128, [784, 100, 10]", "-",
        {"halve-on-plateau": {**CE, "hidden": [100], "lmbda": 5.0, "evaluate_on": "validation", "epochs": 300,
                              "schedule": "halve-on-plateau", "patience": 10}},
        (Row("best validation accuracy", "halve-on-plateau", "best validation_accuracy", None),
         Row("epochs trained", "halve-on-plateau", "epochs", None),
         Row("test accuracy of the kept weights", "halve-on-plateau", "kept test_accuracy", None)),
    ),
    Experiment(
        "dropout", "Chapter 3: dropout (p = 0.5) on [784, 100, 10] and a wider [784, 400, 10], 60 epochs", "-",
        {label: {**CE, "init": "normalized", "lmbda": 5.0, "epochs": 60, "hidden": [h], "dropout": p}
         for label, h, p in (("[784, 100, 10]", 100, 0.0), ("[784, 100, 10] dropout", 100, 0.5),
                             ("[784, 400, 10]", 400, 0.0), ("[784, 400, 10] dropout", 400, 0.5))},
        (Row("best test accuracy", "[784, 100, 10]", "best test_accuracy", None),
         Row("best test accuracy", "[784, 100, 10] dropout", "best test_accuracy", None),
         Row("best test accuracy", "[784, 400, 10]", "best test_accuracy", "98.4 (Hinton et al., larger nets)"),
         Row("best test accuracy", "[784, 400, 10] dropout", "best test_accuracy", "98.7 (Hinton et al., larger nets)")),
    ),
    Experiment(
        "expanded", "Chapter 3: the 250,000-image one-pixel-shift expansion against the plain 50,000", "-",
        {"50,000 images": {**CE, "hidden": [100], "init": "normalized", "lmbda": 5.0},
         "250,000 shifted images": {**CE, "hidden": [100], "init": "normalized", "lmbda": 5.0, "expand": "shift-one-pixel"}},
        (Row("best test accuracy", "50,000 images", "best test_accuracy", None),
         Row("best test accuracy", "250,000 shifted images", "best test_accuracy", None)),
    ),
    Experiment(
        "chapter5-depth", "Chapter 5: [784, 30, …, 30, 10] with 1-4 hidden layers, network2.py, η = 0.1, λ = 5.0", "-",
        {hidden_label(k): {**NETWORK2, "hidden": [30] * k, "evaluate_on": "validation", "keep_best": True}
         for k in (1, 2, 3, 4)},
        tuple(Row("best validation accuracy", hidden_label(k), "best validation_accuracy", book)
              for k, book in zip((1, 2, 3, 4), DEPTH_BOOK))
        + tuple(Row("test accuracy of the best validation epoch", hidden_label(k), "kept test_accuracy")
                for k in (1, 2, 3, 4)),
        note="The book's runs pass evaluation_data=validation_data, so its numbers are validation accuracies (the "
             "best epoch's, as the registry reports chapter 3's); the test accuracy is scored once, at that epoch.",
    ),
    Experiment(
        "chapter5-speed", "Chapter 5: the speed of learning ‖∂C/∂b^l‖ of each hidden layer, 1,000 images, "
        "full-batch gradient descent", "training_speed_2-4_layers",
        {hidden_label(k, remedy): {**SPEED, **settings, "hidden": [30] * k}
         for remedy, settings in SPEED_REMEDIES.values() for k in (2, 3, 4)},
        tuple(Row(f"hidden layer {layer} at the start", hidden_label(k, remedy), f"first speed{layer}",
                  None if remedy else SPEED_BOOK[k][layer - 1])
              for remedy, _ in SPEED_REMEDIES.values() for k in (2, 3, 4) for layer in range(1, k + 1))
        + tuple(Row("final test accuracy", hidden_label(k, remedy), "final test_accuracy")
                for remedy, _ in SPEED_REMEDIES.values() for k in (2, 3, 4)),
        (Figure("speed_at_start", r"$\Vert\partial C/\partial b^l\Vert$ at the initial weights, every seed",
                "learning_speed",
                kind="speed-at-start"),)
        + tuple(Figure(f"training_speed_{k}_layers{suffix}", f"Speed of learning: {hidden_label(k, remedy)}",
                       "learning_speed", runs=(hidden_label(k, remedy),), kind="speed")
                for suffix, (remedy, _) in SPEED_REMEDIES.items() for k in (2, 3, 4)),
        note="As fig/generate_gradient.py: network2.py's [784, 30, …, 30, 10] (sigmoid, cross-entropy, N(0, 1/n_in) "
             "weights), 500 epochs of gradient descent with η = 0.1 and λ = 5.0 on the first 1,000 training images "
             "in one mini-batch, ‖∂C/∂b^l‖ measured before each update (so epoch 0 is the initial weights). The book "
             "reports one draw; nndl gives every seed's (at least 10). Beside them the same runs with chapter 1's "
             "N(0, 1) weights (the initialisation chapter 3 replaced) and with chapter 6's rectified linear neurons.",
        min_seeds=10,
        example=exploding_gradient,
    ),
    Experiment(
        "elastic", "Towards 99.3%: fully connected networks trained on fresh distortions every epoch", "-",
        {"elastic, halve-on-plateau": {**CE, "hidden": [800], "init": "normalized", "eta": 0.1, "lmbda": 1.0,
                                       "augment": "elastic", "epochs": 1000, "time_limit": 30.0,
                                       "evaluate_on": "validation", "schedule": "halve-on-plateau", "patience": 8},
         "affine + elastic, exponential decay": {**CE, "hidden": [800], "init": "normalized", "eta": 0.1,
                                                 "lmbda": 1.0, "augment": "rotate=8,skew=0.1,elastic", "epochs": 300,
                                                 "schedule": "exponential", "decay": 0.99, "keep_best": True,
                                                 "evaluate_on": "validation"},
         DEEP: {"hidden": [1000, 500], "activation": "relu", "cost": "log-likelihood", "init": "he", "eta": 0.05,
                "lmbda": 1.0, "augment": "rotate=10,scale=0.15,elastic=36,sigma=6", "epochs": 400,
                "schedule": "exponential", "decay": 0.985, "keep_best": True, "time_limit": 105.0,
                "evaluate_on": "validation"}},
        (Row("test accuracy of the best validation epoch", "elastic, halve-on-plateau", "kept test_accuracy",
             "99.3 (Simard et al.)"),
         Row("test accuracy of the best validation epoch", "affine + elastic, exponential decay",
             "kept test_accuracy", "99.3 (Simard et al.)"),
         Row("test accuracy of the best validation epoch", DEEP, "kept test_accuracy",
             "99.51 (Ciresan et al., on a GPU)"),
         Row("best validation accuracy", DEEP, "best validation_accuracy"),
         Row("validation accuracy of the seeds' networks together", DEEP, "ensemble validation_accuracy"),
         Row("test accuracy of the seeds' networks together", DEEP, "ensemble test_accuracy", "99.3 (Simard et al.)"),
         Row("epochs trained", "affine + elastic, exponential decay", "epochs"),
         Row("epochs trained", DEEP, "epochs")),
        figures=(Figure("elastic-validation", "Validation accuracy on fresh distortions", "validation_accuracy"),),
        note="Each run's epoch is chosen on the validation set, and the test set is scored at that epoch only. "
             "The first run stops when halving η on validation plateaus brings η to η₀/128; the second shrinks η "
             "by 1% every epoch (Ciresan et al.'s schedule) on rotated, skewed and elastically distorted digits; "
             "the third is Ciresan et al.'s [784, 1000, 500, 10] with rectified linear neurons and softmax, on "
             "digits also scaled by up to ±15% and with smoother, stronger elastic fields (σ = 6, α = 36), for "
             "at most 105 minutes. Its seeds' best-validation networks also vote together (their outputs "
             "averaged, as `nndl evaluate a.npz b.npz` does), scored once on the test set.",
        long=True,
    ),
)}


# -- chapter 6: the book's table (network3.py) and a faster recipe -----------------------------

# network3.py's conventions: L2 over the number of mini-batches, N(0, 1/n_out) weights and a zero softmax layer
# (σ after pooling and dropout's (1 − p) at evaluation are nndl's defaults); each run's epoch is chosen on
# validation and the test set scored at that epoch only
NETWORK3 = {"cost": "log-likelihood", "init": "network3", "l2_scale": "mini-batches", "mini_batch_size": 10,
            "epochs": 60, "evaluate_on": "validation", "keep_best": True}
SIGMOID6 = {**NETWORK3, "eta": 0.1}
RELU6 = {**NETWORK3, "activation": "relu", "eta": 0.03, "lmbda": 0.1}
SHIFTED6 = {**RELU6, "expand": "shift-one-pixel"}
DROPOUT6 = {**SHIFTED6, "lmbda": 0.0, "epochs": 40, "dropout": 0.5}
CONV1, CONV2 = "conv20x5,pool2", "conv20x5,pool2,conv40x5,pool2"
# each row of the book's table: experiment → (row, title, {run label: (settings, the book's test accuracy %)})
CHAPTER6_ROWS = {
    "chapter6-full100": ("1", "full100, sigmoid, η = 0.1",
                         {"#1 full100": ({**SIGMOID6, "layers": "full100"}, 97.80)}),
    "chapter6-conv1": ("2", f"{CONV1},full100, sigmoid, η = 0.1",
                       {f"#2 {CONV1},full100": ({**SIGMOID6, "layers": f"{CONV1},full100"}, 98.78)}),
    "chapter6-conv2": ("3", f"{CONV2},full100, sigmoid, η = 0.1",
                       {f"#3 {CONV2},full100": ({**SIGMOID6, "layers": f"{CONV2},full100"}, 99.06)}),
    "chapter6-relu": ("4", "#3 with ReLU, η = 0.03, λ = 0.1",
                      {"#4 ReLU": ({**RELU6, "layers": f"{CONV2},full100"}, 99.23)}),
    "chapter6-expanded": ("5", "#4 on the 250,000 one-pixel shifts",
                          {"#5 ReLU, shifted": ({**SHIFTED6, "layers": f"{CONV2},full100"}, 99.37)}),
    "chapter6-wide": ("6", "#5 with full300 or full1000",
                      {f"#6 ReLU, shifted, full{n}": ({**SHIFTED6, "layers": f"{CONV2},full{n}"}, book)
                       for n, book in ((300, 99.46), (1000, 99.43))}),
    "chapter6-two-full": ("7", "#5 with two fully connected layers of 100, 300 or 1000",
                          {f"#7 ReLU, shifted, full{n},full{n}": ({**SHIFTED6, "layers": f"{CONV2},full{n},full{n}"},
                                                                  book)
                           for n, book in ((100, 99.43), (300, 99.48), (1000, 99.47))}),
    "chapter6-dropout": ("8-9", "#5 with full1000,full1000 and dropout 0.5, 40 epochs; 5 of them voting",
                         {"#8 ReLU, shifted, dropout": ({**DROPOUT6, "layers": f"{CONV2},full1000,full1000"},
                                                        99.60)}),
}
ENSEMBLE6 = "#8 ReLU, shifted, dropout"
VOTING6 = (ENSEMBLE6, "#6 ReLU, full1000, stronger distortions")  # runs whose 5 seeds vote together (row 9)
CHAPTER6_QUICK = {"epochs": 1, "train_size": 500, "score_size": 500}  # one epoch on 500 images, scored on 500
CHAPTER6_NOTE = (
    "Every run follows network3.py (`--init network3 --l2-scale mini-batches`): weights N(0, 1/n_out) (n_out = maps "
    "× K² / pool area for a convolutional layer), biases N(0, 1), the softmax layer starting at zero, the L2 term "
    "(λ/2) Σw² / (n/m mini-batches), σ after pooling, dropout of the inputs of every fully connected layer and "
    "the softmax layer, scaled by (1 − p) at evaluation; mini-batches of 10, the log-likelihood cost. Each run's "
    "epoch is chosen on the validation set and the test set is scored at that epoch only (`--evaluate-on "
    "validation --keep-best`). The book reports the best of 3 runs; row 8's best is of its 5 seeds, the networks "
    "row 9 votes with (averaged outputs).")


def chapter6_rows(runs: dict[str, tuple[dict[str, Any], float]]) -> tuple[Row, ...]:
    """For each run: the test accuracy at its best validation epoch (the book's figure), that validation
    accuracy and its epoch; row 9's ensemble where row 8's run is one of them."""
    rows = [row for label, (_, book) in runs.items() for row in (
        Row("test accuracy at the best validation epoch", label, "kept test_accuracy", book),
        Row("best validation accuracy", label, "best validation_accuracy"),
        Row("epoch of the best validation accuracy", label, "epoch-of-best validation_accuracy"))]
    for voting in (label for label in runs if label in VOTING6):
        rows += [Row("#9: validation accuracy of 5 networks voting", voting, "ensemble validation_accuracy"),
                 Row("#9: test accuracy of 5 networks voting (the book: 33 wrong)", voting,
                     "ensemble test_accuracy", 99.67)]
    return tuple(rows)


def chapter6_experiment(name: str, title: str, runs: dict[str, tuple[dict[str, Any], float]], folder: str,
                        note: str) -> Experiment:
    """One or more rows of chapter 6's table as an experiment keeping its runs in ``folder``."""
    return Experiment(name, title, "-", {label: settings for label, (settings, _) in runs.items()},
                      chapter6_rows(runs),
                      (Figure(f"{name}-validation", "Validation accuracy per epoch", "validation_accuracy"),),
                      long=True, note=note, folder=folder, ensemble_size=5 if set(VOTING6) & set(runs) else 0,
                      quick=CHAPTER6_QUICK)


def faster(settings: dict[str, Any]) -> dict[str, Any]:
    """A book row's network trained by the faster recipe (``chapter6-fast``).

    η keeps the book's step per image: m times larger mini-batches take m times
    the step, and momentum μ multiplies the step by 1/(1 − μ), so η × m_fast /
    m_book × (1 − μ) (0.03 → 0.015 for ReLU, 0.1 → 0.05 for sigmoid).
    """
    relu = settings.get("activation") == "relu"
    eta = settings["eta"] * FAST["mini_batch_size"] / settings["mini_batch_size"] * (1.0 - FAST["momentum"])
    return {**settings, **FAST, "eta": round(eta, 6), "init": "he" if relu else "normalized",
            "lmbda": 0.0 if settings.get("dropout") else FAST["lmbda"], "expand": None,
            "augment": FAST_AUGMENT if settings.get("expand") else None}


# the faster recipe: mini-batches of 50 with momentum 0.9 (η scaled to match), nndl's own L2 and initialisation,
# fresh shifts and rotations each epoch instead of the 250,000-image copy, a cosine schedule over 15 epochs
FAST = {"mini_batch_size": 50, "momentum": 0.9, "lmbda": 5.0, "l2_scale": "training-set",
        "epochs": 15, "schedule": "cosine", "decay": 0.01, "workers": 1}
FAST_AUGMENT = "rotate=8,shift=1.5"
# row 9 beyond the book: five of row 6's full1000 network, 40 epochs on stronger distortions, voting
FAST_VOTER = {**faster({**SHIFTED6, "layers": f"{CONV2},full1000"}), "epochs": 40,
              "augment": "rotate=10,shift=2,scale=0.1"}
FAST_NOTE = (
    "The book's networks (the book's numbers beside them), trained by nndl's own recipe: mini-batches of 50, "
    "momentum 0.9, η = the book's η × 5 × (1 − 0.9) (the book's step per image: 0.015 for ReLU, 0.05 for sigmoid), "
    "N(0, 2/n_in) weights for ReLU (N(0, 1/n_in) for "
    "sigmoid), L2 λ = 5 over the training set, η falling along a cosine to 1% in 15 epochs, and for the rows "
    "the book trains on the 250,000 shifted images fresh random shifts of up to 1.5 pixels and rotations of up "
    "to 8° each epoch instead. The epoch is chosen on validation, the test set scored at that epoch only.")


def fast_runs(runs: dict[str, tuple[dict[str, Any], float]]) -> dict[str, tuple[dict[str, Any], float]]:
    """Book rows' runs, each trained by the faster recipe instead (the book's accuracy kept beside it)."""
    return {label: (faster(settings), book) for label, (settings, book) in runs.items()}


CHAPTER6_EXPERIMENTS = (
    *(chapter6_experiment(name, f"Chapter 6, row {row}: {title}", runs, "chapter6", CHAPTER6_NOTE)
      for name, (row, title, runs) in CHAPTER6_ROWS.items()),
    chapter6_experiment("chapter6", "Chapter 6: every row of the book's table, with network3.py's conventions",
                        {label: run for _, _, runs in CHAPTER6_ROWS.values() for label, run in runs.items()},
                        "chapter6", CHAPTER6_NOTE),
    *(chapter6_experiment(name.replace("chapter6-", "chapter6-fast-"), f"Chapter 6, row {row} by the faster recipe",
                          fast_runs(runs), "chapter6-fast", FAST_NOTE)
      for name, (row, _, runs) in CHAPTER6_ROWS.items()),
    chapter6_experiment(
        "chapter6-fast", "Chapter 6's networks by a faster recipe: m = 50, momentum, distortions on the fly, 15 epochs",
        fast_runs({label: run for _, _, runs in CHAPTER6_ROWS.values() for label, run in runs.items()}),
        "chapter6-fast", FAST_NOTE),
    chapter6_experiment(
        "chapter6-fast-ensemble", "Chapter 6, row 9 by the faster recipe: five of row 6's full1000 network, stronger "
        "distortions, 40 epochs, voting", {VOTING6[1]: (FAST_VOTER, 99.43)}, "chapter6-fast",
        "Five networks of row 6's shape (conv20x5,pool2,conv40x5,pool2,full1000, ReLU, softmax) trained by the faster "
        "recipe for 40 epochs on stronger fresh distortions (rotations up to 10°, shifts up to 2 pixels, scaling up "
        "to ±10%), seeds 1-5, voting with their averaged outputs; each network's epoch is chosen on validation and "
        "the test set is scored once per network and once for the vote."),
)
EXPERIMENTS.update({experiment.name: experiment for experiment in CHAPTER6_EXPERIMENTS})


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ConfigError(f"unknown experiment {name!r}; 'nndl experiment list' shows them") from None


# -- running ---------------------------------------------------------------------------------

def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def run_experiment(experiment: Experiment, out_dir: str | Path, *, seeds: int = 3, quick: bool = False,
                   data_dir: str | None = None, device: str = "cpu", log: Callable[[str], None] = print,
                   cache: DataCache | None = None, engine: Any = None) -> dict[str, Any]:
    """Run every run of ``experiment`` for seeds 1…``seeds``; write histories, figures and report.md.

    A run whose history file already holds the same specification is not run
    again, so an interrupted experiment continues where it stopped. With
    ``engine`` (an entered :class:`nndl.runs.engine.Engine`) the runs are trained
    as parallel tasks on its Dask cluster. ``data_dir`` and ``device`` apply to every run.
    """
    changes = run_changes(data_dir, device)
    out, kept = Path(out_dir) / experiment.name, runs_folder(experiment, out_dir)
    for folder in (out, kept):
        check_same_form(folder, quick)
        folder.mkdir(parents=True, exist_ok=True)
    cache = cache or DataCache()
    results: dict[str, list[dict[str, Any]]] = {}
    started = time.perf_counter()
    if engine is not None:  # train the unfinished runs as parallel tasks; the loop below reads their files
        train_on_engine(engine, [experiment], out_dir, seeds=seeds, quick=quick, changes=changes, log=log)
    for label, seed, seeded, path in planned_runs(experiment, kept, seeds, quick, changes):
        summary = finished_run(path, seeded, label in experiment.ensembles)
        if summary is None:
            checkpoint = checkpoint_folder(experiment, path)
            said = [EpochLog(f"{experiment.name}: {label}, seed {seed}", log)] if experiment.long else []
            result = run_spec(seeded, cache=cache, checkpoint=checkpoint, resume=resumable(checkpoint), callbacks=said)
            summary = {**result.summary, "run": label, "quick": quick,
                       "kept": kept_scores(result.network, cache.get(seeded.data))}
            if label in experiment.ensembles:
                save_model(result.network, model_path(path))
            write_bytes_atomically(path, json.dumps(summary).encode())
            how = f"({summary['seconds']:.1f} s)"
        else:
            how = "(finished before, not rerun)" if engine is None else f"({summary['seconds']:.1f} s on a worker)"
        results.setdefault(label, []).append(summary)
        log(f"{experiment.name}: {label}, seed {seed}: best {summary['best']['measure']} "
            f"{100 * summary['best']['accuracy']:.2f}% {how}")
    figures = [draw_figure(experiment, figure, results, out) for figure in experiment.figures]
    example, example_figures = experiment.example(out) if experiment.example else ([], [])
    ensembles = ensembles_of(experiment, kept, seeds, quick, changes, cache)
    figures += [draw_mistakes(experiment, label, kept, out, seeds, quick, changes, cache)
                for label in sorted(experiment.ensembles)]
    outcome = {"experiment": experiment.name, "quick": quick, "seeds": max(map(len, results.values())),
               "seconds": time.perf_counter() - started,
               "training_seconds": sum(record["seconds"] for runs in results.values() for run in runs
                                       for record in run["history"]),  # every epoch, earlier attempts' too
               "rows": report_rows(experiment, results, ensembles),
               "figures": figures + example_figures, "example": example}
    write_bytes_atomically(out / "report.md", experiment_report(experiment, outcome).encode("utf-8"))
    write_bytes_atomically(out / "results.json", json.dumps(outcome).encode("utf-8"))
    return outcome


class EpochLog(Callback):
    """A long experiment's run says each epoch as it ends, the book's line after its name (a run can take hours)."""

    def __init__(self, name: str, log: Callable[[str], None]):
        self.name, self.log = name, log

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        self.log(f"{self.name}: {format_epoch(record)}")


def run_changes(data_dir: str | None, device: str) -> dict[str, Any]:
    """The settings the command line gives every run of an experiment: the data folder and the device."""
    return {"device": device} if data_dir is None else {"source": str(data_dir), "device": device}


def planned_runs(experiment: Experiment, out: Path, seeds: int, quick: bool,
                 changes: dict[str, Any]) -> Iterator[tuple[str, int, RunSpec, Path]]:
    """Every (run label, seed, specification, history file) of an experiment, in the report's order."""
    for label, spec in experiment.specs(quick).items():
        spec = spec.replace(**changes)
        for seed in range(1, experiment.seeds_of(label, seeds, quick) + 1):
            yield label, seed, spec.replace(seed=seed), out / f"history-{slug(label)}-seed{seed}.json"


def runs_folder(experiment: Experiment, out_dir: str | Path) -> Path:
    """Where ``experiment`` keeps its runs' histories, models and checkpoints (shared by experiments of one folder)."""
    return Path(out_dir) / (experiment.folder or experiment.name)


def checkpoint_folder(experiment: Experiment, history: Path) -> Path | None:
    """Where a long experiment's run (hours) checkpoints, beside its history file; None for short experiments."""
    return history.parent / "checkpoints" / history.stem if experiment.long else None


def model_path(history: Path) -> Path:
    """Where the finished network of the run whose history is ``history`` is kept (for ensembles)."""
    return history.with_name(history.stem.replace("history-", "model-", 1) + ".npz")


def ensembles_of(experiment: Experiment, out: Path, seeds: int, quick: bool, changes: dict[str, Any],
                 cache: DataCache) -> dict[str, dict[str, float]]:
    """For each run an ensemble row names: the validation and test accuracy of its seeds' saved networks
    voting together (their averaged outputs)."""
    models: dict[str, list[Path]] = {}
    data: dict[str, Any] = {}
    for label, _, seeded, path in planned_runs(experiment, out, seeds, quick, changes):
        if label in experiment.ensembles:
            models.setdefault(label, []).append(model_path(path))
            data[label] = seeded.data
    return {label: vote_scores([load_model(path) for path in paths], cache.get(data[label]))
            for label, paths in models.items()}


def draw_mistakes(experiment: Experiment, label: str, kept: Path, out: Path, seeds: int, quick: bool,
                  changes: dict[str, Any], cache: DataCache) -> dict[str, Any]:
    """The test digits the seeds' networks of run ``label`` get wrong voting together, each with its true digit
    and the guess, like the book's figure of its ensemble's 33 mistakes (at most MISTAKES_SHOWN drawn)."""
    members = [(seeded, path) for run, _, seeded, path in planned_runs(experiment, kept, seeds, quick, changes)
               if run == label]
    test = cache.get(members[0][0].data).test
    name = f"mistakes-{slug(label)}"
    drawn = draw_vote_mistakes([load_model(model_path(path)) for _, path in members], test, out / f"{name}.png",
                               f"{label}:")
    return {"name": name, "file": f"{name}.png", **drawn}


def draw_vote_mistakes(networks: list[Network], test: Any, path: Path, title: str) -> dict[str, Any]:
    """Draw the ``test`` digits ``networks`` voting together (one network alone too) get wrong, each with its true
    digit and the guess, like the book's figure of its ensemble's 33 mistakes (at most MISTAKES_SHOWN drawn);
    ``title`` begins the figure's title. Returns how many were wrong and the ones drawn."""
    guesses = ensemble_guesses(networks, test.images)
    wrong = np.flatnonzero(guesses != test.labels)
    shown = wrong[:MISTAKES_SHOWN]
    voting = f"its {len(networks)} networks voting together" if len(networks) > 1 else "the network"
    title = (f"{title} the {len(wrong)} of {len(test):,} test digits {voting} get wrong"
             + (f" (the first {len(shown)})" if len(shown) < len(wrong) else ""))
    side = math.isqrt(test.images.shape[1])
    pairs = plot_mistakes(unit_interval(test.images[shown]).reshape(-1, side, side), test.labels[shown],
                          guesses[shown], path, title)
    return {"mistakes": int(len(wrong)),
            "shown": [{"index": int(i), "label": label_, "guess": guess} for i, (label_, guess) in zip(shown, pairs)]}


def train_on_engine(engine: Any, experiments: list[Experiment], out_dir: str | Path, *, seeds: int, quick: bool,
                    changes: dict[str, Any], log: Callable[[str], None] = print) -> None:
    """Train every unfinished (experiment, run, seed) as one task on a Dask engine (nndl.runs.engine),
    writing each history file as its run finishes; a run's seed decides its numbers, wherever it runs."""
    from .engine import train_task

    tasks = {}
    for experiment in experiments:
        out = runs_folder(experiment, out_dir)
        check_same_form(out, quick)
        for label, seed, seeded, path in planned_runs(experiment, out, seeds, quick, changes):
            keep = label in experiment.ensembles
            if finished_run(path, seeded, keep) is None:  # a long run checkpoints, on a local cluster's disk too
                checkpoint = checkpoint_folder(experiment, path)
                tasks[f"{experiment.name}-{slug(label)}-seed{seed}"] = (
                    (label, path, keep), (seeded.to_dict(), None, True, keep, checkpoint and str(checkpoint)))
    if tasks:  # said at once: the first run's own line may come hours later
        log(f"Dask: {plural(len(tasks), 'run')} to train on {engine.describe()}")
    for outcome in engine.run(train_task, tasks, what="runs"):
        label, path, keep = outcome.item
        if outcome.error is not None:  # the report's loop trains it again in this process, or fails there
            log(f"{outcome.key}: failed on the cluster: {outcome.error}")
            continue
        summary = dict(outcome.result)
        network = summary.pop("network", None)
        if keep:
            save_model(network, model_path(path))
        write_bytes_atomically(path, json.dumps({**summary, "run": label, "quick": quick}).encode())


def finished_run(path: Path, spec: RunSpec, needs_model: bool = False) -> dict[str, Any] | None:
    """The summary saved at ``path`` if it is a finished run of exactly ``spec`` (and, if
    ``needs_model``, its network was kept), else None."""
    if not path.is_file() or (needs_model and not model_path(path).is_file()):
        return None
    try:
        summary = read_json(path, "a run history")
        same = RunSpec.from_dict(summary["spec"]).fingerprint() == spec.fingerprint()
    except (ConfigError, KeyError, TypeError):
        return None
    return summary if same and not summary.get("interrupted") else None


def check_same_form(out: Path, quick: bool) -> None:
    """Refuse to mix a quick run's results into a folder that holds a full run's (or the other way)."""
    results = out / "results.json"
    if results.is_file():
        try:
            earlier = read_json(results, "experiment results").get("quick")
        except (ConfigError, AttributeError):
            return
        if earlier is not None and earlier != quick:
            held = "quick" if earlier else "full"
            raise ConfigError(f"{out} holds a {held} run's results; write the {'quick' if quick else 'full'} run "
                              f"elsewhere with --out DIR")


def measure(summary: dict[str, Any], measure: str) -> float:
    """One number from a run's summary, as a Row's ``measure`` names it (accuracies in %)."""
    how, chosen = parse_measure(measure)
    if chosen is None:
        return float(len(summary["history"]))
    scale = 100.0 if chosen.name == "accuracy" else 1.0
    if how == "kept":
        return scale * summary["kept"][chosen.dataset]
    records = [(r, chosen.of(r)) for r in summary["history"] if chosen.of(r) is not None]
    if not records:
        raise ConfigError(f"the {chosen} was not recorded; add it to the run's monitor settings")
    if how == "final":
        return scale * records[-1][1]
    if how == "first":
        return scale * records[0][1]
    if how == "best":
        return scale * (max if chosen.higher_is_better else min)(value for _, value in records)
    pick = max if how == "epoch-of-best" and chosen.higher_is_better else min  # the first such epoch on ties
    return float(pick(records, key=lambda item: item[1])[0]["epoch"])


def report_rows(experiment: Experiment, results: dict[str, list[dict[str, Any]]],
                ensembles: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Each row's book value beside nndl's per-seed values, their best and mean (an ensemble row has one value)."""
    rows = []
    for row in experiment.rows:
        how, chosen = parse_measure(row.measure)
        if how == "ensemble":
            values, validation = [100.0 * ensembles[row.run][chosen.dataset]], None
        else:
            values = [measure(summary, row.measure) for summary in results[row.run]]
            validation = kept_validation(results[row.run])
        on_validation = chooses_on_validation(chosen, validation)
        best = values[validation.index(max(validation))] if on_validation else best_of(row.measure, values)
        rows.append({"label": row.label, "run": row.run, "measure": row.measure, "book": row.book,
                     "values": values, "best": best, "mean": statistics.mean(values),
                     "chosen_on_validation": on_validation})
    return rows


def kept_validation(summaries: list[dict[str, Any]]) -> list[float] | None:
    """Each seed's validation accuracy at its kept (best validation) epoch, or None where a run has none."""
    scores = [summary.get("kept", {}).get("validation") for summary in summaries]
    return None if None in scores else scores


def chooses_on_validation(chosen: Any, validation: list[float] | None) -> bool:
    """Whether a row's best seed is the one with the best ``validation`` accuracy (the first on ties): a test
    measure, where the runs have one, so that the test set chooses nothing."""
    return validation is not None and getattr(chosen, "dataset", None) == "test"


def best_of(measure_name: str, values: list[float]) -> float | None:
    """The best seed's value: the highest accuracy, the lowest cost; epochs and speeds (a spread) have no best."""
    how, chosen = parse_measure(measure_name)
    if chosen is None or how.startswith("epoch") or isinstance(chosen, LayerSpeed):
        return None
    return (max if chosen.higher_is_better else min)(values)


def draw_figure(experiment: Experiment, figure: Figure, results: dict[str, list[dict[str, Any]]],
                out: Path) -> dict[str, Any]:
    """Draw one figure from the first seed of each run; returns its name, file and series ranges."""
    runs = figure.runs or tuple(results)
    full = experiment.specs()  # as declared: a quick run still stands for its full run
    series: dict[str, tuple[list[float], list[float]]] = {}
    measures = figure.measures
    if figure.kind in SPEED_FIGURES:
        return draw_speed_figure(experiment, figure, results, out)
    if figure.kind == "by-size":
        size = {r: full[r].data.train_size or results[r][0]["data"]["train_size"] for r in runs}
        points = sorted((size[r], measure(results[r][0], f"final {figure.metric}")) for r in runs)
        series["nndl"] = ([p[0] for p in points], [p[1] for p in points])
        book = sorted((size[row.run], row.book) for row in experiment.rows
                      if row.run in size and isinstance(row.book, (int, float)))
        if book:  # the book's own numbers, where it gives them
            series["book"] = ([p[0] for p in book], [p[1] for p in book])
        plot_series(series, out / f"{figure.name}.png", figure.title, "training images", "accuracy (%)",
                    xlog=True, markers=True)
    else:
        for run in runs:
            summary = results[run][0]
            planned, ran = full[run].training.epochs, len(summary["history"])
            start, stop = figure.epochs or (0, planned)
            start, stop = start * ran // planned, -(-stop * ran // planned)  # the same share of a shorter run
            for chosen in measures:
                scale = 100.0 if chosen.name == "accuracy" else 1.0
                points = [(r["epoch"], chosen.of(r)) for r in summary["history"][start:stop]
                          if chosen.of(r) is not None]
                name = run if len(measures) == 1 else f"{run}: {chosen.dataset}"
                series[name] = ([e for e, _ in points], [scale * v for _, v in points])
        ylabel = "accuracy (%)" if measures[-1].name == "accuracy" else "cost"
        plot_series(series, out / f"{figure.name}.png", figure.title, "epoch", ylabel)
    return {"name": figure.name, "file": f"{figure.name}.png",
            "series": {k: {"first": x[0], "last": x[-1], "points": len(x)} for k, (x, _) in series.items() if x}}


def draw_speed_figure(experiment: Experiment, figure: Figure, results: dict[str, list[dict[str, Any]]],
                      out: Path) -> dict[str, Any]:
    """Chapter 5's figures: one run's hidden layers' speeds per epoch (first seed), or every seed's speeds at the
    start, one panel per depth and one colour per network, with the book's draw; both on a log scale."""
    full = experiment.specs()
    runs = figure.runs or tuple(results)
    depth = {run: len(full[run].network.hidden) for run in runs}
    if figure.kind == "speed":
        history = results[runs[0]][0]["history"]
        series = {f"hidden layer {layer}": ([r["epoch"] for r in history],
                                            [LayerSpeed(layer).of(r) for r in history])
                  for layer in range(1, depth[runs[0]] + 1)}
        plot_series(series, out / f"{figure.name}.png", figure.title, "epochs of training", SPEED_AXIS, ylog=True)
        drawn = {name: x for name, (x, _) in series.items()}
    else:
        panels: dict[str, dict[str, list[list[float]]]] = {}
        book: dict[str, list[float | None]] = {}
        for run in runs:
            panel, spec = hidden_label(depth[run]), full[run].network
            name = f"{spec.activation}, {INIT_LABELS[spec.init]}"
            panels.setdefault(panel, {})[name] = [[LayerSpeed(layer).of(s["history"][0]) for s in results[run]]
                                                  for layer in range(1, depth[run] + 1)]
            given = [row.book for row in experiment.rows if row.run == run and row.measure.startswith("first speed")]
            if given and all(isinstance(value, (int, float)) for value in given):
                book[panel] = given
        plot_spread(panels, book, out / f"{figure.name}.png", figure.title, "hidden layer", SPEED_AXIS,
                    reference_label="the book (one draw)")
        drawn = {f"{panel}: {name}": list(range(1, len(values) + 1))
                 for panel, named in panels.items() for name, values in named.items()}
    return {"name": figure.name, "file": f"{figure.name}.png",
            "series": {k: {"first": x[0], "last": x[-1], "points": len(x)} for k, x in drawn.items() if x}}


INIT_LABELS = {"large": "N(0, 1)", "normalized": "N(0, 1/n_in)", "he": "N(0, 2/n_in)"}
SPEED_AXIS = r"$\Vert\partial C/\partial b^l\Vert$"  # ‖∂C/∂b^l‖ in Matplotlib's mathtext


def format_value(value: float | str | None, measure: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if " speed" in measure:
        return f"{value:.3g}"
    if measure.startswith(("epoch", "epochs")) or measure == "epochs":
        return f"{value:.0f}"
    return f"{value:.2f}" + ("%" if "accuracy" in measure or not measure else "")


def train_command(spec: RunSpec) -> str:
    """The ``nndl train`` command of ``spec``: an option for every setting that differs from the default
    (the seed and data folder left out)."""
    default, words = RunSpec(), ["nndl", "train"]
    derived = {"hidden"} if spec.network.layers or spec.network.sizes else set()  # the shape decides it
    for section, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            value = getattr(getattr(spec, section), field.name)
            if field.name in {"seed", "source", *derived} or not field.metadata["cli"] \
                    or value == getattr(getattr(default, section), field.name):
                continue
            words.append(option_flag(field))
            if field.metadata["kind"] != "bool":
                words.append(",".join(map(str, value)) if isinstance(value, tuple) else str(value))
    return " ".join(words)


def experiment_report(experiment: Experiment, outcome: dict[str, Any], figure_dir: str = "") -> str:
    """The Markdown report of one experiment (figures linked from ``figure_dir``)."""
    lines = [f"## {experiment.name}: {experiment.title}", ""]
    if outcome["quick"]:
        lines += ["*Quick form: a few epochs on at most 1,000 images. These numbers check the pipeline; "
                  "they are not comparable with the book's.*", ""]
    lines += [f"Book figure: {experiment.book_figure}. Seeds: {outcome['seeds']}. "
              f"Wall time: {outcome['seconds']:.0f} s; its runs' epochs took {outcome['training_seconds']:.0f} s of "
              f"training in all (runs finished before are not trained again; a resumed run's earlier epochs count).",
              ""]
    lines += ["| run | measure | book | nndl best of seeds | nndl mean | per seed |", "|---|---|---|---|---|---|"]
    for row in outcome["rows"]:
        per_seed = " / ".join(format_value(v, row["measure"]) for v in row["values"])
        lines.append(f"| {row['run']} | {row['label']} | {format_value(row['book'], row['measure'])} | "
                     f"{format_value(row['best'], row['measure'])} | {format_value(row['mean'], row['measure'])} | "
                     f"{per_seed} |")
    if any(row.get("chosen_on_validation") for row in outcome["rows"]):
        lines += ["", "A test measure's best of seeds is the test figure of the seed with the best validation "
                  "accuracy: the test set chooses nothing."]
    lines += ["", f"Commands: `nndl experiment run {experiment.name}` runs them all; one seed of each alone "
              "(add `--seed N --data DIR`):", ""]
    lines += [f"- {label}: `{train_command(spec)}`" for label, spec in experiment.specs().items()]
    if experiment.note:
        lines += ["", experiment.note]
    if outcome.get("example"):
        lines += [""] + outcome["example"]
    if outcome["figures"]:
        lines += [""] + [f"![{f['name']}]({figure_dir}{f['file']})" for f in outcome["figures"]]
    return "\n".join(lines) + "\n"


def run_all(out_dir: str | Path, *, seeds: int = 3, quick: bool = False, data_dir: str | None = None,
            device: str = "cpu", include_long: bool = False, log: Callable[[str], None] = print, engine: Any = None) -> Path:
    """Run every experiment (the long ones only if asked) and write one report.md for them all.

    With ``engine`` every (experiment, run, seed) is one task on its Dask cluster, all sent at once.
    """
    cache = DataCache()
    started = time.perf_counter()
    sections = []
    chosen = [e for e in EXPERIMENTS.values() if include_long or not e.long]
    if engine is not None:
        train_on_engine(engine, chosen, out_dir, seeds=seeds, quick=quick, changes=run_changes(data_dir, device),
                        log=log)
    for experiment in chosen:
        outcome = run_experiment(experiment, out_dir, seeds=seeds, quick=quick, data_dir=data_dir, device=device,
                                 log=log, cache=cache, engine=engine)
        sections.append(experiment_report(experiment, outcome, figure_dir=f"{experiment.name}/"))
    total = time.perf_counter() - started
    header = [f"# nndl: the book's experiments, {'quick form' if quick else 'full runs'}", "",
              f"{len(sections)} experiments, {seeds} seed(s) each, {total / 60:.1f} minutes in all.", ""]
    path = Path(out_dir) / "report.md"
    write_bytes_atomically(path, ("\n".join(header) + "\n" + "\n".join(sections)).encode("utf-8"))
    return path
