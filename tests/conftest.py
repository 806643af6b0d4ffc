"""Shared fixtures: the real MNIST files from ../shared (or NNDL_DATA), and small fake datasets."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from nndl.data.mnist import MNIST_FILES, load_mnist
from nndl.data.idx import write_idx

REPO = Path(__file__).resolve().parent.parent

# A shell without job control starts background commands with Ctrl-C ignored, and an ignored signal
# stays ignored in every process started from them. The interruption tests send SIGINT as a terminal
# would, so their processes must start with SIGINT's usual behaviour, whatever started pytest.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def real_mnist_dir() -> Path | None:
    for candidate in (os.environ.get("NNDL_DATA"), REPO.parent / "shared" / "datasets" / "mnist"):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    folder = real_mnist_dir()
    if folder is None:
        pytest.skip("MNIST not found: set NNDL_DATA to a folder with the four IDX files")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    return load_mnist(mnist_dir)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path_factory):
    """No test reads the user's NNDL_DATA, cache or checkout data, or reaches a real mirror, unless it sets them."""
    monkeypatch.delenv("NNDL_DATA", raising=False)
    monkeypatch.setattr("nndl.data.mnist.checkout_data_dir", lambda: None)
    monkeypatch.setenv("NNDL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("NNDL_MNIST_MIRRORS", "http://127.0.0.1:9/")  # the discard port: refused at once


def write_fake_mnist(folder: Path, n_train: int = 10_020, n_test: int = 30, side: int = 4, seed: int = 0,
                     gz: bool = True) -> Path:
    """A small dataset in MNIST's four-file layout: side×side images, labels 0-9."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        write_idx(folder / (MNIST_FILES[key] + suffix), array)
    return folder


@pytest.fixture
def fake_mnist_dir(tmp_path) -> Path:
    return write_fake_mnist(tmp_path / "fake")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The system Chromium for browser tests (Playwright cannot download its own here): NNDL_CHROMIUM, else PATH."""
    import shutil

    path = os.environ.get("NNDL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium not found: apt-get install chromium, or set NNDL_CHROMIUM to its path")
    return path


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread, on a socket bound to a free 127.0.0.1 port first; yields its URL."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def browser(chromium_executable):
    """The system Chromium, driven by Playwright, for every browser test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable)
        yield browser
        browser.close()
