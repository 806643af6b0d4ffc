"""Files in and out safely: atomic writes, output targets checked early, bounded reads.

A write goes to a temporary file ``.NAME.nndl-tmp-PID-XXXX`` beside the target
and is renamed over it only once complete, so an interruption never leaves a
half-written file; temporaries left by a killed process are swept on the next
write to that folder. A target that is a symlink, a device or a FIFO is never
replaced. Reads open regular files only (a FIFO would hang, a device never
ends) and never take more than a stated number of bytes.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import NndlError
from ..text import first_line

TEMP_MARK = ".nndl-tmp-"  # in every temporary's name, so stale ones are recognisable
JSON_MAX_BYTES = 16 * 2**20  # histories and metadata: a long run's history is well under 1 MB
JSON_MAX_DIGITS = 400  # a JSON integer longer than this is not a number nndl wrote


# -- writing ----------------------------------------------------------------------------------


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename."""
    with atomic_output(path) as handle:
        handle.write(payload)


def reason(exc: OSError) -> str:
    """The short, human part of an OSError ('No space left on device')."""
    return exc.strerror or str(exc)


def refuse_nul(path: str | os.PathLike, what: str) -> None:
    """Raise for a name with a NUL byte in it: no file system takes one (Python's calls raise ValueError)."""
    if "\0" in os.fspath(path):
        raise NndlError(f"{what} {str(path)!r}: not a usable name (it holds a NUL byte)")


def refuse_special_target(path: Path, what: str) -> None:
    """Raise if ``path`` exists as anything but a regular file (symlink, folder, device, FIFO, socket)."""
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there to replace (the folder checks say what is wrong with the path)
    except OSError as exc:
        raise NndlError(f"{what} {path}: cannot be checked ({reason(exc)})") from None
    if stat.S_ISLNK(mode):
        raise NndlError(f"{what} {path}: is a symbolic link, which nndl will not replace; name the real file")
    if stat.S_ISDIR(mode):
        raise NndlError(f"{what} {path}: is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise NndlError(f"{what} {path}: is a device, FIFO or socket, not a file; give a file name")


def sweep_stale_temporaries(folder: Path) -> None:
    """Remove temporaries that nndl processes which no longer run left in ``folder``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or TEMP_MARK not in name:
            continue
        pid = name.rsplit(TEMP_MARK, 1)[1].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                pass  # another process swept it first, or the folder is read-only: harmless


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # it exists, and is another user's
    return True


class atomic_output:
    """Context manager giving a binary file handle whose contents replace ``path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed
    and ``path`` is left exactly as it was; an OSError (disk full, read-only
    folder) becomes a one-line NndlError. A symlink, folder, device or FIFO at
    ``path`` is refused, never replaced.
    """

    def __init__(self, path: str | os.PathLike, what: str = "output"):
        self.path, self.what = Path(path), what

    def __enter__(self) -> BinaryIO:
        if not str(self.path):
            raise NndlError(f"{self.what}: empty file name")
        refuse_special_target(self.path, self.what)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale_temporaries(self.path.parent)
            prefix = f".{self.path.name}{TEMP_MARK}{os.getpid()}-"
            fd, tmp = tempfile.mkstemp(prefix=prefix, dir=self.path.parent)
        except OSError as exc:
            raise NndlError(f"{self.what} {self.path}: cannot write there ({reason(exc)})") from None
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
                refuse_special_target(self.path, self.what)  # it may have appeared while we wrote
                os.replace(self._tmp, self.path)
        except OSError as error:
            if exc_type is None:
                exc_type, exc = type(error), error
        finally:
            try:
                self._tmp.unlink()
            except FileNotFoundError:
                pass  # renamed into place
        if exc_type is not None and issubclass(exc_type, OSError):
            raise NndlError(f"{self.what} {self.path}: not written ({reason(exc)}); the previous file is intact") from None


def current_umask() -> int:
    """The process's umask (the permission bits new files leave out)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- checking output targets before the work that fills them ----------------------------------


def probe_writable(folder: Path, what: str, target: Path) -> None:
    """Create and remove a temporary in ``folder``: the honest test (root ignores permission bits)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".probe{TEMP_MARK}{os.getpid()}-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise NndlError(f"{what} {target}: cannot write in {folder} ({reason(exc)})") from None


def existing_ancestor(path: Path, what: str, target: Path) -> Path:
    """The nearest existing folder above ``path``, refusing a path that runs through a file."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NndlError(f"{what} {target}: {parent} is a file, not a folder")
            return parent
    raise NndlError(f"{what} {target}: no existing folder above it")


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """Refuse, before any work is done, a file target nndl could not write.

    ``path`` must be non-empty, in an existing, writable folder, and either new
    or a regular file (never a folder, symlink, device or FIFO). ``what`` names
    the option in messages ('--save'). Returns the path.
    """
    if not str(path):
        raise NndlError(f"{what}: empty file name")
    refuse_nul(path, what)
    path = Path(path)
    refuse_special_target(path, what)
    parent = path.parent
    if not parent.is_dir():
        existing_ancestor(path, what, path)  # raises if the path runs through a file
        raise NndlError(f"{what} {path}: folder {parent} does not exist; create it first")
    probe_writable(parent, what, path)
    return path


def check_output_folder(path: str | os.PathLike, what: str, must_be_new: bool = False) -> Path:
    """Refuse, before any work is done, a folder target nndl could not fill.

    The folder may be missing (it is created later, below a writable folder) or
    an existing writable folder; ``must_be_new`` refuses an existing one so
    earlier results are never mixed with new ones. Returns the path.
    """
    if not str(path):
        raise NndlError(f"{what}: empty folder name")
    refuse_nul(path, what)
    path = Path(path)
    if path.is_symlink() and not path.is_dir():
        raise NndlError(f"{what} {path}: is a symbolic link to no folder")
    if path.exists():
        if not path.is_dir():
            raise NndlError(f"{what} {path}: is a file, not a folder")
        if must_be_new:
            raise NndlError(f"{what} {path}: already exists; choose a new folder or remove it")
        probe_writable(path, what, path)
    else:
        probe_writable(existing_ancestor(path, what, path), what, path)
    return path


# -- reading ----------------------------------------------------------------------------------


def open_regular_file(path: str | os.PathLike, what: str, error: type[NndlError] = NndlError) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything but a regular file before any read.

    The open does not block (O_NONBLOCK), so a FIFO is refused instead of
    waiting for a writer forever; a folder or device is refused the same way.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({reason(exc)})") from None
    except ValueError:  # a NUL in the name
        raise error(f"{str(path)!r}: not a usable file name") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise error(f"{path}: is {kind}, not {what}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_capped(path: str | os.PathLike, what: str, max_bytes: int, error: type[NndlError] = NndlError) -> bytes:
    """The bytes of regular file ``path``, refusing one larger than ``max_bytes`` without reading it."""
    with open_regular_file(path, what, error) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise error(f"{path}: larger than {max_bytes:,} bytes; not {what}")
            data = handle.read(size + 1)  # sized to the file: read(max_bytes) would allocate max_bytes
            while size < len(data) <= max_bytes and (more := handle.read(2**20)):  # it grew while we read
                data += more
        except OSError as exc:
            raise error(f"{path}: cannot read {what} ({reason(exc)})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: larger than {max_bytes:,} bytes; not {what}")
    return data


def guarded_int(text: str) -> int:
    """parse_int for json.loads: refuse integers too long to be anything nndl wrote."""
    if len(text) > JSON_MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def parse_json(data: bytes, source: str, what: str, error: type[NndlError] = NndlError) -> Any:
    """JSON ``data`` parsed safely: bad UTF-8, huge integers and deep nesting are ``error``s."""
    try:
        return json.loads(data.decode("utf-8"), parse_int=guarded_int)
    except RecursionError:
        raise error(f"{source}: not {what} (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{source}: not {what} ({first_line(exc)})") from None


def parse_toml(data: bytes, source: str, what: str, error: type[NndlError] = NndlError) -> Any:
    """TOML ``data`` parsed safely, as :func:`parse_json` parses JSON: bad UTF-8 and deep nesting are ``error``s."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise error(f"{source}: TOML needs Python 3.11 or later; write {what} as JSON") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except RecursionError:
        raise error(f"{source}: not {what} (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:  # TOMLDecodeError, and int()'s digit limit, are ValueErrors
        raise error(f"{source}: not {what} ({first_line(exc)})") from None


def read_json(path: str | os.PathLike, what: str, error: type[NndlError] = NndlError, *,
              max_bytes: int = JSON_MAX_BYTES) -> Any:
    """The parsed contents of a JSON file of at most ``max_bytes``, or ``error`` saying why not."""
    return parse_json(read_capped(path, what, max_bytes, error), str(path), what, error)
