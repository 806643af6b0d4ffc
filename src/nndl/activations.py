"""Activation functions σ(z) and their derivatives σ'(z).

Each activation is a small object with two methods, in the style of the book's
cost classes: ``fn(z)`` gives a = σ(z), and ``prime(z, a)`` gives σ'(z). ``prime``
receives the activation ``a`` as well as ``z`` because for the sigmoid σ'(z) is
cheapest written in terms of a = σ(z), which backpropagation already holds.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


class Activation:
    """Base class: a neuron's activation function σ and its derivative."""

    name: str = ""

    def fn(self, z: np.ndarray) -> np.ndarray:
        """Return a = σ(z), elementwise (column-wise for softmax-like outputs)."""
        raise NotImplementedError

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Return σ'(z), given both z and a = σ(z)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    """The sigmoid neuron of chapter 1: σ(z) = 1 / (1 + e^(−z))."""

    name = "sigmoid"

    def fn(self, z: np.ndarray) -> np.ndarray:
        # σ(z) = 1/(1 + e^−z), written as (1 + tanh(z/2))/2: the same function, but
        # e^−z overflows for z < −88 in float32 and tanh never does.
        a = np.tanh(0.5 * z)
        a += 1.0
        a *= 0.5
        return a

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        # σ'(z) = σ(z)(1 − σ(z))   (chapter 1, eq. 3 differentiated)
        return a * (1.0 - a)


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (Sigmoid(),)}


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name (e.g. ``"sigmoid"``); objects pass through."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except KeyError:
        choices = ", ".join(ACTIVATIONS)
        raise ConfigError(f"unknown activation {name!r}; choose from: {choices}") from None
