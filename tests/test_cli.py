import json
import subprocess
import sys
from pathlib import Path

import pytest

from nndl.cli import main
from nndl.io import load_model


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
