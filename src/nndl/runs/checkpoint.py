"""Checkpoints: a training run saved after every epoch (and when interrupted), to resume exactly.

A checkpoint folder holds ``checkpoint-EEEEEE-BBBBBB.npz`` files (epoch E, the
next mini-batch B), the newest two kept. Each is one .npz written atomically:
the weights and biases, momentum velocities and every callback's arrays, plus a
``state`` member of UTF-8 JSON with the run specification, the nndl version, a
fingerprint of the data, the position (epoch, mini-batch, η, the dropout
stream), the history, the callbacks' other state, the shape of every
array member, and the outputs the run was started with (``nndl train``'s
``--save`` and ``--json``, which a resume restores; they are not part of the
run's identity). Nothing is pickled, and a reader checks each member's .npy header
against those shapes (and their total against a cap) before reading its data.

Because every random stream is keyed by (seed, purpose, epoch), weights,
velocities, η and this state are all a run needs: a resumed run ends with
bit-identical weights and history (but for wall-clock seconds).
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..callbacks import Callback
from ..device import copy_into, to_host
from ..errors import ConfigError, NndlError
from ..files.atomic import open_regular_file, parse_json, write_bytes_atomically
from ..files.models import ARCHIVE_ERRORS, MAX_PARAMETERS, ModelFileError, read_member
from ..network import Network
from ..training import Position, TrainingRun
from .spec import RunSpec

FORMAT = "nndl-checkpoint"
FORMAT_VERSION = 2  # 2: the state lists every array member's shape
KEEP = 2
NAME = re.compile(r"^checkpoint-(\d{6})-(\d{6})\.npz$")
MAX_STATE_BYTES = 32 * 2**20
MAX_VALUES = 4 * MAX_PARAMETERS  # numbers in all arrays: weights, velocities, the best epoch's weights, and more


class CheckpointError(NndlError):
    """A checkpoint cannot be used to resume this run."""


def pack_state(states: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Split callback states into JSON values and named arrays (a list of arrays becomes several)."""
    packed, arrays = [], {}
    for i, state in enumerate(states):
        entry: dict[str, Any] = {}
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"callback{i}.{key}"] = value
                entry[key] = {"array": f"callback{i}.{key}"}
            elif isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
                names = [f"callback{i}.{key}.{j}" for j in range(len(value))]
                arrays.update(zip(names, value))
                entry[key] = {"arrays": names}
            else:
                entry[key] = {"value": value}
        packed.append(entry)
    return packed, arrays


def unpack_state(packed: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The inverse of :func:`pack_state`."""
    states = []
    for entry in packed:
        state = {}
        for key, held in entry.items():
            if "array" in held:
                state[key] = arrays[held["array"]]
            elif "arrays" in held:
                state[key] = [arrays[name] for name in held["arrays"]]
            else:
                state[key] = held["value"]
        states.append(state)
    return states


@dataclass
class Checkpoint:
    """One checkpoint, read back: what it was saved from, and everything needed to resume."""

    path: Path
    spec: RunSpec
    data_fingerprint: str
    position: Position
    parameters: list[np.ndarray]
    callback_states: list[dict[str, Any]]
    finished: bool
    outputs: dict[str, str | bool | None] = field(default_factory=dict)  # what the caller makes of the result

    def restore(self, network: Network, callbacks: Sequence[Callback]) -> Position:
        """Put the saved weights into ``network`` and the saved states into ``callbacks``; return the position."""
        params = network.parameters()
        if [p.shape for p in params] != [p.shape for p in self.parameters]:
            raise CheckpointError(f"{self.path}: its weights do not fit the network {network.sizes}")
        for param, saved in zip(params, self.parameters):
            copy_into(param, saved)
        if len(callbacks) != len(self.callback_states):
            raise CheckpointError(f"{self.path}: saved by a run with other callbacks; start a new checkpoint folder")
        for callback, state in zip(callbacks, self.callback_states):
            callback.set_state(state)
        return self.position


class Checkpointer(Callback):
    """Save the run to ``folder`` after every epoch and when it is interrupted.

    It must come after every callback whose state it saves (so an epoch's
    decisions are in the checkpoint); ``stateful`` are those callbacks.
    """

    def __init__(self, folder: str | Path, spec: RunSpec, data_fingerprint: str, stateful: Sequence[Callback],
                 outputs: dict[str, str | bool | None] | None = None):
        self.folder, self.spec, self.data_fingerprint = Path(folder), spec, data_fingerprint
        self.stateful, self.outputs = list(stateful), dict(outputs or {})
        self.saved: Path | None = None

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        self.save(run, finished=run.stop_training or run.epoch >= run.config.epochs)

    def on_interrupt(self, run: TrainingRun) -> None:
        self.save(run, finished=False)

    def save(self, run: TrainingRun, finished: bool) -> Path:
        """Write the run's current state atomically, then drop all but the newest two checkpoints."""
        position = run.position()
        packed, arrays = pack_state([c.get_state() for c in self.stateful])
        params = run.network.parameters()
        arrays.update({f"param.{i}": to_host(p) for i, p in enumerate(params)})
        if position.velocities is not None:
            arrays.update({f"velocity.{i}": to_host(v) for i, v in enumerate(position.velocities)})
        state = {"format": FORMAT, "format_version": FORMAT_VERSION, "nndl_version": __version__,
                 "spec": self.spec.to_dict(), "outputs": self.outputs, "data_fingerprint": self.data_fingerprint,
                 "finished": finished,
                 "position": {"epoch": position.epoch, "batch": position.batch, "eta": position.eta,
                              "dropout_state": position.dropout_state, "epoch_seconds": position.epoch_seconds,
                              "n_parameters": len(params),
                              "n_velocities": None if position.velocities is None else len(position.velocities)},
                 "arrays": {name: list(array.shape) for name, array in arrays.items()},
                 "history": position.history, "callbacks": packed}
        arrays["state"] = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path = self.folder / f"checkpoint-{position.epoch:06d}-{position.batch:06d}.npz"
        write_bytes_atomically(path, buffer.getvalue())
        for old in checkpoint_files(self.folder)[:-KEEP]:
            old.unlink(missing_ok=True)
        self.saved = path
        return path


def checkpoint_files(folder: Path) -> list[Path]:
    """The checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if NAME.match(p.name) and p.is_file())


def resumable(folder: str | Path | None) -> bool:
    """Whether a run checkpointing in ``folder`` takes up where an earlier, interrupted attempt stopped."""
    return folder is not None and bool(checkpoint_files(Path(folder)))


def read_checkpoint(path: Path) -> Checkpoint:
    """Read one checkpoint, or raise CheckpointError saying why it cannot be used."""
    try:
        with open_regular_file(path, "an nndl checkpoint", CheckpointError) as handle, zipfile.ZipFile(handle) as archive:
            if "state.npy" not in archive.namelist():
                raise CheckpointError(f"{path}: not an nndl checkpoint (no state)")
            raw = read_member(archive, path, "state", "ui", max_length=MAX_STATE_BYTES)
            if raw.dtype != np.uint8:
                raise CheckpointError(f"{path}: damaged state (dtype {raw.dtype}, expected bytes)")
            state = parse_json(raw.tobytes(), str(path), "an nndl checkpoint", CheckpointError)
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not an nndl checkpoint")
            if state.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(f"{path}: checkpoint format {state.get('format_version')!r:.20}; "
                                      f"this nndl reads {FORMAT_VERSION}")
            shapes = checked_shapes(path, state["arrays"])
            arrays = {name: read_member(archive, path, name, "f", shape) for name, shape in shapes.items()}
    except (CheckpointError, ModelFileError) as exc:
        raise CheckpointError(str(exc)) from None
    except (*ARCHIVE_ERRORS, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
    try:
        pos = state["position"]
        parameters = [arrays[f"param.{i}"] for i in range(pos["n_parameters"])]
        velocities = (None if pos["n_velocities"] is None
                      else [arrays[f"velocity.{i}"] for i in range(pos["n_velocities"])])
        spec = RunSpec.from_dict(state["spec"], f"{path}: spec")
        position = Position(int(pos["epoch"]), int(pos["batch"]), float(pos["eta"]), velocities,
                            checked_history(path, state["history"], int(pos["epoch"])), pos["dropout_state"],
                            float(pos["epoch_seconds"]))
        callbacks = unpack_state(state["callbacks"], arrays)
        outputs = state.get("outputs", {})  # none before outputs were recorded
        if not isinstance(outputs, dict) or not all(isinstance(v, (str, bool, type(None))) for v in outputs.values()):
            raise ValueError(f"outputs {outputs!r:.60}")
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({exc})") from None
    return Checkpoint(path, spec, str(state["data_fingerprint"]), position, parameters, callbacks,
                      bool(state["finished"]), outputs)


def is_number(value: Any) -> bool:
    """Whether a JSON value is a number (NaN included: a diverged epoch's cost), not a bool."""
    return type(value) in (int, float)


def record_problem(record: Any, epoch: int) -> str | None:
    """What is wrong with history record ``epoch`` (see :mod:`nndl.metrics`), or None."""
    if not isinstance(record, dict):
        return "is not a record"
    if type(record.get("epoch")) is not int or record["epoch"] != epoch:
        return f"is not epoch {epoch}'s"
    missing = [key for key in ("seconds", "eta") if not is_number(record.get(key))]
    if missing:
        return f"has no number {missing[0]}"
    metrics = record.get("metrics")
    if not isinstance(metrics, dict) or not all(isinstance(measures, dict) and all(map(is_number, measures.values()))
                                                for measures in metrics.values()):
        return "has no metrics (numbers by dataset and measure)"
    speed = record.get("learning_speed", [])
    if not isinstance(speed, list) or not all(map(is_number, speed)):
        return "has a learning speed that is not a list of numbers"
    return None


def checked_history(path: Path, history: Any, epochs: int) -> list[dict[str, Any]]:
    """The state's history: one record per finished epoch, in order, each of the types training writes.

    Checked here so that a damaged or edited history is one line, not an
    AttributeError when the resumed run, its schedule or its printer reads it.
    """
    if not isinstance(history, list) or len(history) != epochs:
        raise CheckpointError(f"{path}: damaged checkpoint (its history is not a list of {epochs} epoch records)")
    for epoch, record in enumerate(history):
        problem = record_problem(record, epoch)
        if problem:
            raise CheckpointError(f"{path}: damaged checkpoint (history record {epoch} {problem})")
    return history


def checked_shapes(path: Path, shapes: Any) -> dict[str, tuple[int, ...]]:
    """The array members' shapes from the state: whole numbers ≥ 0, at most MAX_VALUES numbers in all."""
    if not isinstance(shapes, dict):
        raise CheckpointError(f"{path}: damaged checkpoint (no list of arrays)")
    checked, total = {}, 0
    for name, shape in shapes.items():
        if (not isinstance(shape, list) or len(shape) > 4  # up to a convolutional kernel: (maps, C, K, K)
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise CheckpointError(f"{path}: damaged checkpoint (array {name!r:.40} has shape {shape!r:.40})")
        checked[name] = tuple(shape)
        total += math.prod(shape)
    if total > MAX_VALUES:
        raise CheckpointError(f"{path}: its arrays hold {total:,} numbers, more than nndl reads ({MAX_VALUES:,})")
    return checked


def latest_checkpoint(folder: Path, warn=lambda message: print(message, file=sys.stderr)) -> Checkpoint:
    """The newest readable checkpoint in ``folder``; a damaged newest one falls back to the one before."""
    files = checkpoint_files(folder)
    if not files:
        raise CheckpointError(f"{folder}: no checkpoint to resume from; start with --checkpoint {folder}")
    problems = []
    for path in reversed(files):
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        for problem in problems:
            warn(f"warning: {problem}; resuming from the checkpoint before it, {path.name}")
        return checkpoint
    raise CheckpointError("; ".join(problems))


def check_compatible(checkpoint: Checkpoint, spec: RunSpec, data_fingerprint: str) -> None:
    """Refuse to resume with a different specification or different data, naming the difference."""
    differences = list(checkpoint.spec.differences(spec))
    if differences:
        raise CheckpointError(f"{checkpoint.path} was saved by a different run ({'; '.join(differences[:3])}); "
                              "resume with the same settings, or start a new checkpoint folder")
    if checkpoint.data_fingerprint != data_fingerprint:
        raise CheckpointError(f"{checkpoint.path} was trained on different data (fingerprint "
                              f"{checkpoint.data_fingerprint} ≠ {data_fingerprint}); resume with the same --data")
