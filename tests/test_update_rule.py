"""The one update rule against a plain, element-by-element reference, for every combination of
L2, L1, momentum and dropout."""

import itertools

import numpy as np
import pytest

from nndl.network import Network
from nndl.optimizer import SGD
from nndl.regularization import Regularization


def reference_steps(weights, biases, gradients, masks, eta, m, n, l2, l1, mu):
    """Chapter 3's rules written out per parameter: ∇C = (1/m)Σ∂C_x/∂p + (λ/n)w + (λ₁/n)sgn(w) for weights;
    v → μv − η∇C, p → p + v (or p → p − η∇C without momentum); a deleted neuron's parameters and velocity
    stay as they are."""
    params = [w.copy() for w in weights] + [b.copy() for b in biases]
    velocities = [np.zeros_like(p) for p in params]
    n_layers = len(weights)
    for step, (nabla_w, nabla_b) in enumerate(gradients):
        for i, (p, g) in enumerate(zip(params, nabla_w + nabla_b)):
            layer = i % n_layers
            is_weight = i < n_layers
            for index in np.ndindex(p.shape):
                row, col = index
                kept = True
                if masks[step] is not None:
                    if layer < len(masks[step]) and not masks[step][layer][row, 0]:
                        kept = False  # the neuron this parameter feeds was deleted
                    if is_weight and layer >= 1 and not masks[step][layer - 1][col, 0]:
                        kept = False  # the neuron this weight comes from was deleted
                if not kept:
                    continue
                grad = g[index] / m
                if is_weight:
                    grad += l2 / n * p[index] + l1 / n * np.sign(p[index])
                if mu:
                    velocities[i][index] = mu * velocities[i][index] - eta * grad
                    p[index] += velocities[i][index]
                else:
                    p[index] -= eta * grad
    return params


@pytest.mark.parametrize("l2, l1, mu, dropout", list(itertools.product((0.0, 2.0), (0.0, 1.5), (0.0, 0.7),
                                                                      (0.0, 0.5))))
def test_update_rule_matches_the_reference(l2, l1, mu, dropout):
    rng = np.random.default_rng(int(100 * (l2 + l1 + mu + dropout)))
    net = Network([5, 6, 4, 3], dropout=dropout, seed=1, dtype="float64")
    for w in net.weights:
        w[rng.random(w.shape) < 0.1] = 0.0  # exact zeros: sgn(0) = 0
    start_w, start_b = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    eta, m, n = 0.8, 7, 50
    gradients = [([rng.standard_normal(w.shape) for w in net.weights],
                   [rng.standard_normal(b.shape) for b in net.biases]) for _ in range(4)]
    masks = [net.draw_dropout_masks(rng) for _ in gradients]
    optimizer = SGD(net, eta, n, mu, Regularization(l2=l2, l1=l1))
    for (nabla_w, nabla_b), mask in zip(gradients, masks):
        optimizer.step(net, nabla_b, nabla_w, m, mask)
    expected = reference_steps(start_w, start_b, gradients, masks, eta, m, n, l2, l1, mu)
    for got, want in zip(net.parameters(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert not all(np.array_equal(p, q) for p, q in zip(net.parameters(), start_w + start_b))


def test_l1_and_l2_together_are_one_step_not_two():
    """w − η(λ/n)w − η(λ₁/n)sgn(w), not the decay applied after the L1 shrink (a difference of η²λλ₁/n²)."""
    net = Network([1, 1], seed=0, dtype="float64")
    net.weights[0][...] = 1.0
    SGD(net, eta=3.0, n=100, regularization=Regularization(l2=5.0, l1=5.0)).step(
        net, [np.zeros((1, 1))], [np.zeros((1, 1))], m=10)
    assert net.weights[0][0, 0] == pytest.approx(1.0 - 3.0 * 5.0 / 100 - 3.0 * 5.0 / 100, abs=1e-15)
