"""The book's experiments on the Dask engine: the same numbers as a one-process run, seed for seed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from conftest import write_fake_mnist
from nndl.app.cli import main
from nndl.runs.engine import Engine
from nndl.runs.experiments import Experiment, Row, get_experiment, run_experiment

NAMES = ("weight-init", "multiple-eta")


def numbers(folder: Path) -> dict[str, list[dict]]:
    """Every history file's epochs and kept scores, without the wall-clock times."""
    files = sorted(folder.glob("history-*.json"))
    assert files
    runs = {}
    for path in files:
        summary = json.loads(path.read_text())
        epochs = [{k: v for k, v in record.items() if k != "seconds"} for record in summary["history"]]
        runs[path.name] = [epochs, summary["kept"], summary["spec"]]
    return runs


def test_the_whole_table_on_two_workers_gives_the_numbers_of_a_one_process_run(tmp_path, capsys):
    data = write_fake_mnist(tmp_path / "mnist", n_train=11_000, side=8)
    assert main(["experiment", "run", "--all", "--quick", "--seeds", "1", "--workers", "2", "--data", str(data),
                 "--out", str(tmp_path / "dask")]) == 0
    assert "Wrote" in capsys.readouterr().out and (tmp_path / "dask" / "report.md").is_file()
    for name in NAMES:
        run_experiment(get_experiment(name), tmp_path / "alone", seeds=1, quick=True, data_dir=str(data),
                       log=lambda m: None)
        assert numbers(tmp_path / "dask" / name) == numbers(tmp_path / "alone" / name)
    workers = {json.loads(p.read_text())["worker"] for p in (tmp_path / "dask").glob("*/history-*.json")}
    assert len(workers) == 2  # trained on the cluster, by both workers


def test_an_ensemble_on_the_engine_equals_one_trained_in_one_process(tmp_path):
    data = write_fake_mnist(tmp_path / "mnist", n_train=10_300, n_test=200, side=4)
    experiment = Experiment("tiny", "a tiny one", "-", {"run": {"hidden": [5], "epochs": 2}},
                            (Row("together", "run", "ensemble test_accuracy"),))
    alone = run_experiment(experiment, tmp_path / "alone", seeds=2, data_dir=str(data), log=lambda m: None)
    with Engine(workers=2, progress=False) as engine:
        spread = run_experiment(experiment, tmp_path / "dask", seeds=2, data_dir=str(data), log=lambda m: None,
                                engine=engine)
    assert spread["rows"] == alone["rows"]
    assert len(list((tmp_path / "dask" / "tiny").glob("model-run-seed*.npz"))) == 2


def test_experiment_run_rejects_a_bad_worker_count_in_one_line(tmp_path, capsys):
    assert main(["experiment", "run", "weight-init", "--quick", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert "--workers 0: must be at least 1" in capsys.readouterr().err


def test_a_long_experiment_checkpoints_on_the_workers_and_resumes_an_interrupted_run(tmp_path):
    from nndl.runs.checkpoint import checkpoint_files, latest_checkpoint
    from nndl.runs.runner import run_spec
    from test_resume import StopAt

    data = write_fake_mnist(tmp_path / "mnist", n_train=10_300, n_test=200, side=4)
    experiment = Experiment("hours", "a long one", "-", {"run": {"hidden": [5], "epochs": 3}},
                            (Row("test", "run", "kept test_accuracy"),), long=True)
    spec = experiment.specs()["run"].replace(source=str(data), seed=1)
    folder = tmp_path / "dask" / "hours" / "checkpoints" / "history-run-seed1"
    first = run_spec(spec, checkpoint=folder, callbacks=[StopAt(1, 5)])  # an attempt stopped in epoch 1
    assert first.run.interrupted
    with Engine(workers=1, progress=False) as engine:
        said: list[str] = []
        outcome = run_experiment(experiment, tmp_path / "dask", seeds=1, data_dir=str(data), log=said.append,
                                 engine=engine)
    assert said[0].startswith("Dask: 1 run to train on 1 worker")  # at once, not when the first run ends
    summary = json.loads((tmp_path / "dask" / "hours" / "history-run-seed1.json").read_text())
    # the report's training time counts the first attempt's epoch too, not only the worker's own seconds
    assert outcome["training_seconds"] == sum(record["seconds"] for record in summary["history"])
    assert summary["worker"] != "local"  # trained on the cluster
    assert summary["history"][0]["seconds"] == first.summary["history"][0]["seconds"]  # epoch 0 resumed, not redone
    assert latest_checkpoint(folder).position.epoch == 3 and len(checkpoint_files(folder)) <= 2
    alone = run_spec(spec)
    assert [r["metrics"] for r in summary["history"]] == [r["metrics"] for r in alone.summary["history"]]


def test_a_long_experiment_trained_here_says_each_epoch_as_it_ends(tmp_path):
    data = write_fake_mnist(tmp_path / "mnist", n_train=10_300, n_test=200, side=4)
    experiment = Experiment("hours", "a long one", "-", {"run": {"hidden": [5], "epochs": 3}},
                            (Row("test", "run", "kept test_accuracy"),), long=True)
    said: list[str] = []
    run_experiment(experiment, tmp_path, seeds=1, data_dir=str(data), log=said.append)
    assert [line.split(": ")[2] for line in said[:3]] == ["Epoch 0", "Epoch 1", "Epoch 2"]
    assert all(line.startswith("hours: run, seed 1: Epoch ") and " / 200 (test, " in line for line in said[:3])
    assert said[3].startswith("hours: run, seed 1: best test accuracy")
    short = dataclasses.replace(experiment, name="minutes", long=False)
    said.clear()
    run_experiment(short, tmp_path, seeds=1, data_dir=str(data), log=said.append)
    assert said[0].startswith("minutes: run, seed 1: best")  # a short one says each run only


def distorted_spec(data: Path) -> dict:
    from nndl.runs.spec import RunSpec

    return RunSpec().replace(source=str(data), hidden=[5], epochs=1, augment="rotate=8", workers=1, seed=1).to_dict()


def test_a_run_with_distortion_workers_trains_on_a_dask_worker(tmp_path):
    from nndl.runs.engine import train_task

    data = write_fake_mnist(tmp_path / "mnist", n_train=10_300, side=8)
    with Engine(workers=1, progress=False) as engine:
        [daemonic] = engine.run(is_a_daemon, {"d": (None, ())})
        [outcome] = engine.run(train_task, {"a": (None, (distorted_spec(data),))})
    assert daemonic.result is False  # so it may start the process that distorts the next epoch beside training
    assert outcome.error is None and outcome.result["worker"] != "local"


def is_a_daemon() -> bool:
    import multiprocessing

    return multiprocessing.current_process().daemon


def train_in_a_daemon(spec: dict, results) -> None:
    from nndl.runs.engine import train_task

    try:
        results.put(train_task(spec)["best"])
    except Exception as error:  # noqa: BLE001 - the test reports what went wrong
        results.put(repr(error))


def test_a_daemonic_worker_distorts_in_its_own_process_with_the_same_result(tmp_path):
    import multiprocessing

    from nndl.runs.runner import run_spec
    from nndl.runs.spec import RunSpec

    data = write_fake_mnist(tmp_path / "mnist", n_train=10_300, side=8)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    daemon = context.Process(target=train_in_a_daemon, args=(distorted_spec(data), results), daemon=True)
    daemon.start()
    got = results.get(timeout=120)
    daemon.join(10)
    assert got == run_spec(RunSpec.from_dict(distorted_spec(data))).summary["best"]  # a remote `dask worker` too
