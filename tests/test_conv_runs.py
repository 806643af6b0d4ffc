"""Convolutional networks everywhere nndl trains: the command line, model files, checkpoints and resume,
distortions and expansion, sweeps on Dask, and real MNIST."""

import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import write_fake_mnist
from nndl.app.cli import main
from nndl.errors import ConfigError, ModelFileError
from nndl.files.models import load_model, save_model
from nndl.network import Network
from nndl.runs.checkpoint import checkpoint_files
from nndl.runs.runner import run_spec
from nndl.runs.spec import RunSpec
from test_resume import StopAt, without_seconds

REPO = Path(__file__).resolve().parent.parent
SMALL_CONV = "conv4x3,pool2,full8"  # for the 8×8 fake digits: 4 maps of 6×6, pooled to 3×3


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """12,000 + 200 8×8 images: 2,000 training, 10,000 validation, 200 test."""
    return write_fake_mnist(tmp_path_factory.mktemp("small") / "data", n_train=12_000, n_test=200, side=8)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_books_shorthand_trains_from_the_command_line(capsys, small_mnist, tmp_path):
    model = tmp_path / "conv.npz"
    code, out, err = run(capsys, "train", "--layers", "conv20x3,pool2,conv40x2,pool2,full100", "--cost",
                         "log-likelihood", "--eta", "0.1", "--data", str(small_mnist), "--train-size", "300",
                         "--epochs", "1", "--seed", "1", "--save", str(model))
    assert code == 0, err
    assert "Training [64, 720, 180, 160, 40, 100, 10]" in out  # 20×6×6, 20×3×3, 40×2×2, 40×1×1
    network = load_model(model)
    assert network.describe()["layers"] == "conv20x3,pool2,conv40x2,pool2,full100"
    assert [w.shape for w in network.weights] == [(20, 1, 3, 3), (40, 20, 2, 2), (100, 40), (10, 100)]
    code, out, err = run(capsys, "evaluate", str(model), "--data", str(small_mnist))
    assert code == 0 and "validation:" in out and "test:" in out, err


@pytest.mark.parametrize("layers, message", [
    ("conv20x9", "layer conv20x9: a 9×9 kernel is larger than its 8×8 input"),
    ("conv20x3,pool4", "layer pool4: 4×4 windows do not divide its 6×6 input"),
    ("full10,pool2", "layer pool2: needs feature maps as input"),
    ("conv2x3,pol2", "layer 'pol2': write convCxK"),
])
def test_a_shape_that_does_not_fit_is_one_line_and_exit_2(capsys, small_mnist, tmp_path, layers, message):
    code, out, err = run(capsys, "train", "--layers", layers, "--data", str(small_mnist), "--epochs", "1",
                         "--save", str(tmp_path / "m.npz"))
    assert code == 2 and message in err and err.count("\n") == 1 and "Epoch" not in out
    assert not (tmp_path / "m.npz").exists()


def test_layers_and_hidden_together_are_refused(capsys, small_mnist):
    code, _, err = run(capsys, "train", "--layers", SMALL_CONV, "--hidden", "30", "--data", str(small_mnist))
    assert code == 2 and "give one of --hidden, --sizes and --layers, not --hidden and --layers" in err


def test_too_large_a_network_is_refused_before_anything_is_allocated():
    with pytest.raises(ConfigError, match="more than the 50,000,000 nndl builds"):
        Network(layers="conv1000x5,pool2,full100000")


def test_a_conv_model_round_trips_and_network2_json_refuses_it(capsys, tmp_path):
    network = Network(layers="conv3x3,pool2,full5", input_shape=(1, 8, 8), cost="log-likelihood",
                      activation="relu", conv_activation="before-pool", seed=2)
    save_model(network, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.describe() == network.describe()
    for got, want in zip(loaded.parameters(), network.parameters()):
        np.testing.assert_array_equal(got, want)
    code, _, err = run(capsys, "convert", str(tmp_path / "m.npz"), str(tmp_path / "m.json"))
    assert code == 2 and "network2.py's format holds fully connected networks only" in err
    assert not (tmp_path / "m.json").exists()


def test_a_model_whose_kernels_disagree_with_its_layers_is_refused(tmp_path):
    """One network's layer description with another's first kernels: refused from the member's header."""
    save_model(Network(layers="conv3x3,pool2,full5", input_shape=(1, 8, 8), seed=2), tmp_path / "m.npz")
    save_model(Network(layers="conv3x2,full5", input_shape=(1, 8, 8), seed=2), tmp_path / "o.npz")
    with zipfile.ZipFile(tmp_path / "o.npz") as other, zipfile.ZipFile(tmp_path / "m.npz") as model, \
            zipfile.ZipFile(tmp_path / "mixed.npz", "w") as mixed:
        for name in model.namelist():
            mixed.writestr(name, (other if name == "weights_0.npy" else model).read(name))
    with pytest.raises(ModelFileError, match=r"weights_0 has shape \(3, 1, 2, 2\), expected \(3, 1, 3, 3\)"):
        load_model(tmp_path / "mixed.npz")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_interrupted_and_resumed_conv_run_ends_bit_identical(small_mnist, tmp_path, dtype):
    spec = RunSpec().replace(source=str(small_mnist), layers=SMALL_CONV, cost="log-likelihood", activation="relu",
                             init="he", eta=0.05, epochs=4, seed=7, dtype=dtype, momentum=0.6, dropout=0.3,
                             lmbda=1.0, train_size=600)
    whole = run_spec(spec)
    folder = tmp_path / "checkpoints"
    for epoch, batch in sorted((random.Random(dtype).randrange(4), random.Random(dtype).randrange(60)) for _ in "ab"):
        run_spec(spec, checkpoint=folder, resume=bool(checkpoint_files(folder)), callbacks=[StopAt(epoch, batch)])
    final = run_spec(spec, checkpoint=folder, resume=True)
    for got, want in zip(final.network.parameters(), whole.network.parameters()):
        np.testing.assert_array_equal(got, want)
    assert without_seconds(final.summary["history"]) == without_seconds(whole.summary["history"])


def test_sigkill_then_resume_of_a_conv_run_is_bit_identical(small_mnist, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "nndl", "train", "--data", str(small_mnist), "--layers", SMALL_CONV,
               "--cost", "log-likelihood", "--eta", "0.05", "--epochs", "60", "--train-size", "1000", "--seed", "3",
               "--momentum", "0.5", "--quiet"]
    subprocess.run([*command, "--save", str(tmp_path / "whole.npz")], env=env, check=True)
    folder, rng, kills = tmp_path / "ck", random.Random(3), 0
    while kills < 3:
        before = [p.name for p in checkpoint_files(folder)]
        process = subprocess.Popen([*command, *(["--resume", str(folder)] if before else ["--checkpoint", str(folder)])],
                                   env=env)
        deadline = time.monotonic() + 60
        while [p.name for p in checkpoint_files(folder)] == before and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.2))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    subprocess.run([*command, "--resume", str(folder), "--save", str(tmp_path / "resumed.npz")], env=env, check=True)
    assert kills == 3
    whole, resumed = load_model(tmp_path / "whole.npz"), load_model(tmp_path / "resumed.npz")
    for got, want in zip(resumed.parameters(), whole.parameters()):
        np.testing.assert_array_equal(got, want)


def test_distortions_and_expansion_feed_a_conv_net(small_mnist):
    for extra in (dict(augment="rotate=10,elastic", workers=0), dict(expand="shift-one-pixel")):
        spec = RunSpec().replace(source=str(small_mnist), layers=SMALL_CONV, epochs=1, train_size=200, seed=1,
                                 **extra)
        result = run_spec(spec)
        assert len(result.run.history.epochs) == 1 and result.summary["best"]["accuracy"] >= 0


def test_a_sweep_over_conv_layers_runs_on_a_dask_cluster(small_mnist, tmp_path):
    from nndl.runs.sweep import Sweep, run_sweep

    values = {"name": "conv", "base": {"epochs": 1, "train_size": 300, "cost": "log-likelihood",
                                       "source": str(small_mnist)},
              "grid": {"layers": ["conv2x3,pool2,full8", "conv4x3,full8"]}, "seeds": 1}
    results = run_sweep(Sweep.from_dict(values), tmp_path, workers=2, progress=False, log=lambda m: None)
    assert results["ran"] == 2 and not results["failed"]
    assert {row["settings"]["layers"] for row in results["trials"]} == {"conv2x3,pool2,full8", "conv4x3,full8"}
    chosen = load_model(tmp_path / "models" / f"{results['chosen']['trial']}.npz")
    assert chosen.describe()["layers"] == results["chosen"]["settings"]["layers"]


def test_a_small_conv_net_learns_real_mnist_and_beats_a_fully_connected_one(mnist_dir):
    """One epoch on 10,000 images: the book's conv20x5,pool2,full100 with ReLU against full100 alone."""
    common = dict(source=str(mnist_dir), cost="log-likelihood", activation="relu", init="he", eta=0.1, epochs=1,
                  train_size=10_000, seed=1, evaluate_on="validation")
    conv = run_spec(RunSpec().replace(layers="conv20x5,pool2,full100", **common)).summary["best"]["accuracy"]
    dense = run_spec(RunSpec().replace(hidden=[100], **common)).summary["best"]["accuracy"]
    assert conv >= 0.955 and conv > dense + 0.02, (conv, dense)


def test_a_checkpoint_and_a_model_written_before_layers_existed_still_load(tmp_path, monkeypatch):
    """Files written by nndl before the layers redesign (commit fb68e46): [16, 5, 10] with momentum, on fake
    4×4 digits; the checkpoint stopped after 2 of 4 epochs. Resumed now, it ends where the old whole run ended."""
    import shutil

    old = REPO / "tests" / "data"
    monkeypatch.chdir(tmp_path)
    write_fake_mnist(tmp_path / "data", n_train=10_300, n_test=50, side=4, seed=3)
    (tmp_path / "ck").mkdir()
    shutil.copy(old / "before-layers-checkpoint.npz", tmp_path / "ck" / "checkpoint-000002-000000.npz")
    spec = RunSpec().replace(source="data", hidden=[5], epochs=4, seed=2, momentum=0.5)
    resumed = run_spec(spec, checkpoint="ck", resume=True)
    whole = load_model(old / "before-layers-whole.npz")
    assert len(resumed.run.history.epochs) == 4 and whole.sizes == [16, 5, 10]
    for got, want in zip(resumed.network.parameters(), whole.parameters()):
        np.testing.assert_array_equal(got, want)
