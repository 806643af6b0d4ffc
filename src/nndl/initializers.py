"""Weight initialisation: how a network's weights and biases start out.

Each initialiser takes, for every layer that has weights, a :class:`Weights`:
the weight shape (fully connected (n_out, n_in), convolutional (maps, C, K, K))
and the layer's fan-out. It returns ``(biases, weights)``, with a bias column
(n_out, 1) per layer, as in the book. A weight's fan-in n_in is the number of
inputs one neuron sees: n_in for a fully connected layer, C·K·K for a
convolutional one. Every draw comes from ``rng`` in a fixed order (biases, then
weights), so a seed fixes the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import ConfigError
from .layers import Layer

Parameters = tuple[list[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True)
class Weights:
    """One layer's weights as an initialiser sees them.

    ``fan_out`` is network3.py's n_out: the neurons of a fully connected layer,
    or for a convolutional layer maps × K² divided by the area of the pooling
    right above it (maps × K² when none follows).
    """

    shape: tuple[int, ...]
    fan_out: int


def weights_of(layers: Sequence[Layer]) -> list[Weights]:
    """The :class:`Weights` of every layer of ``layers`` that has weights, in order."""
    found = []
    for layer, above in zip(layers, [*layers[1:], None]):
        shape = layer.weight_shape()
        if shape is None:
            continue
        if layer.kind == "conv":
            pool_area = above.p ** 2 if above is not None and above.kind == "pool" else 1
            fan_out = shape[0] * math.prod(shape[2:]) // pool_area  # maps × K² / pool area, as network3.py
        else:
            fan_out = shape[0]
        found.append(Weights(shape, fan_out))
    return found


def fan_in(shape: tuple[int, ...]) -> int:
    """The inputs one neuron (or one map's kernel) sees: every axis of its weights but the first."""
    return math.prod(shape[1:])


def large(layers: Sequence[Weights], rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """network.py's initialisation (chapter 1): every weight and bias drawn from N(0, 1)."""
    biases = [rng.standard_normal((layer.shape[0], 1)).astype(dtype) for layer in layers]
    weights = [rng.standard_normal(layer.shape).astype(dtype) for layer in layers]
    return biases, weights


def normalized(layers: Sequence[Weights], rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """network2.py's default (chapter 3): weights N(0, 1/n_in) so z doesn't saturate; biases N(0, 1)."""
    biases = [rng.standard_normal((layer.shape[0], 1)).astype(dtype) for layer in layers]
    weights = [(rng.standard_normal(layer.shape) / np.sqrt(fan_in(layer.shape))).astype(dtype) for layer in layers]
    return biases, weights


def he(layers: Sequence[Weights], rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """For ReLU layers (He et al., 2015): weights N(0, 2/n_in), since ReLU zeroes half its inputs; biases 0."""
    biases = [np.zeros((layer.shape[0], 1), dtype=dtype) for layer in layers]
    weights = [(rng.standard_normal(layer.shape) * np.sqrt(2.0 / fan_in(layer.shape))).astype(dtype)
               for layer in layers]
    return biases, weights


def network3(layers: Sequence[Weights], rng: np.random.Generator, dtype: np.dtype) -> Parameters:
    """network3.py's (chapter 6): weights N(0, 1/n_out), biases N(0, 1); the output (softmax) layer all zeros.

    n_out is the fan-out of :class:`Weights`. Nielsen's 2016 note calls n_out a
    slip for n_in; it is kept here to reproduce the book's runs.
    """
    *hidden, output = layers
    zeros = (np.zeros((output.shape[0], 1), dtype=dtype), np.zeros(output.shape, dtype=dtype))
    biases = [rng.standard_normal((layer.shape[0], 1)).astype(dtype) for layer in hidden]
    weights = [(rng.standard_normal(layer.shape) / np.sqrt(layer.fan_out)).astype(dtype) for layer in hidden]
    return biases + [zeros[0]], weights + [zeros[1]]


Initializer = Callable[[Sequence[Weights], np.random.Generator, np.dtype], Parameters]
INITIALIZERS: dict[str, Initializer] = {
    "large": large,
    "normalized": normalized,
    "he": he,
    "network3": network3,
}


def get_initializer(name: str) -> Initializer:
    """Look an initialiser up by name."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown weight initialisation {name!r}; choose from: {', '.join(INITIALIZERS)}") from None
