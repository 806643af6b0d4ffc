"""Checking backpropagation against finite differences (chapter 2's sanity check).

For every weight and bias, ∂C/∂w is estimated as (C(w + ε) − C(w − ε)) / 2ε and
compared with what :meth:`Network.backprop` computes. Run it for every cost and
activation nndl has: ``nndl gradcheck``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .activations import ACTIVATIONS
from .costs import COSTS
from .network import Network

TOLERANCE = 1e-6  # max relative error allowed in float64


@dataclass(frozen=True)
class GradcheckResult:
    """The largest relative error between backprop and finite differences for one network."""

    cost: str
    activation: str
    output_activation: str
    max_relative_error: float

    @property
    def passed(self) -> bool:
        return self.max_relative_error < TOLERANCE


def mean_cost(network: Network, x: np.ndarray, y: np.ndarray) -> float:
    """C = (1/m) Σ_x C_x for input columns x and target columns y."""
    return network.cost.fn(network.feedforward(x), y) / x.shape[1]


def max_relative_error(network: Network, x: np.ndarray, y: np.ndarray, eps: float = 1e-5) -> float:
    """Largest |backprop − numerical| / max(|backprop| + |numerical|, 1e-8) over all parameters."""
    nabla_b, nabla_w = network.backprop(x, y)
    m = x.shape[1]
    worst = 0.0
    for params, grads in ((network.weights, nabla_w), (network.biases, nabla_b)):
        for param, grad in zip(params, grads):
            for index in np.ndindex(param.shape):
                saved = param[index]
                param[index] = saved + eps
                cost_plus = mean_cost(network, x, y)
                param[index] = saved - eps
                cost_minus = mean_cost(network, x, y)
                param[index] = saved
                numerical = (cost_plus - cost_minus) / (2 * eps)
                analytic = grad[index] / m
                error = abs(analytic - numerical) / max(abs(analytic) + abs(numerical), 1e-8)
                worst = max(worst, float(error))
    return worst


def check_all(sizes: list[int] = [4, 5, 3], examples: int = 3, seed: int = 0) -> list[GradcheckResult]:
    """Gradient-check a small random float64 network for every cost × activation combination."""
    rng = np.random.default_rng(seed)
    x = rng.random((sizes[0], examples))
    y = np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], examples)]
    results = []
    for cost, activation, output in itertools.product(COSTS, ACTIVATIONS, ACTIVATIONS):
        network = Network(sizes, cost=cost, activation=activation, output_activation=output,
                          init="normalized", seed=seed, dtype=np.float64)
        results.append(GradcheckResult(cost, activation, output, max_relative_error(network, x, y)))
    return results
