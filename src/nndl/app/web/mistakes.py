"""The Mistakes tab: a model's confusion matrix on a dataset, and the digits behind one of its cells.

The counting and the ordering of mistakes are :mod:`nndl.app.inspect`'s
(``confusion_matrix``, ``guess_confidence``, ``misclassified``); this module only
shapes them for the page, with each digit's pixels as whole numbers 0-255 that
the page paints on a canvas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...data.mnist import Dataset
from ...errors import DataError
from ...network import Network
from ...pixels import as_bytes
from ..inspect import confusion_matrix, guess_confidence, image_side, misclassified


JUDGE_CHUNK = 1000  # images fed forward at once: a wide network's activations for 10,000 were 200 MB


@dataclass(frozen=True)
class Verdicts:
    """A network's guess on every image of a dataset, and how sure each guess was."""

    dataset: Dataset
    guesses: np.ndarray
    confidence: np.ndarray


def judge(network: Network, dataset: Dataset) -> Verdicts:
    """Run ``network`` on every image of ``dataset``."""
    if network.sizes[0] != dataset.n_features:
        raise DataError(f"the model takes {network.sizes[0]} inputs but the {dataset.name} images have "
                        f"{dataset.n_features} pixels: pick a model trained on this data")
    outputs = np.concatenate([network.output_rows(dataset.images[start : start + JUDGE_CHUNK])
                              for start in range(0, len(dataset.images), JUDGE_CHUNK)])
    guesses = np.argmax(outputs, axis=1)
    return Verdicts(dataset, guesses, guess_confidence(outputs, guesses))


def confusion(verdicts: Verdicts, n_classes: int) -> dict[str, Any]:
    """The confusion matrix (rows: true digit, columns: guess) and the accuracy."""
    labels = verdicts.dataset.labels
    matrix = confusion_matrix(labels, verdicts.guesses, n_classes)
    return {"dataset": verdicts.dataset.name, "matrix": matrix.tolist(), "total": int(len(labels)),
            "correct": int(np.trace(matrix)), "accuracy": float(np.trace(matrix) / max(len(labels), 1))}


def cell(verdicts: Verdicts, label: int, guess: int, limit: int) -> dict[str, Any]:
    """The images of true digit ``label`` the network called ``guess``, surest first (the right ones if equal)."""
    dataset = verdicts.dataset
    chosen = (dataset.labels == label) & (verdicts.guesses == guess)
    if label == guess:  # the diagonal: correct answers, least sure first
        index = np.flatnonzero(chosen)
        index = index[np.argsort(verdicts.confidence[index], kind="stable")][:limit]
    else:
        labels = np.where(chosen, dataset.labels, verdicts.guesses)  # every other image counts as right: left out
        index = misclassified(labels, verdicts.guesses, verdicts.confidence, limit)["index"]
    side = image_side(dataset.n_features)
    pixels = as_bytes(dataset.images[index])
    return {"label": label, "guess": guess, "count": int(chosen.sum()), "side": side,
            "digits": [{"index": int(i), "confidence": float(verdicts.confidence[i]), "pixels": p.tolist()}
                       for i, p in zip(index, pixels)]}
