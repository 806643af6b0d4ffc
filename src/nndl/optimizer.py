"""The gradient descent step: plain SGD (chapter 1), weight decay (chapter 3), momentum.

With μ = 0 the step is the book's update rule, in place::

    w → (1 − ηλ/n) w − (ηλ₁/n) sgn(w) − (η/m) Σ_x ∂C_x/∂w        b → b − (η/m) Σ_x ∂C_x/∂b

With momentum μ > 0 each parameter has a velocity (chapter 3, eq. 107-108)::

    v → μ v − η ∇C        w → w + v

where ∇C = (1/m) Σ_x ∂C_x/∂w + the regularisation gradient. The L2 term's n is
the training-set size, or network3.py's number of mini-batches n/m
(:class:`~nndl.regularization.Regularization`'s ``l2_scale``). With dropout, only
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
        self.xp = xp = network.xp  # NumPy or CuPy: the network's arrays, the same arithmetic
        self.velocities = [xp.zeros_like(p) for p in network.parameters()] if momentum else None
        self.changes = [xp.empty_like(p) for p in network.parameters()]  # each step's Δp, computed in place

    def step(self, network: Network, nabla_b: list[np.ndarray], nabla_w: list[np.ndarray], m: int,
             masks: Sequence[np.ndarray | None] | None = None) -> None:
        """Apply one update from gradients summed over a mini-batch of ``m`` examples.

        This is the only update rule: plain SGD, L2 and L1 decay, momentum and
        dropout are all this one loop with some terms zero. Each change is
        computed in an array kept from step to step, and the gradients are only read.
        """
        keeps = kept_parameters(network, masks)
        n_weights = len(nabla_w)
        for i, (param, grad) in enumerate(zip(network.parameters(), nabla_w + nabla_b)):
            change = self.xp.multiply(grad, -self.eta / m, out=self.changes[i])  # −(η/m) Σ_x ∂C_x/∂p   (eq. 20-21)
            if i < n_weights and self.regularization.active:
                # weight decay w → (1 − ηλ/n) w (eq. 93) and L1's − (ηλ₁/n) sgn(w) (eq. 98); biases are not decayed
                change -= self.eta * self.regularization.gradient(param, self.n)
            if keeps is not None:
                keep_only(change, keeps[i])  # dropout: deleted neurons' weights and biases stay as they are
            if self.velocities is not None:
                velocity = self.velocities[i]
                if keeps is None:
                    velocity *= self.momentum
                else:  # deleted neurons keep their velocity too
                    velocity *= 1.0 - (1.0 - self.momentum) * keep_only(self.xp.ones_like(velocity), keeps[i])
                velocity += change  # v → μ v − η ∇C   (eq. 107)
                if keeps is None:
                    change = velocity
                else:  # only kept neurons move, though deleted ones keep a velocity
                    self.xp.copyto(change, velocity)
                    keep_only(change, keeps[i])
            param += change  # w → w + v (eq. 108), or w → w − η ∇C without momentum


Keep = tuple[np.ndarray, ...]


def kept_parameters(network: Network, masks: Sequence[np.ndarray | None] | None) -> list[Keep] | None:
    """For weights + biases, the 0/1 factors marking kept neurons: (row, column) masks for weights.

    A fully connected weight survives the mini-batch when both the neuron it
    feeds (its row) and the neuron it comes from (its column) were kept; the
    factors broadcast, so no weight-sized array is built. A convolutional
    layer's kernels are shared by every position of a map, so dropout never
    deletes them: they have no factors.
    """
    if masks is None:
        return None
    rows: list[Keep] = []
    cols: list[Keep] = []
    for l, layer in enumerate(network.layers):
        if not layer.has_parameters:
            continue
        own = masks[l] if layer.kind == "full" and l < len(masks) else None
        below = masks[l - 1] if layer.kind == "full" and l >= 1 else None
        rows.append(() if own is None else (own,))  # the layer's own neurons
        cols.append(() if below is None else (below.T,))  # the neurons feeding it
    return [row + col for row, col in zip(rows, cols)] + rows


def keep_only(array: np.ndarray, keep: Keep) -> np.ndarray:
    """Zero, in place, the entries of ``array`` that belong to deleted neurons; returns it."""
    for factor in keep:
        array *= factor
    return array
