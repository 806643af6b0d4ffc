"""The GPU path without a GPU: every run on a CuPy stand-in whose arrays refuse to become NumPy arrays by accident.

The stand-in (tests/stand_in/cupy) computes with NumPy underneath, so a run on
it must equal the same run on the CPU bit for bit; any stray NumPy call that
would copy a device array to the host (or mix host and device arrays) raises
TypeError, as CuPy does on a learner's GPU.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_fake_mnist
from nndl import Network
from nndl.device import array_module, to_host
from nndl.errors import ConfigError
from nndl.files.models import load_model, save_model
from nndl.runs.checkpoint import checkpoint_files
from nndl.runs.runner import run_spec
from nndl.runs.spec import RunSpec
from test_resume import StopAt, without_seconds

REPO = Path(__file__).resolve().parent.parent
STAND_IN = REPO / "tests" / "stand_in"


@pytest.fixture
def cupy(monkeypatch):
    """``import cupy`` gives the stand-in for this test."""
    monkeypatch.syspath_prepend(str(STAND_IN))
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    module = importlib.import_module("cupy")
    assert module.STAND_IN
    return module


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """12,000 + 200 12×12 images (2,000 training): room for a 5×5 convolution and 2×2 pooling."""
    return write_fake_mnist(tmp_path_factory.mktemp("device") / "data", n_train=12_000, n_test=200, side=12)


@pytest.fixture(scope="module")
def mnist28(tmp_path_factory):
    """10,500 + 500 images of MNIST's 28×28 (500 training): room for chapter 6's networks and the page's drawings."""
    return write_fake_mnist(tmp_path_factory.mktemp("device28") / "data", n_train=10_500, n_test=500, side=28)


def test_the_stand_in_refuses_what_cupy_refuses(cupy):
    a = cupy.asarray(np.ones((2, 3), np.float32))
    host = np.ones(3, np.float32)
    for mistake in (lambda: np.asarray(a), lambda: a + host, lambda: host.__setitem__(slice(None), a[0]),
                    lambda: np.add.at(a, 0, 1.0), lambda: np.savez(Path(os.devnull), a=a)):
        with pytest.raises(TypeError):
            mistake()
    assert isinstance(a.sum(), cupy.ndarray) and float(a.sum()) == 6.0  # reductions stay on the device
    assert np.array_equal(to_host(np.tanh(a)), np.tanh(np.ones((2, 3), np.float32)))  # ufuncs dispatch, as in CuPy


RUNS = {
    "dense: cross-entropy, momentum, dropout, L1 + L2, keep-best, learning speed":
        dict(hidden=[12], cost="cross-entropy", momentum=0.6, dropout=0.3, lmbda=1.0, l1=0.3, keep_best=True,
             evaluate_on="validation", learning_speed=True, monitor=["training-cost", "evaluation-cost"]),
    "conv: ReLU, log-likelihood, network3's init and L2, dropout, float64":
        dict(layers="conv3x5,pool2,conv4x3,full10", cost="log-likelihood", activation="relu", init="network3",
             l2_scale="mini-batches", lmbda=0.1, dropout=0.2, dtype="float64", eta=0.1),
}


@pytest.mark.parametrize("label", list(RUNS))
def test_a_run_on_the_device_equals_the_run_on_the_cpu(cupy, small_mnist, label):
    spec = RunSpec().replace(source=str(small_mnist), epochs=2, seed=5, mini_batch_size=20, **RUNS[label])
    cpu = run_spec(spec)
    gpu = run_spec(spec.replace(device="gpu"))
    assert all(isinstance(p, cupy.ndarray) for p in gpu.network.parameters())  # it really ran on the "device"
    for got, want in zip(gpu.network.parameters(), cpu.network.parameters()):
        np.testing.assert_array_equal(to_host(got), want)
    assert without_seconds(gpu.summary["history"]) == without_seconds(cpu.summary["history"])


@pytest.mark.parametrize("first, then", [("gpu", "cpu"), ("cpu", "gpu")])
def test_a_checkpoint_from_one_device_resumes_on_the_other(cupy, small_mnist, tmp_path, first, then):
    spec = RunSpec().replace(source=str(small_mnist), layers="conv3x5,pool2,full10", cost="log-likelihood",
                             activation="relu", init="he", eta=0.05, momentum=0.5, keep_best=True,
                             evaluate_on="validation", epochs=3, seed=2, mini_batch_size=20)
    whole = run_spec(spec)
    folder = tmp_path / "ck"
    part = run_spec(spec.replace(device=first), checkpoint=folder, callbacks=[StopAt(1, 30)])
    assert part.run.interrupted and checkpoint_files(folder)
    final = run_spec(spec.replace(device=then), checkpoint=folder, resume=True)
    for got, want in zip(final.network.parameters(), whole.network.parameters()):
        np.testing.assert_array_equal(to_host(got), want)
    assert without_seconds(final.summary["history"]) == without_seconds(whole.summary["history"])


def test_a_model_saved_from_the_device_loads_on_either(cupy, tmp_path):
    network = Network(layers="conv2x3,pool2,full5", input_shape=(1, 8, 8), seed=3, device="gpu")
    save_model(network, tmp_path / "m.npz")
    images = np.random.default_rng(0).integers(0, 256, (7, 64), dtype=np.uint8)
    for device in ("cpu", "gpu"):
        loaded = load_model(tmp_path / "m.npz", device=device)
        assert loaded.device == device
        np.testing.assert_array_equal(loaded.output_rows(images), network.output_rows(images))
        assert loaded.evaluate(images, np.arange(7) % 5) == network.evaluate(images, np.arange(7) % 5)


def nndl_command(*args, devices="1", stand_in=True):
    env = {**os.environ, "STAND_IN_CUPY_DEVICES": devices}
    env["PYTHONPATH"] = str(STAND_IN) if stand_in else ""
    return subprocess.run([sys.executable, "-m", "nndl", *args], capture_output=True, text=True, env=env, timeout=120)


def test_train_on_the_device_from_the_command_line_and_evaluate_on_the_cpu(small_mnist, tmp_path):
    common = ["train", "--data", str(small_mnist), "--hidden", "10", "--epochs", "1", "--seed", "4"]
    gpu = nndl_command(*common, "--device", "gpu", "--save", str(tmp_path / "g.npz"))
    cpu = nndl_command(*common, "--save", str(tmp_path / "c.npz"), stand_in=False)
    assert gpu.returncode == 0 and cpu.returncode == 0, gpu.stderr + cpu.stderr
    g, c = np.load(tmp_path / "g.npz"), np.load(tmp_path / "c.npz")
    assert all(np.array_equal(g[k], c[k]) for k in c.files if k.startswith(("weights", "biases")))


COMMANDS = {"train": ["train", "--data", "{out}/nowhere"],
            "experiment": ["experiment", "run", "chapter6-relu", "--quick", "--out", "{out}/experiments"],
            "sweep": ["sweep", "--example", "book-strategy", "--out", "{out}/sweep"],
            "serve": ["serve", "--port", "0", "--models", "{out}/models"]}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("devices, stand_in, message", [
    ("1", False, "--device gpu needs CuPy, which is not installed: pip install 'nndl[gpu]'"),
    ("0", True, "--device gpu: CuPy finds no usable GPU (cudaErrorNoDevice"),
])
def test_no_cupy_or_no_gpu_is_one_line_before_anything_is_read_or_made(tmp_path, command, devices, stand_in,
                                                                        message):
    args = [arg.replace("{out}", str(tmp_path)) for arg in COMMANDS[command]]
    result = nndl_command(*args, "--device", "gpu", devices=devices, stand_in=stand_in)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []  # no folder made, no trial planned


def test_an_unknown_device_is_refused(cupy):
    with pytest.raises(ConfigError, match="device 'tpu': choose from cpu, gpu"):
        array_module("tpu")


def test_the_page_trains_on_the_device_and_shows_the_run_from_host_copies(cupy, mnist28, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from nndl.app.web.server import create_app
    from test_web_api import SHORT_RUN, drawing, events_until_end, folded, wait_for

    app = create_app(tmp_path / "models", str(mnist28), abandon_after=30.0, device="gpu")
    with TestClient(app) as client:
        assert client.post("/api/train", json={**SHORT_RUN, "epochs": 100}).status_code == 202
        client.post("/api/train/pause")
        wait_for(client, lambda s: s["state"] == "paused", "a pause")
        assert app.state.server.live.run.network.device == "gpu"
        drawn = client.post("/api/train/draw", json={"image": drawing(), "label": 1})  # the Draw tab, mid-run
        assert drawn.status_code == 200 and len(drawn.json()["output"]) == 10
        assert client.get("/api/train/neurons/0").status_code == 200
        client.post("/api/train/stop")
        state = folded(events_until_end(client))
        assert state["end"]["state"] == "stopped" and len(state["weights"]["neurons"]) == 8
        assert state["points"] and all(cost > 0 for _, _, cost in state["points"])  # the live cost, on the device
        assert client.post("/api/train/save", json={"name": "g.npz"}).status_code == 201
    saved = load_model(tmp_path / "models" / "g.npz")
    assert all(isinstance(p, np.ndarray) for p in saved.parameters())
    assert saved.metadata["spec"]["network"]["device"] == "gpu"


def test_an_experiment_on_dask_workers_on_the_device_equals_it_on_the_cpu(mnist28, tmp_path):
    pytest.importorskip("distributed")
    common = ["experiment", "run", "chapter6-relu", "--quick", "--workers", "1", "--data", str(mnist28)]
    gpu = nndl_command(*common, "--device", "gpu", "--out", str(tmp_path / "gpu"))
    cpu = nndl_command(*common, "--out", str(tmp_path / "cpu"), stand_in=False)
    assert gpu.returncode == 0 and cpu.returncode == 0, gpu.stderr + cpu.stderr
    history = "chapter6/history-4-relu-seed1.json"
    runs = [json.loads((tmp_path / device / history).read_text()) for device in ("gpu", "cpu")]
    assert runs[0]["spec"]["network"]["device"] == "gpu" and runs[1]["spec"]["network"]["device"] == "cpu"
    assert without_seconds(runs[0]["history"]) == without_seconds(runs[1]["history"])


def test_a_local_cluster_for_the_device_has_one_worker_per_gpu(cupy, monkeypatch):
    pytest.importorskip("distributed")
    from nndl.runs.engine import Engine

    monkeypatch.setattr(cupy, "DEVICE_COUNT", 2)
    with Engine(device="gpu", progress=False) as engine:
        assert engine.n_workers == 2


def test_a_network_moves_between_devices_with_its_weights(cupy):
    images = np.random.default_rng(1).integers(0, 256, (5, 64), dtype=np.uint8)
    network = Network(layers="conv2x3,pool2,full5", input_shape=(1, 8, 8), seed=3, device="gpu")
    on_gpu = network.output_rows(images)
    network.to_device("cpu")  # as a Dask worker returns a network to a client that may have no GPU
    assert network.xp is np and all(layer.xp is np for layer in network.layers)
    assert all(isinstance(p, np.ndarray) for p in network.parameters())
    np.testing.assert_array_equal(network.output_rows(images), on_gpu)
    network.to_device("gpu")
    assert all(isinstance(p, cupy.ndarray) for p in network.parameters())
    np.testing.assert_array_equal(network.output_rows(images), on_gpu)
