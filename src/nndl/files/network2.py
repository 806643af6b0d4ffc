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

import numpy as np

from ..costs import COSTS
from ..errors import ConfigError, ModelFileError
from .atomic import read_json, write_bytes_atomically
from ..network import Network

BOOK_COSTS = {cost.book_name: name for name, cost in COSTS.items() if cost.book_name}


def save_network2_json(network: Network, path: str | os.PathLike) -> Path:
    """Write ``network`` in network2.py's JSON format (sigmoid layers, quadratic or cross-entropy cost)."""
    d = network.describe()
    if d["activation"] != "sigmoid" or d["output_activation"] != "sigmoid" or d["cost"] not in BOOK_COSTS.values():
        raise ConfigError(
            f"network2.py's format holds sigmoid networks with the quadratic or cross-entropy cost; this one is "
            f"{d['activation']}/{d['output_activation']} with the {d['cost']} cost"
        )
    if network.dropout:
        raise ConfigError("network2.py's format cannot record dropout's weight scaling; export without dropout")
    data = {
        "sizes": network.sizes,
        "weights": [w.astype(np.float64).tolist() for w in network.weights],
        "biases": [b.astype(np.float64).tolist() for b in network.biases],
        "cost": network.cost.book_name,
    }
    path = Path(path)
    write_bytes_atomically(path, json.dumps(data).encode("utf-8"))
    return path


def load_network2_json(path: str | os.PathLike) -> Network:
    """Load a model saved by the book's network2.py (``Network.save``) as a float64 nndl Network."""
    path = Path(path)
    data = read_json(path, "a network2.py JSON model", ModelFileError)
    if not isinstance(data, dict) or not {"sizes", "weights", "biases", "cost"} <= data.keys():
        raise ModelFileError(f"{path}: a network2.py model needs the keys sizes, weights, biases and cost")
    if data["cost"] not in BOOK_COSTS:
        raise ModelFileError(f"{path}: cost {data['cost']!r}; network2.py has {', '.join(BOOK_COSTS)}")
    try:
        network = Network(data["sizes"], cost=BOOK_COSTS[data["cost"]], activation="sigmoid",
                          output_activation="sigmoid", dtype=np.float64, seed=0)
    except ConfigError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if len(data["weights"]) != len(network.weights) or len(data["biases"]) != len(network.biases):
        raise ModelFileError(f"{path}: {len(network.weights)} layers of weights and biases expected from the sizes")
    for l, (w, b) in enumerate(zip(data["weights"], data["biases"])):
        try:
            weights, biases = np.array(w, dtype=np.float64), np.array(b, dtype=np.float64)
        except (TypeError, ValueError):
            raise ModelFileError(f"{path}: weights/biases of layer {l + 1} are not arrays of numbers") from None
        n_out, n_in = network.weights[l].shape
        if weights.shape != (n_out, n_in) or biases.size != n_out:
            raise ModelFileError(
                f"{path}: layer {l + 1} has weights {weights.shape} and {biases.size} biases; "
                f"the sizes say ({n_out}, {n_in}) and {n_out}"
            )
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(biases))):
            raise ModelFileError(f"{path}: layer {l + 1} holds NaN or infinite values")
        network.weights[l], network.biases[l] = weights, biases.reshape(n_out, 1)
    network.metadata = {"imported_from": "network2.py JSON"}
    return network
