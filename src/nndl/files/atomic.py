"""Writing files so that an interruption never leaves a half-written one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import NndlError


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename."""
    with atomic_output(path) as handle:
        handle.write(payload)


class atomic_output:
    """Context manager giving a binary file handle whose contents replace ``path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed
    and ``path`` is left exactly as it was.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._tmp = Path(tmp)
        self._handle = os.fdopen(fd, "wb")
        return self._handle

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
            if exc_type is None:
                os.chmod(self._tmp, 0o666 & ~current_umask())  # mkstemp makes it owner-only
                os.replace(self._tmp, self.path)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()


def current_umask() -> int:
    """The process's umask (the permission bits new files leave out)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: Path, what: str, error: type[NndlError] = NndlError) -> Any:
    """The parsed contents of a JSON file, or ``error`` saying the file is missing or is not ``what``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not {what} ({exc})") from None
