"""Chapter 5: why the gradient is unstable in deep networks, on the chapter's chain of one-neuron layers.

For a chain x → b^1 → b^2 → … → b^L → C of single sigmoid neurons, backpropagation
(BP2, BP3) gives

    ∂C/∂b^1 = σ'(z^1) w^2 σ'(z^2) w^3 σ'(z^3) … w^L σ'(z^L) ∂C/∂a^L

so each layer further from the output multiplies the gradient by w σ'(z). With
the usual weights |w| < 1 and σ'(z) ≤ 1/4 that factor is below 1/4 and the
gradient vanishes; with w = 100 and biases that make every z = 0 (σ'(0) = 1/4)
it is 25 and the gradient explodes. Only a balance (w σ'(z) ≈ 1 in every layer)
keeps it stable, and nothing in gradient descent maintains that balance.
"""

from __future__ import annotations

import numpy as np

from .network import Network


def balanced_chain(weight: float, layers: int = 4, x: float = 1.0) -> Network:
    """The chapter's chain of ``layers`` one-neuron layers (quadratic cost), every weight ``weight`` and every bias
    chosen so that z = 0 for the input ``x``, hence σ'(z) = 1/4 in every layer."""
    network = Network([1] * (layers + 1), cost="quadratic", dtype=np.float64)
    biases, a = [], x
    for _ in range(layers):
        biases.append(np.array([[-weight * a]]))  # z = w a + b = 0
        a = 0.5  # σ(0): the next layer's input
    network.set_parameters([np.array([[weight]])] * layers, biases)
    return network


def bias_gradients(network: Network, x: float = 1.0, y: float = 0.0) -> list[float]:
    """∂C/∂b^l for every layer of a one-neuron chain, for the single example (x, y), by backpropagation."""
    nabla_b, _ = network.backprop(np.array([[x]]), np.array([[y]]))
    return [float(nb[0, 0]) for nb in nabla_b]
