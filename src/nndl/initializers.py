"""Weight initialisation: how a network's weights and biases start out.

Each initialiser returns ``(biases, weights)`` for ``sizes`` with ``weights[l]``
of shape (n_out, n_in) and ``biases[l]`` of shape (n_out, 1), as in the book.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import ConfigError

Parameters = tuple[list[np.ndarray], list[np.ndarray]]


def large(sizes: list[int], rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """network.py's initialisation (chapter 1): every weight and bias drawn from N(0, 1)."""
    biases = [rng.standard_normal((n_out, 1)).astype(dtype) for n_out in sizes[1:]]
    weights = [rng.standard_normal((n_out, n_in)).astype(dtype) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return biases, weights


def normalized(sizes: list[int], rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """network2.py's default (chapter 3): weights N(0, 1/n_in) so z doesn't saturate; biases N(0, 1)."""
    biases = [rng.standard_normal((n_out, 1)).astype(dtype) for n_out in sizes[1:]]
    weights = [
        (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    return biases, weights


def he(sizes: list[int], rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """For ReLU layers (He et al., 2015): weights N(0, 2/n_in), since ReLU zeroes half its inputs; biases 0."""
    biases = [np.zeros((n_out, 1), dtype=dtype) for n_out in sizes[1:]]
    weights = [
        (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(dtype)
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    return biases, weights


INITIALIZERS: dict[str, Callable[[list[int], np.random.Generator, np.dtype], Parameters]] = {
    "large": large,
    "normalized": normalized,
    "he": he,
}


def get_initializer(name: str) -> Callable[[list[int], np.random.Generator, np.dtype], Parameters]:
    """Look an initialiser up by name."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown weight initialisation {name!r}; choose from: {', '.join(INITIALIZERS)}") from None
