"""The models folder the web page reads, writes and uploads into, by plain file name only.

A name must match ``^[A-Za-z0-9._-]+\\.(npz|json)$``: no slash, so no path can
leave the folder. Files are read with :func:`nndl.files.models.load_model`
(``allow_pickle=False``; the book's network2 JSON is parsed, never evaluated)
and kept in memory until they change on disk, so reading a drawing does not
reload the model every stroke.
"""

from __future__ import annotations

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
        self.loaded: dict[str, tuple[tuple[int, int], Network]] = {}
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
        """The model files in the folder, sorted by name."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir()
                      if NAME.fullmatch(p.name) and not p.name.startswith(".") and p.is_file())

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
        return cached[1]

    def describe(self, name: str) -> dict[str, Any]:
        """What the Models tab lists for ``name``: the network's shape and training record, or why it is unusable."""
        try:
            network = self.load(name)
        except ModelFileError as exc:
            return {"name": name, "valid": False, "error": str(exc)}
        best = network.metadata.get("best") or {}
        return {"name": name, "valid": True, "network": network.describe(), "best": best,
                "epochs": len(network.metadata.get("history") or [])}

    def new_path(self, name: str) -> Path:
        """The path for a new model ``name``, refusing to overwrite one."""
        path = self.path(name)
        if path.exists():
            raise ModelExists(f"{name}: a model of that name is already in the models folder; choose another name")
        self.folder.mkdir(parents=True, exist_ok=True)
        return path

    def save(self, network: Network, name: str) -> Path:
        """Save ``network`` as a new model file ``name`` (.npz)."""
        return save_model(network, self.new_path(name))

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Store an uploaded model file, checked the way ``nndl evaluate`` checks one; a bad file is not kept."""
        path = self.new_path(name)
        staging = self.folder / f".upload-{threading.get_ident()}-{name}"
        write_bytes_atomically(staging, data)
        try:
            check_claimed_size(staging)
            load_model(staging)
        except NndlError as exc:
            staging.unlink(missing_ok=True)
            raise ModelFileError(str(exc).replace(str(staging), name)) from None
        os.replace(staging, path)
        return self.describe(name)
