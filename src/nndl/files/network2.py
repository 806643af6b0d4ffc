"""The book's network2.py model format: JSON with sizes, weights, biases and the cost's class name.

network2.py saves ``{"sizes": [...], "weights": [w.tolist(), ...], "biases":
[b.tolist(), ...], "cost": "CrossEntropyCost"}`` with biases as (n, 1) nested
lists; its networks are sigmoid throughout. A model trained with the book's code
loads here and predicts identically, and a sigmoid nndl model exports to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..costs import COSTS
from ..device import to_host
from ..errors import ConfigError, ModelFileError
from .atomic import read_json, write_bytes_atomically
from .models import checked_parameter, checked_sizes
from ..network import Network

NETWORK2_MAX_BYTES = 128 * 2**20  # the book's largest network is 13 MB as JSON; bigger ones belong in .npz
BOOK_COSTS = {cost.book_name: name for name, cost in COSTS.items() if cost.book_name}


def network2_can_save(description: dict[str, Any]) -> str | None:
    """Why a network of this ``Network.describe()`` cannot be saved in network2.py's format, or None.

    The CLI asks before training, so a run is never lost to a format that cannot hold it.
    """
    d = description
    if "layers" in d:
        return (f"network2.py's format holds fully connected networks only; this one has {d['layers']} "
                "(save as .npz instead)")
    if d["activation"] != "sigmoid" or d["output_activation"] != "sigmoid" or d["cost"] not in BOOK_COSTS.values():
        return (f"network2.py's format holds sigmoid networks with the quadratic or cross-entropy cost; this one is "
                f"{d['activation']}/{d['output_activation']} with the {d['cost']} cost (save as .npz instead)")
    if d.get("dropout"):
        return "network2.py's format cannot record dropout's weight scaling; save as .npz instead"
    return None


def save_network2_json(network: Network, path: str | os.PathLike) -> Path:
    """Write ``network`` in network2.py's JSON format (sigmoid layers, quadratic or cross-entropy cost)."""
    refusal = network2_can_save(network.describe())
    if refusal:
        raise ConfigError(refusal)
    data = {
        "sizes": network.sizes,
        "weights": [to_host(w).astype(np.float64).tolist() for w in network.weights],
        "biases": [to_host(b).astype(np.float64).tolist() for b in network.biases],
        "cost": network.cost.book_name,
    }
    path = Path(path)
    write_bytes_atomically(path, json.dumps(data).encode("utf-8"))
    return path


def list_shape(value: Any) -> str:
    """The shape of nested JSON lists as far as it is regular, e.g. '(2, 3)' or '(2, ragged)'."""
    if not isinstance(value, list):
        return "(not a list)"
    inner = {len(row) if isinstance(row, list) else None for row in value}
    if inner == {None} or not value:
        return f"({len(value)},)"
    return f"({len(value)}, {inner.pop() if len(inner) == 1 else 'ragged'})"


def checked_layer(path: Path, layer: int, weights: Any, biases: Any, n_out: int, n_in: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Layer ``layer``'s weights (n_out, n_in) and biases (n_out, 1) from JSON lists, or ModelFileError.

    The nesting is checked row by row before NumPy converts anything, so the
    arrays made are exactly the sizes the (already capped) layer sizes say.
    """
    rectangular = (isinstance(weights, list) and len(weights) == n_out
                   and all(isinstance(row, list) and len(row) == n_in for row in weights))
    columnar = (isinstance(biases, list) and len(biases) == n_out
                and all(not isinstance(b, list) or len(b) == 1 for b in biases))
    if not (rectangular and columnar):
        raise ModelFileError(
            f"{path}: layer {layer + 1} has weights {list_shape(weights)} and {list_shape(biases)} biases; "
            f"the sizes say ({n_out}, {n_in}) and ({n_out}, 1)"
        )
    try:
        w = np.array(weights, dtype=np.float64)
        b = np.array(biases, dtype=np.float64).reshape(n_out, 1)
    except (TypeError, ValueError, OverflowError):
        raise ModelFileError(f"{path}: weights/biases of layer {layer + 1} are not arrays of numbers") from None
    if w.shape != (n_out, n_in):
        raise ModelFileError(f"{path}: layer {layer + 1} holds values that are not numbers")
    return (checked_parameter(path, w, f"layer {layer + 1}'s weights", np.float64),
            checked_parameter(path, b, f"layer {layer + 1}'s biases", np.float64))


def load_network2_json(path: str | os.PathLike, device: str = "cpu") -> Network:
    """Load a model saved by the book's network2.py (``Network.save``) as a float64 nndl Network.

    The file's size is capped before parsing, and the sizes (capped in
    parameters) and every array's shape are checked before a Network is built.
    """
    path = Path(path)
    data = read_json(path, "a network2.py JSON model", ModelFileError, max_bytes=NETWORK2_MAX_BYTES)
    if not isinstance(data, dict) or not {"sizes", "weights", "biases", "cost"} <= data.keys():
        raise ModelFileError(f"{path}: a network2.py model needs the keys sizes, weights, biases and cost")
    if not isinstance(data["cost"], str) or data["cost"] not in BOOK_COSTS:
        raise ModelFileError(f"{path}: cost {str(data['cost'])[:40]!r}; network2.py has {', '.join(BOOK_COSTS)}")
    sizes = checked_sizes(data["sizes"], str(path))
    weights, biases = data["weights"], data["biases"]
    if not (isinstance(weights, list) and isinstance(biases, list)
            and len(weights) == len(biases) == len(sizes) - 1):
        raise ModelFileError(f"{path}: {len(sizes) - 1} layers of weights and biases expected from the sizes")
    layers = [checked_layer(path, l, w, b, n_out, n_in)
              for l, (w, b, n_out, n_in) in enumerate(zip(weights, biases, sizes[1:], sizes[:-1]))]
    network = Network(sizes, cost=BOOK_COSTS[data["cost"]], activation="sigmoid", output_activation="sigmoid",
                      dtype=np.float64, seed=0, device=device)
    network.set_parameters([w for w, _ in layers], [b for _, b in layers])
    network.metadata = {"imported_from": "network2.py JSON"}
    return network
