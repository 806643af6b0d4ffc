"""A hostile mirror on 127.0.0.1: every trick ends in a one-line DataError within a bounded time.

The mirror's behaviour is chosen by the first part of the path: a wrong hash,
an endless stream, a gzip bomb, a byte at a time, silence, a header that
trickles in. The deadline is set short (NNDL_DOWNLOAD_DEADLINE) so each case
takes about a second; without the deadline several would never end.
"""

import gzip
import http.server
import threading
import time

import pytest

from nndl.data.download import MAX_DOWNLOAD_BYTES, download_mnist
from nndl.errors import DataError

DEADLINE = 1.0
BOMB = gzip.compress(bytes(100 * 2**20), compresslevel=9)  # 100 MB of zeros in about 100 kB
SERVER_LIMIT = 15.0  # no handler runs longer, whatever the client does


class HostileMirror(http.server.BaseHTTPRequestHandler):
    """Answers GET /<behaviour>/<file> with that behaviour."""

    stop = threading.Event()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        behaviour = self.path.strip("/").split("/")[0]
        started = time.monotonic()
        try:
            if behaviour == "trickle-header":
                for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if self.stop.wait(0.2) or time.monotonic() - started > SERVER_LIMIT:
                        return
            if behaviour == "silent":
                self.stop.wait(SERVER_LIMIT)
                return
            self.send_response(200)
            if behaviour == "hash":
                body = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif behaviour == "bomb":
                self.send_header("Content-Length", str(len(BOMB)))
                self.end_headers()
                self.wfile.write(BOMB)
            elif behaviour == "huge-length":
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.wfile.write(bytes(1000))
            elif behaviour in ("endless", "byte-by-byte"):
                self.end_headers()  # no length: the body ends when the connection does
                chunk, pause = (bytes(2**16), 0.0) if behaviour == "endless" else (b"\x1f", 0.3)
                while not self.stop.wait(pause) and time.monotonic() - started < SERVER_LIMIT:
                    self.wfile.write(chunk)
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


@pytest.fixture
def hostile_mirror(monkeypatch):
    monkeypatch.setenv("NNDL_DOWNLOAD_DEADLINE", str(DEADLINE))
    HostileMirror.stop.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileMirror)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    HostileMirror.stop.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("behaviour, message", [
    ("hash", "SHA256 of the decompressed data"),
    ("bomb", "decompresses to more than 67,108,864 bytes"),
    ("endless", f"more than {MAX_DOWNLOAD_BYTES:,} bytes"),
    ("huge-length", "announces 1,000,000,000,000 bytes"),
    ("byte-by-byte", "too slow"),
    ("silent", "timed out|no complete answer"),
    ("trickle-header", "no complete answer within"),
])
def test_a_hostile_mirror_costs_one_line_and_at_most_the_deadline(hostile_mirror, tmp_path, behaviour, message):
    started = time.monotonic()
    with pytest.raises(DataError, match=message) as error:
        download_mnist(tmp_path, [hostile_mirror + behaviour + "/"], timeout=30.0, log=lambda line: None)
    elapsed = time.monotonic() - started
    assert "\n" not in str(error.value)
    assert elapsed < DEADLINE + 2.0, f"the mirror held the download {elapsed:.1f} s"
    assert list(tmp_path.iterdir()) == []  # nothing unverified reaches the cache


def test_the_deadline_setting_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("NNDL_DOWNLOAD_DEADLINE", "soon")
    with pytest.raises(DataError, match="NNDL_DOWNLOAD_DEADLINE 'soon'"):
        download_mnist(tmp_path, ["http://127.0.0.1:9/"], log=lambda line: None)
