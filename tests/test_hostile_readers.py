"""Every reader, fed hostile bytes, ends in a valid result or a one-line NndlError, in bounded memory.

Property tests generate the inputs (see hostile.py); each call's peak memory is
measured inside the test with tracemalloc and must stay within a constant plus
a multiple of what the input really holds.
"""

import gzip
import io
import json
import os
import re
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import write_fake_mnist
from hostile import (history_json, idx_bytes, maybe_gzipped, model_members, model_npz_bytes, network2_json, npy,
                     npy_header_only, npz_bytes, verdict)
from nndl.app.cli import main
from nndl.callbacks import Callback
from nndl.errors import DataError, ModelFileError, NndlError
from nndl.data.idx import read_idx
from nndl.files.atomic import read_json
from nndl.files.models import load_model
from nndl.files.plots import checked_history, history_series, plot_history
from nndl.runs.checkpoint import CheckpointError, checkpoint_files, read_checkpoint
from nndl.runs.runner import run_spec
from nndl.runs.spec import RunSpec

MB = 2**20
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def written(data: bytes, name: str) -> Path:
    """``data`` in a fresh temporary file called ``name``."""
    path = Path(tempfile.mkdtemp()) / name
    path.write_bytes(data)
    return path


@FUZZ
@given(raw=idx_bytes(), data=st.data())
def test_idx_reader_on_generated_files(raw, data):
    content, gz = data.draw(maybe_gzipped(raw))
    path = written(content, "f.idx.gz" if gz else "f.idx")
    outcome, message, peak = verdict(lambda: read_idx(path))
    assert peak < 4 * MB + 3 * len(raw)  # the payload (plus one byte-order copy) and a read chunk


@FUZZ
@given(content=model_npz_bytes())
def test_npz_model_reader_on_generated_files(content):
    path = written(content, "m.npz")
    outcome, message, peak = verdict(lambda: load_model(path))
    assert peak < 2 * MB + 8 * len(content)


@FUZZ
@given(content=network2_json())
def test_network2_reader_on_generated_files(content):
    path = written(content, "m.json")
    outcome, message, peak = verdict(lambda: load_model(path))
    assert peak < 2 * MB + 40 * len(content)  # Python's parsed lists, then float64 arrays


@FUZZ
@given(content=history_json())
def test_history_reader_on_generated_files(content):
    path = written(content, "h.json")

    def read():
        history = checked_history(read_json(path, "a JSON history"))
        return [history_series(history, kind) for kind in ("accuracy", "cost")]

    outcome, message, peak = verdict(read)
    assert peak < 2 * MB + 40 * len(content)


# -- the cases the fuzzing found, each named --------------------------------------------------

def test_idx_header_overflowing_int64_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(struct.pack(">HBB", 0, 0x0E, 4) + struct.pack(">4I", *[2**32 - 1] * 4) + bytes(10))
    outcome, message, peak = verdict(lambda: read_idx(path))
    assert outcome == "error" and "more than the 1,000,000,000" in message and peak < MB


def test_idx_header_with_an_empty_dimension_is_held_to_the_cap_by_the_others(tmp_path):
    path = tmp_path / "empty.idx"  # 0 × 2³¹ × 2³¹: no payload, but a shape no reader should hand on
    path.write_bytes(struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 0, 2**31, 2**31))
    outcome, message, peak = verdict(lambda: read_idx(path))
    assert outcome == "error" and "0x2147483648x2147483648 values" in message and "more than the" in message


def test_gzip_bomb_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.idx.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:  # 256 MB of zeros in about 250 kB
        out.write(struct.pack(">II", 0x0801, 2**28 + 1))
        zeros = bytes(MB)
        for _ in range(256):
            out.write(zeros)
    outcome, message, peak = verdict(lambda: read_idx(path, max_bytes=64 * MB))
    assert outcome == "error" and "more than the 67,108,864" in message and peak < 8 * MB


def test_idx_payload_is_read_only_as_far_as_the_header_says(tmp_path):
    path = tmp_path / "long.idx.gz"
    path.write_bytes(gzip.compress(struct.pack(">II", 0x0801, 3) + bytes(3) + bytes(50 * MB)))
    outcome, message, peak = verdict(lambda: read_idx(path))
    assert outcome == "error" and "trailing bytes" in message and peak < 8 * MB


def test_empty_idx_array_is_a_valid_result(tmp_path):
    path = tmp_path / "empty.idx"
    path.write_bytes(struct.pack(">IIII", 0x0803, 0, 28, 28))
    assert read_idx(path).shape == (0, 28, 28)


@pytest.mark.parametrize("reader", [lambda p: read_idx(p), lambda p: load_model(p), lambda p: read_json(p, "JSON")])
def test_fifo_folder_and_device_are_refused_without_hanging(tmp_path, reader):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for path in (fifo, tmp_path, Path("/dev/zero")):
        with pytest.raises(NndlError, match="is a (device, FIFO or socket|folder)"):
            reader(path)


def test_network2_sizes_are_capped_before_a_network_is_built(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"sizes": [20000, 20000], "weights": [], "biases": [], "cost": "CrossEntropyCost"}))
    outcome, message, peak = verdict(lambda: load_model(path))
    assert outcome == "error" and "400,020,000 parameters" in message and peak < 2 * MB


def test_network2_arrays_are_checked_before_a_network_is_built(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"sizes": [3000, 3000], "weights": [[[0.0]]], "biases": [[[0.0]]],
                                "cost": "QuadraticCost"}))  # 9 M parameters claimed, 2 given
    outcome, message, peak = verdict(lambda: load_model(path))
    assert outcome == "error" and "layer 1 has weights (1, 1)" in message and peak < 2 * MB


def test_deep_or_huge_json_is_one_line(tmp_path):
    for text in ("[" * 200_000 + "]" * 200_000, '{"sizes": [' + "9" * 10_000 + "]}"):
        path = tmp_path / "m.json"
        path.write_text(text)
        with pytest.raises(ModelFileError, match="not a network2.py JSON model"):
            load_model(path)


def test_json_over_the_cap_is_refused_unread(tmp_path):
    path = tmp_path / "h.json"
    path.write_bytes(b" " * (2 * MB))
    outcome, message, peak = verdict(lambda: read_json(path, "a JSON history", max_bytes=MB))
    assert outcome == "error" and "larger than 1,048,576 bytes" in message and peak < 64 * 1024


def test_npz_sizes_are_capped_before_a_network_is_built(tmp_path):
    members = model_members([3, 2])
    members["sizes"] = npy_header_only((2,), "<i8", struct.pack("<2q", 20000, 20000))
    meta = json.loads(np.lib.format.read_array(__import__("io").BytesIO(members["metadata"])).tobytes())
    meta["network"]["sizes"] = [20000, 20000]
    members["metadata"] = npy_header_only((len(json.dumps(meta)),), "|u1", json.dumps(meta).encode())
    path = tmp_path / "m.npz"
    path.write_bytes(npz_bytes(members))
    outcome, message, peak = verdict(lambda: load_model(path))
    assert outcome == "error" and "more than the 50,000,000" in message and peak < MB


def test_npz_extra_members_are_never_read(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(npz_bytes(model_members([4, 3, 2])))
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("junk.npy", bytes(64 * MB))  # 64 MB that a whole-archive read would inflate
    outcome, message, peak = verdict(lambda: load_model(path))
    assert outcome == "result" and peak < MB


def test_npz_member_lying_about_its_shape_is_refused_before_allocation(tmp_path):
    members = model_members([4, 3])
    members["weights_0"] = npy_header_only((2**40, 2**20), "<f8", b"")
    path = tmp_path / "m.npz"
    path.write_bytes(npz_bytes(members))
    outcome, message, peak = verdict(lambda: load_model(path))
    assert outcome == "error" and "weights_0 has shape (1099511627776, 1048576), expected (3, 4)" in message
    assert peak < MB


@pytest.mark.parametrize("meta, message", [
    ({"format": "nndl-model", "format_version": 1, "network": ["sizes"]}, "lacks the network description"),
    ({"format": "nndl-model", "format_version": 1, "network": {"cost": ["x"], "activation": "sigmoid",
      "output_activation": "sigmoid", "init": "large", "dtype": "float64"}}, "cost is not a name"),
    ({"format": "nndl-model", "format_version": [1]}, r"format version \[1\]"),
])
def test_npz_metadata_of_the_wrong_type_is_one_line(tmp_path, meta, message):
    members = model_members([4, 3])
    members["metadata"] = npy_header_only((len(json.dumps(meta)),), "|u1", json.dumps(meta).encode())
    path = tmp_path / "m.npz"
    path.write_bytes(npz_bytes(members))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_history_values_are_checked_before_matplotlib_sees_them(tmp_path):
    with pytest.raises(NndlError, match="'test' accuracy values must be numbers"):
        plot_history({"history": [{"epoch": 0, "metrics": {"test": {"accuracy": "high"}}}]}, tmp_path)
    with pytest.raises(NndlError, match="'epoch' values must be finite numbers"):
        plot_history({"history": [{"epoch": [1], "metrics": {"test": {"accuracy": 0.5}}}]}, tmp_path)
    drawn = plot_history({"history": [{"epoch": 0, "metrics": {"$x": {"accuracy": 1e308}, "test": {"cost": float("inf")}}},
                                      {"epoch": 1, "metrics": {"$x": {"accuracy": 0.5}, "test": {"cost": 1.0}}}]},
                         tmp_path)
    assert [p.name for p in drawn] == ["history-accuracy.png", "history-cost.png"]


def test_a_truncated_idx_in_gzip_names_the_problem(tmp_path):
    path = tmp_path / "t.idx.gz"
    path.write_bytes(gzip.compress(struct.pack(">II", 0x0801, 10) + bytes(5)))
    with pytest.raises(DataError, match="truncated: header says 10 values"):
        read_idx(path)


# -- a checkpoint's history --------------------------------------------------------------------

class StopAfterEpoch(Callback):
    """Ask training to stop at the end of epoch ``epoch`` (counted from 1), as Ctrl-C would."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, run, record):
        if run.epoch == self.epoch:
            run.request_stop()


@pytest.fixture(scope="module")
def two_epochs_of_three(tmp_path_factory) -> tuple[RunSpec, Path, dict[str, bytes], list[dict]]:
    """A run of 3 epochs stopped after 2: its spec, its newest checkpoint's members and its history."""
    folder = tmp_path_factory.mktemp("run")
    spec = RunSpec().replace(source=str(write_fake_mnist(folder / "data", n_train=10_100, n_test=20)), hidden=[4],
                             epochs=3, seed=1)
    run_spec(spec, checkpoint=folder / "ck", callbacks=[StopAfterEpoch(2)])
    with zipfile.ZipFile(checkpoint_files(folder / "ck")[-1]) as archive:
        members = {name.removesuffix(".npy"): archive.read(name) for name in archive.namelist()}
    history = json.loads(np.load(io.BytesIO(members["state"])).tobytes())["history"]
    return spec, folder, members, history


def checkpoint_with_history(two_epochs_of_three, history: Any, folder: Path) -> Path:
    """``folder`` holding one checkpoint: the run's, with its history replaced by ``history``."""
    _, _, members, _ = two_epochs_of_three
    state = json.loads(np.load(io.BytesIO(members["state"])).tobytes())
    state["history"] = history
    folder.mkdir(exist_ok=True)
    path = folder / "checkpoint-000002-000000.npz"
    path.write_bytes(npz_bytes({**members, "state": npy(np.frombuffer(json.dumps(state).encode(), np.uint8))}))
    return path


def edited(record: dict, **changes: Any) -> dict:
    return {**record, **changes}


@pytest.mark.parametrize("edit, message", [
    (lambda h: [5, 6], "history record 0 is not a record"),
    (lambda h: "ab", "its history is not a list of 2 epoch records"),
    (lambda h: h[:1], "its history is not a list of 2 epoch records"),
    (lambda h: h[::-1], "history record 0 is not epoch 0's"),
    (lambda h: [edited(h[0], epoch=False), h[1]], "history record 0 is not epoch 0's"),
    (lambda h: [h[0], edited(h[1], eta="3")], "history record 1 has no number eta"),
    (lambda h: [h[0], {k: v for k, v in h[1].items() if k != "seconds"}], "history record 1 has no number seconds"),
    (lambda h: [edited(h[0], metrics=[]), h[1]], r"history record 0 has no metrics \(numbers by dataset"),
    (lambda h: [edited(h[0], metrics={"test": {"accuracy": "high"}}), h[1]], "history record 0 has no metrics"),
    (lambda h: [h[0], edited(h[1], learning_speed="fast")], "history record 1 has a learning speed that is not"),
])
def test_a_checkpoint_history_of_the_wrong_shape_is_one_line_on_resume(two_epochs_of_three, tmp_path, edit, message,
                                                                        capsys):
    spec, _, _, history = two_epochs_of_three
    path = checkpoint_with_history(two_epochs_of_three, edit(history), tmp_path / "ck")
    with pytest.raises(CheckpointError, match=rf"checkpoint-000002-000000.npz: damaged checkpoint \({message}"):
        read_checkpoint(path)
    assert main(["train", "--resume", str(tmp_path / "ck"), "--quiet"]) == 2
    assert re.fullmatch(rf"nndl train: error: .*{message}.*\n", capsys.readouterr().err)
    assert [p.name for p in (tmp_path / "ck").iterdir()] == [path.name]  # nothing written beside it


@settings(FUZZ, max_examples=40)
@given(content=history_json())
def test_checkpoint_reader_on_generated_histories(two_epochs_of_three, content):
    """Any JSON as a checkpoint's history is refused in one line on resume, never an AttributeError."""
    spec, _, _, history = two_epochs_of_three
    generated = json.loads(content)
    hostile = generated.get("history", generated) if isinstance(generated, dict) else generated
    folder = Path(tempfile.mkdtemp())
    checkpoint_with_history(two_epochs_of_three, hostile, folder / "ck")
    outcome, message, peak = verdict(lambda: run_spec(spec, checkpoint=folder / "ck", resume=True))
    assert outcome == "error" and "damaged checkpoint" in message  # no generated record has seconds, eta and metrics


def test_the_untouched_history_resumes(two_epochs_of_three, tmp_path):
    spec, _, _, history = two_epochs_of_three
    checkpoint_with_history(two_epochs_of_three, history, tmp_path / "ck")
    assert [r["epoch"] for r in run_spec(spec, checkpoint=tmp_path / "ck", resume=True).summary["history"]] == [0, 1, 2]
