"""The book's experiments as data: every one runs in quick form, writes JSON, PNGs and a report."""

import json
import re

import pytest

from nndl.app.cli import main
from nndl.data.mnist import load_mnist
from nndl.errors import ConfigError
from nndl.files.models import load_model
from nndl.metrics import ensemble_accuracy
from nndl.runs.experiments import EXPERIMENTS, Experiment, Figure, Row, measure, run_all, run_experiment
from nndl.runs.spec import RunSpec
from conftest import write_fake_mnist

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("experiments")
    report = run_all(out, seeds=1, quick=True, data_dir=str(mnist_dir), log=lambda message: None)
    return out, report


@pytest.mark.parametrize("name", [name for name, e in EXPERIMENTS.items() if not e.long])
def test_every_experiment_runs_in_quick_form(quick_run, name):
    out, _ = quick_run
    experiment = EXPERIMENTS[name]
    folder = out / name
    histories = sorted(folder.glob("history-*.json"))
    assert len(histories) == len(experiment.runs)  # one seed in quick form
    for path in histories:
        summary = json.loads(path.read_text())
        assert summary["history"] and summary["run"] in experiment.runs
        assert RunSpec.from_dict(summary["spec"])  # the run it ran is recorded, and valid
    for figure in experiment.figures:
        png = (folder / f"{figure.name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000
    report = (folder / "report.md").read_text()
    results = json.loads((folder / "results.json").read_text())
    assert [r["book"] for r in results["rows"]] == [row.book for row in experiment.rows]
    for row in experiment.rows:
        line = next(l for l in report.splitlines() if l.startswith(f"| {row.run} | {row.label} |"))
        book_cell = line.split("|")[3].strip()
        if row.book is None or isinstance(row.book, str):
            expected = "-" if row.book is None else row.book
        else:  # gradient norms keep three significant figures (0.017)
            expected = f"{row.book:.3g}" if " speed" in row.measure else f"{row.book:.2f}"
        assert book_cell.startswith(expected)


def test_the_combined_report_has_every_experiment(quick_run):
    out, report = quick_run
    text = report.read_text()
    for name, experiment in EXPERIMENTS.items():
        assert (f"## {name}:" in text) != experiment.long
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (out / link).is_file()


def test_overfitting_draws_four_figures_over_the_right_epochs(quick_run):
    out, _ = quick_run
    figures = {f["name"]: f["series"]["1,000 images"]
               for f in json.loads((out / "overfitting" / "results.json").read_text())["figures"]}
    # quick form: 8 epochs stand for the book's 400, so epochs 200-399 become 4-7
    assert figures["overfitting1"] == {"first": 4, "last": 7, "points": 4}
    assert figures["overfitting2"] == {"first": 4, "last": 7, "points": 4}
    assert figures["overfitting3"] == {"first": 0, "last": 7, "points": 8}
    assert figures["overfitting4"] == {"first": 0, "last": 7, "points": 8}


def test_more_data_is_one_point_per_training_set_size(quick_run):
    out, _ = quick_run
    figure = json.loads((out / "more-data" / "results.json").read_text())["figures"][0]
    assert figure["series"]["nndl"]["points"] == 9
    assert figure["series"]["book"] == {"first": 100, "last": 50_000, "points": 9}  # the book's curve beside it


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epoch": 3}, "unknown setting 'epoch'; known settings: "),
        ({"eta": -1.0}, "training.eta -1.0: must be greater than 0.0"),
        ({"cost": "hinge"}, "network.cost 'hinge': choose from quadratic"),
        ({"monitor": ["training-loss"]}, "monitoring.monitor 'training-loss'"),
        ({"augment": "melt=2"}, "unknown distortion 'melt'"),
    ],
)
def test_a_broken_run_is_refused_when_the_registry_loads(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Experiment("broken", "a broken one", "-", {"run": settings}, (Row("x", "run", "best test_accuracy"),))


@pytest.mark.parametrize(
    "rows, figures, message",
    [
        ([("x", "other run", "best test_accuracy")], [], "row 'x' names run 'other run'"),
        ([("x", "run", "best training_cost")], [], "needs the training cost, which its run does not record"),
        ([("x", "run", "finest test_accuracy")], [], "begin with one of best"),
        ([], [("f", "t", "validation_accuracy")], "figure 'f' needs the validation accuracy"),
        ([], [("f", "t", "test_accuracy", ("nope",))], "figure 'f' names run 'nope'"),
    ],
)
def test_cross_references_are_checked_when_the_registry_loads(rows, figures, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Experiment("broken", "t", "-", {"run": {}}, tuple(Row(*r) for r in rows), tuple(Figure(*f) for f in figures))


def record(epoch, accuracy, cost):
    return {"epoch": epoch, "metrics": {"test": {"accuracy": accuracy, "cost": cost}}}


def test_measures():
    summary = {"history": [record(0, 0.5, 2.0), record(1, 0.7, 1.0), record(2, 0.6, 1.5)], "kept": {"test": 0.65}}
    assert measure(summary, "best test_accuracy") == 70.0
    assert measure(summary, "best test_cost") == 1.0  # lower is better for a cost
    assert measure(summary, "final test_accuracy") == 60.0
    assert measure(summary, "first test_accuracy") == 50.0
    assert measure(summary, "kept test_accuracy") == 65.0
    assert measure(summary, "epoch-of-best test_accuracy") == 1
    assert measure(summary, "epoch-of-best test_cost") == 1
    assert measure(summary, "epoch-of-min test_cost") == 1
    assert measure(summary, "epochs") == 3
    with pytest.raises(ConfigError, match="the training cost was not recorded"):
        measure(summary, "best training_cost")


def test_an_experiment_on_generated_data_resumes_and_keeps_quick_apart(tmp_path):
    data = write_fake_mnist(tmp_path / "data", n_train=10_300, n_test=30, side=4)
    experiment = Experiment("tiny", "a tiny one", "-", {"run": {"hidden": [5], "epochs": 2}},
                            (Row("best", "run", "best test_accuracy"),))
    logs = []
    first = run_experiment(experiment, tmp_path / "out", seeds=2, data_dir=str(data), log=logs.append)
    again = run_experiment(experiment, tmp_path / "out", seeds=2, data_dir=str(data), log=logs.append)
    assert sum("not rerun" in line for line in logs) == 2  # the second run skipped both finished runs
    assert first["rows"] == again["rows"]
    with pytest.raises(ConfigError, match="holds a full run's results"):
        run_experiment(experiment, tmp_path / "out", seeds=1, quick=True, data_dir=str(data), log=logs.append)


def test_an_ensemble_row_scores_the_kept_networks_of_every_seed_together(tmp_path):
    data = write_fake_mnist(tmp_path / "data", n_train=10_300, n_test=200, side=4)
    experiment = Experiment("tiny", "a tiny one", "-", {"run": {"hidden": [5], "epochs": 2}},
                            (Row("each", "run", "kept test_accuracy"), Row("together", "run", "ensemble test_accuracy")))
    assert experiment.ensembles == {"run"}
    outcome = run_experiment(experiment, tmp_path / "out", seeds=3, data_dir=str(data), log=lambda m: None)
    models = sorted((tmp_path / "out" / "tiny").glob("model-run-seed*.npz"))
    assert [p.name for p in models] == [f"model-run-seed{k}.npz" for k in (1, 2, 3)]
    networks = [load_model(p) for p in models]
    test = load_mnist(str(data)).test
    together = next(r for r in outcome["rows"] if r["label"] == "together")
    assert together["values"] == [100.0 * ensemble_accuracy(networks, test)["accuracy"]]
    each = next(r for r in outcome["rows"] if r["label"] == "each")
    assert each["values"] == [100.0 * test_accuracy for test_accuracy in
                              (ensemble_accuracy([n], test)["accuracy"] for n in networks)]  # each seed alone
    models[1].unlink()  # a finished run whose network is gone is trained again
    logs = []
    again = run_experiment(experiment, tmp_path / "out", seeds=3, data_dir=str(data), log=logs.append)
    assert sum("not rerun" in line for line in logs) == 2 and models[1].is_file()
    assert again["rows"] == outcome["rows"]


def test_an_ensemble_votes_with_the_mean_of_every_network_s_outputs():
    import numpy as np
    from nndl.data.mnist import Dataset
    from nndl.network import Network
    networks = [Network([16, 6, 10], seed=seed) for seed in (1, 2, 3)]
    images = np.random.default_rng(0).integers(0, 256, (300, 16), dtype=np.uint8)
    mean = np.mean([network.output_rows(images).astype(np.float64) for network in networks], axis=0)
    labels = np.argmax(mean, axis=1)  # the digits the three voting together choose, worked out here
    alone = [int(np.sum(network.predict(images) == labels)) for network in networks]
    assert max(alone) < 290  # no one network alone gives the vote's answers
    assert ensemble_accuracy(networks, Dataset(images, labels, "test")) == {"accuracy": 1.0, "correct": 300,
                                                                            "total": 300}


@pytest.mark.parametrize("measure_name", ["ensemble test_cost", "ensemble validation_cost"])
def test_an_ensemble_row_needs_an_accuracy(measure_name):
    with pytest.raises(ConfigError, match="an ensemble is scored by its accuracy"):
        Row("r", "run", measure_name)


def test_cli_experiment_list_run_and_plot(capsys, mnist_dir, tmp_path):
    assert main(["experiment", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in EXPERIMENTS)
    assert main(["experiment", "run", "multiple-eta", "--quick", "--out", str(tmp_path), "--data", str(mnist_dir)]) == 0
    capsys.readouterr()
    history = next((tmp_path / "multiple-eta").glob("history-*.json"))
    assert main(["plot", str(history), "--out", str(tmp_path / "plots")]) == 0
    for kind in ("accuracy", "cost"):
        assert (tmp_path / "plots" / f"{history.stem}-{kind}.png").read_bytes().startswith(PNG_MAGIC)


def test_cli_refuses_unknown_experiments_and_bad_histories(capsys, tmp_path):
    assert main(["experiment", "run", "chapter9"]) == 2
    assert "unknown experiment 'chapter9'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"history": 3}')
    assert main(["plot", str(bad)]) == 2
    assert "no per-epoch history" in capsys.readouterr().err


def test_a_test_measure_s_best_seed_is_the_one_best_on_validation_not_on_test():
    from nndl.runs.experiments import experiment_report, report_rows

    experiment = Experiment("picked", "seeds", "-", {"run": {"hidden": [5], "evaluate_on": "validation"}},
                            (Row("test accuracy at the best validation epoch", "run", "kept test_accuracy", 98.0),
                             Row("best validation accuracy", "run", "best validation_accuracy")))
    history = [{"epoch": 0, "seconds": 1.0, "eta": 0.1, "metrics": {"validation": {"accuracy": 0.99}}}]
    seeds = [{"kept": {"validation": 0.990, "test": 0.980}, "history": history},   # best on validation
             {"kept": {"validation": 0.985, "test": 0.987}, "history": history}]   # best on test
    rows = report_rows(experiment, {"run": seeds}, {})
    assert rows[0]["best"] == pytest.approx(98.0) and rows[0]["values"] == pytest.approx([98.0, 98.7])
    assert rows[0]["chosen_on_validation"] and not rows[1]["chosen_on_validation"]
    report = experiment_report(experiment, {"quick": False, "seeds": 2, "seconds": 1.0, "training_seconds": 2.0,
                                            "rows": rows, "figures": []})
    assert "| 98.00% | 98.00% | 98.35% | 98.00% / 98.70% |" in report and "the test set chooses nothing" in report
    without = report_rows(experiment, {"run": [{**s, "kept": {"test": s["kept"]["test"]}} for s in seeds]}, {})
    assert without[0]["best"] == pytest.approx(98.7)  # no validation figures: the best there is
