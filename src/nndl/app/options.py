"""Command-line options that several subcommands share, each declared once."""

from __future__ import annotations

import argparse
import dataclasses

from ..runs.spec import DataSpec

DATA_HELP = next(f.metadata["help"] for f in dataclasses.fields(DataSpec) if f.name == "source")


def add_data_option(parser: argparse.ArgumentParser, note: str = "") -> None:
    """``--data DIR``, with the help of the run specification's data source (which is train's --data)."""
    parser.add_argument("--data", metavar="DIR", help=f"{DATA_HELP}{'; ' + note if note else ''}")
