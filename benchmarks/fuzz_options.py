"""Fuzzing counts for every subcommand's options: cases, results, one-line errors, anything else.

Not a test: it prints a table. Run from the repository root:

    python benchmarks/fuzz_options.py --cases 300

Each case is a random command line (tests/fuzz_options.py): a few of the
subcommand's options with weird values (huge, negative, NaN, empty, control
characters, unicode digits) and weird positionals. ``train`` builds and checks
the whole run specification (--print-spec); serve, sweep and experiment run are
parsed only. "other" (a traceback, or exit 2 with more than one line) must be 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzz_options import PARSERS, command_lines, outcome  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="cases per subcommand (default 300)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ["NNDL_DATA"] = "/nonexistent-nndl-data"
    os.chdir(tempfile.mkdtemp())
    print(f"{'subcommand':18s} {'cases':>6s} {'results':>8s} {'errors':>7s} {'other':>6s}")
    total = {"result": 0, "error": 0, "other": 0}
    for command in sorted(PARSERS):
        counts = {"result": 0, "error": 0, "other": 0}
        strategy = command_lines(command)
        for _ in range(args.cases):
            kind, err = outcome(strategy.example())
            counts[kind] += 1
            if kind == "other":
                print(f"  OTHER: {err.strip()[-300:]}")
        for kind in total:
            total[kind] += counts[kind]
        print(f"{command:18s} {args.cases:6d} {counts['result']:8d} {counts['error']:7d} {counts['other']:6d}")
    print(f"{'all':18s} {sum(total.values()):6d} {total['result']:8d} {total['error']:7d} {total['other']:6d}")


if __name__ == "__main__":
    main()
