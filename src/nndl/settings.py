"""Declared settings: a dataclass field that carries its own help, range and choices.

Every setting of a run is declared once, with :func:`setting`, and from that one
declaration come its default, its validation (:func:`check_fields`, with a
message naming the field and the allowed values), its JSON form and its
command-line option (see :mod:`nndl.app.cli`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from .errors import ConfigError

KINDS = ("int", "float", "str", "bool", "ints", "strs")
#: Largest whole number a setting accepts unless it says otherwise (far beyond any real run).
MAX_INT = 10**9


def setting(default: Any, help: str, *, kind: str, choices: Sequence[str] | None = None,
            minimum: float | None = None, maximum: float | None = None, below: float | None = None,
            above: float | None = None, optional: bool = False, flag: str | None = None,
            metavar: str | None = None, identity: bool = True, cli: bool = True) -> Any:
    """A dataclass field with its help text, kind and allowed values.

    ``kind`` is int, float, str, bool, ints (a tuple of whole numbers) or strs;
    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive
    ones; ``optional`` allows None. ``identity`` False marks settings that do not
    change the result (worker counts), so they do not make two runs different.
    ``flag`` overrides the command-line option (default ``--field-name``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}")
    metadata = {"help": help, "kind": kind, "choices": tuple(choices) if choices else None, "minimum": minimum,
                "maximum": maximum, "below": below, "above": above, "optional": optional, "flag": flag,
                "metavar": metavar, "identity": identity, "cli": cli}
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default=tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_flag(field: dataclasses.Field) -> str:
    """A setting's command-line option: its declared ``flag``, else --field-name."""
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def describe_range(meta: dict[str, Any]) -> str:
    """'from 1', 'in [0, 1)', 'one of a, b' ... for messages."""
    if meta["choices"]:
        return "choose from " + ", ".join(meta["choices"])
    low = f"[{meta['minimum']}" if meta["minimum"] is not None else (f"({meta['above']}" if meta["above"] is not None
                                                                     else None)
    high = f"{meta['maximum']}]" if meta["maximum"] is not None else (f"{meta['below']})" if meta["below"] is not None
                                                                      else None)
    if low and high:
        return f"must be in {low}, {high}"
    if low:
        return f"must be {'at least' if low[0] == '[' else 'greater than'} {low[1:]}"
    if high:
        return f"must be {'at most' if high[-1] == ']' else 'less than'} {high[:-1]}"
    return ""


def check_number(name: str, value: Any, meta: dict[str, Any]) -> float | int:
    """One number, checked against its kind and bounds."""
    whole = meta["kind"] in ("int", "ints")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not float(value).is_integer()):
        raise ConfigError(f"{name} {value!r}: must be {'a whole number' if whole else 'a number'}"
                          + (f" ({describe_range(meta)})" if describe_range(meta) else ""))
    if not math.isfinite(value):
        raise ConfigError(f"{name} {value}: must be a finite number")
    value = int(value) if whole else float(value)
    bounds = ((meta["minimum"], lambda v, b: v >= b), (meta["maximum"], lambda v, b: v <= b),
              (meta["above"], lambda v, b: v > b), (meta["below"], lambda v, b: v < b))
    if any(bound is not None and not ok(value, bound) for bound, ok in bounds):
        raise ConfigError(f"{name} {value}: {describe_range(meta)}")
    if whole and meta["maximum"] is None and value > MAX_INT:
        raise ConfigError(f"{name} {value}: must be at most {MAX_INT}")
    return value


def check_value(name: str, value: Any, meta: dict[str, Any]) -> Any:
    """A field's value, checked and normalised (lists become tuples, 3.0 → 3 for whole numbers)."""
    kind = meta["kind"]
    if value is None:
        if meta["optional"]:
            return None
        raise ConfigError(f"{name}: a value is required")
    if kind in ("int", "float"):
        return check_number(name, value, meta)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} {value!r}: must be true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{name} {value!r}: must be a string")
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{name} {value!r}: {describe_range(meta)}")
        return value
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} {value!r}: must be a list")
    if kind == "ints":
        return tuple(check_number(name, v, meta) for v in value)
    for v in value:
        if not isinstance(v, str) or (meta["choices"] and v not in meta["choices"]):
            raise ConfigError(f"{name} {v!r}: {describe_range(meta)}")
    return tuple(value)


def check_fields(obj: Any, section: str = "") -> None:
    """Check and normalise every declared field of a frozen dataclass, in place."""
    for field in dataclasses.fields(obj):
        name = f"{section}.{field.name}" if section else field.name
        value = check_value(name, getattr(obj, field.name), field.metadata)
        object.__setattr__(obj, field.name, value)


def from_dict(cls: type, values: Any, where: str) -> Any:
    """Build a settings dataclass from plain values, naming any unknown key and the known ones."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected an object of settings, got {type(values).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}; known settings: {', '.join(known)}")
    return cls(**values)


def to_dict(obj: Any, identity_only: bool = False) -> dict[str, Any]:
    """A settings dataclass as JSON-ready values (tuples become lists)."""
    return {f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
            for f in dataclasses.fields(obj) if f.metadata.get("identity", True) or not identity_only}
