"""Sweeps: the specification and its errors, and real Dask runs on small generated data.

The Dask tests start real clusters: a LocalCluster of two worker processes, and
a scheduler and workers as separate processes on 127.0.0.1. Every process a test
starts is stopped by the test.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from nndl.app.cli import main
from nndl.data.idx import write_idx
from nndl.data.mnist import MNIST_FILES, load_mnist
from nndl.errors import ConfigError
from nndl.files.models import load_model
from nndl.metrics import Monitor, evaluate
from nndl.runs.engine import Engine, probe_scheduler
from nndl.runs.sweep import EXAMPLES, Sweep, eta_threshold, read_sweep_file, run_sweep

TINY = {"name": "tiny", "base": {"hidden": [6], "epochs": 3, "cost": "cross-entropy", "init": "normalized"},
        "grid": {"eta": [0.1, 1.0], "lmbda": [0.0, 1.0]}, "seeds": 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """2,000 training images of 8×8 pixels (after the 10,000 of the validation split) in which digit d lights
    pixels 6d…6d+5, and 300 test images whose labels are all shifted by one: a network that learns the training
    images scores high on validation and near zero on test, so the two accuracies cannot be mistaken."""
    rng = np.random.default_rng(0)

    def images(labels: np.ndarray) -> np.ndarray:
        pixels = rng.integers(0, 60, (len(labels), 64), dtype=np.uint8)
        for d in range(10):
            pixels[labels == d, 6 * d:6 * d + 6] = 255
        return pixels.reshape(-1, 8, 8)

    train_labels, test_labels = np.arange(12_000) % 10, np.arange(300) % 10
    folder = tmp_path_factory.mktemp("data") / "mnist"
    folder.mkdir()
    arrays = {"train_images": images(train_labels), "train_labels": train_labels.astype(np.uint8),
              "test_images": images(test_labels), "test_labels": ((test_labels + 1) % 10).astype(np.uint8)}
    for key, array in arrays.items():
        write_idx(folder / (MNIST_FILES[key] + ".gz"), array)
    return folder


def child_environment() -> dict[str, str]:
    """The environment for processes that must import nndl from this checkout."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def table(out: Path) -> list[dict[str, str]]:
    """results.csv without the columns that differ between two runs of the same trials (time, worker)."""
    with open(out / "results.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k not in ("seconds", "worker")} for row in csv.DictReader(handle)]


def write_sweep(path: Path, sweep: dict) -> Path:
    path.write_text(json.dumps(sweep))
    return path


# -- the specification (no Dask) -------------------------------------------------------------

def test_a_grid_expands_to_every_point_and_seed_each_scored_on_validation(data_dir):
    sweep = Sweep.from_dict({**TINY, "base": {**TINY["base"], "source": str(data_dir)}})
    trials = sweep.trials(sweep.stages[0], {})
    assert [(t.settings, t.seed) for t in trials][:3] == [({"eta": 0.1, "lmbda": 0.0}, 1),
                                                           ({"eta": 0.1, "lmbda": 0.0}, 2),
                                                           ({"eta": 0.1, "lmbda": 1.0}, 1)]
    assert len(trials) == 8 and len({t.fingerprint for t in trials}) == 8
    assert all(t.spec.data.evaluate_on == "validation" and t.spec.training.eta == t.settings["eta"] for t in trials)


def test_random_draws_are_repeatable_and_cross_the_grid():
    values = {"base": {"epochs": 1}, "grid": {"cost": ["quadratic", "cross-entropy"]},
              "random": {"trials": 3, "seed": 7, "space": {"eta": {"log_uniform": [0.01, 10]},
                                                            "mini_batch_size": {"int_uniform": [5, 20]},
                                                            "hidden": {"choice": [[10], [20, 10]]}}}}
    first, again = Sweep.from_dict(values).stages[0].points(), Sweep.from_dict(values).stages[0].points()
    assert first == again and len(first) == 6
    assert all(0.01 <= p["eta"] <= 10 and 5 <= p["mini_batch_size"] <= 20 for p in first)
    assert {p["cost"] for p in first} == {"quadratic", "cross-entropy"}


def test_a_toml_sweep_reads_like_the_json_one(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\nseeds = [3]\n[base]\nepochs = 2\n[grid]\neta = [0.5, 1.0]\n')
    assert read_sweep_file(path) == {"name": "t", "seeds": [3], "base": {"epochs": 2}, "grid": {"eta": [0.5, 1.0]}}
    assert [t.seed for t in Sweep.load(path).trials(Sweep.load(path).stages[0], {})] == [3, 3]


def test_every_shipped_example_is_a_valid_sweep():
    for values in EXAMPLES.values():
        Sweep.from_dict(values)
    for path in (REPO / "examples" / "sweeps").iterdir():
        assert Sweep.load(path).stages


@pytest.mark.parametrize("change, message", [
    ({"grid": {"etta": [1.0]}}, "unknown setting 'etta'"),
    ({"grid": {"eta": []}}, "grid.eta: give a non-empty list"),
    ({"grid": {}}, "nothing to search"),
    ({"grid": {"eta": [1.0, -2.0]}}, "training.eta -2.0"),
    ({"measure": "test accuracy"}, "never on the test set"),
    ({"base": {"evaluate_on": "test"}}, "evaluate_on"),
    ({"random": {"trials": 2, "space": {"eta": {"log_uniform": [0, 1]}}}}, "0 < low < high"),
    ({"random": {"trials": 2, "space": {"eta": {"uniform": [1.0, 1.0]}}}}, "with low < high"),
    ({"random": {"trials": 2, "space": {"eta": {"log_uniform": [0.1, float("inf")]}}}}, "finite numbers"),
    ({"grid": {"eta": [1.0] * 200, "lmbda": [0.0] * 200}}, "80,000 trials (40,000 settings × 2 seeds); a sweep runs "
                                                           "at most 10,000"),
    ({"stages": [{"grid": {"eta": [1.0]}, "choose": "eta-threshold"}, {"grid": {"lmbda": [0.0, "big"]}}]},
     "training.lmbda 'big'"),
    ({"seeds": [True]}, "seeds [True]: give a list of seeds"),
    ({"seeds": [1, 1]}, "give each seed once"),
    ({"top": 21}, "top 21: give how many of the best trials to draw, 1 to 20"),
    ({"base": {"monitor": "training-cost"}}, "base.monitor 'training-cost': give a list"),
    ({"name": ".hidden"}, "name '.hidden': give a plain name"),
    ({"name": "a/b"}, "give a plain name"),
    ({"name": "x" * 65}, "give a plain name"),
    ({"note": ["text"]}, "note: give a sentence of text"),
    ({"grid": {"eta": [[[[[[[[[[[[[0.5]]]]]]]]]]]]]}}, "nested more than 12 deep"),
])
def test_a_bad_sweep_is_refused_naming_the_problem(change, message):
    values = {k: v for k, v in TINY.items() if not ("stages" in change and k == "grid")}
    with pytest.raises(ConfigError, match=re.escape(message)):
        Sweep.from_dict({**values, **change})


def test_the_cli_refuses_a_bad_sweep_in_one_line_before_starting_anything(tmp_path, capsys):
    spec = write_sweep(tmp_path / "bad.json", {**TINY, "grid": {"eta": [0.5], "hiden": [[5]]}})
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unknown setting 'hiden'" in error
    assert not (tmp_path / "out").exists()


def test_the_eta_threshold_is_the_largest_eta_whose_training_cost_falls_and_the_sweep_keeps_half():
    def record(eta, costs):
        return {"settings": {"eta": eta}, "summary": {"history": [{"metrics": {"training": {"cost": c}}}
                                                                  for c in costs]}}

    records = [record(0.1, [3, 2, 1]), record(1.0, [2, 1, 0.5]), record(10.0, [2, 3, 2.5]), record(100.0, [9, 8, 7])]
    choice, reason = eta_threshold(records)
    assert choice == {"eta": 0.5} and "up to η = 1" in reason and "from η = 10" in reason


# -- real Dask ---------------------------------------------------------------------------------

def test_a_local_cluster_runs_every_trial_reports_failures_and_a_rerun_skips_finished_trials(tmp_path, data_dir):
    values = {**TINY, "grid": {"eta": [0.1, 1.0], "train_size": [500, 99_999]}, "seeds": [1, 2]}
    sweep = Sweep.from_dict(values).with_base(source=str(data_dir))
    results = run_sweep(sweep, tmp_path, workers=2, progress=False, log=lambda m: None)
    assert results["ran"] == 4 and len(results["trials"]) == 4  # train_size 99,999 > 2,000 images: refused
    assert len(results["failed"]) == 4 and all("train_size" in f["error"] or "training" in f["error"]
                                               for f in results["failed"])
    assert {row["settings"]["train_size"] for row in results["trials"]} == {500}
    assert len({row["worker"] for row in results["trials"]}) == 2
    assert results["chosen"]["settings"] == results["kept"]
    # the test accuracy is the chosen model's on the test set, whose shifted labels it gets wrong, not on validation
    chosen = load_model(tmp_path / "models" / f"{results['chosen']['trial']}.npz")
    assert results["test_accuracy"] == evaluate(chosen, Monitor(load_mnist(data_dir).test))["accuracy"]
    assert results["chosen"]["validation accuracy"] > 0.9 and results["test_accuracy"] < 0.1
    for row in results["trials"]:
        record = json.loads((tmp_path / "trials" / f"{row['trial']}.json").read_text())
        assert record["summary"]["spec"]["data"]["evaluate_on"] == "validation" and record["summary"]["history"]
    for name in ("results.csv", "results.json", "report.md", "sweep-eta.png", "sweep-train_size.png",
                 "sweep-curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "test accuracy" in (tmp_path / "report.md").read_text()
    again = run_sweep(sweep, tmp_path, workers=2, progress=False, log=lambda m: None)
    assert again["ran"] == 0 and again["trials"] == results["trials"]  # the failed ones are tried again, and fail


def test_an_interrupted_sweep_resumes_with_only_the_missing_trials_and_the_same_table(tmp_path, data_dir):
    values = {**TINY, "base": {**TINY["base"], "epochs": 40, "source": str(data_dir)}, "seeds": 2}
    spec = write_sweep(tmp_path / "s.json", values)
    whole = run_sweep(Sweep.load(spec), tmp_path / "whole", workers=2, progress=False, log=lambda m: None)
    out = tmp_path / "resumed"
    command = [sys.executable, "-m", "nndl", "sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]
    child = subprocess.Popen(command, env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while child.poll() is None and len(list((out / "trials").glob("*.json"))) < 1:
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 130, child.stderr.read().decode()
    finally:
        child.kill()
    finished = len(list((out / "trials").glob("*.json")))
    assert 1 <= finished < 8 and not (out / "results.csv").exists()
    resumed = run_sweep(Sweep.load(spec), out, workers=2, progress=False, log=lambda m: None)
    assert resumed["ran"] == 8 - finished
    assert table(out) == table(tmp_path / "whole") and resumed["test_accuracy"] == whole["test_accuracy"]


@pytest.fixture
def scheduler(tmp_path):
    """A Dask scheduler as its own process on 127.0.0.1; yields (address, start_worker)."""
    scheduler_file = tmp_path / "scheduler.json"
    processes = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                  env=child_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    workers: list[subprocess.Popen] = []

    def start_worker() -> subprocess.Popen:
        worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file),
                                   "--nthreads", "1", "--host", "127.0.0.1", "--no-nanny", "--no-dashboard"],
                                  env=child_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers.append(worker)
        return worker

    try:
        deadline = time.monotonic() + 20
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield json.loads(scheduler_file.read_text())["address"], start_worker
    finally:
        for process in workers + processes:  # workers first, or a worker waits for the scheduler
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_a_sweep_sent_to_a_running_scheduler_completes_when_a_worker_dies_mid_sweep(tmp_path, data_dir, scheduler,
                                                                                    capsys):
    address, start_worker = scheduler
    doomed, survivor = start_worker(), start_worker()
    values = {**TINY, "base": {**TINY["base"], "epochs": 30, "source": str(data_dir)}, "seeds": 3}
    spec = write_sweep(tmp_path / "s.json", values)
    out = tmp_path / "out"
    killed = {}

    def kill_after_the_first_trial() -> None:
        trials = out / "trials"
        while not (trials.is_dir() and any(trials.glob("*.json"))):
            time.sleep(0.01)
        killed["finished"] = len(list(trials.glob("*.json")))
        doomed.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_after_the_first_trial, daemon=True)
    killer.start()
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", address, "--quiet"]) == 0
    killer.join(timeout=5)
    assert doomed.poll() is not None and survivor.poll() is None and killed["finished"] < 10
    results = json.loads((out / "results.json").read_text())
    assert len(results["trials"]) == 12 and not results["failed"]
    assert len(list((out / "trials").glob("*.json"))) == 12
    assert "Best: " in capsys.readouterr().out


def test_an_address_that_accepts_and_never_answers_is_refused_within_seconds(tmp_path, capsys):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel accepts connections; nothing ever answers them
    spec = write_sweep(tmp_path / "s.json", TINY)
    try:
        outcome = {}
        command = threading.Thread(target=lambda: outcome.setdefault("code", main(
            ["sweep", str(spec), "--out", str(tmp_path / "out"), "--data", str(tmp_path),
             "--scheduler", f"tcp://127.0.0.1:{silent.getsockname()[1]}"])), daemon=True)
        command.start()
        command.join(timeout=15)
        assert outcome.get("code") == 2
        assert "sent no Dask handshake" in capsys.readouterr().err
    finally:
        silent.close()


def test_an_address_where_nothing_listens_is_refused_at_once():
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(ConfigError, match="nothing answers"):
        probe_scheduler(f"tcp://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        probe_scheduler("http://somewhere")


def test_a_task_that_raises_is_tried_twice_then_reported_while_the_others_finish(tmp_path):
    def attempt(folder: str, fails: int) -> str:
        tries = len(list(Path(folder).iterdir()))
        (Path(folder) / f"try{tries}").touch()
        if tries < fails:
            raise ValueError(f"failure {tries + 1}")
        return "done"

    folders = {name: tmp_path / name for name in ("once", "always")}
    for folder in folders.values():
        folder.mkdir()
    with Engine(workers=1, progress=False) as engine:
        outcomes = {o.key: o for o in engine.run(attempt, {"once": (None, (str(folders["once"]), 1)),
                                                           "always": (None, (str(folders["always"]), 99))})}
    assert outcomes["once"].result == "done" and outcomes["once"].error is None
    assert outcomes["always"].error.startswith("ValueError: failure 2")
    assert len(list(folders["always"].iterdir())) == 2  # the first try and one retry


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log file"])
def test_the_engine_draws_its_progress_bar_on_a_terminal_only(capsys, monkeypatch, terminal):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    with Engine(workers=1) as engine:
        assert [o.result for o in engine.run(abs, {"a": (None, (-2,))})] == [2]
    assert ("trials: 100%" in capsys.readouterr().err) == terminal


def drop_an_interrupt() -> None:
    """A Ctrl-C that arrives while a weakref callback runs: Python prints its KeyboardInterrupt and drops it."""
    class Thing:
        pass

    thing = Thing()
    watch = weakref.ref(thing, lambda ref: signal.raise_signal(signal.SIGINT))
    del thing
    assert watch() is None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped one, on purpose
def test_a_ctrl_c_that_python_drops_still_stops_the_engine_within_a_second():
    # CI saw it: the Ctrl-C landed in one of Dask's weakref callbacks and the sweep ran on to the end, exit 0
    started = time.monotonic()
    with Engine(workers=2, progress=False) as engine:
        with pytest.raises(KeyboardInterrupt):
            for outcome in engine.run(time.sleep, {"short": (None, (0,)), "long": (None, (60,))}):
                drop_an_interrupt()
    assert time.monotonic() - started < 30
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # left as it was


@pytest.mark.parametrize("measure, ranking", [("validation accuracy", [1.0, 3.0, 0.1]),
                                              ("validation cost", [0.1, 3.0, 1.0])])
def test_a_stage_ranks_settings_by_their_mean_over_seeds_best_first(measure, ranking):
    from nndl.metrics import Measure
    from nndl.runs.sweep import group_by_settings

    def record(eta, seed, value):
        return {"settings": {"eta": eta}, "seed": seed, "value": value, "fingerprint": f"{eta}/{seed}", "best_epoch": 0}

    values = {0.1: (0.2, 0.4), 1.0: (0.7, 0.7), 3.0: (0.95, 0.1)}  # means 0.3, 0.7, 0.525
    records = [record(eta, seed, value) for eta, pair in values.items() for seed, value in enumerate(pair, 1)]
    groups = group_by_settings(records, Measure.parse(measure))
    assert [g["settings"]["eta"] for g in groups] == ranking
    assert [g["mean"] for g in groups] == pytest.approx([sum(values[eta]) / 2 for eta in ranking])
    assert groups[1]["best_trial"] == ("3.0/1" if ranking[0] == 1.0 else "3.0/2")  # its best seed by the measure
