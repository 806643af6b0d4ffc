"""Downloading MNIST into the per-user cache, verified and written atomically.

Each file is fetched from the first mirror that answers, decompressed, and its
SHA256 checked against the known hash of the decompressed IDX bytes (the same
whatever mirror or compressor served it). Only a file that passes is written,
through a temporary file and a rename, so the cache never holds a bad copy.
The mirror list can be replaced with ``NNDL_MNIST_MIRRORS`` (comma-separated
base URLs).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Sequence

from .mnist import DATA_HINT, MNIST_FILES
from ..errors import DataError
from ..files.atomic import write_bytes_atomically

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: SHA256 of each decompressed IDX file.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def mirrors() -> list[str]:
    """The mirror base URLs to try, in order (``NNDL_MNIST_MIRRORS`` overrides the defaults)."""
    configured = os.environ.get("NNDL_MNIST_MIRRORS", "")
    chosen = [m.strip() for m in configured.replace(" ", ",").split(",") if m.strip()] or DEFAULT_MIRRORS
    return [m if m.endswith("/") else m + "/" for m in chosen]


def fetch_verified(url: str, expected_sha256: str, timeout: float) -> bytes:
    """Download ``url`` (a .gz file) and return its bytes if the decompressed data match the hash."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        compressed = response.read()
    try:
        data = gzip.decompress(compressed)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"not valid gzip data ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise ValueError(f"SHA256 of the decompressed data is {digest[:12]}…, expected {expected_sha256[:12]}…")
    return compressed


def download_mnist(
    folder: Path,
    mirror_urls: Sequence[str] | None = None,
    timeout: float = 30.0,
    log: Callable[[str], None] | None = None,
) -> None:
    """Download the four MNIST files that ``folder`` lacks, verifying each before writing it."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    urls = list(mirror_urls) if mirror_urls is not None else mirrors()
    for name in MNIST_FILES.values():
        target = folder / f"{name}.gz"
        if target.is_file():
            continue
        failures = []
        for base in urls:
            url = f"{base}{name}.gz"
            log(f"Downloading {url}")
            try:
                payload = fetch_verified(url, MNIST_SHA256[name], timeout)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url}: {reason}")
                continue
            write_bytes_atomically(target, payload)
            break
        else:
            tried = "; ".join(failures)
            raise DataError(f"could not download {name}.gz ({tried}). To work offline, {DATA_HINT}")
