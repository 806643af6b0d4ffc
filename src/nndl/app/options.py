"""Command-line options that several subcommands share, each declared once."""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Callable

from ..runs.spec import DataSpec

DATA_HELP = next(f.metadata["help"] for f in dataclasses.fields(DataSpec) if f.name == "source")


def add_data_option(parser: argparse.ArgumentParser, note: str = "") -> None:
    """``--data DIR``, with the help of the run specification's data source (which is train's --data)."""
    parser.add_argument("--data", metavar="DIR", help=f"{DATA_HELP}{'; ' + note if note else ''}")


def whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type accepting whole numbers from ``minimum`` to ``maximum`` (every input is bounded)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{text!r}: must be from {minimum} to {maximum}")
        return value

    return parse


def real_number(minimum: float, maximum: float) -> Callable[[str], float]:
    """An argparse type accepting finite numbers from ``minimum`` to ``maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and minimum <= value <= maximum):
            raise argparse.ArgumentTypeError(f"{text!r}: must be a number from {minimum:g} to {maximum:g}")
        return value

    return parse
