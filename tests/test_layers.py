"""Convolutional and max-pooling layers (chapter 6): shapes, the two σ orders, and gradients against PyTorch."""

import itertools

import numpy as np
import pytest

from nndl import convolution
from nndl.errors import ConfigError
from nndl.network import Network

ACTIVATIONS = ("sigmoid", "tanh", "relu")
COST_OUTPUTS = (("quadratic", "sigmoid"), ("quadratic", "softmax"), ("cross-entropy", "sigmoid"),
                ("log-likelihood", "softmax"))


def random_batch(net, m, rng):
    x = rng.random((net.sizes[0], m))
    y = np.eye(net.sizes[-1])[:, rng.integers(0, net.sizes[-1], m)]
    return x, y


def direct_correlation(a, w, b):
    """z[o, y, x, n] = b[o] + Σ_{c,i,j} w[o, c, i, j] a[c, y+i, x+j, n], one output position at a time."""
    maps, c, k, _ = w.shape
    _, h, wd, m = a.shape
    z = np.empty((maps, h - k + 1, wd - k + 1, m))
    for o, y, x in itertools.product(range(maps), range(h - k + 1), range(wd - k + 1)):
        z[o, y, x] = b[o, 0] + np.einsum("cij,cijn->n", w[o], a[:, y : y + k, x : x + k])
    return z


def test_the_shorthand_builds_the_books_network():
    net = Network(layers="conv20x5,pool2,conv40x5,pool2,full100", cost="log-likelihood")
    assert net.sizes == [784, 20 * 24 * 24, 20 * 12 * 12, 40 * 8 * 8, 40 * 4 * 4, 100, 10]
    assert [w.shape for w in net.weights] == [(20, 1, 5, 5), (40, 20, 5, 5), (100, 640), (10, 100)]
    assert [b.shape for b in net.biases] == [(20, 1), (40, 1), (100, 1), (10, 1)]
    assert net.describe()["layers"] == "conv20x5,pool2,conv40x5,pool2,full100"
    assert "conv20x5,pool2,conv40x5,pool2,full100" in repr(net)


@pytest.mark.parametrize("layers, message", [
    ("conv20x29", "conv20x29: a 29×29 kernel is larger than its 28×28 input"),
    ("conv20x5,pool5", "pool5: 5×5 windows do not divide its 24×24 input"),
    ("full100,conv20x5", "conv20x5: needs feature maps as input"),
    ("conv20x5,pool0", "pool0: sizes must be at least 1"),
    ("conv20by5", "layer 'conv20by5': write convCxK"),
    ("conv20x5,pool17", "pooling windows are at most 16×16"),
])
def test_a_shape_that_does_not_fit_names_the_layer(layers, message):
    with pytest.raises(ConfigError, match=message):
        Network(layers=layers)


def test_patches_and_correlation_match_the_direct_formula():
    rng = np.random.default_rng(1)
    a = rng.random((3, 7, 6, 4))
    w, b = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal((5, 1))
    z = convolution.correlate(convolution.patches(a, 3), w, b, (5, 5, 4, 4))
    np.testing.assert_allclose(z, direct_correlation(a, w, b), rtol=1e-12)


def test_max_pool_keeps_each_windows_largest_value_and_the_first_of_ties():
    a = np.array([[1, 3, 0, 0], [3, 2, 0, 0], [5, 6, 7, 7], [8, 1, 7, 7]], float)[None, :, :, None]
    pooled, where = convolution.max_pool(a, 2)
    assert pooled[0, :, :, 0].tolist() == [[3, 0], [8, 7]]
    assert where[0, :, :, 0].tolist() == [[1, 0], [2, 0]]  # row-major position of the first maximum
    routed = convolution.route_to_max(np.ones((1, 2, 2, 1)), where, 2)[0, :, :, 0]
    assert routed.tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sigma_after_or_before_pooling_gives_the_same_outputs_and_gradients(activation):
    rng = np.random.default_rng(2)
    nets = [Network(layers="conv3x3,pool2,full5", input_shape=(2, 8, 8), outputs=4, activation=activation,
                    conv_activation=order, init="normalized", seed=3, dtype=np.float64)
            for order in ("after-pool", "before-pool")]
    assert nets[0].layers[0].activation is None and nets[0].layers[1].activation.name == activation
    assert nets[1].layers[0].activation.name == activation and nets[1].layers[1].activation is None
    x, y = random_batch(nets[0], 5, rng)
    np.testing.assert_array_equal(nets[0].feedforward(x), nets[1].feedforward(x))
    for g0, g1 in zip(nets[0].backprop(x, y), nets[1].backprop(x, y)):
        for a, b in zip(g0, g1):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_matrix_backprop_equals_the_per_example_loop_for_a_conv_net_with_dropout():
    rng = np.random.default_rng(4)
    net = Network(layers="conv4x3,pool2,full6", input_shape=(1, 10, 10), outputs=3, cost="log-likelihood",
                  activation="relu", dropout=0.5, init="he", seed=5, dtype=np.float64)
    x, y = random_batch(net, 6, rng)
    masks = net.draw_dropout_masks(rng)
    assert [m is None for m in masks] == [True, False, False]  # thinned: the pooled maps and the full layer
    for matrix, loop in zip(net.backprop(x, y, masks), net.backprop_per_example(x, y, masks)):
        for a, b in zip(matrix, loop):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_dropout_never_freezes_a_convolutional_layers_kernels():
    """A conv layer feeding a fully connected one: dropout thins its units, but every kernel still learns."""
    from nndl.optimizer import SGD

    rng = np.random.default_rng(6)
    net = Network(layers="conv3x3,full5", input_shape=(1, 6, 6), outputs=3, dropout=0.5, init="normalized", seed=7,
                  dtype=np.float64)
    x, y = random_batch(net, 4, rng)
    masks = net.draw_dropout_masks(rng)
    assert masks[0] is not None and masks[0].shape == (3 * 4 * 4, 1)  # the conv layer's units are thinned
    before = [p.copy() for p in net.parameters()]
    nabla_b, nabla_w = net.backprop(x, y, masks)
    SGD(net, 0.5, 100).step(net, nabla_b, nabla_w, 4, masks)
    np.testing.assert_allclose(net.weights[0], before[0] - 0.5 / 4 * nabla_w[0], rtol=1e-12)
    np.testing.assert_allclose(net.biases[0], before[3] - 0.5 / 4 * nabla_b[0], rtol=1e-12)
    deleted = masks[1][:, 0] == 0
    np.testing.assert_array_equal(net.weights[1][deleted], before[1][deleted])  # deleted full neurons stay


torch = pytest.importorskip("torch")


def torch_gradients(net, x, y, cost):
    """The same network in PyTorch (conv2d, max_pool2d, linear), the same weights; autograd's ∂C/∂w and ∂C/∂b."""
    F = torch.nn.functional
    ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
    bs = [torch.tensor(b[:, 0], requires_grad=True) for b in net.biases]
    sigma = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
    a = torch.tensor(np.ascontiguousarray(x.T)).reshape(x.shape[1], *net.input_shape)
    z = None
    params = iter(zip(ws, bs))
    for layer in net.layers:
        if layer.kind == "conv":
            w, b = next(params)
            z = F.conv2d(a, w, b)
        elif layer.kind == "pool":
            z = F.max_pool2d(a, layer.p)
        else:
            w, b = next(params)
            z = F.linear(a.reshape(a.shape[0], -1), w, b)
        a = z if layer.activation is None else (
            torch.softmax(z, 1) if layer.activation.name == "softmax" else sigma[layer.activation.name](z))
    target = torch.tensor(y.T)
    if cost == "quadratic":
        c = 0.5 * ((a - target) ** 2).sum()
    elif cost == "cross-entropy":
        c = F.binary_cross_entropy_with_logits(z, target, reduction="sum")
    else:
        c = -(target * torch.log_softmax(z, 1)).sum()
    c.backward()
    return [b.grad.numpy()[:, None] for b in bs], [w.grad.numpy() for w in ws]


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("case", range(24))
def test_conv_gradients_equal_pytorch_autograd(case):
    """Random shapes: 1-3 input maps, kernels 1-5, pools 1-3, mini-batches 1-7; every activation, cost and order."""
    rng = np.random.default_rng(100 + case)
    maps_in, kernel, pool, m = rng.integers(1, 4), rng.integers(1, 6), rng.integers(1, 4), rng.integers(1, 8)
    steps = rng.integers(2, 4)  # the pooled maps' side
    second = rng.integers(2, steps + 1)  # a second kernel, larger than 1×1, so δ is passed back through it
    layers, side = [
        (f"conv{rng.integers(1, 5)}x{kernel},pool{pool},full4", kernel - 1 + pool * steps),
        (f"conv{rng.integers(1, 5)}x{kernel},pool{pool},conv3x{second},full4", kernel - 1 + pool * steps),
        (f"conv2x{kernel},conv3x{second},pool{pool},full4", kernel + second - 2 + pool * steps),
    ][case % 3]
    cost, output = COST_OUTPUTS[case % len(COST_OUTPUTS)]
    activation = ACTIVATIONS[case // 3 % 3]
    net = Network(layers=layers, input_shape=(maps_in, side, side), outputs=3, cost=cost, output_activation=output,
                  activation=activation, conv_activation=("after-pool", "before-pool")[case % 2], init="normalized",
                  seed=case, dtype=np.float64)
    x, y = random_batch(net, m, rng)
    ours = net.backprop(x, y)
    theirs = torch_gradients(net, x, y, cost)
    for mine, reference in zip(ours[0] + ours[1], theirs[0] + theirs[1]):
        assert mine.shape == reference.shape
        assert relative_error(mine, reference) <= 1e-10, (layers, cost, output, activation)


def test_max_pool_ties_follow_pytorch():
    a = np.zeros((2, 4, 4, 3))
    a[0, 1, 1] = a[0, 0, 1] = 1.0  # a tie inside one window, and whole windows of equal zeros elsewhere
    delta = np.random.default_rng(0).random((2, 2, 2, 3))
    pooled, where = convolution.max_pool(a, 2)
    t = torch.tensor(a.transpose(3, 0, 1, 2).copy(), requires_grad=True)
    out = torch.nn.functional.max_pool2d(t, 2)
    out.backward(torch.tensor(delta.transpose(3, 0, 1, 2).copy()))
    np.testing.assert_array_equal(pooled, out.detach().numpy().transpose(1, 2, 3, 0))
    np.testing.assert_array_equal(convolution.route_to_max(delta, where, 2), t.grad.numpy().transpose(1, 2, 3, 0))
