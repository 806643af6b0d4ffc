"""Checkpoints and resume: an interrupted run, resumed, ends exactly where an uninterrupted one does."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import write_fake_mnist
from nndl.app.reporting import Announce
from nndl.callbacks import Callback
from nndl.errors import ConfigError, NndlError
from nndl.files.models import load_model
from nndl.runs.checkpoint import CheckpointError, checkpoint_files, latest_checkpoint, read_checkpoint
from nndl.runs.runner import kept_scores, load_run_data, run_spec
from nndl.runs.spec import RunSpec

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """12,000 + 200 8×8 images: 2,000 training, 10,000 validation, 200 test."""
    return write_fake_mnist(tmp_path_factory.mktemp("small") / "data", n_train=12_000, n_test=200, side=8)


class StopAt(Callback):
    """Ask training to stop after mini-batch ``batch`` of ``epoch``, as Ctrl-C would."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, run, batch):
        if (run.epoch, batch) == (self.epoch, self.batch):
            run.request_stop()


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


RUNS = {
    "momentum, dropout, L1+L2, schedule": dict(momentum=0.6, dropout=0.3, lmbda=1.0, l1=0.3,
                                               schedule="halve-on-plateau", patience=1, learning_speed=True),
    "distortions, early stopping": dict(augment="rotate=10,elastic", workers=0, early_stopping=3,
                                        monitor=["training-cost"]),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label", list(RUNS))
def test_interrupted_and_resumed_runs_end_bit_identical(small_mnist, tmp_path, dtype, label):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[12], eta=1.0, epochs=5, seed=7, dtype=dtype,
                             **RUNS[label])
    whole = run_spec(spec)
    folder = tmp_path / "checkpoints"
    rng = random.Random(dtype + label)
    stops = sorted((rng.randrange(5), rng.randrange(200)) for _ in range(3))
    for epoch, batch in stops:
        part = run_spec(spec, checkpoint=folder, resume=bool(checkpoint_files(folder)),
                        callbacks=[StopAt(epoch, batch)])
        if part.run.interrupted:
            assert part.checkpoint is not None and part.checkpoint.exists()
    final = run_spec(spec, checkpoint=folder, resume=True)
    for got, want in zip(final.network.parameters(), whole.network.parameters()):
        np.testing.assert_array_equal(got, want)
    assert without_seconds(final.summary["history"]) == without_seconds(whole.summary["history"])
    assert len(checkpoint_files(folder)) <= 2  # the newest two are kept


def test_resume_refuses_another_spec_or_other_data(small_mnist, tmp_path):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[8], epochs=2, seed=1)
    run_spec(spec, checkpoint=tmp_path / "ck", callbacks=[StopAt(0, 50)])
    with pytest.raises(NndlError, match=r"training.eta: 3.0 → 0.5"):
        run_spec(spec.replace(eta=0.5), checkpoint=tmp_path / "ck", resume=True)
    other = write_fake_mnist(tmp_path / "other", n_train=12_000, n_test=200, side=8, seed=5)
    with pytest.raises(NndlError, match="different"):
        run_spec(spec.replace(source=str(other)), checkpoint=tmp_path / "ck", resume=True)


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(small_mnist, tmp_path):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[8], epochs=3, seed=1)
    run_spec(spec, checkpoint=tmp_path / "ck", callbacks=[StopAt(2, 10)])
    older, newest = checkpoint_files(tmp_path / "ck")
    newest.write_bytes(newest.read_bytes()[:500])  # torn
    warnings = []
    assert latest_checkpoint(tmp_path / "ck", warn=warnings.append).path == older
    assert len(warnings) == 1 and newest.name in warnings[0] and older.name in warnings[0]
    whole = run_spec(spec)
    resumed = run_spec(spec, checkpoint=tmp_path / "ck", resume=True)
    for got, want in zip(resumed.network.parameters(), whole.network.parameters()):
        np.testing.assert_array_equal(got, want)


def rewritten(path, target, change_state=None, members=None):
    """A copy of checkpoint ``path`` at ``target`` with its state JSON edited and some members replaced."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    if change_state:
        state = json.loads(np.load(io.BytesIO(contents["state.npy"])).tobytes())
        change_state(state)
        buffer = io.BytesIO()
        np.save(buffer, np.frombuffer(json.dumps(state).encode(), dtype=np.uint8))
        contents["state.npy"] = buffer.getvalue()
    for name, array in (members or {}).items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=True)
        contents[f"{name}.npy"] = buffer.getvalue()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return target


@pytest.mark.parametrize(
    "change_state, members, message",
    [
        (lambda s: s["arrays"].update({"param.0": [10**6, 10**6]}), None, "more than nndl reads"),
        (None, {"param.0": np.zeros((3, 3), np.float32)}, r"param.0 has shape \(3, 3\), expected"),
        (None, {"param.1": np.array([None, 1], dtype=object)}, "never unpickles"),
        (lambda s: s["arrays"].update({"param.0": [-1, 2]}), None, "has shape"),
        (lambda s: s.update(format_version=1), None, "checkpoint format 1; this nndl reads 2"),
    ],
)
def test_a_checkpoints_arrays_are_checked_before_they_are_read(small_mnist, tmp_path, change_state, members, message):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[8], epochs=1, seed=1)
    run_spec(spec, checkpoint=tmp_path / "ck")
    saved = checkpoint_files(tmp_path / "ck")[-1]
    assert read_checkpoint(saved).position.epoch == 1  # the untouched file reads
    hostile = rewritten(saved, tmp_path / "checkpoint-000001-000000.npz", change_state, members)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(hostile)


def train_command(data, *extra):
    return [sys.executable, "-m", "nndl", "train", "--data", str(data), "--hidden", "16", "--epochs", "400",
            "--train-size", "2000", "--seed", "3", "--momentum", "0.5", "--dropout", "0.2", "--quiet", *extra]


def test_sigkill_at_twenty_random_moments_then_resume(small_mnist, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run(train_command(small_mnist, "--save", str(tmp_path / "whole.npz")), env=env, check=True)
    folder, rng, kills = tmp_path / "ck", random.Random(20), 0
    while kills < 20:
        before = [p.name for p in checkpoint_files(folder)]
        resume = ["--resume", str(folder)] if before else ["--checkpoint", str(folder)]
        process = subprocess.Popen(train_command(small_mnist, *resume), env=env)
        deadline = time.monotonic() + 60
        while [p.name for p in checkpoint_files(folder)] == before and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.005)  # until this process has trained (and saved) at least one epoch
        time.sleep(rng.uniform(0.0, 0.25))  # then a random moment: mid-batch, mid-evaluation or mid-save
        if process.poll() is not None:
            break  # it finished before the kill
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    subprocess.run(train_command(small_mnist, "--resume", str(folder), "--save", str(tmp_path / "resumed.npz")),
                   env=env, check=True)
    whole, resumed = load_model(tmp_path / "whole.npz"), load_model(tmp_path / "resumed.npz")
    assert kills == 20  # killed twenty times before it could finish
    for got, want in zip(resumed.parameters(), whole.parameters()):
        np.testing.assert_array_equal(got, want)
    assert without_seconds(resumed.metadata["history"]) == without_seconds(whole.metadata["history"])


def test_sigkill_then_resume_writes_the_save_the_run_was_started_with(small_mnist, tmp_path):
    """`--checkpoint ck --save r.npz --json`, kill -9, `--resume ck` (from another folder): r.npz is written with
    the weights of a run never stopped and the JSON is alone on stdout; a --save given on resume wins."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "nndl", "train", "--data", str(small_mnist), "--hidden", "16", "--epochs", "200",
               "--train-size", "2000", "--seed", "3", "--momentum", "0.5"]
    subprocess.run([*command, "--save", "whole.npz", "--quiet"], env=env, cwd=tmp_path, check=True)
    process = subprocess.Popen([*command, "--checkpoint", "ck", "--save", "r.npz", "--json"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not checkpoint_files(tmp_path / "ck") and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL and not (tmp_path / "r.npz").exists()
    epoch = read_checkpoint(checkpoint_files(tmp_path / "ck")[-1]).position.epoch
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = subprocess.run([sys.executable, "-m", "nndl", "train", "--resume", "../ck"], env=env, cwd=elsewhere,
                             capture_output=True, text=True, check=True)
    assert f", resuming at epoch {epoch}\n" in resumed.stderr and epoch > 0
    whole, model = load_model(tmp_path / "whole.npz"), load_model(tmp_path / "r.npz")  # where it was started
    for got, want in zip(model.parameters(), whole.parameters()):
        np.testing.assert_array_equal(got, want)
    summary = json.loads(resumed.stdout)  # --json restored, and alone on stdout
    assert without_seconds(summary["history"]) == without_seconds(whole.metadata["history"])
    first_save = (tmp_path / "r.npz").stat().st_mtime_ns
    subprocess.run([sys.executable, "-m", "nndl", "train", "--resume", "../ck", "--save", "other.npz"], env=env,
                   cwd=elsewhere, capture_output=True, check=True)
    assert (tmp_path / "r.npz").stat().st_mtime_ns == first_save  # the --save given on resume replaces it
    np.testing.assert_array_equal(load_model(elsewhere / "other.npz").weights[0], whole.weights[0])


def test_the_banner_says_the_epoch_and_mini_batch_a_run_resumes_at(small_mnist, tmp_path):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[8], epochs=3, seed=1)
    run_spec(spec, checkpoint=tmp_path / "ck", callbacks=[StopAt(1, 37)])
    banner = io.StringIO()
    run_spec(spec, checkpoint=tmp_path / "ck", resume=True, callbacks=[Announce(banner)])
    assert banner.getvalue().endswith(", resuming at epoch 1 after mini-batch 38 of 200\n")


def test_ctrl_c_saves_a_checkpoint_and_exits_130(small_mnist, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "nndl", "train", "--data", str(small_mnist), "--hidden", "64", "--epochs", "400",
               "--checkpoint", str(tmp_path / "ck"), "--save", str(tmp_path / "m.npz")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("Training")
    process.stdout.readline()  # the first epoch's line: training is under way
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted at epoch" in lines[0] and "--resume" in lines[0]
    assert checkpoint_files(tmp_path / "ck") and load_model(tmp_path / "m.npz").sizes == [64, 64, 10]


# -- the wiring from the specification to the callbacks ----------------------------------------

def test_early_stopping_watches_validation_and_keeps_the_best_epoch(small_mnist):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[8], epochs=40, eta=5.0, seed=2, early_stopping=2)
    result = run_spec(spec)
    history = result.summary["history"]
    accuracy = [r["metrics"]["validation"]["accuracy"] for r in history]
    best = int(np.argmax(accuracy))
    assert len(history) == best + 3  # two epochs without improvement after the best, then stop
    assert kept_scores(result.network, load_run_data(spec.data))["validation"] == accuracy[best]
    assert result.summary["best"]["measure"] == "test accuracy"
    assert result.summary["best"]["accuracy"] == max(r["metrics"]["test"]["accuracy"] for r in history)


def test_the_penalty_uses_the_training_set_size(small_mnist):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[8], epochs=1, seed=2, lmbda=4.0, l1=1.0,
                             train_size=500, monitor=["training-cost"])
    result = run_spec(spec)
    net, data = result.network, load_run_data(spec.data)
    data_cost = net.total_cost(data.training.images, data.training.labels)
    squares = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in net.weights)
    absolutes = sum(float(np.sum(np.abs(w), dtype=np.float64)) for w in net.weights)
    expected = data_cost + 4.0 / (2 * 500) * squares + 1.0 / 500 * absolutes
    assert result.summary["history"][0]["metrics"]["training"]["cost"] == pytest.approx(expected, rel=1e-6)
    assert result.run.optimizer.n == 500


def test_spec_round_trips_and_names_bad_fields():
    spec = RunSpec().replace(eta=0.5, hidden=[100, 30], augment="rotate=10,elastic", monitor=["training-cost"])
    assert RunSpec.from_dict(json.loads(spec.to_json())) == spec
    with pytest.raises(ConfigError, match=r"training.eta -1.0: must be greater than 0.0"):
        RunSpec.from_dict({"training": {"eta": -1}})
    with pytest.raises(ConfigError, match=r"unknown setting 'etta'.*known settings: epochs"):
        RunSpec.from_dict({"training": {"etta": 1}})
    with pytest.raises(ConfigError, match="unknown section 'netwrk'"):
        RunSpec.from_dict({"netwrk": {}})
    with pytest.raises(ConfigError, match="choose from quadratic, cross-entropy, log-likelihood"):
        RunSpec().replace(cost="hinge")
    with pytest.raises(ConfigError, match="needs a sigmoid output layer"):
        RunSpec().replace(cost="cross-entropy", output_activation="softmax")
    assert spec.replace(workers=0).fingerprint() == spec.fingerprint()  # workers do not change the result
    assert spec.replace(seed=2).fingerprint() != spec.fingerprint()


def process_state(pid):
    """(state, parent pid) of a process from /proc, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def running(pid):
    state = process_state(pid)
    return state is not None and state[0] != "Z"  # a zombie has exited


def children_of(pid):
    """The pids of the running child processes of ``pid``."""
    pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return [child for child in pids if running(child) and process_state(child)[1] == pid]


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to the trainer"])
def test_a_signal_stops_training_with_distortion_workers_cleanly(small_mnist, tmp_path, how):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "nndl", "train", "--data", str(small_mnist), "--hidden", "32", "--epochs", "500",
               "--augment", "rotate=10,elastic", "--augment-workers", "2", "--checkpoint", str(tmp_path / "ck")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        process.stdout.readline()  # "Training ..."
        process.stdout.readline()  # epoch 0 is done: the workers are distorting epoch 1
        workers = children_of(process.pid)
        assert workers  # two, or one on a one-core machine (no more workers start than cores)
        if how.startswith("SIGINT"):
            os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        else:
            process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted at epoch" in lines[0] and "Traceback" not in err
    deadline = time.monotonic() + 5
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if running(pid)]  # no distortion worker is left behind
    assert checkpoint_files(tmp_path / "ck")


def test_keep_best_ends_with_the_best_validation_epoch(small_mnist):
    spec = RunSpec().replace(source=str(small_mnist), hidden=[8], epochs=8, eta=8.0, seed=4, keep_best=True)
    result = run_spec(spec)
    accuracy = [r["metrics"]["validation"]["accuracy"] for r in result.summary["history"]]
    assert len(accuracy) == 8 and accuracy[-1] < max(accuracy)  # η = 8 is erratic: the last epoch is not the best
    assert kept_scores(result.network, load_run_data(spec.data))["validation"] == max(accuracy)
