"""The gradient descent step: plain SGD (chapter 1), weight decay (chapter 3), momentum.

With μ = 0 the step is the book's update rule, in place::

    w → (1 − ηλ/n) w − (ηλ₁/n) sgn(w) − (η/m) Σ_x ∂C_x/∂w        b → b − (η/m) Σ_x ∂C_x/∂b

With momentum μ > 0 each parameter has a velocity (chapter 3, eq. 107-108)::

    v → μ v − η ∇C        w → w + v

where ∇C = (1/m) Σ_x ∂C_x/∂w + the regularisation gradient. With dropout, only
the weights and biases of the neurons kept for this mini-batch change.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ConfigError
from .network import Network
from .regularization import Regularization


class SGD:
    """Stochastic gradient descent with optional L2/L1 weight decay and momentum.

    ``n`` is the training-set size that scales the regularisation (λ/n).
    ``eta`` may be changed between steps (learning-rate schedules do).
    """

    def __init__(self, network: Network, eta: float, n: int, momentum: float = 0.0,
                 regularization: Regularization = Regularization()):
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum {momentum}: the coefficient μ must be in [0, 1)")
        self.eta, self.n, self.momentum, self.regularization = eta, n, momentum, regularization
        parameters = network.weights + network.biases
        self.velocities = [np.zeros_like(p) for p in parameters] if momentum else None

    def step(self, network: Network, nabla_b: list[np.ndarray], nabla_w: list[np.ndarray], m: int,
             masks: Sequence[np.ndarray] | None = None) -> None:
        """Apply one update from gradients summed over a mini-batch of ``m`` examples."""
        if self.velocities is None and masks is None:
            self.plain_step(network, nabla_b, nabla_w, m)
            return
        keeps = kept_parameters(network, masks)
        parameters = network.weights + network.biases
        gradients = nabla_w + nabla_b
        for i, (param, grad) in enumerate(zip(parameters, gradients)):
            full = grad / m  # (1/m) Σ_x ∂C_x/∂p
            if i < len(network.weights) and self.regularization.active:
                full += self.regularization.gradient(param, self.n)
            change = -self.eta * full
            if self.velocities is not None:
                velocity = self.velocities[i]
                new_velocity = self.momentum * velocity + change  # v → μ v − η ∇C
                velocity[...] = new_velocity if keeps is None else np.where(keeps[i], new_velocity, velocity)
                change = new_velocity
            if keeps is not None:
                change = change * keeps[i]  # dropout: deleted neurons' weights and biases stay as they are
            param += change  # w → w + v  (or w − η ∇C without momentum)

    def plain_step(self, network: Network, nabla_b: list[np.ndarray], nabla_w: list[np.ndarray], m: int) -> None:
        """The book's update rules, in place, without allocating anything the size of w twice."""
        step, reg = self.eta / m, self.regularization
        for w, nw in zip(network.weights, nabla_w):
            if reg.l1:
                w -= self.eta * reg.l1 / self.n * np.sign(w)  # L1: w → w − (ηλ₁/n) sgn(w)   (eq. 98)
            if reg.l2:
                w *= 1.0 - self.eta * reg.l2 / self.n  # weight decay: w → (1 − ηλ/n) w   (eq. 93)
            w -= step * nw  # w → w − (η/m) Σ_x ∂C_x/∂w   (chapter 1, eq. 20)
        for b, nb in zip(network.biases, nabla_b):
            b -= step * nb  # b → b − (η/m) Σ_x ∂C_x/∂b   (eq. 21; biases are not regularised)


def kept_parameters(network: Network, masks: Sequence[np.ndarray] | None) -> list[np.ndarray] | None:
    """0/1 arrays shaped like weights + biases: 1 where both ends of a connection were kept."""
    if masks is None:
        return None
    n_layers = len(network.weights)
    rows = [masks[l] if l < len(masks) else None for l in range(n_layers)]  # the layer's own neurons
    cols = [masks[l - 1].T if l >= 1 else None for l in range(n_layers)]  # the neurons feeding it
    keep_w = []
    for w, row, col in zip(network.weights, rows, cols):
        keep = np.ones_like(w)
        if row is not None:
            keep = keep * row
        if col is not None:
            keep = keep * col
        keep_w.append(keep)
    keep_b = [np.ones_like(b) if row is None else row for b, row in zip(network.biases, rows)]
    return keep_w + keep_b
