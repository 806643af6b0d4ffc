"""MNIST (and any dataset in MNIST's four-file IDX layout): finding, loading, splitting.

Images come back as rows: a float array of shape (n, 784) scaled to [0, 1], and
labels as integers. The book's split is used: the first 50,000 training images
are training data, the last 10,000 are validation data, and the 10,000 t10k
images are test data.

Where the files come from, in this order: the ``data_dir`` argument (``--data``);
the ``NNDL_DATA`` environment variable; ``../shared/datasets/mnist`` beside the
source checkout nndl runs from, when it holds the four files (what ``make demo``
uses); the per-user cache folder; otherwise a download from public mirrors into
that cache (see :mod:`nndl.download`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .idx import read_idx

#: The four standard MNIST file names (without .gz); any folder holding them loads.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC = 2051  # ubyte, 3 dimensions (n, rows, cols)
LABELS_MAGIC = 2049  # ubyte, 1 dimension (n,)
VALIDATION_SIZE = 10_000  # the book holds back the last 10,000 training images
DIGITS = 10  # labels are the digits 0-9, as in MNIST

DATA_HINT = (
    "point nndl at a folder holding the four MNIST files "
    "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz) with --data DIR or the NNDL_DATA environment variable"
)


@dataclass(frozen=True)
class Dataset:
    """Images as rows of shape (n, n_features), bytes 0-255 (or floats in [0, 1]), and their integer labels."""

    images: np.ndarray
    labels: np.ndarray
    name: str = "data"

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_features(self) -> int:
        return self.images.shape[1]

    def epoch_images(self, epoch: int) -> np.ndarray:
        """The images to train on in any epoch: these, unchanged (distorted data gives fresh ones)."""
        return self.images

    def head(self, n: int) -> "Dataset":
        """The first ``n`` examples (views, not copies)."""
        return Dataset(self.images[:n], self.labels[:n], self.name)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, n={len(self)}, features={self.n_features}, dtype={self.images.dtype})"


@dataclass(frozen=True)
class MNIST:
    """The book's three datasets, and the folder they were read from."""

    training: Dataset
    validation: Dataset
    test: Dataset
    source: Path
    n_classes: int = 10

    def split(self, name: str) -> Dataset:
        """Return the dataset called ``name``: training, validation or test."""
        if name not in ("training", "validation", "test"):
            raise ConfigError(f"unknown dataset {name!r}; choose from: training, validation, test")
        return getattr(self, name)


def one_hot(labels: np.ndarray, n_classes: int = 10, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Targets y(x) as one-hot columns: shape (n_classes, n), y[label, i] = 1."""
    return np.eye(n_classes, dtype=dtype)[:, labels]


def cache_dir() -> Path:
    """The per-user cache folder (``NNDL_CACHE_DIR``, else the platform's usual place)."""
    if os.environ.get("NNDL_CACHE_DIR"):
        return Path(os.environ["NNDL_CACHE_DIR"]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "nndl" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "nndl"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nndl"


def find_file(folder: Path, name: str) -> Path | None:
    """The file for standard IDX name ``name`` in ``folder``: gzip or raw, dash or dot spelling."""
    dotted = name.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte, as some copies name it
    for candidate in (name + ".gz", name, dotted + ".gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def missing_files(folder: Path) -> list[str]:
    """The standard file names not present in ``folder``."""
    return [name for name in MNIST_FILES.values() if find_file(folder, name) is None]


CHECKOUT = Path(__file__).resolve().parents[3]  # from src/nndl/data/mnist.py; an installed nndl's has no pyproject.toml


def checkout_data_dir(checkout: Path = CHECKOUT) -> Path | None:
    """``../shared/datasets/mnist`` beside the source checkout nndl runs from, if it holds the four files."""
    folder = checkout.parent / "shared" / "datasets" / "mnist"
    return folder if (checkout / "pyproject.toml").is_file() and not missing_files(folder) else None


def resolve_data_dir(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Find the folder to load from: ``data_dir``, NNDL_DATA, beside the checkout, then the cache (downloading)."""
    for given, origin in ((data_dir, "--data"), (os.environ.get("NNDL_DATA") or None, "NNDL_DATA")):
        if given is None:
            continue
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise DataError(f"{origin} {folder}: no such folder; {DATA_HINT}")
        return folder
    beside = checkout_data_dir()
    if beside is not None:
        return beside
    folder = cache_dir() / "mnist"
    if not missing_files(folder):
        return folder
    if not download:
        raise DataError(f"MNIST is not in the cache ({folder}); {DATA_HINT}")
    from .download import download_mnist

    download_mnist(folder)
    return folder


def read_split(folder: Path, images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one images/labels pair as uint8 arrays, checking they describe the same examples."""
    paths = {}
    for key in (images_key, labels_key):
        path = find_file(folder, MNIST_FILES[key])
        if path is None:
            raise DataError(f"{folder}: missing {MNIST_FILES[key]}(.gz); {DATA_HINT}")
        paths[key] = path
    images = read_idx(paths[images_key], expect_magic=IMAGES_MAGIC)
    labels = read_idx(paths[labels_key], expect_magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{paths[images_key]} holds {len(images)} images but {paths[labels_key]} holds "
            f"{len(labels)} labels; the two files must come from the same dataset"
        )
    check_examples(paths[images_key], images, paths[labels_key], labels)
    return images, labels


def check_examples(images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray) -> None:
    """Refuse a file of no images (or images of no pixels) and labels that are not the digits 0-9.

    Both would be met only later, as a reduction over nothing or a one-hot
    target past the output layer.
    """
    if images.size == 0:
        rows, cols = images.shape[1:]
        raise DataError(f"{images_path}: holds {len(images):,} images of {rows}×{cols} pixels; a dataset needs at "
                        f"least one image of at least one pixel")
    if labels.max() >= DIGITS:
        first = int(np.argmax(labels >= DIGITS))
        raise DataError(f"{labels_path}: label {labels[first]} (example {first:,}); labels must be the digits "
                        f"0-{DIGITS - 1}")


def as_rows(images: np.ndarray) -> np.ndarray:
    """Images (n, rows, cols) as rows (n, rows·cols), still bytes (a view, not a copy)."""
    return images.reshape(len(images), -1)


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    train_size: int | None = None,
    download: bool = True,
) -> MNIST:
    """Load MNIST with the book's training / validation / test split.

    ``train_size`` keeps only the first N training images (the overfitting
    experiment uses 1,000). Pixels stay bytes (the whole set takes 55 MB); the
    network scales each mini-batch to [0, 1] (:mod:`nndl.pixels`). Raises
    :class:`DataError` with the file and the problem when a file is missing,
    truncated, corrupt or of the wrong kind.
    """
    folder = resolve_data_dir(data_dir, download=download)
    train_images, train_labels = read_split(folder, "train_images", "train_labels")
    test_images, test_labels = read_split(folder, "test_images", "test_labels")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(
            f"{folder}: training images are {train_images.shape[1:]} but test images are {test_images.shape[1:]}"
        )
    n_train = len(train_images) - VALIDATION_SIZE
    if n_train <= 0:
        raise DataError(
            f"{folder}: {len(train_images)} training images; the book's split needs more than {VALIDATION_SIZE}"
        )
    if train_size is not None:
        if not 1 <= train_size <= n_train:
            raise ConfigError(f"train size {train_size}: choose from 1 to {n_train} training images")
    keep = n_train if train_size is None else train_size
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    labels = train_labels.astype(np.int64)
    return MNIST(
        training=Dataset(as_rows(train_images[:keep]), labels[:keep], "training"),
        validation=Dataset(as_rows(train_images[n_train:]), labels[n_train:], "validation"),
        test=Dataset(as_rows(test_images), test_labels.astype(np.int64), "test"),
        source=folder,
        n_classes=n_classes,
    )
