"""Activation functions σ(z) and their derivatives.

Each activation is a small object in the style of the book's cost classes:
``fn(z)`` gives a = σ(z), and ``prime(z, a)`` gives σ'(z) for activations that
act on each neuron separately. ``prime`` receives ``a`` as well as ``z`` because
σ'(z) is often cheapest in terms of a = σ(z), which backpropagation already
holds. Softmax couples a layer's neurons, so it has no elementwise derivative;
every activation instead answers :meth:`Activation.input_gradient`, the chain
rule ∂C/∂z from ∂C/∂a, which is all backpropagation needs at the output.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


class Activation:
    """Base class: a neuron's activation function σ and its derivative."""

    name: str = ""
    elementwise: bool = True  # False for softmax: a_j depends on every z_k of the layer

    def fn(self, z: np.ndarray) -> np.ndarray:
        """Return a = σ(z); columns of z are examples."""
        raise NotImplementedError

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Return σ'(z) elementwise, given both z and a = σ(z)."""
        raise NotImplementedError

    def input_gradient(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """Return ∂C/∂z given ∂C/∂a: the chain rule through this activation."""
        return grad_a * self.prime(z, a)

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


class Tanh(Activation):
    """The tanh neuron of chapter 3: σ(z) = tanh(z), outputs in (−1, 1)."""

    name = "tanh"

    def fn(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        # tanh'(z) = 1 − tanh²(z)
        return 1.0 - a * a


class ReLU(Activation):
    """The rectified linear unit of chapter 3: σ(z) = max(0, z)."""

    name = "relu"

    def fn(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0.0)

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        # σ'(z) = 1 for z > 0, else 0
        return (z > 0).astype(z.dtype)


class Softmax(Activation):
    """The softmax output layer of chapter 3: a_j = e^(z_j) / Σ_k e^(z_k), per column."""

    name = "softmax"
    elementwise = False

    def fn(self, z: np.ndarray) -> np.ndarray:
        # Subtracting each column's max leaves a unchanged and keeps e^z finite for huge z.
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise ConfigError("softmax has no elementwise derivative; it can only be an output layer")

    def input_gradient(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        # ∂a_j/∂z_k = a_j(δ_jk − a_k), so ∂C/∂z_k = a_k (∂C/∂a_k − Σ_j a_j ∂C/∂a_j)
        return a * (grad_a - np.sum(a * grad_a, axis=0, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (Sigmoid(), Tanh(), ReLU(), Softmax())}
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")


def get_activation(name: str | Activation, role: str = "hidden") -> Activation:
    """Look an activation up by name for a ``role`` ("hidden" or "output"); objects pass through."""
    if isinstance(name, Activation):
        return name
    allowed = HIDDEN_ACTIVATIONS if role == "hidden" else OUTPUT_ACTIVATIONS
    if name not in allowed:
        raise ConfigError(f"unknown {role} activation {name!r}; choose from: {', '.join(allowed)}")
    return ACTIVATIONS[name]
