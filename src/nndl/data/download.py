"""Downloading MNIST into the per-user cache, verified and written atomically.

Each file is fetched from the first mirror that answers, decompressed, and its
SHA256 checked against the known hash of the decompressed IDX bytes (the same
whatever mirror or compressor served it). Only a file that passes is written,
through a temporary file and a rename, so the cache never holds a bad copy.
The mirror list can be replaced with ``NNDL_MNIST_MIRRORS`` (comma-separated
base URLs). A hostile or broken mirror costs little: each file is capped in size
(served and decompressed), each read has a timeout and each file a deadline.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

from .mnist import DATA_HINT, MNIST_FILES
from ..errors import DataError
from ..files.atomic import write_bytes_atomically
from ..text import first_line

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

MAX_DOWNLOAD_BYTES = 20 * 2**20  # per file as served; MNIST's largest .gz is 9.9 MB
MAX_IDX_BYTES = 64 * 2**20  # per file decompressed; MNIST's largest is 47 MB
DEFAULT_DEADLINE = 120.0  # seconds per file per mirror: 9.9 MB at 85 kB/s
READ_CHUNK = 2**16

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


def download_deadline() -> float:
    """Seconds one file may take from one mirror (``NNDL_DOWNLOAD_DEADLINE``, default 120)."""
    configured = os.environ.get("NNDL_DOWNLOAD_DEADLINE", "")
    try:
        seconds = float(configured) if configured else DEFAULT_DEADLINE
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86_400:
        raise DataError(f"NNDL_DOWNLOAD_DEADLINE {configured!r}: give a number of seconds, e.g. 120")
    return seconds


def fetch_capped(url: str, read_timeout: float, deadline: float) -> bytes:
    """The body at ``url``: at most MAX_DOWNLOAD_BYTES, each read within ``read_timeout``, done by ``deadline``.

    ``read1`` returns whatever has arrived, so a mirror sending a byte at a time
    is noticed at the deadline (a monotonic clock time) instead of filling a buffer.
    """
    with urllib.request.urlopen(url, timeout=read_timeout) as response:
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > MAX_DOWNLOAD_BYTES:
            raise ValueError(f"the mirror announces {int(announced):,} bytes; no MNIST file is over {MAX_DOWNLOAD_BYTES:,}")
        body = bytearray()
        while chunk := response.read1(READ_CHUNK):
            body += chunk
            if len(body) > MAX_DOWNLOAD_BYTES:
                raise ValueError(f"the mirror sent more than {MAX_DOWNLOAD_BYTES:,} bytes; no MNIST file is that large")
            if time.monotonic() > deadline:
                raise TimeoutError("too slow: not complete by the deadline (NNDL_DOWNLOAD_DEADLINE)")
    return bytes(body)


def within(seconds: float, work: Callable[[], bytes]) -> bytes:
    """``work()``'s result, or TimeoutError once ``seconds`` have passed whatever ``work`` is blocked in.

    The work runs in a daemon thread; one that overruns is abandoned (it ends at
    its next read, which ``fetch_capped`` bounds), so no mirror holds nndl longer.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="nndl-download", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"no complete answer within {seconds:g} s (NNDL_DOWNLOAD_DEADLINE)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def check_hash(compressed: bytes, expected_sha256: str) -> None:
    """Raise ValueError unless the gzip data decompress to at most MAX_IDX_BYTES with this SHA256.

    Decompression is streamed and capped, so a small gzip bomb costs one chunk of
    memory and stops at the cap.
    """
    digest, total = hashlib.sha256(), 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(compressed), mode="rb") as stream:
            while chunk := stream.read(READ_CHUNK):
                total += len(chunk)
                if total > MAX_IDX_BYTES:
                    raise ValueError(f"decompresses to more than {MAX_IDX_BYTES:,} bytes; no MNIST file is that large")
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"not valid gzip data ({exc})") from None
    if digest.hexdigest() != expected_sha256:
        raise ValueError(
            f"SHA256 of the decompressed data is {digest.hexdigest()[:12]}…, expected {expected_sha256[:12]}…"
        )


def fetch_verified(url: str, expected_sha256: str, timeout: float, deadline_seconds: float) -> bytes:
    """Download ``url`` (a .gz file) within the deadline and return its bytes if their contents match the hash."""
    read_timeout = min(timeout, deadline_seconds)
    compressed = within(deadline_seconds + 0.5, lambda: fetch_capped(
        url, read_timeout, time.monotonic() + deadline_seconds))
    check_hash(compressed, expected_sha256)
    return compressed


def download_mnist(
    folder: Path,
    mirror_urls: Sequence[str] | None = None,
    timeout: float = 30.0,
    log: Callable[[str], None] | None = None,
) -> None:
    """Download the four MNIST files that ``folder`` lacks, verifying each before writing it.

    ``timeout`` bounds each read; ``NNDL_DOWNLOAD_DEADLINE`` bounds each file from each mirror.
    """
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    urls = list(mirror_urls) if mirror_urls is not None else mirrors()
    deadline_seconds = download_deadline()
    for name in MNIST_FILES.values():
        target = folder / f"{name}.gz"
        if target.is_file():
            continue
        failures = []
        for base in urls:
            url = f"{base}{name}.gz"
            log(f"Downloading {url}")
            try:
                payload = fetch_verified(url, MNIST_SHA256[name], timeout, deadline_seconds)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc  # URLError keeps it in reason
                failures.append(f"{url}: {first_line(reason)}")
                continue
            write_bytes_atomically(target, payload)
            break
        else:
            tried = "; ".join(failures)
            raise DataError(f"could not download {name}.gz ({tried}). To work offline, {DATA_HINT}")
