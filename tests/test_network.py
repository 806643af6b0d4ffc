import warnings

import numpy as np
import pytest

from nndl.activations import Sigmoid, get_activation
from nndl.costs import QuadraticCost, get_cost
from nndl.errors import ConfigError
from nndl.gradcheck import TOLERANCE, check_all, max_relative_error
from nndl.network import Network


def reference_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_the_books_shapes():
    net = Network([784, 30, 10], seed=0)
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]
    assert all(p.dtype == np.float32 for p in net.weights + net.biases)
    assert "Network([784, 30, 10]" in repr(net)


def test_large_init_is_standard_normal_and_seeded():
    a, b, c = (Network([784, 100, 10], seed=s, dtype="float64") for s in (1, 1, 2))
    np.testing.assert_array_equal(a.weights[0], b.weights[0])
    assert not np.array_equal(a.weights[0], c.weights[0])
    assert a.weights[0].mean() == pytest.approx(0, abs=0.01)
    assert a.weights[0].std() == pytest.approx(1, abs=0.01)


def test_normalized_init_scales_by_fan_in():
    net = Network([784, 100, 10], init="normalized", seed=0, dtype="float64")
    assert net.weights[0].std() == pytest.approx(1 / np.sqrt(784), rel=0.02)
    assert net.biases[0].std() == pytest.approx(1, abs=0.2)


def test_feedforward_is_sigma_of_weighted_input():
    net = Network([4, 3, 2], seed=0, dtype="float64")
    x = np.random.default_rng(0).random((4, 5))
    hidden = reference_sigmoid(net.weights[0] @ x + net.biases[0])
    expected = reference_sigmoid(net.weights[1] @ hidden + net.biases[1])
    np.testing.assert_allclose(net.feedforward(x), expected, rtol=1e-12)
    zs, activations = net.forward(x)
    np.testing.assert_allclose(activations[-1], expected, rtol=1e-12)
    np.testing.assert_allclose(zs[0], net.weights[0] @ x + net.biases[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_never_overflows(dtype):
    z = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = Sigmoid().fn(z)
    assert a.dtype == dtype
    np.testing.assert_allclose(a, [0, 0, 0.5, 1, 1], atol=1e-7)


def test_sigmoid_prime():
    z = np.linspace(-5, 5, 11)
    a = reference_sigmoid(z)
    np.testing.assert_allclose(Sigmoid().prime(z, a), np.exp(-z) / (1 + np.exp(-z)) ** 2, rtol=1e-12)


def test_quadratic_cost_and_its_output_error():
    a, y = np.array([[0.2], [0.9]]), np.array([[0.0], [1.0]])
    z = np.log(a / (1 - a))  # so that σ(z) = a
    assert QuadraticCost().fn(z, a, y, Sigmoid()) == pytest.approx(0.5 * (0.04 + 0.01))
    np.testing.assert_allclose(QuadraticCost().delta(z, a, y, Sigmoid()), (a - y) * a * (1 - a))


@pytest.mark.parametrize("seed, layers", [(0, None), (1, None), (2, None), (0, "conv3x3,pool2,full4"),
                                          (1, "conv2x2,conv2x2,pool2,full3")])
def test_every_combination_passes_the_gradient_check(seed, layers):
    results = check_all([5, 4, 3, 3], examples=4, seed=seed, layers=layers)
    assert all(r.max_relative_error < TOLERANCE for r in results), [r for r in results if not r.passed]
    combinations = {(r.cost, r.output_activation, r.activation, r.regularization, r.dropout) for r in results}
    # 4 cost/output pairs × 3 hidden activations × (none, L2, L1) × (without, with dropout)
    assert len(combinations) == 72
    assert {(r.cost, r.output_activation) for r in results} == {
        ("quadratic", "sigmoid"), ("quadratic", "softmax"), ("cross-entropy", "sigmoid"),
        ("log-likelihood", "softmax")}


def test_gradient_check_catches_a_broken_backprop(monkeypatch):
    net = Network([4, 5, 3], seed=0, dtype="float64", init="normalized")
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 3)), np.eye(3)[:, [0, 2, 1]]
    assert max_relative_error(net, x, y) < TOLERANCE
    # BP1 without the σ'(z) factor: the kind of slip the check exists to catch
    monkeypatch.setattr(QuadraticCost, "delta", lambda self, z, a, y, act: a - y)
    assert max_relative_error(net, x, y) > 1e-2


def test_gradient_check_catches_a_wrong_weight_decay(monkeypatch):
    from nndl.regularization import Regularization
    net = Network([4, 5, 3], seed=0, dtype="float64", init="normalized")
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 3)), np.eye(3)[:, [0, 2, 1]]
    l2 = Regularization(l2=1.0)
    assert max_relative_error(net, x, y, regularization=l2) < TOLERANCE
    monkeypatch.setattr(Regularization, "gradient", lambda self, w, n: self.l2 / (2 * n) * w)  # forgot the 2
    assert max_relative_error(net, x, y, regularization=l2) > 1e-3


def test_matrix_and_per_example_gradients_agree():
    net = Network([784, 30, 10], seed=0, dtype="float64")
    rng = np.random.default_rng(1)
    x, y = rng.random((784, 10)), np.eye(10)[:, rng.integers(0, 10, 10)]
    for matrix, per_example in zip(net.backprop(x, y), net.backprop_per_example(x, y)):
        for m, p in zip(matrix, per_example):
            assert m.shape == p.shape
            np.testing.assert_allclose(m, p, rtol=0, atol=1e-10)


def test_dataset_helpers_take_rows():
    net = Network([4, 3, 2], seed=0, dtype="float64")
    images = np.random.default_rng(0).random((7, 4))
    outputs = net.output_rows(images)
    np.testing.assert_allclose(outputs, net.feedforward(images.T).T)
    labels = np.argmax(outputs, axis=1)
    assert net.evaluate(images, labels) == 7
    assert net.evaluate(images, 1 - labels) == 0
    expected = 0.5 * np.sum((outputs - np.eye(2)[labels]) ** 2) / 7
    assert net.total_cost(images, labels) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="rows of 4 values"):
        net.predict(np.zeros((3, 5)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sizes": [784]}, "at least an input and an output"),
        ({"sizes": [784, 0, 10]}, "at least 1"),
        ({"sizes": [784, 2.5, 10]}, "whole number"),
        ({"sizes": [4, 2], "dtype": "int8"}, "float32 or float64"),
        ({"sizes": [4, 2], "cost": "hinge"}, "unknown cost 'hinge'; choose from: quadratic"),
        ({"sizes": [4, 2], "activation": "swish"}, "unknown hidden activation 'swish'"),
        ({"sizes": [4, 3, 2], "activation": "softmax"}, "unknown hidden activation 'softmax'"),
        ({"sizes": [4, 2], "output_activation": "relu"}, "unknown output activation 'relu'"),
        ({"sizes": [4, 2], "cost": "cross-entropy", "output_activation": "softmax"},
         "cross-entropy cost needs a sigmoid output layer"),
        ({"sizes": [4, 2], "cost": "log-likelihood", "output_activation": "sigmoid"},
         "log-likelihood cost needs a softmax output layer"),
        ({"sizes": [4, 3, 2], "dropout": 1.0}, r"dropout 1.0: .* must be in \[0, 1\)"),
        ({"sizes": [4, 3, 2], "dropout": -0.1}, "dropout -0.1"),
        ({"sizes": [4, 2], "dropout": 0.5}, "no hidden layer"),
        ({"sizes": [4, 2], "init": "zeros"}, "unknown weight initialisation 'zeros'"),
    ],
)
def test_bad_network_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Network(**kwargs)


def test_registries_return_objects():
    assert get_cost("quadratic").name == "quadratic"
    assert get_activation(Sigmoid()).name == "sigmoid"
