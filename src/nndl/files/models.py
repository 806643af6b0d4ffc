"""Saving and loading models as .npz files: arrays plus a JSON description, never pickle.

A model file holds ``sizes``, ``weights_0``, ``biases_0``, ``weights_1``, ... and
``metadata``: UTF-8 JSON (as a uint8 array) describing the network (cost,
activations, initialisation, dtype), how it was trained, its history and the
nndl version. Files are written through a temporary file and a rename, so an
interrupted save never leaves a broken model. Reading never unpickles and reads
only the members a model has, each .npy header checked against ``sizes`` (and
``sizes`` against a cap) before its data are read.
"""

from __future__ import annotations

import json
import lzma
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..device import to_host
from ..errors import ConfigError, ModelFileError
from ..text import first_line
from .atomic import JSON_MAX_BYTES, atomic_output, check_output_file, open_regular_file, parse_json
from ..network import MAX_PARAMETERS, Network

FORMAT = "nndl-model"
FORMAT_VERSION = 1
MAX_LAYERS = 1_000
NPY_HEADER_MAX = 10_000 + 16  # NumPy's own cap on a .npy header, plus magic and length
READ_CHUNK = 2**20
KIND_NAMES = {"f": "floating point", "iu": "whole numbers", "ui": "bytes (uint8)"}
# What a damaged or hostile archive can raise while being opened or read.
ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                  ValueError, NotImplementedError, RuntimeError)


def save_model(network: Network, path: str | os.PathLike) -> Path:
    """Save ``network`` (architecture, weights, biases and ``network.metadata``) to ``path``."""
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nndl_version": __version__,
        "network": network.describe(),
        **network.metadata,
    }
    arrays: dict[str, np.ndarray] = {
        "sizes": np.array(network.sizes, dtype=np.int64),
        "metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8),
    }
    for l, (w, b) in enumerate(zip(network.weights, network.biases)):
        arrays[f"weights_{l}"] = to_host(w)  # a model file holds host arrays, whichever device trained it
        arrays[f"biases_{l}"] = to_host(b).ravel()
    with atomic_output(path, "model file") as handle:
        np.savez(handle, **arrays)
    return path


def check_model_target(path: str | os.PathLike, description: dict[str, Any] | None = None,
                       what: str = "--save") -> Path:
    """Refuse, before training, a model file nndl could not write: wrong suffix, bad place, wrong format.

    ``path`` must end in .npz (nndl's format) or .json (network2.py's, which
    holds only what :func:`network2_can_save` allows for ``description``, a
    ``Network.describe()``), and pass :func:`check_output_file`.
    """
    check_output_file(path, what)  # first: an empty name, a folder or a device says so
    suffix = Path(path).suffix
    if suffix not in (".npz", ".json"):
        raise ConfigError(f"{what} {path}: name a .npz file (nndl's format) or .json (the book's network2.py format)")
    if suffix == ".json" and description is not None:
        from .network2 import network2_can_save

        refusal = network2_can_save(description)
        if refusal:
            raise ConfigError(f"{what} {path}: {refusal}")
    return Path(path)


def parameter_count(sizes: list[int]) -> int:
    """Weights and biases of a network of these layer sizes: Σ_l (n_in·n_out + n_out)."""
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def checked_sizes(sizes: Any, source: str) -> list[int]:
    """Layer sizes read from a file: 2 to MAX_LAYERS whole numbers ≥ 1, at most MAX_PARAMETERS in all.

    Checked before any network is built, so a tiny file cannot ask for gigabytes.
    """
    if (not isinstance(sizes, list) or not 2 <= len(sizes) <= MAX_LAYERS
            or any(type(n) is not int or n < 1 for n in sizes)):
        raise ModelFileError(f"{source}: the layer sizes must be 2 to {MAX_LAYERS} whole numbers, each at least 1")
    count = parameter_count(sizes)
    if count > MAX_PARAMETERS:
        amount = f"{count:,}" if count < 10**15 else "over 10^15"
        raise ModelFileError(
            f"{source}: sizes {str(sizes):.60} mean {amount} parameters, more than the {MAX_PARAMETERS:,} nndl loads"
        )
    return sizes


def open_archive(path: Path) -> zipfile.ZipFile:
    """The .npz file at ``path`` as a zip archive (a regular file only; members are read later, one by one)."""
    handle = open_regular_file(path, "an nndl model file", ModelFileError)
    try:
        return zipfile.ZipFile(handle)
    except ARCHIVE_ERRORS as exc:
        handle.close()
        raise ModelFileError(f"{path}: not a readable nndl model file ({first_line(exc)})") from None


def read_member(archive: zipfile.ZipFile, path: Path, name: str, kinds: str,
                shape: tuple[int, ...] | None = None, max_length: int = MAX_LAYERS) -> np.ndarray:
    """Array ``name`` of the archive, its .npy header checked before its data are read.

    Its dtype's kind must be one of ``kinds`` (never an object dtype) and its
    shape ``shape``, or, when ``shape`` is None, one dimension of at most
    ``max_length``; the member may hold nothing after the array. The data are
    read in chunks straight into the array, so memory is the array's size.
    """
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        raise ModelFileError(f"{path}: {name} is missing") from None
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise ModelFileError(f"{path}: {name} is in .npy format {version}, which nndl does not read")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            found_shape, fortran_order, dtype = read_header(member)
            check_member_header(path, name, dtype, found_shape, kinds, shape, max_length)
            nbytes = math.prod(found_shape) * dtype.itemsize
            if info.file_size > nbytes + NPY_HEADER_MAX:
                raise ModelFileError(f"{path}: {name} is {info.file_size:,} bytes, larger than its array")
            array = np.empty(found_shape[::-1] if fortran_order else found_shape, dtype=dtype)
            buffer = array.reshape(-1).view(np.uint8)
            filled = 0
            while filled < nbytes and (count := member.readinto(buffer[filled:filled + READ_CHUNK])):
                filled += count
            if filled < nbytes or member.read(1):
                raise ModelFileError(f"{path}: {name} is damaged (its size disagrees with its header)")
    except ARCHIVE_ERRORS as exc:
        raise ModelFileError(f"{path}: {name} cannot be read ({first_line(exc)})") from None
    return array.T if fortran_order else array


def check_member_header(path: Path, name: str, dtype: np.dtype, found: tuple[int, ...], kinds: str,
                        shape: tuple[int, ...] | None, max_length: int) -> None:
    """Refuse a member whose .npy header names the wrong dtype or shape, before its data are read."""
    if dtype.hasobject:
        raise ModelFileError(f"{path}: {name} holds Python objects, which nndl never unpickles")
    if dtype.kind not in kinds or dtype.subdtype is not None or dtype.names is not None:
        raise ModelFileError(f"{path}: {name} has dtype {dtype}, expected {KIND_NAMES[kinds]}")
    if shape is not None and found != shape:
        raise ModelFileError(f"{path}: {name} has shape {found}, expected {shape} from the layer sizes")
    if shape is None and (len(found) != 1 or found[0] > max_length):
        raise ModelFileError(f"{path}: {name} has shape {found}, expected one dimension of at most {max_length:,}")


def parse_metadata(path: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    """The JSON metadata block, checked to be an nndl model of a version this nndl reads."""
    if "metadata.npy" not in archive.namelist():
        raise ModelFileError(f"{path}: not an nndl model file (no metadata)")
    raw = read_member(archive, path, "metadata", "ui", max_length=JSON_MAX_BYTES)
    if raw.dtype.itemsize != 1:
        raise ModelFileError(f"{path}: metadata has dtype {raw.dtype}, expected bytes (uint8)")
    metadata = parse_json(raw.tobytes(), f"{path}: damaged metadata", "JSON", ModelFileError)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an nndl model file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {metadata.get('format_version')!r:.40}; this nndl {__version__} "
            f"reads version {FORMAT_VERSION}"
        )
    return metadata


def checked_description(path: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata's network description, each field of the type Network expects."""
    description = metadata.get("network")
    if not isinstance(description, dict):
        raise ModelFileError(f"{path}: the metadata lacks the network description")
    for key in ("cost", "activation", "output_activation", "init", "dtype"):
        if key not in description:
            raise ModelFileError(f"{path}: the metadata lacks '{key}'")
        if not isinstance(description[key], str):
            raise ModelFileError(f"{path}: the metadata's {key} is not a name")
    if "layers" in description:
        if not isinstance(description["layers"], str) or len(description["layers"]) > 1000:
            raise ModelFileError(f"{path}: the metadata's layers are not a layer shorthand")
        shape = description.get("input_shape")
        if not isinstance(shape, list) or len(shape) != 3 or any(type(n) is not int or not 1 <= n <= 10_000 for n in shape):
            raise ModelFileError(f"{path}: the metadata's input_shape is not 3 whole numbers (maps, height, width)")
        if not isinstance(description.get("conv_activation"), str):
            raise ModelFileError(f"{path}: the metadata lacks conv_activation")
    dropout = description.get("dropout", 0.0)
    if type(dropout) not in (int, float):
        raise ModelFileError(f"{path}: the metadata's dropout is not a number")
    return description


def checked_parameter(path: Path, array: np.ndarray, name: str, dtype: np.dtype | type) -> np.ndarray:
    """``array`` (already of the right shape and a float dtype) cast to ``dtype``, where it must be finite.

    Checked after the cast: 1e300 is a finite float64 but infinite as float32.
    """
    with np.errstate(over="ignore"):  # the overflow is found and named below
        cast = array.astype(dtype, copy=False)
    if not np.all(np.isfinite(cast)):
        raise ModelFileError(f"{path}: {name} holds NaN or infinite values as {cast.dtype} (whose finite "
                             f"numbers reach ±{np.finfo(cast.dtype).max:.3g})")
    return cast


def described_network(path: Path, description: dict[str, Any], sizes: list[int], device: str = "cpu") -> Network:
    """The network a model file describes (its weights still to be read), its size checked before it is built.

    A fully connected network is given by its ``sizes``; a convolutional one by
    its ``layers`` shorthand and ``input_shape``, whose sizes must agree.
    """
    shape = {}
    if "layers" in description:
        shape = {"layers": description["layers"], "input_shape": description["input_shape"],
                 "outputs": sizes[-1], "conv_activation": description["conv_activation"]}
    else:
        checked_sizes(sizes, str(path))
    try:
        network = Network(None if shape else sizes, **shape, cost=description["cost"],
                          activation=description["activation"], output_activation=description["output_activation"],
                          init=description["init"], dropout=description.get("dropout", 0.0),
                          dtype=description["dtype"], device=device)
    except ConfigError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if network.sizes != sizes:
        raise ModelFileError(f"{path}: sizes {sizes} disagree with its layers {description['layers']!r:.80}")
    return network


def load_model(path: str | os.PathLike, device: str = "cpu") -> Network:
    """Load a model saved by :func:`save_model` (or, for a .json file, by the book's network2.py) onto ``device``.

    A model holds host arrays, whichever device trained it. The training record is in the network's ``.metadata``.

    Raises :class:`ModelFileError` naming the problem if the file is not an nndl
    model, was damaged or edited so its arrays disagree with its sizes. Only the
    members a model has are read, each checked against its .npy header and the
    layer sizes first, so memory stays in proportion to the network described.
    """
    path = Path(path)
    if path.suffix == ".json":
        from .network2 import load_network2_json  # it uses this module's size checks

        return load_network2_json(path, device)
    with open_archive(path) as archive:
        metadata = parse_metadata(path, archive)
        description = checked_description(path, metadata)
        sizes = [int(n) for n in read_member(archive, path, "sizes", "iu")]
        if sizes != description.get("sizes"):
            raise ModelFileError(f"{path}: sizes {sizes} disagree with the metadata's {description.get('sizes')!r:.80}")
        network = described_network(path, description, sizes, device)
        weights, biases = [], []
        for l, shape in enumerate(layer.weight_shape() for layer in network.parameter_layers):
            weights.append(checked_parameter(path, read_member(archive, path, f"weights_{l}", "f", shape), f"weights_{l}",
                                             network.dtype))
            bias = checked_parameter(path, read_member(archive, path, f"biases_{l}", "f", shape[:1]), f"biases_{l}",
                                     network.dtype)
            biases.append(bias.reshape(shape[0], 1))
        network.set_parameters(weights, biases)
    network.metadata = {k: v for k, v in metadata.items() if k not in ("format", "format_version", "network")}
    return network
