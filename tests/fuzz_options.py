"""Random command lines for every subcommand, and how a run of one ended (shared by the tests and the
benchmark benchmarks/fuzz_options.py)."""

from __future__ import annotations

import argparse
import contextlib
import io
import traceback

from hypothesis import strategies as st

from nndl.app.cli import build_parser, main

WEIRD_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-inf", "", " ", "1,", ",", "3.5", "99999999999999999999",
                     "0x10", "1_000", "١٢", "∞", "rotate=1e400", "elastic=nan", "784,0,10", "a,b", "--", "-",
                     "/dev/null", "/nonexistent/x", "quadratic", "relu", "softmax", "validation", "halve-on-plateau",
                     "\x00", "\r\n"]),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
#: Subcommands that would start a server, a cluster or long work: their options are parsed, not run.
PARSE_ONLY = {"serve", "sweep", "experiment run"}


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    """'train' → its parser, 'experiment run' → its parser, ..."""
    found = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
                return
        found[" ".join(path)] = parser

    walk(build_parser(), ())
    return found


PARSERS = subcommand_parsers()


def command_lines(command: str) -> st.SearchStrategy:
    """Command lines for ``command``: a few of its options with weird values, and weird positionals."""
    flags = [f for action in PARSERS[command]._actions for f in action.option_strings if f not in ("-h", "--help")]
    pairs = st.lists(st.tuples(st.sampled_from(flags), WEIRD_VALUES), max_size=4) if flags else st.just([])
    return st.tuples(st.lists(WEIRD_VALUES, max_size=2), pairs).map(
        lambda parts: [*command.split(), *parts[0], *[item for pair in parts[1] for item in pair]]
        + (["--print-spec"] if command == "train" else ["--no-such-option"] if command in PARSE_ONLY else []))


def outcome(argv: list[str]) -> tuple[str, str]:
    """('result' | 'error' | 'other', stderr): exit 0 or 1; exit 2 with one line; anything else."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
        except Exception:  # noqa: BLE001 - a traceback is exactly what is being looked for
            return "other", traceback.format_exc()
    text = err.getvalue()
    if code in (0, 1) and "Traceback" not in text:
        return "result", text
    if code == 2 and len(text.strip().splitlines()) == 1 and "Traceback" not in text:
        return "error", text
    return "other", text
