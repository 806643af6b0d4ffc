"""Checking backpropagation against finite differences (chapter 2's sanity check).

For every weight and bias, ∂C/∂w is estimated as (C(w + ε) − C(w − ε)) / 2ε and
compared with what :meth:`Network.backprop` computes, plus the regularisation
gradient. ``nndl gradcheck`` runs it for every cost × output activation ×
hidden activation nndl has, without and with L2 and L1, and with a fixed
dropout mask, on a fully connected network and on a convolutional one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .activations import HIDDEN_ACTIVATIONS
from .costs import COSTS
from .network import Network
from .regularization import Regularization

TOLERANCE = 1e-6  # max relative error allowed in float64
REGULARIZATIONS = {"none": Regularization(), "L2": Regularization(l2=0.7), "L1": Regularization(l1=0.7)}


@dataclass(frozen=True)
class GradcheckResult:
    """The largest relative error between backprop and finite differences for one network."""

    network: str
    cost: str
    activation: str
    output_activation: str
    regularization: str
    dropout: bool
    max_relative_error: float

    @property
    def passed(self) -> bool:
        return self.max_relative_error < TOLERANCE


def regularized_cost(network: Network, x: np.ndarray, y: np.ndarray, regularization: Regularization, n: int,
                     masks: Sequence[np.ndarray] | None) -> float:
    """C = (1/m) Σ_x C_x + the regularisation term, through the (possibly thinned) network."""
    zs, activations = network.forward(x, masks)
    data_cost = network.cost.fn(zs[-1], activations[-1], y, network.output_activation) / x.shape[1]
    return data_cost + regularization.penalty(network.weights, n)


def max_relative_error(network: Network, x: np.ndarray, y: np.ndarray, eps: float = 1e-5,
                       regularization: Regularization = Regularization(), n: int = 10,
                       masks: Sequence[np.ndarray] | None = None) -> float:
    """The worst ‖backprop − numerical‖ / (‖backprop‖ + ‖numerical‖) over the weight and bias arrays.

    Comparing whole arrays rather than single entries keeps entries whose
    gradient is nearly 0, where finite differences measure only rounding
    noise, from hiding or faking a bug.
    """
    nabla_b, nabla_w = network.backprop(x, y, masks)
    m = x.shape[1]
    analytic_w = [nw / m + regularization.gradient(w, n) for w, nw in zip(network.weights, nabla_w)]
    analytic_b = [nb / m for nb in nabla_b]
    worst = 0.0
    for param, analytic in zip(network.weights + network.biases, analytic_w + analytic_b):
        numerical = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + eps
            cost_plus = regularized_cost(network, x, y, regularization, n, masks)
            param[index] = saved - eps
            cost_minus = regularized_cost(network, x, y, regularization, n, masks)
            param[index] = saved
            numerical[index] = (cost_plus - cost_minus) / (2 * eps)  # ∂C/∂p ≈ (C(p+ε) − C(p−ε)) / 2ε
        scale = np.linalg.norm(analytic) + np.linalg.norm(numerical)
        if scale > 0:
            worst = max(worst, float(np.linalg.norm(analytic - numerical) / scale))
    return worst


CONV_LAYERS, CONV_INPUT = "conv3x3,pool2,full4", (2, 6, 6)  # a small chapter-6 network: 2 maps of 6×6 in


def check_all(sizes: Sequence[int] | None = (4, 5, 4, 3), examples: int = 3, seed: int = 0,
              layers: str | None = None, input_shape: Sequence[int] = CONV_INPUT) -> list[GradcheckResult]:
    """Gradient-check a small random float64 network for every combination nndl supports.

    The network has layer ``sizes`` (fully connected), or ``layers`` in the
    shorthand of :mod:`nndl.layers` for inputs of ``input_shape`` and 3 outputs.
    """
    shape = {"layers": layers, "input_shape": tuple(input_shape), "outputs": 3} if layers else {"sizes": list(sizes)}
    probe = Network(**shape)
    rng = np.random.default_rng(seed)
    x = rng.random((probe.sizes[0], examples))
    y = np.eye(probe.sizes[-1])[:, rng.integers(0, probe.sizes[-1], examples)]
    results = []
    combinations = [(cost, output) for cost, c in COSTS.items() for output in c.output_activations]
    for (cost, output), hidden, reg, dropout in itertools.product(
        combinations, HIDDEN_ACTIVATIONS, REGULARIZATIONS, (False, True)
    ):
        if dropout and probe.num_layers < 3:
            continue
        network = Network(**shape, cost=cost, activation=hidden, output_activation=output, init="normalized",
                          dropout=0.5 if dropout else 0.0, seed=seed, dtype=np.float64)
        masks = network.draw_dropout_masks(np.random.default_rng(seed))
        error = max_relative_error(network, x, y, regularization=REGULARIZATIONS[reg], masks=masks)
        name = layers or str(list(sizes))
        results.append(GradcheckResult(name, cost, hidden, output, reg, dropout, error))
    return results
