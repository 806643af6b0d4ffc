import json
import os
import re
import stat

import numpy as np
import pytest

from nndl.app.cli import main
from nndl.files import models as io
from nndl.errors import ModelFileError
from nndl.files.models import load_model, save_model
from nndl.network import Network


@pytest.fixture
def model(tmp_path):
    net = Network([6, 5, 3], seed=0, dtype="float64", init="normalized")
    net.metadata = {"history": [{"epoch": 0, "test_accuracy": 0.5}], "note": "ünïcode"}
    return net, save_model(net, tmp_path / "model.npz")


def rewrite(path, change):
    """Load the arrays of a model file, let ``change`` edit them, write them back."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    change(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_gives_identical_predictions(tmp_path, dtype):
    net = Network([6, 5, 3], seed=1, dtype=dtype)
    save_model(net, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.describe() == net.describe() and back.dtype == np.dtype(dtype)
    for a, b in zip(net.weights + net.biases, back.weights + back.biases):
        np.testing.assert_array_equal(a, b)
    images = np.random.default_rng(0).random((20, 6))
    np.testing.assert_array_equal(back.output_rows(images), net.output_rows(images))


def test_metadata_travels_with_the_model(model):
    net, path = model
    back = load_model(path)
    assert back.metadata["history"] == [{"epoch": 0, "test_accuracy": 0.5}]
    assert back.metadata["note"] == "ünïcode"
    assert back.metadata["nndl_version"]


def test_saved_files_respect_the_umask(model):
    _, path = model
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_an_interrupted_save_leaves_the_previous_file_intact(model, monkeypatch):
    net, path = model
    before = path.read_bytes()

    def dies_half_way(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt

    monkeypatch.setattr(io.np, "savez", dies_half_way)
    other = Network([6, 5, 3], seed=99, dtype="float64")
    with pytest.raises(KeyboardInterrupt):
        save_model(other, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]  # no temporary left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(path).weights[0], net.weights[0])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(weights_0=a["weights_0"][:, :-1]), r"weights_0 has shape \(5, 5\), expected \(5, 6\)"),
        (lambda a: a.update(biases_1=a["biases_1"][:2]), r"biases_1 has shape \(2,\), expected \(3,\)"),
        (lambda a: a.pop("weights_1"), "weights_1 is missing"),
        (lambda a: a["weights_0"].__setitem__((0, 0), np.nan), "NaN or infinite"),
        (lambda a: a.update(weights_0=a["weights_0"].astype(np.int64)), "dtype int64"),
        (lambda a: a.update(sizes=np.array([6, 4, 3])), "disagree with the metadata"),
        (lambda a: a.pop("metadata"), "no metadata"),
        (lambda a: a.update(metadata=np.frombuffer(b"{not json", np.uint8)), "damaged metadata"),
        (lambda a: a.update(metadata=np.frombuffer(json.dumps({"format": "other"}).encode(), np.uint8)),
         "not an nndl model"),
    ],
)
def test_tampered_models_are_refused(model, change, message):
    _, path = model
    rewrite(path, change)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_a_newer_format_or_unknown_cost_is_explained(model):
    _, path = model

    def edit_metadata(edit):
        def change(arrays):
            meta = json.loads(arrays["metadata"].tobytes())
            edit(meta)
            arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        return change

    rewrite(path, edit_metadata(lambda m: m["network"].update(cost="hinge")))
    with pytest.raises(ModelFileError, match="unknown cost 'hinge'"):
        load_model(path)
    rewrite(path, edit_metadata(lambda m: m.update(format_version=99)))
    with pytest.raises(ModelFileError, match="format version 99"):
        load_model(path)


def test_pickles_and_non_models_are_refused(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, metadata=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="Python objects, which nndl never unpickles"):
        load_model(pickled)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable nndl model file"):
        load_model(text)
    with pytest.raises(ModelFileError, match="file not found"):
        load_model(tmp_path / "absent.npz")


def test_a_one_line_learning_curve_says_whose_it_is_in_its_title(tmp_path, monkeypatch):
    from nndl.files import plots

    titles = []
    monkeypatch.setattr(plots, "plot_series", lambda series, path, title, *rest, **options: titles.append(title))
    record = {"epoch": 0, "metrics": {"validation": {"accuracy": 0.9}}}
    plots.plot_history({"history": [record]}, tmp_path)
    two = {"epoch": 0, "metrics": {"validation": {"accuracy": 0.9}, "test": {"accuracy": 0.8}}}
    plots.plot_history({"history": [two]}, tmp_path)
    assert titles == ["Validation accuracy per epoch", "Accuracy per epoch"]  # two lines have a legend instead


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parameters_are_checked_in_the_models_own_precision(tmp_path, dtype, capsys):
    """1e300 is a finite float64 but infinite as float32: a float32 model holding it is refused in one line."""
    path = save_model(Network([6, 5, 3], seed=0, dtype=dtype), tmp_path / "m.npz")
    rewrite(path, lambda a: a.update(biases_1=np.array([0.5, -1e300, 0.0])))
    if dtype == "float64":
        assert load_model(path).biases[1][1, 0] == -1e300
        return
    with pytest.raises(ModelFileError, match=r"biases_1 holds NaN or infinite values as float32 \(whose finite "
                                             r"numbers reach ±3.4e\+38\)"):
        load_model(path)
    assert main(["evaluate", str(path), "--data", str(tmp_path / "no-data-needed")]) == 2
    assert re.fullmatch(r"nndl evaluate: error: .*m\.npz: biases_1 holds NaN or infinite .*\n", capsys.readouterr().err)
