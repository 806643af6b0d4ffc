"""Seeded random streams, so every random choice in nndl is reproducible.

One user seed drives several independent streams (weight initialisation,
mini-batch shuffling, ...): each is ``default_rng([seed, stream_number])``, so
changing how much one stream draws never changes another.
"""

from __future__ import annotations

import secrets

import numpy as np

STREAMS = {"init": 0, "shuffle": 1, "dropout": 2, "augment": 3}


def make_rng(seed: int | None, stream: str, *keys: int) -> np.random.Generator:
    """The generator for ``stream`` under ``seed`` (and ``keys``, e.g. the epoch); fresh entropy when seed is None."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([seed, STREAMS[stream], *keys])


def fresh_seed() -> int:
    """A random seed to record when the user gave none, so the run can be repeated."""
    return secrets.randbelow(2**31)
