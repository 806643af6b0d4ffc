import numpy as np
import pytest

from nndl.data.mnist import Dataset
from nndl.errors import ConfigError
from nndl.network import Network
from nndl.optimizer import SGD
from nndl.callbacks import Callback
from nndl.metrics import Measure, Monitor
from nndl.runs.blas import blas_threads
from nndl.settings import to_dict
from nndl.training import BLOCK_IMAGES, TrainingConfig, mini_batches, train


def small_dataset(n=25, features=6, classes=3, seed=0, name="training"):
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((n, features)), rng.integers(0, classes, n), name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_short_run_learns(mnist, seed):
    net = Network([784, 30, 10], init="normalized", seed=seed)
    run = train(net, mnist.training.head(10_000), TrainingConfig(epochs=1, eta=3.0, seed=seed),
                evaluation=[Monitor(mnist.test)])
    assert run.history.epochs[0]["metrics"]["test"]["accuracy"] > 0.85


def separable_dataset(n=300, seed=0, name="training"):
    """Three well-separated clusters in 6 dimensions: any working trainer learns them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.eye(3, 6) * 0.8 + 0.1
    return Dataset(centres[labels] + 0.05 * rng.standard_normal((n, 6)), labels, name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_short_run_learns_generated_data(seed):
    net = Network([6, 8, 3], init="normalized", seed=seed)
    run = train(net, separable_dataset(seed=seed), TrainingConfig(epochs=10, eta=3.0, seed=seed),
                evaluation=[Monitor(separable_dataset(n=100, seed=seed + 10, name="test"))])
    assert run.history.epochs[-1]["metrics"]["test"]["accuracy"] > 0.95


def test_matrix_and_per_example_training_end_with_the_same_weights():
    data = small_dataset(n=25)  # 25 = two mini-batches of 10 and a last one of 5
    nets = [Network([6, 4, 3], seed=5, dtype="float64") for _ in range(2)]
    for net, mode in zip(nets, ("matrix", "per-example")):
        train(net, data, TrainingConfig(epochs=3, mini_batch_size=10, eta=2.0, seed=9, backprop=mode))
    for a, b in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert not np.allclose(nets[0].weights[0], Network([6, 4, 3], seed=5, dtype="float64").weights[0])


def test_same_seed_same_run_and_another_seed_another():
    data = small_dataset(n=40)
    def final_weights(seed):
        net = Network([6, 4, 3], seed=1, dtype="float64")
        train(net, data, TrainingConfig(epochs=2, mini_batch_size=4, eta=1.0, seed=seed))
        return net.weights[0]
    np.testing.assert_array_equal(final_weights(3), final_weights(3))
    assert not np.array_equal(final_weights(3), final_weights(4))


def test_one_step_is_the_gradient_descent_rule():
    net = Network([3, 2], seed=0, dtype="float64")
    w, b = net.weights[0].copy(), net.biases[0].copy()
    nabla_w, nabla_b = np.ones_like(w), np.full_like(b, 2.0)
    SGD(net, eta=3.0, n=100).step(net, [nabla_b], [nabla_w], m=10)
    np.testing.assert_allclose(net.weights[0], w - 0.3 * nabla_w)
    np.testing.assert_allclose(net.biases[0], b - 0.3 * nabla_b)


def test_history_and_callbacks():
    calls = []

    class Recorder(Callback):
        def on_train_begin(self, run):
            calls.append("begin")

        def on_epoch_begin(self, run, epoch):
            calls.append(f"epoch {epoch}")

        def on_batch_end(self, run, batch):
            calls.append("batch")

        def on_epoch_end(self, run, record):
            calls.append(f"end {record['epoch']}")
            run.stop_training = record["epoch"] == 1

        def on_train_end(self, run):
            calls.append("done")

    data, test = small_dataset(n=25), small_dataset(n=8, seed=1, name="test")
    net = Network([6, 4, 3], seed=0)
    history = train(net, data, TrainingConfig(epochs=5, mini_batch_size=10, seed=0),
                    evaluation=[Monitor(test, cost=True)], callbacks=[Recorder()]).history
    assert calls == ["begin", "epoch 0", "batch", "batch", "batch", "end 0",
                     "epoch 1", "batch", "batch", "batch", "end 1", "done"]
    assert [r["epoch"] for r in history.epochs] == [0, 1]
    record = history.final()["metrics"]["test"]
    assert record["total"] == 8 and record["accuracy"] == record["correct"] / 8
    assert record["cost"] == pytest.approx(net.total_cost(test.images, test.labels))
    assert history.final()["seconds"] > 0 and history.final()["eta"] == 3.0


def test_best_follows_the_measure_direction():
    from nndl.metrics import History
    records = [{"epoch": e, "metrics": {"validation": {"accuracy": a, "cost": c}}}
               for e, (a, c) in enumerate([(0.5, 0.9), (0.7, 0.4), (0.6, 0.2), (0.7, 0.3)])]
    history = History(records)
    assert history.best(Measure("validation", "accuracy"))["epoch"] == 1  # highest, first on ties
    assert history.best(Measure("validation", "cost"))["epoch"] == 2  # lowest
    assert history.best(Measure("test", "accuracy")) is None


def test_two_evaluation_datasets_with_one_name_are_refused():
    a, b = small_dataset(name="data"), small_dataset(seed=1, name="data")
    with pytest.raises(ConfigError, match="both called 'data'"):
        train(Network([6, 3]), small_dataset(), TrainingConfig(epochs=1, seed=0),
              evaluation=[Monitor(a), Monitor(b)])


def test_blas_is_limited_during_training():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []

    class Probe(Callback):
        def on_batch_end(self, run, batch):
            seen.append({i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})

    with blas_threads(1):  # the caller's choice, not train()'s
        train(Network([6, 3], seed=0), small_dataset(n=10), TrainingConfig(epochs=1, seed=0), callbacks=[Probe()])
    assert seen and all(threads == {1} for threads in seen)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eta": 0.0}, r"training.eta 0.0: must be greater than 0.0"),
        ({"eta": -1.0}, "must be greater than 0"),
        ({"eta": float("nan")}, "must be a finite number"),
        ({"mini_batch_size": 0}, "training.mini_batch_size 0: must be at least 1"),
        ({"epochs": 0}, "training.epochs 0"),
        ({"epochs": 2.5}, "training.epochs 2.5: must be a whole number"),
        ({"backprop": "loop"}, "choose from matrix, per-example"),
        ({"lmbda": -1.0}, r"training.lmbda -1.0: must be at least 0.0"),
        ({"l1": -0.5}, "training.l1 -0.5"),
        ({"momentum": 1.0}, r"training.momentum 1.0: must be in \[0.0, 1.0\)"),
        ({"seed": -1}, "training.seed -1"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainingConfig(**kwargs)


def test_data_must_fit_the_network():
    with pytest.raises(ConfigError, match="first layer must have 6 neurons"):
        train(Network([5, 3]), small_dataset(), TrainingConfig(epochs=1, seed=0))
    with pytest.raises(ConfigError, match="last layer must have at least 3 neurons"):
        train(Network([6, 2]), small_dataset(), TrainingConfig(epochs=1, seed=0))


def test_config_is_plain_data():
    assert to_dict(TrainingConfig()) == {"epochs": 30, "mini_batch_size": 10, "eta": 3.0, "lmbda": 0.0,
                                          "l2_scale": "training-set", "l1": 0.0, "momentum": 0.0,
                                          "backprop": "matrix", "seed": None}


def test_every_epoch_has_a_shuffle_of_its_own_that_its_seed_replays():
    from nndl.training import epoch_order
    orders = [epoch_order(7, epoch, 100) for epoch in range(3)]
    assert all(sorted(order) == list(range(100)) for order in orders)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    np.testing.assert_array_equal(epoch_order(7, 1, 100), orders[1])
    assert not np.array_equal(epoch_order(8, 1, 100), orders[1])


@pytest.mark.parametrize("m, first", [(10, 0), (10, 205), (7, 0), (7, 3), (BLOCK_IMAGES + 5, 1)])
def test_mini_batches_are_the_chosen_images_as_columns_and_their_one_hot_targets(m, first):
    rng = np.random.default_rng(3)
    n = 3 * BLOCK_IMAGES + 17  # several blocks and a short last mini-batch
    images, labels = rng.integers(0, 256, (n, 6), dtype=np.uint8), rng.integers(0, 3, n)
    net = Network([6, 4, 3], dtype=np.float64)
    order = rng.permutation(n)
    batches = list(mini_batches(net, images, labels, order, m, first))
    assert [b for b, _, _ in batches] == list(range(first, -(-n // m)))
    for batch, x, y in batches:
        chosen = order[batch * m : (batch + 1) * m]
        np.testing.assert_array_equal(x, images[chosen].T / 255.0)
        np.testing.assert_array_equal(y, np.eye(3)[:, labels[chosen]])
        assert x.dtype == y.dtype == np.float64


@pytest.mark.parametrize("sizes, m, workers, all_cores", [
    ([784, 30, 10], 10, 0, False),  # chapter 1: small products, one thread
    ([784, 100, 10], 10, 0, False),
    ([784, 400, 10], 10, 0, True),  # 784 × 400 × 10 ≥ 3 million multiply-adds
    ([784, 100, 10], 100, 0, True),
    ([784, 1000, 500, 10], 10, 0, True),
    ([784, 1000, 500, 10], 10, 2, False),  # distortion workers want the cores
    ("conv20x5,pool2,full100", 10, 0, False),  # 20 maps × 25 × 576 positions × 10 = 2.88 million
    ("conv20x5,pool2,conv40x5,pool2,full100", 10, 0, False),  # 12.8 million, but far slower beside other work
    ("conv20x5,pool2,full1000", 100, 0, False),  # a convolutional network never takes every core by default
    ("conv20x5,pool2,conv40x5,pool2,full100", 10, 2, False),
])
def test_blas_threads_follow_the_size_of_the_products(sizes, m, workers, all_cores):
    from nndl.runs.blas import cores, default_threads

    network = Network(sizes) if isinstance(sizes, list) else Network(layers=sizes)
    assert default_threads(network, m, workers) == (cores() if all_cores else 1)
