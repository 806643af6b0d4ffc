"""Convolution and max-pooling (chapter 6), forward and backward, over whole mini-batches.

Arrays keep the rest of nndl's convention, *examples last*: a mini-batch of m
stacks of C feature maps of H×W pixels is an array of shape (C, H, W, m), so
flattening it gives the columns a fully connected layer takes, (C·H·W, m),
without copying.

A convolution is one matrix product over the "im2col" matrix of the input: each
column holds one K×K patch of every input map, at one output position of one
example. Its backward pass is two more products and a sum over the K×K kernel
offsets; pooling keeps, for each window, where its maximum was. No loop runs
over examples or output positions.
"""

from __future__ import annotations

import numpy as np

from .device import module_of


def patches(a: np.ndarray, k: int) -> np.ndarray:
    """The im2col matrix of ``a`` (C, H, W, m): shape (C·K·K, H'·W'·m) with H' = H − K + 1, W' = W − K + 1.

    Row (c, i, j) and column (y, x, example) hold a[c, y + i, x + j, example]: the
    input under kernel entry (i, j) when the kernel sits at output position (y, x).
    A window view, copied once into the order the product needs.
    """
    c, h, w, m = a.shape
    xp = module_of(a)
    windows = xp.lib.stride_tricks.sliding_window_view(a, (k, k), axis=(1, 2))  # (C, H', W', m, K, K), no copy
    return xp.ascontiguousarray(windows.transpose(0, 4, 5, 1, 2, 3)).reshape(c * k * k, -1)


def correlate(a_patches: np.ndarray, w: np.ndarray, b: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """z = w ⋆ a + b: every map of the layer is the kernel slid over the input (shared weights), plus one bias.

    The book's eq. 125, z_{y,x} = b + Σ_{i,j} w_{i,j} a_{y+i, x+j}, summed over the
    input maps too, for every output map at once. ``w`` is (maps, C, K, K),
    ``b`` is (maps, 1); the result has ``out_shape`` (maps, H', W', m).
    """
    z = module_of(w).dot(w.reshape(w.shape[0], -1), a_patches)
    z += b
    return z.reshape(out_shape)


def kernel_gradient(delta: np.ndarray, a_patches: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """∂C/∂w = Σ over positions and examples of δ × the input under each kernel entry: a correlation of a with δ."""
    return module_of(delta).dot(delta.reshape(w_shape[0], -1), a_patches.T).reshape(w_shape)


def map_bias_gradient(delta: np.ndarray) -> np.ndarray:
    """∂C/∂b = Σ of δ over every position of the map and every example (one bias is shared by the whole map)."""
    return module_of(delta).add.reduce(delta.reshape(delta.shape[0], -1), axis=1, keepdims=True)


def full_convolution(delta: np.ndarray, w: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """∂C/∂a: δ convolved ("full", zero-padded) with the kernel flipped, back onto the input's shape ``in_shape``.

    Each input pixel gets Σ w_{i,j} δ_{y−i, x−j} over the kernel entries and the
    output maps it fed. Computed as wᵀδ (what every patch entry receives), then
    each of the K×K kernel offsets adds its share onto the input: one slice-add
    per offset, no per-pixel scatter.
    """
    maps, c, k, _ = w.shape
    _, h_out, w_out, m = delta.shape
    xp = module_of(delta)
    received = xp.dot(w.reshape(maps, -1).T, delta.reshape(maps, -1)).reshape(c, k, k, h_out, w_out, m)
    grad = xp.zeros(in_shape, delta.dtype)
    for i in range(k):
        for j in range(k):
            grad[:, i : i + h_out, j : j + w_out] += received[:, i, j]
    return grad


def window_offsets(p: int) -> list[tuple[int, int, int]]:
    """(k, i, j) for the P·P offsets of a pooling window, k = i·P + j in row-major order."""
    return [(k, *divmod(k, p)) for k in range(p * p)]


def max_pool(a: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """The largest value of each non-overlapping P×P window of ``a`` (C, H, W, m), and where it was (k = i·P + j).

    The windows' entries at one offset (i, j) are the strided view a[:, i::P, j::P],
    so the maximum is P·P − 1 comparisons of whole arrays. Ties go to the first
    maximum in row-major order, as in PyTorch's max_pool2d.
    """
    xp = module_of(a)
    largest = a[:, ::p, ::p].copy()
    where = xp.zeros(largest.shape, np.uint8)
    for k, i, j in window_offsets(p)[1:]:
        candidate = a[:, i::p, j::p]
        larger = xp.greater(candidate, largest).view(np.uint8)  # 1 where offset k beats every earlier one
        xp.maximum(largest, candidate, out=largest)
        xp.maximum(where, larger * np.uint8(k), out=where)  # k exceeds every earlier offset: where → k there
    return largest, where


def route_to_max(delta: np.ndarray, where: np.ndarray, p: int) -> np.ndarray:
    """Max-pooling's backward pass: each window's δ goes to the input that was its maximum, the rest get 0."""
    c, h_out, w_out, m = delta.shape
    xp = module_of(delta)
    grad = xp.empty((c, h_out * p, w_out * p, m), delta.dtype)
    for k, i, j in window_offsets(p):
        xp.multiply(delta, where == k, out=grad[:, i::p, j::p])
    return grad
