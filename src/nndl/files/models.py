"""Saving and loading models as .npz files: arrays plus a JSON description, never pickle.

A model file holds ``sizes``, ``weights_0``, ``biases_0``, ``weights_1``, ... and
``metadata``: UTF-8 JSON (as a uint8 array) describing the network (cost,
activations, initialisation, dtype), how it was trained, its history and the
nndl version. Files are written through a temporary file and a rename, so an
interrupted save never leaves a broken model, and read with
``allow_pickle=False``, checking every shape against ``sizes``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .network2 import load_network2_json
from ..errors import ConfigError, ModelFileError
from .atomic import atomic_output
from ..network import Network

FORMAT = "nndl-model"
FORMAT_VERSION = 1


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
        arrays[f"weights_{l}"] = w
        arrays[f"biases_{l}"] = b.ravel()
    with atomic_output(path) as handle:
        np.savez(handle, **arrays)
    return path


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, refusing pickled objects."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable nndl model file ({exc})") from None


def parse_metadata(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON metadata block, checked to be an nndl model of a version this nndl reads."""
    if "metadata" not in arrays:
        raise ModelFileError(f"{path}: not an nndl model file (no metadata)")
    try:
        metadata = json.loads(arrays["metadata"].astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: damaged metadata ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an nndl model file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {metadata.get('format_version')}; this nndl {__version__} "
            f"reads version {FORMAT_VERSION}"
        )
    return metadata


def checked_parameter(path: Path, arrays: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``arrays[name]``, which must exist, be floating point, finite and of ``shape``."""
    if name not in arrays:
        raise ModelFileError(f"{path}: {name} is missing")
    array = arrays[name]
    if array.dtype.kind != "f":
        raise ModelFileError(f"{path}: {name} has dtype {array.dtype}, expected floating point")
    if array.shape != shape:
        raise ModelFileError(f"{path}: {name} has shape {array.shape}, expected {shape} from the layer sizes")
    if not np.all(np.isfinite(array)):
        raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
    return array


def load_model(path: str | os.PathLike) -> Network:
    """Load a model saved by :func:`save_model` (or, for a .json file, by the book's network2.py).

    The training record is in the network's ``.metadata``.

    Raises :class:`ModelFileError` naming the problem if the file is not an nndl
    model, was damaged or edited so its arrays disagree with its sizes.
    """
    path = Path(path)
    if path.suffix == ".json":
        return load_network2_json(path)
    arrays = read_arrays(path)
    metadata = parse_metadata(path, arrays)
    description = dict(metadata.get("network", {}))
    sizes = arrays.get("sizes")
    if sizes is None or sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise ModelFileError(f"{path}: sizes is missing or not a list of whole numbers")
    if list(sizes) != description.get("sizes"):
        raise ModelFileError(f"{path}: sizes {list(sizes)} disagree with the metadata's {description.get('sizes')}")
    try:
        network = Network(
            [int(n) for n in sizes],
            cost=description["cost"],
            activation=description["activation"],
            output_activation=description["output_activation"],
            init=description["init"],
            dropout=description.get("dropout", 0.0),
            dtype=description["dtype"],
        )
    except KeyError as exc:
        raise ModelFileError(f"{path}: the metadata lacks {exc}") from None
    except ConfigError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    n_in, n_out = network.sizes[:-1], network.sizes[1:]
    for l, (rows, cols) in enumerate(zip(n_out, n_in)):
        weights = checked_parameter(path, arrays, f"weights_{l}", (rows, cols))
        biases = checked_parameter(path, arrays, f"biases_{l}", (rows,))
        network.weights[l] = weights.astype(network.dtype)
        network.biases[l] = biases.reshape(rows, 1).astype(network.dtype)
    network.metadata = {k: v for k, v in metadata.items() if k not in ("format", "format_version", "network")}
    return network
