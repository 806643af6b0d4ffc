import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nndl.app.cli import main
from nndl.data.mnist import load_mnist
from nndl.files.models import load_model
from conftest import write_fake_mnist


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_prints_epochs_like_the_book_and_json_alone_on_stdout(capsys, mnist_dir):
    code, out, err = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "3000", "--epochs", "2",
                         "--seed", "1", "--json")
    assert code == 0
    lines = err.strip().splitlines()  # with --json, the lines for people go to stderr
    assert lines[0].startswith("Training [784, 30, 10]")
    assert lines[1].startswith("Epoch 0: ") and " / 10000 (test, " in lines[1]
    assert lines[2].startswith("Epoch 1: ")
    assert out.count("\n") == 1
    summary = json.loads(out)
    assert [r["epoch"] for r in summary["history"]] == [0, 1]
    assert all(0 < r["metrics"]["test"]["accuracy"] <= 1 and r["seconds"] > 0 for r in summary["history"])
    assert summary["spec"]["training"] == {"epochs": 2, "mini_batch_size": 10, "eta": 3.0, "lmbda": 0.0,
                                           "l2_scale": "training-set", "l1": 0.0, "momentum": 0.0,
                                           "backprop": "matrix", "seed": 1}
    assert summary["network"]["sizes"] == [784, 30, 10]
    assert summary["data"]["train_size"] == 3000
    assert summary["best"]["accuracy"] == max(r["metrics"]["test"]["accuracy"] for r in summary["history"])
    assert summary["final"]["accuracy"] == summary["history"][-1]["metrics"]["test"]["accuracy"]


def test_the_readmes_json_recipe_then_plot(tmp_path):
    """`nndl train … --json > deep1.json` then `nndl plot deep1.json`, as the README writes it, in a shell."""
    data = write_fake_mnist(tmp_path / "data", n_train=10_500, n_test=50, side=6)
    nndl = Path(sys.executable).with_name("nndl")
    trained = subprocess.run(f"{nndl} train --data {data} --hidden 9 --epochs 3 --train-size 400 --checkpoint ck1/ "
                             "--save deep1.npz --seed 1 --json > deep1.json", shell=True, cwd=tmp_path,
                             capture_output=True, text=True)
    plotted = subprocess.run([nndl, "plot", "deep1.json"], cwd=tmp_path, capture_output=True, text=True)
    assert trained.returncode == 0 and plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "deep1-accuracy.png").stat().st_size > 0
    assert "Epoch 2: " in trained.stderr  # the lines for people are not lost


def test_same_seed_same_result(capsys, mnist_dir):
    results = []
    for _ in range(2):
        code, out, _ = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "1000", "--epochs", "1",
                           "--seed", "7", "--json", "--quiet")
        results.append(json.loads(out)["history"][0]["metrics"]["test"]["correct"])
    assert results[0] == results[1]


def test_train_save_then_evaluate(capsys, mnist_dir, tmp_path):
    model = tmp_path / "net.npz"
    code, out, _ = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "2000", "--epochs", "1",
                       "--hidden", "20", "--seed", "3", "--evaluate-on", "validation", "--dtype", "float64",
                       "--save", str(model), "--json", "--quiet")
    assert code == 0 and out.count("\n") == 1  # --quiet: only the JSON line
    trained = json.loads(out)
    assert trained["network"]["sizes"] == [784, 20, 10]
    assert load_model(model).metadata["history"] == trained["history"]
    code, out, _ = run(capsys, "evaluate", str(model), "--data", str(mnist_dir), "--json")
    assert code == 0
    scores = json.loads(out)
    assert scores["validation"]["correct"] == trained["final"]["correct"]
    assert scores["network"]["dtype"] == "float64"
    assert 0 < scores["test"]["cost"] < 1
    code, out, _ = run(capsys, "evaluate", str(model), "--data", str(mnist_dir))
    assert "validation:" in out and "test:" in out and "cost" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--eta", "0"], "--eta: eta 0.0: must be greater than 0.0"),
        (["train", "--eta", "-3"], "must be greater than 0"),
        (["train", "--eta", "fast"], "'fast': give a number"),
        (["train", "--eta", "nan"], "eta nan: must be a finite number"),
        (["train", "--mini-batch-size", "0"], "--mini-batch-size/-m: mini_batch_size 0: must be at least 1"),
        (["train", "--epochs", "1e12"], "'1e12': give a number"),
        (["train", "--epochs", "9999999999"], "must be at most 1000000000"),
        (["train", "--sizes", "784,x,10"], "give whole numbers separated by commas"),
        (["train", "--backprop", "loop"], "backprop 'loop': choose from matrix, per-example"),
        (["train", "--colour"], "unrecognized arguments: --colour"),
        (["fly"], "invalid choice: 'fly'"),
        (["serve", "--port", "70000"], "--port: '70000': must be from 0 to 65535"),
        (["serve", "--abandon-after", "nan"], "--abandon-after: 'nan': must be a number from 0 to 604800"),
        (["serve", "--abandon-after", "-1"], "must be a number from 0 to 604800"),
        (["inspect", "model.npz", "--gallery", "-1"], "--gallery: '-1': must be from 0 to 10000"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sizes", "700,30,10"], "first layer must have 784 neurons"),
        (["--sizes", "784,30,5"], "last layer must have at least 10 neurons"),
        (["--train-size", "60000"], "choose from 1 to 50000"),
        (["--sizes", "784,30", "--hidden", "30"], "give one of --hidden, --sizes and --layers, not --hidden and --sizes"),
    ],
)
def test_settings_that_do_not_fit_the_data(capsys, mnist_dir, extra, message):
    code, _, err = run(capsys, "train", "--data", str(mnist_dir), "--epochs", "1", *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_data_and_model_problems_are_one_line(capsys, tmp_path, fake_mnist_dir):
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "nowhere"))
    assert code == 2 and "no such folder" in err and "Traceback" not in err
    (fake_mnist_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    code, _, err = run(capsys, "train", "--data", str(fake_mnist_dir))
    assert code == 2 and "train-labels-idx1-ubyte.gz: corrupt gzip" in err
    bad_model = tmp_path / "bad.npz"
    bad_model.write_text("not a model")
    code, _, err = run(capsys, "evaluate", str(bad_model), "--data", str(fake_mnist_dir))
    assert code == 2 and "not a readable nndl model file" in err


def test_gradcheck_command(capsys):
    code, out, _ = run(capsys, "gradcheck")
    assert code == 0 and "quadratic" in out and "ok" in out and "All gradients agree" in out
    assert "[4, 5, 4, 3]" in out and "conv3x3,pool2,full4" in out  # fully connected and convolutional
    code, out, _ = run(capsys, "gradcheck", "--layers", "conv2x2,full3", "--json")
    assert code == 0 and {r["network"] for r in json.loads(out)["results"]} == {"conv2x2,full3"}
    with pytest.raises(SystemExit) as exit_info:
        main(["gradcheck", "--layers", "conv2x7"])
    assert exit_info.value.code == 2 and "larger than its 6×6 input" in capsys.readouterr().err
    code, out, _ = run(capsys, "gradcheck", "--sizes", "3,4,2", "--json")
    result = json.loads(out)
    assert code == 0 and result["passed"] and result["results"][0]["max_relative_error"] < 1e-6


def test_help_explains_with_the_books_terms(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for phrase in ("learning rate η", "mini-batch", "per-example", "N(0,1)"):
        assert phrase in out


def test_the_console_command_and_python_m():
    console = Path(sys.executable).with_name("nndl")  # installed beside this Python by pip
    for command in ([str(console)], [sys.executable, "-m", "nndl"]):
        done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
        assert done.stdout.startswith("nndl ")
    done = subprocess.run([sys.executable, "-m", "nndl", "train", "--eta", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dropout", "1"], "--dropout: dropout 1.0: must be in [0.0, 1.0)"),
        (["train", "--momentum", "1.5"], "--momentum: momentum 1.5: must be in [0.0, 1.0)"),
        (["train", "--lmbda", "-1"], "--lmbda: lmbda -1.0: must be at least 0.0"),
        (["train", "--cost", "hinge"], "cost 'hinge': choose from quadratic, cross-entropy, log-likelihood"),
        (["train", "--monitor", "training-cost,loss"], "choose from training-cost, training-accuracy"),
        (["train", "--schedule", "linear"], "schedule 'linear': choose from halve-on-plateau, exponential, step, cosine"),
    ],
)
def test_bad_chapter3_options(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_invalid_combination_is_refused(capsys, mnist_dir):
    code, _, err = run(capsys, "train", "--data", str(mnist_dir), "--cost", "cross-entropy",
                       "--output-activation", "softmax")
    assert code == 2 and "cross-entropy cost needs a sigmoid output layer, not softmax" in err


def test_chapter3_options_reach_the_network_and_the_history(capsys, mnist_dir, tmp_path):
    model = tmp_path / "ch3.npz"
    code, out, _ = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "1000", "--epochs", "2",
                       "--hidden", "20", "--cost", "log-likelihood", "--activation", "relu", "--init", "he",
                       "--eta", "0.1", "--lmbda", "5", "--l1", "0.1", "--dropout", "0.2", "--momentum", "0.5",
                       "--monitor", "training-cost,training-accuracy,evaluation-cost", "--evaluate-on",
                       "validation", "--seed", "1", "--save", str(model), "--json", "--quiet")
    assert code == 0
    summary = json.loads(out)
    assert summary["network"] == {"sizes": [784, 20, 10], "cost": "log-likelihood",
                                  "activation": "relu", "output_activation": "softmax",
                                  "init": "he", "dropout": 0.2, "dtype": "float32"}
    assert summary["spec"]["training"]["lmbda"] == 5.0 and summary["spec"]["training"]["momentum"] == 0.5
    metrics = summary["history"][0]["metrics"]
    assert set(metrics["training"]) == set(metrics["validation"]) == {"accuracy", "correct", "total", "cost"}
    assert metrics["training"]["total"] == 1000 and metrics["validation"]["total"] == 10_000
    assert load_model(model).describe() == summary["network"]


def test_halving_schedule_from_the_command_line(capsys, mnist_dir):
    code, out, _ = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "300", "--epochs", "15",
                       "--cost", "cross-entropy", "--eta", "4", "--schedule", "halve-on-plateau", "--patience", "1",
                       "--evaluate-on", "validation", "--seed", "2", "--json", "--quiet")
    assert code == 0
    summary = json.loads(out)
    etas = [r["eta"] for r in summary["history"]]
    assert etas[0] == 4 and etas == sorted(etas, reverse=True) and len(set(etas)) > 1
    assert all(np.log2(4 / eta) == int(np.log2(4 / eta)) for eta in etas)  # η₀ / 2^k
    assert (summary["spec"]["monitoring"]["schedule"], summary["spec"]["monitoring"]["patience"]) == \
        ("halve-on-plateau", 1)


def test_convert_between_npz_and_the_books_json(capsys, mnist_dir, tmp_path):
    npz, book, again = tmp_path / "a.npz", tmp_path / "a.json", tmp_path / "b.npz"
    run(capsys, "train", "--data", str(mnist_dir), "--train-size", "500", "--epochs", "1", "--cost",
        "cross-entropy", "--seed", "4", "--save", str(npz), "--quiet")
    assert run(capsys, "convert", str(npz), str(book))[0] == 0
    assert json.loads(book.read_text())["cost"] == "CrossEntropyCost"
    assert run(capsys, "convert", str(book), str(again))[0] == 0
    scores = []
    for path in (npz, book, again):
        code, out, _ = run(capsys, "evaluate", str(path), "--data", str(mnist_dir), "--json")
        scores.append(json.loads(out)["test"]["correct"])
    assert code == 0 and scores[0] == scores[1] == scores[2]


def test_train_evaluate_and_resume_on_generated_data(capsys, tmp_path):
    """The whole CLI path on small generated IDX files (no MNIST needed)."""
    data = write_fake_mnist(tmp_path / "data", n_train=10_500, n_test=50, side=6)
    model, folder = tmp_path / "m.npz", tmp_path / "ck"
    code, out, _ = run(capsys, "train", "--data", str(data), "--hidden", "9", "--epochs", "3", "--seed", "2",
                       "--checkpoint", str(folder), "--save", str(model), "--json", "--quiet")
    summary = json.loads(out)
    assert code == 0 and summary["network"]["sizes"] == [36, 9, 10] and len(summary["history"]) == 3
    code, out, _ = run(capsys, "evaluate", str(model), "--data", str(data), "--json")
    assert code == 0 and json.loads(out)["test"]["total"] == 50
    code, _, err = run(capsys, "train", "--resume", str(folder), "--eta", "0.5")
    assert code == 2 and "training.eta: 3.0 → 0.5" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, "train", "--resume", str(folder), "--epochs", "3", "--json", "--quiet")
    assert code == 0 and json.loads(out)["history"] == summary["history"]  # finished: nothing more to train


def test_print_spec_then_train_from_it(capsys, tmp_path):
    data = write_fake_mnist(tmp_path / "data", n_train=10_100, n_test=20, side=4)
    code, out, _ = run(capsys, "train", "--data", str(data), "--hidden", "5,4", "--eta", "0.5", "--cost",
                       "cross-entropy", "--epochs", "2", "--monitor", "training-cost", "--print-spec")
    spec = json.loads(out)
    assert code == 0 and spec["network"]["hidden"] == [5, 4] and spec["training"]["eta"] == 0.5
    assert spec["monitoring"]["monitor"] == ["training-cost"] and spec["data"]["source"] == str(data)
    (tmp_path / "run.json").write_text(out)
    code, out, _ = run(capsys, "train", "--spec", str(tmp_path / "run.json"), "--seed", "1", "--json", "--quiet")
    summary = json.loads(out)
    assert code == 0 and summary["network"]["sizes"] == [16, 5, 4, 10] and summary["spec"]["training"]["eta"] == 0.5
    (tmp_path / "bad.json").write_text('{"training": {"eta": "fast"}}')
    code, _, err = run(capsys, "train", "--spec", str(tmp_path / "bad.json"))
    assert code == 2 and "training.eta 'fast': must be a number" in err


@pytest.mark.parametrize("target, message", [
    ("", "--save: empty file name"),
    ("model.txt", "name a .npz file"),
    ("{tmp}", "is a folder"),
    ("{tmp}/missing/m.npz", "does not exist"),
    ("/dev/null", "is a device, FIFO or socket"),
])
def test_bad_save_targets_are_refused_before_training(capsys, tmp_path, target, message):
    code, out, err = run(capsys, "train", "--epochs", "1", "--save", target.format(tmp=tmp_path))
    assert code == 2 and message in err and out == ""


def test_a_diverging_run_stops_with_the_likely_cause(capsys, tmp_path):
    data = write_fake_mnist(tmp_path / "data", n_train=10_100, n_test=20, side=4)
    code, out, err = run(capsys, "train", "--data", str(data), "--activation", "relu", "--init", "he",
                         "--cost", "log-likelihood", "--eta", "1e30", "--epochs", "5", "--seed", "1", "--json",
                         "--quiet", "--save", str(tmp_path / "m.npz"))
    assert code == 2 and "training diverged at epoch 0" in err and "η = 1e+30" in err
    assert len(err.strip().splitlines()) == 1  # no NumPy warnings around it
    summary = json.loads(out)  # strict JSON: no bare NaN
    assert len(summary["history"]) == 1 and summary["diverged"]
    assert all(np.isfinite(p).all() for p in load_model(tmp_path / "m.npz").parameters())  # the last good weights


def test_evaluate_several_models_and_their_ensemble(capsys, tmp_path):
    data = write_fake_mnist(tmp_path / "data", n_train=10_300, n_test=40, side=4)
    paths = [tmp_path / f"m{seed}.npz" for seed in (1, 2, 3)]
    for seed, path in zip((1, 2, 3), paths):
        assert run(capsys, "train", "--data", str(data), "--hidden", "6", "--epochs", "2", "--seed", str(seed),
                   "--save", str(path), "--quiet")[0] == 0
    code, out, _ = run(capsys, "evaluate", *map(str, paths), "--data", str(data), "--json")
    result = json.loads(out)
    assert code == 0 and [m["model"] for m in result["models"]] == list(map(str, paths))
    networks = [load_model(p) for p in paths]
    mnist = load_mnist(data)
    votes = np.argmax(sum(n.output_rows(mnist.test.images) for n in networks), axis=1)
    assert result["ensemble"]["test"]["correct"] == int(np.sum(votes == mnist.test.labels))
    code, out, _ = run(capsys, "evaluate", *map(str, paths), "--data", str(data))
    assert "ensemble of 3 (averaged outputs)" in out
    wrong = len(mnist.test) - result["ensemble"]["test"]["correct"]
    code, out, err = run(capsys, "evaluate", *map(str, paths), "--data", str(data), "--json", "--mistakes",
                         str(tmp_path / "mistakes.png"))
    assert code == 0 and json.loads(out)["ensemble"] == result["ensemble"]  # the figure changes no number
    assert f"Drew the {wrong} of the {wrong} test digits got wrong" in err
    assert (tmp_path / "mistakes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run(capsys, "evaluate", str(paths[0]), "--mistakes", str(tmp_path / "no" / "m.png"))
    assert code == 2 and "--mistakes" in err and "does not exist" in err



def test_sweep_workers_are_bounded_before_a_cluster_starts(capsys):
    assert main(["sweep", "--example", "book-strategy", "--workers", "100000"]) == 2
    err = capsys.readouterr().err
    assert "--workers 100000: at most 64 worker processes" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["evaluate", "m.npz", "--mistakes", "a\x00.png"], ["train", "--save", "m\x00.npz"],
                                  ["experiment", "run", "weight-init", "--out", "x\x00y"]])
def test_a_nul_byte_in_an_output_name_is_one_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "NUL byte" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
