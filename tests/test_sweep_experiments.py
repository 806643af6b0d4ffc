"""The book's experiments on the Dask engine: the same numbers as a one-process run, seed for seed."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_fake_mnist
from nndl.app.cli import main
from nndl.runs.experiments import get_experiment, run_experiment

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


def test_experiment_run_rejects_a_bad_worker_count_in_one_line(tmp_path, capsys):
    assert main(["experiment", "run", "weight-init", "--quick", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert "--workers 0: must be at least 1" in capsys.readouterr().err
