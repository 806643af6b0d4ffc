"""The models folder the web page reads, writes and uploads into, by plain file name only.

A name must match ``^[A-Za-z0-9._-]+\\.(npz|json)$``: no slash, so no path can
leave the folder. Files are read with :func:`nndl.files.models.load_model`
(``allow_pickle=False``; the book's network2 JSON is parsed, never evaluated)
and kept in memory until they change on disk, so reading a drawing does not
reload the model every stroke; the cache holds at most MAX_CACHED_MODELS models
and MAX_CACHED_BYTES of parameters, the least recently used going first. A new
file appears under its name with a hard link, which fails if the name is taken:
two uploads to one name never replace each other.
"""

from __future__ import annotations

import collections
import os
import re
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, ModelFileError, NndlError
from ...files.atomic import read_json, write_bytes_atomically
from ...files.models import load_model, save_model
from ...network import Network
from .schemas import MODEL_NAME_PATTERN

NAME = re.compile(MODEL_NAME_PATTERN)


MAX_PARAMETERS = 20_000_000  # [784, 1000, 1000, 1000, 10] has 2.8 million; refuse files claiming far more
MAX_CACHED_MODELS = 8  # models kept in memory after use ...
MAX_CACHED_BYTES = 200_000_000  # ... and their parameters' bytes at most (the one in use always stays)


def check_claimed_size(path: Path) -> None:
    """Refuse, before anything large is built, a file whose sizes or unpacked arrays exceed MAX_PARAMETERS.

    A loader builds the network from the file's ``sizes`` before checking the
    arrays, and an .npz may be compressed: a small upload must not make the
    server allocate gigabytes.
    """
    too_large = ModelFileError(f"{path.name}: more than {MAX_PARAMETERS:,} parameters; the page takes smaller models")
    if path.suffix == ".json":
        data = read_json(path, "a network2.py JSON model", ModelFileError)
        sizes = data.get("sizes") if isinstance(data, dict) else None
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                if sum(member.file_size for member in archive.infolist()) > 8 * MAX_PARAMETERS + 1_000_000:
                    raise too_large  # float64 parameters, unpacked
            with np.load(path, allow_pickle=False) as arrays:
                sizes = arrays["sizes"].tolist() if "sizes" in arrays.files else None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{path.name}: not a readable nndl model file ({exc})") from None
    if not isinstance(sizes, list) or not all(isinstance(n, int) and n > 0 for n in sizes):
        return  # the loader names what is wrong
    if sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:])) > MAX_PARAMETERS:
        raise too_large


class ModelExists(ConfigError):
    """A save or upload would overwrite a model already in the folder."""


class ModelMissing(ModelFileError):
    """No model of that name is in the folder."""


class ModelFolder:
    """Models in one folder: listed, loaded (cached by modification time and size), saved and uploaded."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).resolve()
        self.loaded: collections.OrderedDict[str, tuple[tuple[int, int], Network]] = collections.OrderedDict()
        self.lock = threading.Lock()

    def path(self, name: str) -> Path:
        """The file called ``name`` in the folder, refusing anything but a plain model file name."""
        if not NAME.fullmatch(name) or name.startswith("."):
            raise ConfigError(f"model name {name!r}: use a plain file name of letters, digits, '.', '_' and '-', "
                              "ending in .npz or .json")
        path = self.folder / name
        if path.resolve().parent != self.folder:  # e.g. a symbolic link pointing elsewhere
            raise ConfigError(f"model name {name!r}: it must be a file in the models folder")
        return path

    def names(self) -> list[str]:
        """The model files in the folder, sorted by name (symbolic links, folders and other odd entries skipped)."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir()
                      if NAME.fullmatch(p.name) and not p.name.startswith(".") and p.is_file() and not p.is_symlink())

    def load(self, name: str) -> Network:
        """The network in file ``name`` (a ModelFileError if it is missing or not a valid model)."""
        path = self.path(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ModelMissing(f"{name}: no such model in the models folder; the Models tab lists them") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self.lock:
            cached = self.loaded.get(name)
            if cached is None or cached[0] != stamp:
                cached = self.loaded[name] = (stamp, load_model(path))
            self.loaded.move_to_end(name)
            self.evict()
        return cached[1]

    def evict(self) -> None:
        """Forget the least recently used models beyond the caps (the one just used stays)."""
        def size(entry: tuple[tuple[int, int], Network]) -> int:
            return sum(w.nbytes + b.nbytes for w, b in zip(entry[1].weights, entry[1].biases))

        while len(self.loaded) > 1 and (len(self.loaded) > MAX_CACHED_MODELS or
                                        sum(size(entry) for entry in self.loaded.values()) > MAX_CACHED_BYTES):
            self.loaded.popitem(last=False)

    def describe(self, name: str) -> dict[str, Any]:
        """What the Models tab lists for ``name``: the network's shape and training record, or why it is unusable."""
        try:
            network = self.load(name)
        except NndlError as exc:
            return {"name": name, "valid": False, "error": str(exc)}
        best = network.metadata.get("best") or {}
        return {"name": name, "valid": True, "network": network.describe(), "best": best,
                "epochs": len(network.metadata.get("history") or [])}

    def new_path(self, name: str) -> Path:
        """The path for a new model ``name``, refusing to overwrite one."""
        path = self.path(name)
        if path.exists() or path.is_symlink():
            raise ModelExists(f"{name}: a model of that name is already in the models folder; choose another name")
        self.folder.mkdir(parents=True, exist_ok=True)
        return path

    def staging(self, name: str) -> Path:
        """A hidden file to write ``name`` into before it appears (the listing skips names starting with '.')."""
        return self.folder / f".staging-{os.getpid()}-{threading.get_ident()}-{name}"

    def publish(self, staging: Path, path: Path) -> None:
        """Give the written file ``staging`` its name ``path``, unless another request took the name meanwhile."""
        try:
            os.link(staging, path)  # unlike a rename, a link never replaces an existing file
        except FileExistsError:
            raise ModelExists(f"{path.name}: a model of that name is already in the models folder; "
                              "choose another name") from None
        finally:
            staging.unlink(missing_ok=True)

    def save(self, network: Network, name: str) -> Path:
        """Save ``network`` as a new model file ``name`` (.npz)."""
        path = self.new_path(name)
        self.publish(save_model(network, self.staging(name)), path)
        return path

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Store an uploaded model file, checked the way ``nndl evaluate`` checks one; a bad file is not kept."""
        path = self.new_path(name)
        staging = self.staging(name)
        write_bytes_atomically(staging, data)
        try:
            check_claimed_size(staging)
            load_model(staging)
        except NndlError as exc:
            staging.unlink(missing_ok=True)
            raise ModelFileError(str(exc).replace(str(staging), name)) from None
        self.publish(staging, path)
        return self.describe(name)
