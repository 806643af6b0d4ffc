"""Cost functions C and their output error δ^L (equation BP1).

As in the book's network2.py, a cost is a small object with two methods:
``fn(z, a, y, activation)`` gives Σ_x C_x over the columns of a mini-batch
(callers divide by n), and ``delta(z, a, y, activation)`` gives the output
error δ^L = ∂C/∂z^L. Targets ``y`` are one-hot columns, shape (n_classes, m).
Costs take z as well as a so that logarithms are computed from z, which stays
finite where a has rounded to exactly 0 or 1.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation
from .errors import ConfigError


def log_sum_exp(z: np.ndarray) -> np.ndarray:
    """ln Σ_k e^(z_k) per column, without overflow."""
    top = z.max(axis=0, keepdims=True)
    return top + np.log(np.sum(np.exp(z - top), axis=0, keepdims=True))


class Cost:
    """Base class: a cost C and its output error δ^L = ∂C/∂z^L."""

    name: str = ""
    book_name: str = ""  # the class name in the book's network2.py, where there is one
    output_activations: tuple[str, ...] = ()  # output layers this cost is defined for

    def check_output(self, activation: Activation) -> None:
        """Refuse an output activation this cost is not defined for."""
        if activation.name not in self.output_activations:
            raise ConfigError(
                f"the {self.name} cost needs a {' or '.join(self.output_activations)} output layer, "
                f"not {activation.name}"
            )

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> float:
        """Return Σ_x C_x over the columns (divide by n for the mean cost)."""
        raise NotImplementedError

    def delta(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        """Return δ^L for every column: BP1 for this cost and output activation."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class QuadraticCost(Cost):
    """The mean squared error of chapter 1: C = (1/2n) Σ_x ||y(x) − a||²."""

    name = "quadratic"
    book_name = "QuadraticCost"
    output_activations = ("sigmoid", "softmax")

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> float:
        return 0.5 * float(np.sum((a - y) ** 2))

    def delta(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        # BP1: δ^L = ∇_a C ⊙ σ'(z^L) = (a − y) ⊙ σ'(z^L)   (through softmax's Jacobian for softmax)
        return activation.input_gradient(z, a, a - y)


class CrossEntropyCost(Cost):
    """Chapter 3's cross-entropy for sigmoid outputs: C = −(1/n) Σ_x Σ_j [y ln a + (1−y) ln(1−a)]."""

    name = "cross-entropy"
    book_name = "CrossEntropyCost"
    output_activations = ("sigmoid",)

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> float:
        # With a = σ(z): −ln a = ln(1 + e^−z) and −ln(1 − a) = ln(1 + e^z), so
        # −[y ln a + (1−y) ln(1−a)] = ln(1 + e^z) − y z: finite even where a is exactly 0 or 1.
        return float(np.sum(np.logaddexp(0.0, z) - y * z))

    def delta(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        # BP1 for cross-entropy with sigmoid outputs: δ^L = a − y (σ'(z) cancels, eq. 66)
        return a - y


class LogLikelihoodCost(Cost):
    """Chapter 3's log-likelihood for a softmax output layer: C = −ln a_y."""

    name = "log-likelihood"
    output_activations = ("softmax",)

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> float:
        # −ln a_y = ln Σ_k e^(z_k) − z_y, computed from z so it never takes ln 0
        return float(np.sum(log_sum_exp(z)) - np.sum(y * z))

    def delta(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        # BP1 for log-likelihood with softmax outputs: δ^L = a − y   (eq. 81-84)
        return a - y


COSTS: dict[str, Cost] = {c.name: c for c in (QuadraticCost(), CrossEntropyCost(), LogLikelihoodCost())}


def get_cost(name: str | Cost) -> Cost:
    """Look a cost up by name (e.g. ``"cross-entropy"``); objects pass through."""
    if isinstance(name, Cost):
        return name
    try:
        return COSTS[name]
    except KeyError:
        choices = ", ".join(COSTS)
        raise ConfigError(f"unknown cost {name!r}; choose from: {choices}") from None
