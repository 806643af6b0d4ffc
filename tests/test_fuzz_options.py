"""Property-based tests of every subcommand's options: any command line ends in a result or in one line
on stderr with exit code 2, never a traceback."""

import os

import pytest
from hypothesis import given, settings

from fuzz_options import PARSERS, command_lines, outcome

EXAMPLES = int(os.environ.get("NNDL_FUZZ_EXAMPLES", "40"))


@pytest.mark.parametrize("command", sorted(PARSERS))
@pytest.mark.usefixtures("nothing_to_work_on")
def test_any_command_line_is_a_result_or_one_line(command):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(argv=command_lines(command))
    def check(argv):
        kind, err = outcome(argv)
        assert kind != "other", (argv, err)

    check()


@pytest.fixture
def nothing_to_work_on(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNDL_DATA", "/nonexistent-nndl-data")  # nothing may start real work
