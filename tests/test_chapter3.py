"""Chapter 3: costs, activations, regularisation, momentum, dropout, schedules, network2 JSON."""

import json
import warnings

import numpy as np
import pytest

from nndl.activations import ReLU, Sigmoid, Softmax, Tanh
from nndl.files.network2 import load_network2_json, save_network2_json
from nndl.costs import CrossEntropyCost, LogLikelihoodCost
from nndl.data.mnist import Dataset
from nndl.errors import ConfigError, ModelFileError
from nndl.files.models import load_model
from nndl.network import Network
from nndl.optimizer import SGD
from nndl.regularization import Regularization
from nndl.schedules import EarlyStopping, HalveOnPlateau
from nndl.metrics import Measure, Monitor, evaluate
from nndl.training import TrainingConfig, TrainingRun, train


def reference_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- costs and activations -----------------------------------------------------------------

def test_cross_entropy_is_the_books_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(10, 4))
    a, y = reference_sigmoid(z), np.eye(10)[:, [1, 3, 5, 7]]
    expected = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))
    assert CrossEntropyCost().fn(z, a, y, Sigmoid()) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(CrossEntropyCost().delta(z, a, y, Sigmoid()), a - y)


def test_log_likelihood_is_minus_log_a_y():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(10, 4))
    a, labels = Softmax().fn(z), [2, 0, 9, 4]
    y = np.eye(10)[:, labels]
    expected = -np.sum(np.log(a[labels, range(4)]))
    assert LogLikelihoodCost().fn(z, a, y, Softmax()) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_costs_and_softmax_stay_finite_for_extreme_inputs(dtype):
    z = np.array([[-1e4, 1e4, 0.0], [1e4, -1e4, 50.0], [3.0, 0.0, -50.0]], dtype=dtype)
    y = np.eye(3, dtype=dtype)[:, [0, 0, 2]]  # confidently wrong in every column
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        soft = Softmax().fn(z)
        sig = Sigmoid().fn(z)
        ce = CrossEntropyCost().fn(z, sig, y, Sigmoid())
        ll = LogLikelihoodCost().fn(z, soft, y, Softmax())
    assert np.all(np.isfinite(soft)) and np.allclose(soft.sum(axis=0), 1)
    # −[y ln a + (1−y) ln(1−a)] entry by entry: 1e4 + 1e4 + ln(1+e³) | 0 + 0 + ln 2 | ln 2 + 50 + 50
    assert np.isfinite(ce) and ce == pytest.approx(2e4 + np.log1p(np.exp(3.0)) + 2 * np.log(2) + 100, rel=1e-6)
    assert np.isfinite(ll) and ll > 1e4


def test_softmax_chain_rule_matches_its_jacobian():
    rng = np.random.default_rng(2)
    z, g = rng.normal(size=(5, 1)), rng.normal(size=(5, 1))
    a = Softmax().fn(z)
    jacobian = np.diagflat(a) - a @ a.T  # ∂a_j/∂z_k = a_j(δ_jk − a_k)
    np.testing.assert_allclose(Softmax().input_gradient(z, a, g), jacobian.T @ g, rtol=1e-12)


def test_tanh_and_relu_derivatives():
    z = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_allclose(Tanh().prime(z, np.tanh(z)), 1 / np.cosh(z) ** 2)
    np.testing.assert_array_equal(ReLU().fn(z), [0, 0, 0.5, 2])
    np.testing.assert_array_equal(ReLU().prime(z, ReLU().fn(z)), [0, 0, 1, 1])


def test_log_likelihood_defaults_to_a_softmax_output():
    assert Network([4, 3], cost="log-likelihood").output_activation.name == "softmax"
    assert Network([4, 3], cost="cross-entropy").output_activation.name == "sigmoid"


def test_he_init_for_relu():
    net = Network([784, 300, 10], init="he", seed=0, dtype="float64")
    assert net.weights[0].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert not np.any(net.biases[0])


# -- regularisation and momentum -----------------------------------------------------------

def test_one_l2_step_is_the_weight_decay_equation():
    net = Network([3, 4, 2], seed=0, dtype="float64")
    w0, b0 = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    rng = np.random.default_rng(0)
    nabla_w, nabla_b = [rng.normal(size=w.shape) for w in w0], [rng.normal(size=b.shape) for b in b0]
    eta, lmbda, n, m = 0.5, 5.0, 1000, 10
    SGD(net, eta, n, regularization=Regularization(l2=lmbda)).step(net, nabla_b, nabla_w, m)
    for w, before, nw in zip(net.weights, w0, nabla_w):
        np.testing.assert_allclose(w, (1 - eta * lmbda / n) * before - (eta / m) * nw, rtol=1e-14)
    for b, before, nb in zip(net.biases, b0, nabla_b):
        np.testing.assert_allclose(b, before - (eta / m) * nb, rtol=1e-14)  # λ leaves biases alone


def test_one_l1_step_uses_sign_with_sign_of_zero_zero():
    net = Network([3, 2], seed=0, dtype="float64")
    net.weights[0][0, 0] = 0.0
    w0 = net.weights[0].copy()
    zero = [np.zeros_like(net.weights[0])], [np.zeros_like(net.biases[0])]
    SGD(net, 0.5, 100, regularization=Regularization(l1=2.0)).step(net, zero[1], zero[0], 10)
    np.testing.assert_allclose(net.weights[0], w0 - 0.5 * 2.0 / 100 * np.sign(w0))
    assert net.weights[0][0, 0] == 0.0


def test_momentum_follows_the_velocity_equations():
    net = Network([3, 2], seed=0, dtype="float64")
    w = net.weights[0].copy()
    g1, g2 = np.full_like(w, 1.0), np.full_like(w, -2.0)
    bias_grad = [np.zeros_like(net.biases[0])]
    sgd = SGD(net, eta=0.1, n=100, momentum=0.9)
    sgd.step(net, bias_grad, [g1 * 10], m=10)
    sgd.step(net, bias_grad, [g2 * 10], m=10)
    v1 = -0.1 * g1
    v2 = 0.9 * v1 - 0.1 * g2
    np.testing.assert_allclose(net.weights[0], w + v1 + v2, rtol=1e-14)


def test_reported_cost_includes_the_regularisation_term_once():
    data = Dataset(np.random.default_rng(0).random((20, 4)), np.arange(20) % 3, "training")
    net = Network([4, 5, 3], cost="cross-entropy", seed=0, dtype="float64")
    reg = Regularization(l2=2.0, l1=0.5)
    metrics = evaluate(net, Monitor(data, accuracy=False, cost=True), reg, n_training=1000)
    squares = sum(np.sum(w ** 2) for w in net.weights)
    absolutes = sum(np.sum(np.abs(w)) for w in net.weights)
    expected = net.total_cost(data.images, data.labels) + 2.0 / 2000 * squares + 0.5 / 1000 * absolutes
    assert metrics == {"cost": pytest.approx(expected)}


# -- dropout -------------------------------------------------------------------------------

def test_dropout_masks_remove_a_fraction_p_and_differ_between_mini_batches():
    net = Network([4, 100, 50, 3], dropout=0.3, seed=0)
    rng = np.random.default_rng(0)
    first, second = net.draw_dropout_masks(rng), net.draw_dropout_masks(rng)
    assert [m.shape for m in first] == [(100, 1), (50, 1)]
    assert [int(np.sum(m == 0)) for m in first] == [30, 15]
    assert not np.array_equal(first[0], second[0])


@pytest.mark.parametrize("options", [{}, {"lmbda": 5.0}, {"momentum": 0.9}])
def test_a_dropout_step_leaves_the_deleted_neurons_weights_alone(options):
    net = Network([6, 8, 3], dropout=0.5, seed=0, dtype="float64")
    before = [p.copy() for p in net.weights + net.biases]
    masks = net.draw_dropout_masks(np.random.default_rng(1))
    deleted = masks[0][:, 0] == 0
    x, y = np.random.default_rng(2).random((6, 5)), np.eye(3)[:, [0, 1, 2, 0, 1]]
    sgd = SGD(net, 0.5, 100, options.get("momentum", 0.0), Regularization(l2=options.get("lmbda", 0.0)))
    for _ in range(2):  # twice, so momentum has a velocity to carry
        nabla_b, nabla_w = net.backprop(x, y, masks)
        sgd.step(net, nabla_b, nabla_w, 5, masks)
    np.testing.assert_array_equal(net.weights[0][deleted], before[0][deleted])  # into deleted neurons
    np.testing.assert_array_equal(net.biases[0][deleted], before[2][deleted])
    np.testing.assert_array_equal(net.weights[1][:, deleted], before[1][:, deleted])  # out of them
    assert not np.allclose(net.weights[0][~deleted], before[0][~deleted])  # the rest learned


def test_evaluation_uses_every_neuron_with_outgoing_weights_scaled():
    net = Network([6, 8, 3], dropout=0.25, seed=0, dtype="float64")
    x = np.random.default_rng(0).random((6, 4))
    hidden = reference_sigmoid(net.weights[0] @ x + net.biases[0])
    expected = reference_sigmoid((0.75 * net.weights[1]) @ hidden + net.biases[1])
    np.testing.assert_allclose(net.feedforward(x), expected, rtol=1e-12)
    np.testing.assert_array_equal(net.feedforward(x), net.feedforward(x))  # deterministic


def test_training_with_dropout_draws_fresh_masks_and_is_seeded():
    data = Dataset(np.random.default_rng(0).random((40, 6)), np.arange(40) % 3)
    def run(seed):
        net = Network([6, 10, 3], dropout=0.5, seed=0, dtype="float64")
        train(net, data, TrainingConfig(epochs=2, mini_batch_size=10, eta=1.0, seed=seed))
        return net.weights[0]
    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


# -- early stopping and schedules ---------------------------------------------------------

def scripted_run(callback, accuracies, eta=1.0):
    """Feed ``callback`` a scripted validation-accuracy sequence; weights[0] is set to the epoch number."""
    net = Network([2, 2], seed=0, dtype="float64")
    run = TrainingRun(net, TrainingConfig(eta=eta), SGD(net, eta, 10), n_batches=1, seed=0)
    callback.on_train_begin(run)
    seen = []
    for epoch, accuracy in enumerate(accuracies):
        net.weights[0][...] = epoch
        record = {"epoch": epoch, "eta": run.eta, "metrics": {"validation": {"accuracy": accuracy}}}
        callback.on_epoch_end(run, record)
        seen.append(run.eta)
        if run.stop_training:
            break
    callback.on_train_end(run)
    return run, seen


def test_early_stopping_stops_after_n_epochs_without_improvement_and_restores_the_best():
    accuracies = [0.90, 0.93, 0.95, 0.94, 0.95, 0.949, 0.96, 0.99]
    run, seen = scripted_run(EarlyStopping(Measure("validation"), patience=3), accuracies)
    assert len(seen) == 6  # best at epoch 2; epochs 3, 4, 5 do not beat it (a tie is no improvement)
    assert run.stop_training
    assert np.all(run.network.weights[0] == 2)  # epoch 2's weights are back


def test_halving_schedule_halves_eta_and_stops_at_one_128th():
    accuracies = [0.9, 0.95] + [0.94] * 30
    run, seen = scripted_run(HalveOnPlateau(Measure("validation"), patience=2), accuracies, eta=0.5)
    # after the best (epoch 1), η halves every 2 epochs; it reaches 0.5/128 after 7 halvings
    assert seen[:2] == [0.5, 0.5]
    assert seen[2:16] == [0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.0625, 0.03125, 0.03125, 0.015625,
                          0.015625, 0.0078125, 0.0078125, 0.00390625]
    assert len(seen) == 16 and run.stop_training and run.eta == 0.5 / 128
    assert np.all(run.network.weights[0] == 1)


def test_a_callback_watching_an_unmonitored_metric_is_explained():
    with pytest.raises(ConfigError, match="the validation accuracy, which is not being monitored"):
        net = Network([6, 3], seed=0)
        data = Dataset(np.random.default_rng(0).random((10, 6)), np.arange(10) % 3)
        train(net, data, TrainingConfig(epochs=1, seed=0), callbacks=[EarlyStopping(Measure("validation"), 2)])


def test_early_stopping_on_a_cost_looks_for_the_lowest():
    costs = [0.9, 0.5, 0.6, 0.4, 0.45, 0.41, 0.5]
    net = Network([2, 2], seed=0, dtype="float64")
    run = TrainingRun(net, TrainingConfig(), SGD(net, 1.0, 10), n_batches=1, seed=0)
    stopping = EarlyStopping(Measure("validation", "cost"), patience=3)
    for epoch, cost in enumerate(costs):
        net.weights[0][...] = epoch
        stopping.on_epoch_end(run, {"epoch": epoch, "metrics": {"validation": {"cost": cost}}})
        if run.stop_training:
            break
    stopping.on_train_end(run)
    assert epoch == 6 and np.all(net.weights[0] == 3)  # the lowest cost was epoch 3's


# -- network2.py JSON ----------------------------------------------------------------------

def write_like_network2(path, sizes, cost_name, seed=0):
    """Save the way the book's network2.py does: Network.save() in its own words."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(y, x)) / np.sqrt(x) for x, y in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=(y, 1)) for y in sizes[1:]]
    data = {"sizes": sizes, "weights": [w.tolist() for w in weights],
            "biases": [b.tolist() for b in biases], "cost": cost_name}
    with open(path, "w") as f:
        json.dump(data, f)
    return weights, biases


def book_feedforward(weights, biases, a):
    for b, w in zip(biases, weights):
        a = reference_sigmoid(np.dot(w, a) + b)
    return a


def test_a_network2_model_loads_and_predicts_identically(tmp_path):
    path = tmp_path / "book.json"
    weights, biases = write_like_network2(path, [784, 30, 10], "CrossEntropyCost")
    net = load_model(path)
    assert net.cost.name == "cross-entropy" and net.dtype == np.float64
    x = np.random.default_rng(3).random((784, 7))
    expected = np.hstack([book_feedforward(weights, biases, x[:, [i]]) for i in range(7)])
    np.testing.assert_allclose(net.feedforward(x), expected, rtol=1e-12)


def test_export_then_import_round_trips(tmp_path):
    net = Network([5, 4, 3], cost="quadratic", seed=2, dtype="float64")
    save_network2_json(net, tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["cost"] == "QuadraticCost" and np.array(data["biases"][0]).shape == (4, 1)
    back = load_network2_json(tmp_path / "out.json")
    for a, b in zip(net.weights + net.biases, back.weights + back.biases):
        np.testing.assert_array_equal(a, b)


def test_what_network2_cannot_hold_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="sigmoid networks with the quadratic or cross-entropy cost"):
        save_network2_json(Network([4, 3, 2], cost="log-likelihood"), tmp_path / "x.json")
    with pytest.raises(ConfigError, match="cannot record dropout"):
        save_network2_json(Network([4, 3, 2], dropout=0.5), tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(cost="HingeCost"), "cost 'HingeCost'"),
        (lambda d: d.pop("biases"), "needs the keys"),
        (lambda d: d["weights"][0].pop(), r"layer 1 has weights \(2, 3\)"),
        (lambda d: d.update(sizes=[3, 3, 3, 2]), "layers of weights and biases expected"),
    ],
)
def test_broken_network2_files_are_refused(tmp_path, edit, message):
    path = tmp_path / "book.json"
    write_like_network2(path, [3, 3, 2], "QuadraticCost")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


# -- it learns -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "options, eta",
    [
        ({"cost": "cross-entropy", "init": "normalized"}, 0.5),
        ({"cost": "log-likelihood", "init": "normalized"}, 0.5),
        ({"cost": "log-likelihood", "activation": "relu", "init": "he"}, 0.1),
        ({"cost": "cross-entropy", "activation": "tanh", "init": "normalized"}, 0.1),
        ({"cost": "cross-entropy", "init": "normalized", "dropout": 0.5}, 0.5),
    ],
)
def test_each_chapter3_network_learns(mnist, options, eta):
    net = Network([784, 50, 10], seed=0, **options)
    config = TrainingConfig(epochs=1, eta=eta, lmbda=1.0, momentum=0.0, seed=0)
    run = train(net, mnist.training.head(10_000), config, evaluation=[Monitor(mnist.validation)])
    assert run.history.final()["metrics"]["validation"]["accuracy"] > 0.88


@pytest.mark.parametrize("kind, expected", [
    ("exponential", [1.0, 0.5, 0.25, 0.125]),
    ("step", [1.0, 1.0, 0.5, 0.5]),
    ("cosine", [1.0, (1 + 0.5 ** 0.5) / 2, 0.5, (1 - 0.5 ** 0.5) / 2]),  # (1 + cos(π e / 4)) / 2
])
def test_smooth_decays_follow_their_formula(kind, expected):
    from nndl.schedules import EpochDecay
    decay = EpochDecay(kind, gamma=0.5 if kind != "cosine" else 1e-12, every=2)
    got = [decay.eta_at(1.0, epoch, 4) for epoch in range(4)]
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("kind", ["exponential", "step", "cosine"])
def test_smooth_decays_scale_with_eta0_and_cosine_ends_at_gamma_eta0(kind):
    from nndl.schedules import EpochDecay
    decay = EpochDecay(kind, gamma=0.5, every=2)
    for epoch in range(5):  # η₀ = 0.2 gives a fifth of η₀ = 1's rate at every epoch
        assert decay.eta_at(0.2, epoch, 4) == pytest.approx(0.2 * decay.eta_at(1.0, epoch, 4), rel=1e-12)
    if kind == "cosine":
        assert decay.eta_at(0.2, 4, 4) == pytest.approx(0.1)  # the floor η_min = γ η₀, not γ


def test_a_decay_schedule_sets_eta_each_epoch_and_resumes_without_state(tmp_path):
    from conftest import write_fake_mnist
    from nndl.runs.runner import run_spec
    from nndl.runs.spec import RunSpec
    data = write_fake_mnist(tmp_path / "d", n_train=10_200, n_test=20, side=4)
    spec = RunSpec().replace(source=str(data), hidden=[5], epochs=4, eta=2.0, seed=1, schedule="exponential",
                             decay=0.5)
    etas = [r["eta"] for r in run_spec(spec).summary["history"]]
    assert etas == [2.0, 1.0, 0.5, 0.25]
