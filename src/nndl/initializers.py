"""Weight initialisation: how a network's weights and biases start out.

Each initialiser takes the weight shape of every layer that has weights
(fully connected (n_out, n_in), convolutional (maps, C, K, K)) and returns
``(biases, weights)``, with a bias column (n_out, 1) per layer, as in the book.
A weight's fan-in n_in is the number of inputs one neuron sees: n_in for a
fully connected layer, C·K·K for a convolutional one. Every draw comes from
``rng`` in a fixed order (biases, then weights), so a seed fixes the network.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .errors import ConfigError

Parameters = tuple[list[np.ndarray], list[np.ndarray]]
Shapes = Sequence[tuple[int, ...]]


def fan_in(shape: tuple[int, ...]) -> int:
    """The inputs one neuron (or one map's kernel) sees: every axis of its weights but the first."""
    return math.prod(shape[1:])


def large(shapes: Shapes, rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """network.py's initialisation (chapter 1): every weight and bias drawn from N(0, 1)."""
    biases = [rng.standard_normal((shape[0], 1)).astype(dtype) for shape in shapes]
    weights = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    return biases, weights


def normalized(shapes: Shapes, rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """network2.py's default (chapter 3): weights N(0, 1/n_in) so z doesn't saturate; biases N(0, 1)."""
    biases = [rng.standard_normal((shape[0], 1)).astype(dtype) for shape in shapes]
    weights = [(rng.standard_normal(shape) / np.sqrt(fan_in(shape))).astype(dtype) for shape in shapes]
    return biases, weights


def he(shapes: Shapes, rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """For ReLU layers (He et al., 2015): weights N(0, 2/n_in), since ReLU zeroes half its inputs; biases 0."""
    biases = [np.zeros((shape[0], 1), dtype=dtype) for shape in shapes]
    weights = [(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in(shape))).astype(dtype) for shape in shapes]
    return biases, weights


Initializer = Callable[[Shapes, np.random.Generator, np.dtype], Parameters]
INITIALIZERS: dict[str, Initializer] = {
    "large": large,
    "normalized": normalized,
    "he": he,
}


def get_initializer(name: str) -> Initializer:
    """Look an initialiser up by name."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown weight initialisation {name!r}; choose from: {', '.join(INITIALIZERS)}") from None
