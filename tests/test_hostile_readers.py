"""Every reader, fed hostile bytes, ends in a valid result or a one-line NndlError, in bounded memory.

Property tests generate the inputs (see hostile.py); each call's peak memory is
measured inside the test with tracemalloc and must stay within a constant plus
a multiple of what the input really holds.
"""

import gzip
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hostile import (history_json, idx_bytes, maybe_gzipped, model_members, model_npz_bytes, network2_json,
                     npy_header_only, npz_bytes, verdict)
from nndl.errors import DataError, ModelFileError, NndlError
from nndl.data.idx import read_idx
from nndl.files.atomic import read_json
from nndl.files.models import load_model
from nndl.files.plots import checked_history, history_series, plot_history

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
