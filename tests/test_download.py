"""The download path, against a local HTTP server on 127.0.0.1 standing in for the mirrors."""

import functools
import gzip
import http.server
import shutil
import threading

import numpy as np
import pytest

from nndl.data.mnist import MNIST_FILES, cache_dir, load_mnist
from nndl.errors import DataError


@pytest.fixture
def mirror(tmp_path):
    """Serve a folder over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def fill(folder, mnist_dir):
    for name in MNIST_FILES.values():
        shutil.copy(mnist_dir / f"{name}.gz", folder / f"{name}.gz")


def test_download_into_the_cache_then_use_it_offline(mirror, mnist_dir, monkeypatch):
    folder, url = mirror
    fill(folder, mnist_dir)
    monkeypatch.setenv("NNDL_MNIST_MIRRORS", f"http://127.0.0.1:9/,{url}")  # the first mirror is down
    data = load_mnist()
    assert list(data.test.labels[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    cached = sorted(p.name for p in (cache_dir() / "mnist").iterdir())
    assert cached == sorted(f"{name}.gz" for name in MNIST_FILES.values())
    shutil.rmtree(folder)  # the mirror is gone: the cache must be enough
    again = load_mnist(train_size=100)
    np.testing.assert_array_equal(again.training.labels, data.training.labels[:100])


def test_a_corrupted_download_is_rejected_and_never_cached(mirror, mnist_dir, monkeypatch):
    folder, url = mirror
    fill(folder, mnist_dir)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    labels = bytearray(gzip.decompress(bad.read_bytes()))
    labels[100] = (labels[100] + 1) % 10  # one wrong label: still valid IDX, wrong hash
    bad.write_bytes(gzip.compress(bytes(labels)))
    monkeypatch.setenv("NNDL_MNIST_MIRRORS", url)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*SHA256"):
        load_mnist()
    cached = {p.name for p in (cache_dir() / "mnist").iterdir()}
    assert "t10k-labels-idx1-ubyte.gz" not in cached
    assert not any(name.endswith(".tmp") for name in cached)


def test_a_truncated_download_is_rejected(mirror, mnist_dir, monkeypatch):
    folder, url = mirror
    fill(folder, mnist_dir)
    target = folder / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:1000])
    monkeypatch.setenv("NNDL_MNIST_MIRRORS", url)
    with pytest.raises(DataError, match="not valid gzip"):
        load_mnist()
    assert not (cache_dir() / "mnist" / "train-labels-idx1-ubyte.gz").exists()


def test_offline_error_says_how_to_point_at_local_files():
    with pytest.raises(DataError) as error:
        load_mnist()
    message = str(error.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert "--data DIR" in message and "NNDL_DATA" in message


def test_no_download_when_asked_not_to():
    with pytest.raises(DataError, match="not in the cache"):
        load_mnist(download=False)
