"""Chapter 5: the unstable gradient, measured as the book measured it, and its experiments in the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nndl.network import Network
from nndl.runs.experiments import (DEPTH_BOOK, EXPERIMENTS, SPEED, SPEED_BOOK, Experiment, Figure, LayerSpeed, Row,
                                   parse_measure, planned_runs, run_experiment)
from nndl.runs.runner import DataCache, run_spec
from nndl.runs.spec import RunSpec
from nndl.errors import ConfigError
from nndl.unstable import balanced_chain, bias_gradients
from conftest import write_fake_mnist


def sigma(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- the chain of one-neuron layers ------------------------------------------------------------

def test_the_balanced_chain_has_every_z_zero():
    network = balanced_chain(100.0)
    zs, _, _ = network.forward_kept(np.array([[1.0]]))
    np.testing.assert_allclose(np.concatenate(zs), 0.0, atol=1e-12)


def test_w_100_explodes_by_25_per_layer_as_the_books_product_says():
    gradients = bias_gradients(balanced_chain(100.0))
    # ∂C/∂b^1 = σ'(z1) w σ'(z2) w σ'(z3) w σ'(z4) (a4 − y), every σ' = 1/4, a4 = σ(0) = 1/2, y = 0
    expected = [0.25 ** (4 - l) * 100.0 ** (3 - l) * 0.5 for l in range(4)]
    assert gradients == pytest.approx(expected, rel=1e-12)
    assert [gradients[l] / gradients[l + 1] for l in range(3)] == pytest.approx([25.0] * 3)


@pytest.mark.parametrize("weight, factor", [(4.0, 1.0), (1.0, 0.25), (-2.0, -0.5)])
def test_each_layer_back_multiplies_by_w_sigma_prime(weight, factor):
    gradients = bias_gradients(balanced_chain(weight, layers=6))
    assert [gradients[l] / gradients[l + 1] for l in range(5)] == pytest.approx([factor] * 5)


# -- the speed of learning at the start, against an independent computation ----------------------

def reference_speeds(network: Network, images: np.ndarray, labels: np.ndarray) -> list[float]:
    """generate_gradient.py's get_average_gradient: each example backpropagated alone, the bias gradients averaged,
    then each hidden layer's norm."""
    y = np.eye(10)[labels].T
    nabla_b, _ = network.backprop_per_example(images.T / 255.0, y)  # MNIST's bytes as x in [0, 1]
    return [float(np.linalg.norm(nb / len(labels))) for nb in nabla_b[:-1]]


def test_epoch_zero_of_a_full_batch_run_is_the_gradient_at_the_initial_weights(fake_mnist_dir):
    spec = RunSpec.from_flat({**SPEED, "hidden": [30, 30, 30], "epochs": 3, "train_size": 20,
                              "mini_batch_size": 20, "source": str(fake_mnist_dir), "seed": 7, "dtype": "float64"})
    history = run_spec(spec).summary["history"]
    training = DataCache().get(spec.data).training
    initial = spec.network.build(training.n_features, 10, seed=7)
    expected = reference_speeds(initial, training.images, training.labels)
    measured = [LayerSpeed(layer).of(history[0]) for layer in (1, 2, 3)]
    assert measured == pytest.approx(expected, rel=1e-9)
    assert LayerSpeed(4).of(history[0]) is None  # the fourth entry is the output layer's, not a hidden layer's
    assert [LayerSpeed(1).of(r) for r in history[1:]] != pytest.approx([expected[0]] * 2)  # it moves as it learns


def test_the_books_speeds_are_within_the_spread_of_nndls_initial_weights(mnist):
    """The book's single draw against 10 seeds of nndl's: the same order of magnitude, layer by layer, and the
    first of four hidden layers about 100 times slower than the last."""
    images, labels = mnist.training.images[:1000], mnist.training.labels[:1000]
    y = np.eye(10)[labels].T
    for layers, book in SPEED_BOOK.items():
        draws = []
        for seed in range(1, 11):
            network = Network([784, *[30] * layers, 10], cost="cross-entropy", init="normalized", seed=seed,
                              dtype=np.float64)
            nabla_b, _ = network.backprop(images.T / 255.0, y)
            draws.append([np.linalg.norm(nb) / 1000 for nb in nabla_b[:-1]])
        low, high = np.min(draws, axis=0), np.max(draws, axis=0)
        assert np.all(low / 3 < np.array(book)) and np.all(np.array(book) < 3 * high), (layers, low, high)
        if layers == 4:
            assert 30 < np.median([d[3] / d[0] for d in draws]) < 300


# -- the registry ------------------------------------------------------------------------------

def test_chapter5_depth_is_the_books_network2_run():
    experiment = EXPERIMENTS["chapter5-depth"]
    specs = experiment.specs()
    assert [len(s.network.hidden) for s in specs.values()] == [1, 2, 3, 4]
    for spec in specs.values():
        assert set(spec.network.hidden) == {30}
        assert (spec.network.cost, spec.network.init, spec.network.activation) == ("cross-entropy", "normalized",
                                                                                   "sigmoid")
        assert (spec.training.eta, spec.training.lmbda, spec.training.mini_batch_size, spec.training.epochs) == (
            0.1, 5.0, 10, 30)
        assert spec.data.evaluate_on == "validation"  # the book passes evaluation_data=validation_data
    assert [row.book for row in experiment.rows if row.measure == "best validation_accuracy"] == list(DEPTH_BOOK)


def test_chapter5_speed_runs_generate_gradient_and_takes_ten_seeds():
    experiment = EXPERIMENTS["chapter5-speed"]
    book = {row.run: [] for row in experiment.rows}
    for row in experiment.rows:
        if row.book is not None:
            book[row.run].append(row.book)
    assert [book[f"{k} hidden layers"] for k in (2, 3, 4)] == [list(SPEED_BOOK[k]) for k in (2, 3, 4)]
    spec = experiment.specs()["4 hidden layers"]
    assert (spec.training.mini_batch_size, spec.data.train_size, spec.training.epochs) == (1000, 1000, 500)
    assert (spec.training.eta, spec.training.lmbda, spec.monitoring.learning_speed) == (0.1, 5.0, True)
    remedies = experiment.specs()
    assert remedies["4 hidden layers, ReLU"].network.activation == "relu"
    assert remedies["4 hidden layers, N(0, 1) weights"].network.init == "large"
    full = {seed for _, seed, _, _ in planned_runs(experiment, Path("x"), 3, False, {})}
    quick = {seed for _, seed, _, _ in planned_runs(experiment, Path("x"), 1, True, {})}
    assert full == set(range(1, 11)) and quick == {1}  # a distribution over seeds, not the best of 3


@pytest.mark.parametrize("text, message", [
    ("best speed1", "first or final"),
    ("kept speed2", "first or final"),
])
def test_a_layer_speed_is_read_at_the_first_or_final_epoch(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_measure(text)


def test_a_speed_the_run_does_not_record_is_refused_when_the_registry_loads():
    runs = {"two": {**SPEED, "hidden": [30, 30]}, "silent": {"hidden": [30, 30]}}
    with pytest.raises(ConfigError, match="speed of hidden layer 3"):
        Experiment("x", "x", "-", runs, (Row("r", "two", "first speed3"),))
    with pytest.raises(ConfigError, match="figure 'f'"):
        Experiment("x", "x", "-", runs, (), (Figure("f", "t", "learning_speed", runs=("silent",), kind="speed"),))


def test_the_speed_experiment_in_quick_form_draws_the_books_figures(tmp_path, mnist_dir):
    experiment = EXPERIMENTS["chapter5-speed"]
    outcome = run_experiment(experiment, tmp_path, seeds=1, quick=True, data_dir=str(mnist_dir), log=lambda _: None)
    folder = tmp_path / "chapter5-speed"
    figures = {f["name"]: f for f in json.loads((folder / "results.json").read_text())["figures"]}
    assert set(figures["training_speed_4_layers"]["series"]) == {f"hidden layer {l}" for l in (1, 2, 3, 4)}
    assert figures["training_speed_4_layers"]["series"]["hidden layer 1"]["points"] == 8  # quick: 8 of 500 epochs
    assert figures["speed_at_start"]["series"]["4 hidden layers: sigmoid, N(0, 1/n_in)"]["points"] == 4
    assert figures["exploding_gradient"]["series"]["w = 100, w σ'(z) = 25"]["points"] == 4
    for figure in figures.values():
        assert (folder / figure["file"]).read_bytes().startswith(b"\x89PNG")
    report = (folder / "report.md").read_text()
    assert "| 1 | 1953 (×25) |" in report  # the exploding gradient, layer 1 = 0.125 × 25³
    row = next(r for r in outcome["rows"] if r["run"] == "4 hidden layers" and r["measure"] == "first speed1")
    assert row["best"] is None and row["book"] == 0.003  # a spread over seeds has no "best"
    assert "| 4 hidden layers | hidden layer 1 at the start | 0.003 | - |" in report


def test_speed_figures_are_on_a_log_scale(tmp_path, monkeypatch):
    from nndl.files import plots

    scales = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure",
                        lambda plt, figure, path: (scales.extend(a.get_yscale() for a in figure.axes),
                                                   real_save(plt, figure, path)))
    plots.plot_series({"hidden layer 1": ([0, 1], [0.1, 0.01])}, tmp_path / "a.png", "t", "x", "y", ylog=True)
    plots.plot_spread({"2 hidden layers": {"sigmoid": [[0.05, 0.07], [0.3]]}}, {"2 hidden layers": [0.07, 0.31]},
                      tmp_path / "b.png", "t", "x", "y")
    assert scales == ["log", "log"]


# -- the page's route --------------------------------------------------------------------------

def test_the_unstable_route_returns_each_epochs_hidden_speeds(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from nndl.app.web.server import create_app

    data = write_fake_mnist(tmp_path / "data", n_train=11_000)  # the run takes the first 1,000 training images
    client = TestClient(create_app(tmp_path / "models", str(data)))
    answer = client.post("/api/unstable", json={"layers": 3, "epochs": 4, "seed": 2})
    assert answer.status_code == 200
    body = answer.json()
    assert body["epochs"] == [0, 1, 2, 3] and [len(s) for s in body["speeds"]] == [3] * 4
    training = DataCache().get(RunSpec.from_flat({**SPEED, "source": str(data)}).data).training
    initial = Network([16, 30, 30, 30, 10], cost="cross-entropy", init="normalized", seed=2, dtype=np.float64)
    assert body["speeds"][0] == pytest.approx(reference_speeds(initial, training.images, training.labels), rel=1e-4)
    assert body["book"] == list(SPEED_BOOK[3]) and 0 <= body["test_accuracy"] <= 1
    relu = client.post("/api/unstable", json={"layers": 3, "epochs": 1, "activation": "relu"}).json()
    assert relu["book"] is None  # the book measured sigmoid networks only
    for bad in ({"layers": 5}, {"epochs": 501}, {"layers": "4"}, {"init": "he"}, {"eta": 1.0}):
        response = client.post("/api/unstable", json=bad)
        assert response.status_code == 422, bad
