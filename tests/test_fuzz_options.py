"""Property-based tests of every subcommand's options: any command line ends in a result or in one line
on stderr with exit code 2, never a traceback."""

import argparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndl.app.cli import build_parser, main

WEIRD_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-inf", "", " ", "1,", ",", "3.5", "99999999999999999999",
                     "0x10", "1_000", "١٢", "∞", "rotate=1e400", "elastic=nan", "784,0,10", "a,b", "--", "-",
                     "/dev/null", "/nonexistent/x", "quadratic", "relu", "softmax", "validation", "halve-on-plateau"]),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


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
SLOW = {"serve", "sweep"}  # they start servers or clusters: their parsing is fuzzed, not their running


def options_of(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for action in parser._actions for flag in action.option_strings if flag not in ("-h", "--help")]


@pytest.mark.parametrize("command", sorted(PARSERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_command_line_is_a_result_or_one_line(command, data, capsys, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.setenv("NNDL_DATA", "/nonexistent-nndl-data")  # nothing may start real work
    flags = options_of(PARSERS[command])
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(flags), WEIRD_VALUES), max_size=4)) if flags else []
    positional = data.draw(st.lists(WEIRD_VALUES, max_size=2))
    argv = [*command.split(), *positional]
    for flag, value in pairs:
        argv += [flag, value]
    if command == "train":
        argv.append("--print-spec")  # the whole specification is built and checked, nothing trained
    elif command.split()[0] in SLOW or command == "experiment run":
        argv.append("--help-never")  # parsing alone: an unknown option guarantees it stops there
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err)
