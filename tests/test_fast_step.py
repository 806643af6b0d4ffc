"""Training's step (matrix backprop, kept change arrays) against straightforward references."""

import numpy as np
import pytest

from nndl.data.mnist import Dataset
from nndl.network import Network
from nndl.optimizer import SGD
from nndl.regularization import Regularization
from nndl.rng import make_rng
from nndl.training import TrainingConfig, epoch_order, train

NETWORKS = [
    dict(sizes=[6, 5, 4], cost="quadratic"),
    dict(sizes=[6, 7, 5, 4], cost="cross-entropy", activation="tanh", init="normalized", dropout=0.4),
    dict(sizes=[6, 5, 3, 4], cost="log-likelihood", activation="relu", init="he", dropout=0.3),
    dict(sizes=[6, 5, 4], cost="quadratic", output_activation="softmax", init="normalized"),
]


def reference_gradients(net, x, y, masks):
    """Σ_x ∂C_x/∂b and Σ_x ∂C_x/∂w, one example at a time, every array freshly computed by a plain expression."""
    acts = net.layer_activations
    nabla_b = [np.zeros_like(b) for b in net.biases]
    nabla_w = [np.zeros_like(w) for w in net.weights]
    for i in range(x.shape[1]):
        activations, zs = [x[:, [i]]], []
        for l, (w, b) in enumerate(zip(net.weights, net.biases)):
            zs.append(w @ activations[-1] + b)
            a = acts[l].fn(zs[-1])
            activations.append(a * masks[l] if masks is not None and l < len(masks) else a)
        delta = net.cost.delta(zs[-1], activations[-1], y[:, [i]], acts[-1])
        for l in range(len(net.weights) - 1, -1, -1):
            if l < len(net.weights) - 1:
                delta = (net.weights[l + 1].T @ delta) * acts[l].prime(zs[l], activations[l + 1])
                if masks is not None:
                    delta = delta * masks[l]
            nabla_b[l] += delta
            nabla_w[l] += delta @ activations[l].T
    return nabla_b, nabla_w


def batch(net, rng, m):
    x = rng.random((net.sizes[0], m))
    y = np.eye(net.sizes[-1])[:, rng.integers(0, net.sizes[-1], m)]
    return x, y


def copies(gradients):
    return [[a.copy() for a in arrays] for arrays in gradients]


def assert_gradients_equal(got, want, exact=False):
    for got_arrays, want_arrays in zip(got, want):
        for g, w in zip(got_arrays, want_arrays):
            assert g.shape == w.shape
            if exact:
                np.testing.assert_array_equal(g, w)
            else:
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(w).max()))


@pytest.mark.parametrize("kwargs", NETWORKS)
def test_backprop_matches_the_reference(kwargs):
    """Full, then short last, then full mini-batches again, with dropout masks where the network has dropout."""
    net = Network(**kwargs, seed=2, dtype="float64")
    rng = np.random.default_rng(3)
    for m in (10, 3, 10, 1, 10):
        x, y = batch(net, rng, m)
        masks = net.draw_dropout_masks(rng)
        got = copies(net.backprop(x, y, masks))
        assert_gradients_equal(got, reference_gradients(net, x, y, masks))
        assert_gradients_equal(net.backprop_per_example(x, y, masks), got)


def test_gradients_are_new_arrays_every_call():
    net = Network([5, 4, 3], seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    (x1, y1), (x2, y2) = batch(net, rng, 4), batch(net, rng, 4)
    first = net.backprop(x1, y1)
    kept = copies(first)
    net.backprop(x2, y2)
    assert_gradients_equal(first, kept, exact=True)  # a caller keeping gradients sees them unchanged
    once = copies(net.backprop_per_example(x1, y1))
    assert_gradients_equal(net.backprop_per_example(x1, y1), once, exact=True)  # totals start from zero


def test_the_update_rule_only_reads_the_gradients():
    net = Network([5, 6, 4, 3], dropout=0.5, seed=1, dtype="float64")
    rng = np.random.default_rng(4)
    nabla_b = [rng.standard_normal(b.shape) for b in net.biases]
    nabla_w = [rng.standard_normal(w.shape) for w in net.weights]
    kept = [a.copy() for a in nabla_b + nabla_w]
    optimizer = SGD(net, 0.5, 100, 0.6, Regularization(l2=1.0, l1=0.5))
    for _ in range(3):
        optimizer.step(net, nabla_b, nabla_w, 7, net.draw_dropout_masks(rng))
    for a, b in zip(nabla_b + nabla_w, kept):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("settings", [dict(), dict(lmbda=2.0, momentum=0.5), dict(l1=1.0, momentum=0.7)])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_training_gives_the_weights_of_a_plain_allocating_loop(settings, dropout):
    """train() with its kept change arrays against the same epochs written with fresh arrays everywhere
    (23 examples in mini-batches of 5: a short last one), bit for bit."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (23, 6), dtype=np.uint8)
    data = Dataset(images, rng.integers(0, 4, 23), "tiny")
    config = TrainingConfig(epochs=2, mini_batch_size=5, eta=0.7, seed=9, **settings)
    trained = Network([6, 5, 4], dropout=dropout, seed=1, dtype="float64")
    train(trained, data, config)

    plain = Network([6, 5, 4], dropout=dropout, seed=1, dtype="float64")
    optimizer = SGD(plain, config.eta, len(data), config.momentum, config.regularization)
    targets = np.eye(4)
    for epoch in range(config.epochs):
        order, dropout_rng = epoch_order(config.seed, epoch, len(data)), make_rng(config.seed, "dropout", epoch)
        for start in range(0, len(data), config.mini_batch_size):
            chosen = order[start : start + config.mini_batch_size]
            masks = plain.draw_dropout_masks(dropout_rng)
            x, y = plain.inputs(images[chosen]), targets[:, data.labels[chosen]]
            optimizer.step(plain, *plain.backprop(x, y, masks), len(chosen), masks)
    for got, want in zip(trained.parameters(), plain.parameters()):
        np.testing.assert_array_equal(got, want)


def test_new_gradients_keep_the_precision_of_more_precise_inputs():
    net = Network([5, 4, 3], seed=0, dtype="float32")
    x, y = batch(net, np.random.default_rng(0), 3)  # float64
    for nabla in net.backprop(x, y) + net.backprop_per_example(x, y):
        assert all(a.dtype == np.float64 for a in nabla)
    wide = Network([5, 4, 3], seed=0, dtype="float64")
    wide.set_parameters([w.astype(np.float64) for w in net.weights], [b.astype(np.float64) for b in net.biases])
    assert_gradients_equal(net.backprop(x, y), wide.backprop(x, y), exact=True)
