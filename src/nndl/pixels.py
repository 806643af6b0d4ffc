"""Pixels as the network sees them.

MNIST stores each pixel as a byte, 0 (paper) to 255 (ink). Datasets keep those
bytes (a quarter of the memory of float32), and the network's input is
x = byte / 255 in [0, 1], computed one mini-batch (or evaluation chunk) at a
time in the network's own precision.
"""

from __future__ import annotations

import numpy as np

from .device import module_of


def unit_interval(images: np.ndarray, dtype: np.dtype | type | str = np.float32) -> np.ndarray:
    """``images`` as values in [0, 1] of ``dtype``: bytes are divided by 255, floats are only cast."""
    dtype = np.dtype(dtype)
    if images.dtype != np.uint8:
        return images.astype(dtype, copy=False)
    xp = module_of(images)  # NumPy, or CuPy for images already on the GPU
    out = xp.empty(images.shape, dtype)
    xp.divide(images, dtype.type(255), out=out)
    return out


def as_bytes(images: np.ndarray) -> np.ndarray:
    """``images`` as bytes 0-255 (values in [0, 1] are scaled and rounded)."""
    if images.dtype == np.uint8:
        return images
    return np.rint(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
