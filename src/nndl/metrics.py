"""What training measures on a dataset, and the history of those measurements.

A history record holds, for one epoch, its number, seconds and η, and under
``"metrics"`` the measurements keyed by dataset and measure::

    {"epoch": 3, "seconds": 0.31, "eta": 3.0,
     "metrics": {"test": {"accuracy": 0.9431, "correct": 9431, "total": 10000, "cost": 0.051}}}

A :class:`Measure` names one of them ("validation accuracy") and knows whether
higher or lower is better, so every "best", early stop and schedule agrees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import numpy as np

from .data.pairs import as_dataset
from .errors import ConfigError
from .network import Network
from .regularization import Regularization

#: Measures and whether a higher value is better.
MEASURES = {"accuracy": True, "correct": True, "cost": False}


class LabelledData(Protocol):
    """Anything with images as rows, integer labels and a name (e.g. :class:`nndl.data.mnist.Dataset`)."""

    images: np.ndarray
    labels: np.ndarray
    name: str

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Measure:
    """One measurement: ``name`` (accuracy, correct or cost) on the dataset called ``dataset``."""

    dataset: str
    name: str = "accuracy"

    def __post_init__(self) -> None:
        if self.name not in MEASURES:
            raise ConfigError(f"measure {self.name!r}: choose from {', '.join(MEASURES)}")

    @classmethod
    def parse(cls, text: str) -> "Measure":
        """'validation accuracy' (or 'validation_accuracy') → Measure('validation', 'accuracy')."""
        dataset, _, name = text.replace("_", " ").strip().rpartition(" ")
        if not dataset:
            raise ConfigError(f"measure {text!r}: give a dataset and a measure, e.g. 'validation accuracy'")
        return cls(dataset, name)

    @property
    def higher_is_better(self) -> bool:
        return MEASURES[self.name]

    def of(self, record: dict[str, Any]) -> float | None:
        """This measure's value in a history record, or None where it was not recorded."""
        return record.get("metrics", {}).get(self.dataset, {}).get(self.name)

    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` is strictly better than ``best`` (anything beats None)."""
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    def __str__(self) -> str:
        return f"{self.dataset} {self.name}"


@dataclass
class History:
    """One record per epoch (see the module docstring)."""

    epochs: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def recorded(self, measure: Measure) -> Iterator[tuple[dict[str, Any], float]]:
        """The (record, value) pairs of the epochs where ``measure`` was recorded."""
        for record in self.epochs:
            value = measure.of(record)
            if value is not None:
                yield record, value

    def best(self, measure: Measure) -> dict[str, Any] | None:
        """The record where ``measure`` is best (the first such epoch on ties)."""
        best_record, best_value = None, None
        for record, value in self.recorded(measure):
            if measure.improves(value, best_value):
                best_record, best_value = record, value
        return best_record

    def final(self) -> dict[str, Any] | None:
        """The last epoch's record."""
        return self.epochs[-1] if self.epochs else None


@dataclass(frozen=True)
class Monitor:
    """A dataset to score after every epoch, and what to measure on it (network2's monitor_* flags).

    The dataset may also be the book's list of (x, y) pairs (``mnist_loader``'s
    validation or test data), recorded in the history as "evaluation".
    """

    dataset: LabelledData
    accuracy: bool = True
    cost: bool = False

    def __post_init__(self) -> None:
        if not (hasattr(self.dataset, "images") and hasattr(self.dataset, "labels")):
            object.__setattr__(self, "dataset", as_dataset(self.dataset, "evaluation"))


def ensemble_guesses(networks: list[Network], images: np.ndarray) -> np.ndarray:
    """The digit several networks voting together give each image (rows): the argmax of their mean output."""
    outputs = sum(network.output_rows(images).astype(np.float64) for network in networks)
    return np.argmax(outputs, axis=1)


def ensemble_accuracy(networks: list[Network], dataset: LabelledData) -> dict[str, Any]:
    """The accuracy of several networks voting together (:func:`ensemble_guesses`)."""
    correct = int(np.sum(ensemble_guesses(networks, dataset.images) == dataset.labels))
    return {"accuracy": correct / max(len(dataset), 1), "correct": correct, "total": len(dataset)}


def evaluate(network: Network, monitor: Monitor, regularization: Regularization = Regularization(),
             n_training: int = 1) -> dict[str, Any]:
    """The monitored measures on one dataset: accuracy (with its count and total) and/or the cost.

    The cost includes the regularisation term (λ/2n) Σ w² + (λ₁/n) Σ |w|, with n
    the training-set size (chapter 3, eq. 85 and 95).
    """
    dataset = monitor.dataset
    metrics: dict[str, Any] = {}
    if monitor.accuracy:
        correct = network.evaluate(dataset.images, dataset.labels)
        metrics.update(accuracy=correct / max(len(dataset), 1), correct=correct, total=len(dataset))
    if monitor.cost:
        penalty = regularization.penalty(network.weights, n_training) if regularization.active else 0.0
        metrics["cost"] = network.total_cost(dataset.images, dataset.labels) + penalty
    return metrics
