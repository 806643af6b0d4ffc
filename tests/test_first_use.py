"""What a new user meets first: a mistyped option, the book's (x, y) pairs, epoch lines from Python, where the
data are found, and the messages naming folders."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nndl
import nndl.data.mnist as mnist_module
from conftest import REPO, write_fake_mnist
from nndl import ConfigError, Dataset, EpochPrinter, Network, TrainingConfig, train
from nndl.app.cli import build_parser, main
from nndl.data.mnist import checkout_data_dir, load_mnist
from nndl.files.models import save_model
from nndl.metrics import Monitor

# A command line each subcommand accepts, so that a mistyped option is the only thing wrong with it.
COMPLETE = {
    "train": [], "evaluate": ["m.npz"], "expand": ["out", "--shift-one-pixel"], "augment preview": ["--out", "p.png"],
    "experiment list": [], "experiment run": ["--all"], "plot": ["h.json"], "convert": ["a.npz", "b.npz"],
    "gradcheck": [], "predict": ["m.npz", "a.png"], "inspect": ["m.npz"], "serve": [],
    "sweep": ["--example", "book-strategy"],
}


def subcommands(parser, words=()):
    """(words, parser) for every subcommand that runs something, nested ones included."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield " ".join(words), parser
    for action in actions:
        for name, child in action.choices.items():
            yield from subcommands(child, (*words, name))


def mistyped_options() -> list:
    """(subcommand, argv, the option meant) for every option of every subcommand, its last letter doubled."""
    return [pytest.param(command, [*command.split(), *COMPLETE[command], option + option[-1]], option,
                         id=f"{command} {option}")
            for command, parser in subcommands(build_parser())
            for option in parser._option_string_actions if option.startswith("--") and option != "--help"]


def test_every_subcommand_has_a_complete_command_line():
    assert sorted(COMPLETE) == sorted(command for command, _ in subcommands(build_parser()))


@pytest.mark.parametrize("command, argv, meant", mistyped_options())
def test_a_mistyped_option_gets_the_closest_one_in_one_line(capsys, command, argv, meant):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"nndl {command}: error: unrecognized arguments: {argv[-1]}; did you mean {meant}?")


def test_the_suggestion_reads_past_a_value_and_an_equals_sign(capsys):
    for argv in (["train", "--etta", "5"], ["train", "--etta=5"], ["train", "--ETA", "5"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "; did you mean --eta? (see 'nndl train --help')" in capsys.readouterr().err


@pytest.mark.parametrize("argv, meant", [(["trian"], "train"), (["Serve"], "serve"), (["experiment", "rn"], "run"),
                                         (["experiment", "lsit"], "list"), (["predcit"], "predict")])
def test_a_mistyped_subcommand_gets_the_closest_one_in_one_line(capsys, argv, meant):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"invalid choice: {argv[-1]!r}" in err and f"; did you mean {meant}? (see 'nndl" in err


def test_a_subcommand_like_none_gets_no_guess(capsys):
    with pytest.raises(SystemExit):
        main(["fly"])
    err = capsys.readouterr().err
    assert "invalid choice: 'fly' (choose from train, evaluate" in err and "did you mean" not in err


# -- the book's data layout ---------------------------------------------------------------------

def book_pairs(dataset: Dataset, one_hot: bool) -> list:
    """``dataset`` as mnist_loader.load_data_wrapper() gives it: (x column, one-hot column or digit) pairs."""
    columns = [image.reshape(-1, 1) for image in dataset.images]
    return [(x, np.eye(10)[:, [label]] if one_hot else label) for x, label in zip(columns, dataset.labels)]


@pytest.fixture
def small(tmp_path):
    mnist = load_mnist(write_fake_mnist(tmp_path / "data", n_train=10_200, n_test=50, side=4), train_size=200)
    floats = Dataset(mnist.training.images / np.float32(255), mnist.training.labels, "training")
    return floats, mnist.test


@pytest.mark.parametrize("one_hot", [True, False], ids=["one-hot y (training data)", "digit y (test data)"])
def test_train_takes_the_books_list_of_pairs(small, one_hot):
    dataset, test = small
    config = TrainingConfig(epochs=2, eta=1.0, seed=3)
    by_pairs, by_dataset = Network([16, 6, 10], seed=2), Network([16, 6, 10], seed=2)
    run = train(by_pairs, book_pairs(dataset, one_hot), config, evaluation=[Monitor(test)])
    train(by_dataset, dataset, config)
    for got, want in zip(by_pairs.parameters(), by_dataset.parameters()):
        np.testing.assert_array_equal(got, want)
    assert run.history.final()["metrics"]["test"]["total"] == 50


def test_a_monitor_takes_the_books_list_of_pairs_too(small):
    dataset, test = small
    config = TrainingConfig(epochs=2, eta=1.0, seed=3)
    by_pairs = train(Network([16, 6, 10], seed=2), dataset, config, evaluation=[Monitor(book_pairs(test, False))])
    by_dataset = train(Network([16, 6, 10], seed=2), dataset, config, evaluation=[Monitor(test)])
    assert [r["metrics"]["evaluation"] for r in by_pairs.history.epochs] == \
        [r["metrics"]["test"] for r in by_dataset.history.epochs]
    with pytest.raises(ConfigError, match="evaluation data of type int: give a Dataset"):
        Monitor(7)


@pytest.mark.parametrize("data, message", [
    (5, "training data of type int: give a Dataset"),
    ([], "training data: no examples"),
    ([(np.zeros((16, 1)), 1, 2)], "an item that is not an (x, y) pair"),
    ([(np.zeros((16, 1)), 1), (np.zeros((9, 1)), 1)], "every x must be a column of the same number of pixels"),
    ([(np.zeros((16, 1)), np.full((10, 1), 0.1))], "training example 0: y must be a digit or a one-hot column"),
    ([(np.zeros((16, 1)), -1)], "training example 0: y must be a digit"),
])
def test_data_that_is_neither_is_refused_in_one_line(data, message):
    with pytest.raises(ConfigError) as error:
        train(Network([16, 6, 10], seed=2), data, TrainingConfig(epochs=1, seed=1))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_epoch_printer_is_nndls_and_prints_the_books_lines(small, capsys):
    dataset, test = small
    train(Network([16, 6, 10], seed=2), dataset, TrainingConfig(epochs=2, seed=1), evaluation=[Monitor(test)],
          callbacks=[nndl.EpochPrinter()])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 0: ") and lines[1].startswith("Epoch 1: ")
    assert " / 50 (test, " in lines[0]
    assert "EpochPrinter" in nndl.__all__ and EpochPrinter.__module__ == "nndl.callbacks"


def test_the_core_does_not_import_the_command_line():
    loaded = subprocess.run([sys.executable, "-c", "import sys, nndl; print(sorted(m for m in sys.modules "
                             "if m.startswith('nndl.app')))"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


# -- where the data are found -------------------------------------------------------------------

def fake_checkout(root: Path, with_data: bool = True, source: bool = True) -> Path:
    """root/nndl (a source checkout when it has pyproject.toml) beside root/shared/datasets/mnist."""
    (root / "nndl").mkdir(parents=True)
    if source:
        (root / "nndl" / "pyproject.toml").write_text("")
    if with_data:
        write_fake_mnist(root / "shared" / "datasets" / "mnist", n_test=44)
    return root / "nndl"


def test_the_data_beside_a_checkout_only_from_a_checkout_that_has_them(tmp_path):
    assert checkout_data_dir(fake_checkout(tmp_path / "a")) == tmp_path / "a" / "shared" / "datasets" / "mnist"
    assert checkout_data_dir(fake_checkout(tmp_path / "b", with_data=False)) is None
    assert checkout_data_dir(fake_checkout(tmp_path / "c", source=False)) is None  # an installed nndl


def test_data_folder_order_data_then_nndl_data_then_beside_the_checkout_then_the_cache(tmp_path, monkeypatch):
    checkout = fake_checkout(tmp_path / "work")
    monkeypatch.setattr(mnist_module, "checkout_data_dir", lambda: checkout_data_dir(checkout))
    write_fake_mnist(mnist_module.cache_dir() / "mnist", n_test=33)
    assert len(load_mnist().test) == 44  # beside the checkout, before the cache
    monkeypatch.setenv("NNDL_DATA", str(write_fake_mnist(tmp_path / "env", n_test=22)))
    assert len(load_mnist().test) == 22
    assert len(load_mnist(write_fake_mnist(tmp_path / "given", n_test=11)).test) == 11
    monkeypatch.delenv("NNDL_DATA")
    monkeypatch.setattr(mnist_module, "checkout_data_dir", lambda: None)
    assert len(load_mnist().test) == 33


def test_nndl_run_from_the_checkout_finds_the_data_make_demo_uses(tmp_path):
    beside = REPO.parent / "shared" / "datasets" / "mnist"
    if mnist_module.missing_files(beside):
        pytest.skip(f"no MNIST at {beside}")
    env = {key: value for key, value in os.environ.items() if key != "NNDL_DATA"}
    env.update(NNDL_CACHE_DIR=str(tmp_path / "empty-cache"), NNDL_MNIST_MIRRORS="http://127.0.0.1:9/",
               PYTHONPATH=str(REPO / "src"))
    done = subprocess.run([sys.executable, "-m", "nndl", "train", "--train-size", "100", "--epochs", "1", "--hidden",
                           "5", "--seed", "1", "--json", "--quiet"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Path(json.loads(done.stdout)["data"]["source"]).resolve() == beside.resolve()


# -- messages naming folders --------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["seen/", "seen"])
def test_show_input_names_its_folder_with_one_slash(tmp_path, capsys, monkeypatch, typed):
    monkeypatch.chdir(tmp_path)
    save_model(Network([784, 10], seed=1), "net.npz")
    page = np.full((60, 60), 255, np.uint8)
    page[15:45, 27:33] = 0  # a dark stroke: a one
    Image.fromarray(page).save("one.png")
    assert main(["predict", "net.npz", "one.png", "--show-input", typed]) == 0
    assert "the network saw to seen/ (ink white" in capsys.readouterr().out
    assert (tmp_path / "seen" / "one-input.png").is_file()
