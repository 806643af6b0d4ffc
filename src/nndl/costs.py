"""Cost functions C and their output error δ^L (equation BP1).

As in the book's network2.py, a cost is a small object with two methods:
``fn(a, y)`` gives the cost of outputs ``a`` against targets ``y`` (summed over
the columns of a mini-batch; callers divide by n), and ``delta(z, a, y,
activation)`` gives the output layer's error δ^L, the start of backpropagation.
Targets ``y`` are one-hot columns, shape (n_classes, m).
"""

from __future__ import annotations

import numpy as np

from .activations import Activation
from .errors import ConfigError


class Cost:
    """Base class: a cost C and its output error δ^L = ∂C/∂z^L."""

    name: str = ""

    def fn(self, a: np.ndarray, y: np.ndarray) -> float:
        """Return Σ_x C_x over the columns of ``a`` (divide by n for the mean cost)."""
        raise NotImplementedError

    def delta(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        """Return δ^L for every column: BP1 for this cost and output activation."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class QuadraticCost(Cost):
    """The mean squared error of chapter 1: C = (1/2n) Σ_x ||y(x) − a||²."""

    name = "quadratic"

    def fn(self, a: np.ndarray, y: np.ndarray) -> float:
        return 0.5 * float(np.sum((a - y) ** 2))

    def delta(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        # BP1: δ^L = ∇_a C ⊙ σ'(z^L) = (a − y) ⊙ σ'(z^L)
        return (a - y) * activation.prime(z, a)


COSTS: dict[str, Cost] = {c.name: c for c in (QuadraticCost(),)}


def get_cost(name: str | Cost) -> Cost:
    """Look a cost up by name (e.g. ``"quadratic"``); objects pass through."""
    if isinstance(name, Cost):
        return name
    try:
        return COSTS[name]
    except KeyError:
        choices = ", ".join(COSTS)
        raise ConfigError(f"unknown cost {name!r}; choose from: {choices}") from None
