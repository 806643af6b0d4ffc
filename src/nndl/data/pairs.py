"""The book's data layout read into nndl's: a list of (x, y) pairs becomes one :class:`~nndl.data.mnist.Dataset`.

Nielsen's ``mnist_loader.load_data_wrapper()`` gives each image as a (784, 1)
column x in [0, 1], with y a (10, 1) one-hot column for training data and the
digit itself for validation and test data. nndl keeps the images as the rows
of one array and the labels as integers, so a reader of the book can pass
either layout to :func:`nndl.train`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .mnist import Dataset

FIX = "give a Dataset (e.g. nndl.load_mnist().training) or the book's list of (x, y) pairs"


def as_dataset(data: Any, name: str) -> Any:
    """``data`` itself if it is nndl's training data; the book's (x, y) pairs as a Dataset called ``name``."""
    if hasattr(data, "epoch_images"):  # a Dataset, or images distorted afresh each epoch
        return data
    try:
        pairs = [tuple(pair) for pair in data]
    except TypeError:
        raise ConfigError(f"{name} data of type {type(data).__name__}: {FIX}") from None
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ConfigError(f"{name} data: {'no examples' if not pairs else 'an item that is not an (x, y) pair'}; {FIX}")
    columns = [np.asarray(x) for x, _ in pairs]
    sizes = {column.size for column in columns}
    if len(sizes) != 1 or any(column.dtype.kind not in "biuf" for column in columns):
        raise ConfigError(f"{name} data: every x must be a column of the same number of pixels ({FIX})")
    labels = np.array([label_of(y, i, name) for i, (_, y) in enumerate(pairs)], dtype=np.int64)
    return Dataset(np.stack([column.reshape(-1) for column in columns]), labels, name)


def label_of(y: Any, index: int, name: str) -> int:
    """The digit a target stands for: y itself (test data), or the 1 in a one-hot column (training data)."""
    values = np.asarray(y).reshape(-1)
    if values.dtype.kind in "biuf" and values.size > 1 and np.count_nonzero(values) == 1 and values.max() == 1:
        return int(np.argmax(values))
    if values.dtype.kind in "iu" and values.size == 1 and values[0] >= 0:
        return int(values[0])
    raise ConfigError(f"{name} example {index}: y must be a digit or a one-hot column, as the book's "
                      f"vectorized_result(j) makes ({FIX})")
