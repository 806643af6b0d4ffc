import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nndl.app.cli import main
from nndl.files.models import load_model


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_prints_epochs_like_the_book_and_json_last(capsys, mnist_dir):
    code, out, err = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "3000", "--epochs", "2",
                         "--seed", "1", "--json")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[1].startswith("Epoch 0: ") and " / 10000 (test, " in lines[1]
    assert lines[2].startswith("Epoch 1: ")
    summary = json.loads(lines[-1])
    assert [r["epoch"] for r in summary["history"]] == [0, 1]
    assert all(0 < r["test_accuracy"] <= 1 and r["seconds"] > 0 for r in summary["history"])
    assert summary["settings"]["training"] == {"epochs": 2, "mini_batch_size": 10, "eta": 3.0, "lmbda": 0.0,
                                               "l1": 0.0, "momentum": 0.0, "seed": 1, "backprop": "matrix"}
    assert summary["settings"]["network"]["sizes"] == [784, 30, 10]
    assert summary["settings"]["data"]["train_size"] == 3000
    assert summary["best"]["accuracy"] == max(r["test_accuracy"] for r in summary["history"])
    assert summary["final"]["accuracy"] == summary["history"][-1]["test_accuracy"]


def test_same_seed_same_result(capsys, mnist_dir):
    results = []
    for _ in range(2):
        code, out, _ = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "1000", "--epochs", "1",
                           "--seed", "7", "--json", "--quiet")
        results.append(json.loads(out)["history"][0]["test_correct"])
    assert results[0] == results[1]


def test_train_save_then_evaluate(capsys, mnist_dir, tmp_path):
    model = tmp_path / "net.npz"
    code, out, _ = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "2000", "--epochs", "1",
                       "--hidden", "20", "--seed", "3", "--evaluate-on", "validation", "--dtype", "float64",
                       "--save", str(model), "--json", "--quiet")
    assert code == 0 and out.count("\n") == 1  # --quiet: only the JSON line
    trained = json.loads(out)
    assert trained["settings"]["network"]["sizes"] == [784, 20, 10]
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
        (["train", "--eta", "0"], "--eta: '0': must be greater than 0"),
        (["train", "--eta", "-3"], "must be greater than 0"),
        (["train", "--eta", "fast"], "'fast' is not a number"),
        (["train", "--mini-batch-size", "0"], "--mini-batch-size/-m: '0': must be at least 1"),
        (["train", "--sizes", "784,x,10"], "give whole numbers separated by commas"),
        (["train", "--sizes", "784,30", "--hidden", "30"], "not allowed with argument"),
        (["train", "--backprop", "loop"], "invalid choice: 'loop'"),
        (["train", "--colour"], "unrecognized arguments: --colour"),
        (["fly"], "invalid choice: 'fly'"),
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
        (["train", "--dropout", "1"], "--dropout: '1': must be at least 0 and less than 1"),
        (["train", "--momentum", "1.5"], "--momentum: '1.5': must be at least 0 and less than 1"),
        (["train", "--lmbda", "-1"], "--lmbda: '-1': must be at least 0.0"),
        (["train", "--cost", "hinge"], "invalid choice: 'hinge'"),
        (["train", "--monitor", "training-cost,loss"], "choose from training-cost, training-accuracy"),
        (["train", "--schedule", "cosine"], "invalid choice: 'cosine'"),
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
    assert summary["settings"]["network"] == {"sizes": [784, 20, 10], "cost": "log-likelihood",
                                              "activation": "relu", "output_activation": "softmax",
                                              "init": "he", "dropout": 0.2, "dtype": "float32"}
    assert summary["settings"]["training"]["lmbda"] == 5.0 and summary["settings"]["training"]["momentum"] == 0.5
    record = summary["history"][0]
    for key in ("training_cost", "training_accuracy", "validation_cost", "validation_accuracy"):
        assert key in record
    assert record["training_total"] == 1000 and record["validation_total"] == 10_000
    assert load_model(model).describe() == summary["settings"]["network"]


def test_halving_schedule_from_the_command_line(capsys, mnist_dir):
    code, out, _ = run(capsys, "train", "--data", str(mnist_dir), "--train-size", "300", "--epochs", "15",
                       "--cost", "cross-entropy", "--eta", "4", "--schedule", "halve-on-plateau", "--patience", "1",
                       "--evaluate-on", "validation", "--seed", "2", "--json", "--quiet")
    assert code == 0
    summary = json.loads(out)
    etas = [r["eta"] for r in summary["history"]]
    assert etas[0] == 4 and etas == sorted(etas, reverse=True) and len(set(etas)) > 1
    assert all(np.log2(4 / eta) == int(np.log2(4 / eta)) for eta in etas)  # η₀ / 2^k
    assert (summary["settings"]["recipe"]["schedule"], summary["settings"]["recipe"]["patience"]) == \
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
