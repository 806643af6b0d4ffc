"""Reading and writing IDX files, the format MNIST is distributed in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order.
Files may be gzip-compressed; a name ending in ``.gz`` is read as gzip.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError
from ..files.atomic import atomic_output, open_regular_file, write_bytes_atomically

# IDX type codes (the magic number's third byte) and the NumPy dtypes they name.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_MAX_BYTES = 10**9  # payload cap per file; MNIST's largest is 47 MB
IDX_MAX_DIMS = 16  # MNIST uses 1 (labels) and 3 (images); NumPy stops at 64
READ_CHUNK = 2**20
DRAIN_LIMIT = 16 * 2**20  # decompressed past a bad header to find damage, which shows within a block
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


def idx_magic(dtype: np.dtype, ndim: int) -> int:
    """The magic number of an IDX file of ``ndim`` dimensions of ``dtype`` (2051 for MNIST images)."""
    native = np.dtype(dtype).newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot hold {native}; use uint8, int8, int16, int32, float32 or float64")
    return (_CODES[native] << 8) | ndim


def read_exactly(stream: BinaryIO, count: int) -> bytearray:
    """Up to ``count`` bytes of ``stream``, read in chunks so memory follows what really arrives."""
    data = bytearray()
    while len(data) < count:
        chunk = stream.read(min(READ_CHUNK, count - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def drain(stream: BinaryIO, limit: int) -> None:
    """Read and discard up to ``limit`` bytes of ``stream`` (gzip checks its CRC at the end)."""
    while limit > 0 and (chunk := stream.read(min(READ_CHUNK, limit))):
        limit -= len(chunk)


def read_idx_stream(stream: BinaryIO, source: str, expect_magic: int | None = None,
                    max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """Read one IDX array from ``stream``, checking the header before reading the payload.

    The header's sizes are multiplied as Python integers and the payload must be
    at most ``max_bytes``, so a header claiming more is refused before anything
    is allocated; the payload is then read in chunks and must end exactly where
    the header says.
    """
    start = stream.read(4)
    if len(start) < 4:
        raise DataError(f"{source}: too short to be an IDX file ({len(start)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", start)
    magic = (code << 8) | ndim
    if zero != 0 or code not in IDX_DTYPES or not 0 < ndim <= IDX_MAX_DIMS:
        raise DataError(f"{source}: not an IDX file (magic number {struct.unpack('>I', start)[0]})")
    if expect_magic is not None and magic != expect_magic:
        raise DataError(f"{source}: magic number {magic}, expected {expect_magic}; is this the right file?")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{source}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # payload bytes = n1·n2·…·itemsize, a Python int
    described = f"{'x'.join(map(str, shape))} values ({expected:,} bytes)"
    if math.prod(max(n, 1) for n in shape) * dtype.itemsize > max_bytes:  # even when a 0 makes it empty
        raise DataError(f"{source}: header says {described}, more than the {max_bytes:,} nndl reads")
    payload = read_exactly(stream, expected)
    if len(payload) < expected or stream.read(1):
        what = "truncated" if len(payload) < expected else "has trailing bytes"
        found = f"{len(payload):,}" if len(payload) < expected else "more"
        raise DataError(f"{source}: {what}: header says {described}, file holds {found} bytes")
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def parse_idx(data: bytes, source: str = "<bytes>", expect_magic: int | None = None) -> np.ndarray:
    """Parse IDX bytes into an array, checking the header against the payload size."""
    return read_idx_stream(io.BytesIO(data), source, expect_magic)


def read_idx(path: str | os.PathLike, expect_magic: int | None = None, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw, or gzip if the name ends in .gz) into a NumPy array.

    ``expect_magic`` (e.g. 2051 for images, 2049 for labels) makes a file of
    another kind an error rather than a surprise later. Only a regular file is
    opened; gzip is decompressed as it is read, never more than the header
    announces. Every problem is a one-line :class:`DataError`.
    """
    path = Path(path)
    with open_regular_file(path, "an IDX file", DataError) as raw:
        try:
            if path.suffix != ".gz":
                return read_idx_stream(raw, str(path), expect_magic, max_bytes)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                try:
                    return read_idx_stream(unzipped, str(path), expect_magic, max_bytes)
                except DataError:
                    drain(unzipped, DRAIN_LIMIT)  # damaged gzip is the likelier cause: let its check say so
                    raise
        except EOFError:
            raise DataError(f"{path}: truncated gzip file (download it again)") from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc}); download it again") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip if the name ends in .gz), atomically.

    The data go to a temporary file beside ``path`` that is renamed over it only
    once complete, so an interrupted write never leaves a half-written file.
    """
    path = Path(path)
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = struct.pack(f">I{array.ndim}I", idx_magic(array.dtype, array.ndim), *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    write_bytes_atomically(path, payload)


class IdxStream:
    """Write an IDX file piece by piece (raw, or gzip if the name ends in .gz), atomically.

    ``shape`` is the whole array's; call :meth:`write` with consecutive blocks of
    rows. The file appears under its name only when every row has been written,
    so memory stays at one block and an interruption leaves nothing behind.
    """

    def __init__(self, path: str | os.PathLike, dtype: np.dtype | type, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = Path(path), np.dtype(dtype), tuple(shape)
        self.rows_written = 0

    def __enter__(self) -> "IdxStream":
        self._atomic = atomic_output(self.path)
        self._raw = self._atomic.__enter__()
        gz = self.path.suffix == ".gz"
        self._out = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=1, mtime=0) if gz else self._raw
        self._out.write(struct.pack(f">I{len(self.shape)}I", idx_magic(self.dtype, len(self.shape)), *self.shape))
        return self

    def write(self, block: np.ndarray) -> None:
        """Append rows (shape (k, *shape[1:])) to the file."""
        if block.shape[1:] != self.shape[1:]:
            raise ValueError(f"block of shape {block.shape} does not fit an IDX array of shape {self.shape}")
        big_endian = self.dtype.newbyteorder(">") if self.dtype.itemsize > 1 else self.dtype
        self._out.write(np.ascontiguousarray(block, dtype=big_endian).tobytes())
        self.rows_written += len(block)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._out is not self._raw:
            self._out.close()  # writes the gzip trailer; the file underneath stays open
        if exc_type is None and self.rows_written != self.shape[0]:
            error = ValueError(f"{self.path}: wrote {self.rows_written} of {self.shape[0]} rows")
            self._atomic.__exit__(ValueError, error, None)  # discards the temporary file
            raise error
        self._atomic.__exit__(exc_type, exc, tb)
