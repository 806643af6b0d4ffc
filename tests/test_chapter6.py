"""Chapter 6 reproduced: network3.py's conventions as options, and the book's table in the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nndl.initializers import weights_of
from nndl.network import Network
from nndl.optimizer import SGD
from nndl.regularization import Regularization
from nndl.runs.experiments import EXPERIMENTS, CHAPTER6_ROWS, run_experiment, train_command
from nndl.runs.spec import RunSpec
from nndl.training import TrainingConfig


def test_l2_over_mini_batches_is_network3_s_step_by_hand():
    """w → w − η (λ / (n/m)) w − (η/m) Σ ∂C/∂w: the decay divides by the number of mini-batches, not n."""
    network = Network([4, 3, 2], seed=1, dtype=np.float64)
    w0 = [w.copy() for w in network.weights]
    b0 = [b.copy() for b in network.biases]
    nabla_w = [np.full_like(w, 0.5) for w in w0]
    nabla_b = [np.full_like(b, 0.25) for b in b0]
    eta, lmbda, n, m = 0.1, 2.0, 1000, 10
    config = TrainingConfig(eta=eta, lmbda=lmbda, mini_batch_size=m, l2_scale="mini-batches")
    SGD(network, eta, n, regularization=config.regularization).step(network, nabla_b, nabla_w, m)
    for w, before, grad in zip(network.weights, w0, nabla_w):
        np.testing.assert_allclose(w, before - eta * lmbda / (n // m) * before - eta / m * grad, rtol=1e-12)
    for b, before, grad in zip(network.biases, b0, nabla_b):
        np.testing.assert_allclose(b, before - eta / m * grad, rtol=1e-12)  # biases are not decayed


def test_the_l2_penalty_divides_by_the_same_number_as_the_step():
    weights = [np.ones((2, 3)), np.full((1, 2), 2.0)]  # Σ w² = 6 + 8 = 14
    assert Regularization(l2=1.0).penalty(weights, 100) == pytest.approx(0.5 * 14 / 100)
    network3 = Regularization(l2=1.0, l2_scale="mini-batches", mini_batch_size=10)
    assert network3.penalty(weights, 100) == pytest.approx(0.5 * 14 / 10)
    np.testing.assert_allclose(network3.gradient(weights[1], 100), weights[1] / 10)


def test_the_default_l2_scale_keeps_the_spec_and_training_set_decay():
    spec = RunSpec()
    assert spec.training.l2_scale == "training-set"
    assert spec.training.regularization.l2_divisor(50_000) == 50_000
    assert spec.replace(l2_scale="mini-batches").training.regularization.l2_divisor(50_000) == 5_000
    assert spec.replace(l2_scale="mini-batches").fingerprint() != spec.fingerprint()


def test_network3_initialisation_n_out_variances_and_a_zero_softmax_layer():
    network = Network(layers="conv20x5,pool2,conv40x5,pool2,full1000", init="network3", cost="log-likelihood",
                      seed=3, dtype=np.float64)
    conv1, conv2, full, output = network.weights
    assert [w.fan_out for w in weights_of(network.layers)] == [20 * 25 // 4, 40 * 25 // 4, 1000, 10]
    for w, n_out in ((conv1, 125), (conv2, 250), (full, 1000)):
        assert np.var(w) == pytest.approx(1 / n_out, rel=0.15)  # N(0, 1/n_out), not 1/n_in
    assert np.var(full) < 0.8 / 640  # 1/n_in would be 1/640
    biases = np.concatenate([b.ravel() for b in network.biases[:-1]])  # N(0, 1)
    assert np.mean(biases) == pytest.approx(0, abs=0.1) and np.var(biases) == pytest.approx(1, rel=0.15)
    assert not output.any() and not network.biases[-1].any()


def test_a_conv_layer_without_pooling_has_fan_out_maps_times_k_squared():
    network = Network(layers="conv6x3,full10", init="network3", cost="log-likelihood", seed=1)
    assert [w.fan_out for w in weights_of(network.layers)] == [6 * 9, 10, 10]


# drawn by the code before network3 was added (seed 5, float64): b¹₀, w¹₀₀, w²₁₃
GOLDEN = {"large": (-0.8019314252534474, -0.5526473205362324, 0.4613956081509272),
          "normalized": (-0.8019314252534474, -0.10089913460082751, 0.2306978040754636),
          "he": (0.0, -0.20705780365379864, 0.30678776016836723)}


@pytest.mark.parametrize("init", sorted(GOLDEN))
def test_the_other_initialisations_draw_what_they_drew_before(init):
    network = Network([30, 4, 2], init=init, seed=5, dtype=np.float64)
    drawn = (network.biases[0][0, 0], network.weights[0][0, 0], network.weights[1][1, 3])
    assert drawn == GOLDEN[init]


def test_the_registry_has_every_row_of_the_book_s_table():
    table = EXPERIMENTS["chapter6"]
    books = {row.book for row in table.rows if row.book is not None}
    assert books == {97.80, 98.78, 99.06, 99.23, 99.37, 99.46, 99.43, 99.48, 99.47, 99.60, 99.67}
    assert set(table.runs) == {label for _, _, runs in CHAPTER6_ROWS.values() for label in runs}
    for name in CHAPTER6_ROWS:
        assert EXPERIMENTS[name].folder == "chapter6" and EXPERIMENTS[name].long
    specs = table.specs()
    row8 = specs["#8 ReLU, shifted, dropout"]
    assert (row8.training.epochs, row8.network.dropout, row8.training.lmbda, row8.data.expand) == (40, 0.5, 0.0,
                                                                                                   "shift-one-pixel")
    for spec in specs.values():
        assert (spec.training.mini_batch_size, spec.network.init, spec.training.l2_scale, spec.network.cost) == \
            (10, "network3", "mini-batches", "log-likelihood")
        assert spec.data.evaluate_on == "validation" and spec.monitoring.keep_best
    assert "--init network3 --epochs 60 --eta 0.03 --lmbda 0.1 --l2-scale mini-batches --expand shift-one-pixel" \
        in train_command(specs["#5 ReLU, shifted"])


@pytest.fixture(scope="module")
def quick_chapter6(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("chapter6")
    outcome = run_experiment(EXPERIMENTS["chapter6"], out, seeds=1, quick=True, data_dir=str(mnist_dir),
                             log=lambda message: None)
    return out, outcome


def test_chapter6_runs_end_to_end_in_quick_form(quick_chapter6):
    out, outcome = quick_chapter6
    report = (out / "chapter6" / "report.md").read_text()
    for row in outcome["rows"]:
        if row["book"] is not None:  # the book's number beside nndl's
            assert f"| {row['run']} | {row['label']} | {row['book']:.2f}% | {row['best']:.2f}% |" in report
    assert "nndl train --layers conv20x5,pool2,full100" in report and "network3.py" in report
    ensemble = [row for row in outcome["rows"] if row["measure"] == "ensemble test_accuracy"]
    assert len(ensemble) == 1 and 10 < ensemble[0]["best"] <= 100
    histories = sorted(p.name for p in (out / "chapter6").glob("history-8-*.json"))
    assert histories == ["history-8-relu-shifted-dropout-seed1.json", "history-8-relu-shifted-dropout-seed2.json"]
    summary = json.loads((out / "chapter6" / histories[0]).read_text())
    assert summary["data"]["train_size"] == 2_500 and len(summary["history"]) == 1  # 500 images shifted ×5
    assert summary["history"][0]["metrics"]["validation"]["total"] == 500  # the quick form scores 500 images
    trained = sum(record["seconds"] for path in (out / "chapter6").glob("history-*.json")
                  for record in json.loads(path.read_text())["history"])
    assert outcome["seeds"] == 2 and "Seeds: 2. " in report  # the ensemble's two, though one seed was asked for
    assert outcome["training_seconds"] == pytest.approx(trained)


def test_chapter6_draws_every_row_s_validation_and_the_ensemble_s_mistakes(quick_chapter6, mnist):
    out, outcome = quick_chapter6
    figures = {f["name"]: f for f in outcome["figures"]}
    curves = figures["chapter6-validation"]
    assert len(curves["series"]) == len(EXPERIMENTS["chapter6"].runs) and (out / "chapter6" / curves["file"]).is_file()
    mistakes = figures["mistakes-8-relu-shifted-dropout"]
    assert (out / "chapter6" / mistakes["file"]).is_file()
    shown = mistakes["shown"]
    assert 0 < len(shown) <= 100 and mistakes["mistakes"] >= len(shown)
    for digit in shown:  # each digit drawn with its true label and a guess that differs
        assert digit["label"] == mnist.test.labels[digit["index"]] != digit["guess"]


def test_a_row_alone_reuses_the_table_s_runs(quick_chapter6, mnist_dir):
    out, _ = quick_chapter6
    logs = []
    run_experiment(EXPERIMENTS["chapter6-conv1"], out, seeds=1, quick=True, data_dir=str(mnist_dir), log=logs.append)
    assert logs and all("not rerun" in line for line in logs)
    assert (out / "chapter6-conv1" / "report.md").is_file()


def test_the_faster_recipe_has_every_row_alone_and_together_in_one_folder():
    together = EXPERIMENTS["chapter6-fast"]
    rows = [EXPERIMENTS[name.replace("chapter6-", "chapter6-fast-")] for name in CHAPTER6_ROWS]
    assert sorted(label for row in rows for label in row.runs) == sorted(together.runs)
    assert all(row.folder == together.folder == "chapter6-fast" and row.long for row in [*rows, together])
    specs = together.specs()
    for label, spec in specs.items():
        assert (spec.training.mini_batch_size, spec.training.momentum, spec.monitoring.schedule) == (50, 0.9, "cosine")
        assert spec.data.expand is None and spec.data.evaluate_on == "validation" and spec.monitoring.keep_best
        book = EXPERIMENTS["chapter6"].specs()[label]
        assert spec.network.layers == book.network.layers and spec.network.dropout == book.network.dropout
        assert (spec.distortions.augment is not None) == (book.data.expand is not None)  # fresh shifts instead
        assert spec.network.init == ("he" if spec.network.activation == "relu" else "normalized")
        assert spec.training.eta == pytest.approx(book.training.eta * 50 / 10 * (1 - 0.9))  # the book's step per image
    dropout = EXPERIMENTS["chapter6-fast-dropout"]
    assert dropout.ensemble_size == 5 and specs["#8 ReLU, shifted, dropout"].training.lmbda == 0.0
    vote = EXPERIMENTS["chapter6-fast-ensemble"]
    voter = next(iter(vote.specs().values()))
    row6 = specs["#6 ReLU, shifted, full1000"]
    assert vote.ensemble_size == 5 and vote.folder == "chapter6-fast" and len(vote.ensembles) == 1
    assert list(voter.differences(row6)) == ["training.epochs: 40 → 15",
                                             "distortions.augment: 'rotate=10,shift=2,scale=0.1' → 'rotate=8,shift=1.5'"]
