import gzip
import struct

import numpy as np
import pytest

from nndl.errors import DataError
from nndl.data.idx import idx_magic, parse_idx, read_idx, write_idx


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip_every_idx_type(tmp_path, dtype, name):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_mnist_magic_numbers():
    assert idx_magic(np.uint8, 3) == 2051
    assert idx_magic(np.uint8, 1) == 2049


def test_header_checked_against_payload():
    header = struct.pack(">IIII", 2051, 2, 3, 3)
    assert parse_idx(header + bytes(18)).shape == (2, 3, 3)
    with pytest.raises(DataError, match="truncated: header says 2x3x3"):
        parse_idx(header + bytes(17), "f")
    with pytest.raises(DataError, match="trailing bytes"):
        parse_idx(header + bytes(19), "f")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too short"),
        (struct.pack(">I", 0x12345678) + bytes(8), "not an IDX file"),
        (struct.pack(">I", 2051) + bytes(4), "truncated IDX header"),
    ],
)
def test_malformed_bytes(data, message):
    with pytest.raises(DataError, match=message):
        parse_idx(data, "f")


def test_expected_magic_is_enforced():
    labels = struct.pack(">II", 2049, 2) + bytes(2)
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        parse_idx(labels, "f", expect_magic=2051)


def test_gzip_problems_name_the_file(tmp_path):
    payload = gzip.compress(struct.pack(">II", 2049, 4) + bytes(4))
    truncated = tmp_path / "t.gz"
    truncated.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DataError, match=r"t\.gz: truncated gzip"):
        read_idx(truncated)
    corrupt = tmp_path / "c.gz"
    corrupt.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match=r"c\.gz: corrupt gzip"):
        read_idx(corrupt)
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "absent.gz")
