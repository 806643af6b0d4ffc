"""``nndl sweep``: search hyperparameters on a Dask cluster and report the best setting (see nndl.runs.sweep)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..device import DEVICES, array_module
from ..errors import ConfigError
from ..files.atomic import check_output_folder
from .options import add_data_option

MAX_WORKERS = 64  # local Dask worker processes one command may start


def register(commands: Any) -> None:
    """Add the ``sweep`` subcommand to the ``nndl`` parser's subcommands."""
    s = commands.add_parser(
        "sweep", help="search hyperparameters on a Dask cluster (local, or --scheduler)",
        description="Run a hyperparameter sweep described in SPEC (JSON or TOML): a base run, the settings to "
        "search (grid, random or both, possibly in stages), the seeds and the measure to rank by (validation "
        "accuracy by default; the test set is used once, on the chosen run). Each finished trial is saved at "
        "once under OUT/trials, so the same command again skips finished trials. Writes results.csv, "
        "results.json, figures and report.md to OUT.")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("spec", nargs="?", metavar="SPEC", help="the sweep: a .json or .toml file")
    which.add_argument("--example", choices=("book-strategy", "book-strategy-100"),
                       help="a built-in sweep: chapter 3's strategy (the η threshold, then λ, then the mini-batch "
                       "size) on [784, 30, 10], or on [784, 100, 10]")
    s.add_argument("--out", metavar="DIR", help="where to write (default ./sweeps/NAME)")
    add_engine_options(s, "trials")
    add_data_option(s, "the workers read it too")
    s.add_argument("--print-spec", action="store_true", help="print the sweep as JSON and exit")
    s.add_argument("--quiet", "-q", action="store_true",
                   help="print only the result (no progress lines, nor the bar drawn on a terminal)")
    s.set_defaults(run=run_sweep_command)


def add_engine_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--scheduler and --workers: where the Dask tasks run (also on 'nndl experiment run')."""
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help=f"send the {what} to this running Dask scheduler ('dask scheduler'; its workers need "
                        f"nndl installed)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help=f"run the {what} on a local Dask cluster of N worker processes (default for sweeps: "
                        f"one per core, or per GPU with --device gpu)")
    parser.add_argument("--device", choices=DEVICES,
                        help=f"where the {what} compute: cpu (NumPy) or gpu (CuPy; a local cluster has one worker per "
                        f"GPU); default: cpu, or the sweep's own setting")


def engine_from_args(args: argparse.Namespace) -> Any:
    """An Engine (a context manager) when --scheduler or --workers asks for one, else a context giving None."""
    import contextlib

    from ..runs.engine import Engine

    if args.scheduler is None and checked_workers(args) is None:
        return contextlib.nullcontext(None)
    return Engine(args.scheduler, args.workers, device=args.device or "cpu")


def checked_workers(args: argparse.Namespace) -> int | None:
    """--workers, refused below 1 or above MAX_WORKERS before anything starts."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    if args.workers is not None and args.workers > MAX_WORKERS:
        raise ConfigError(f"--workers {args.workers}: at most {MAX_WORKERS} worker processes")
    return args.workers


def run_sweep_command(args: argparse.Namespace) -> int:
    from ..runs.sweep import EXAMPLES, Sweep, format_measure, read_sweep_file, run_sweep

    workers = checked_workers(args)
    values = EXAMPLES[args.example] if args.example else read_sweep_file(args.spec)
    sweep = Sweep.from_dict(values, f"example {args.example}" if args.example else args.spec)
    if args.print_spec:
        print(json.dumps(values, indent=2, ensure_ascii=False))
        return 0
    if args.data:
        sweep = sweep.with_base(source=str(Path(args.data).resolve()))
    if args.device:
        sweep = sweep.with_base(device=args.device)
    array_module(sweep.base.get("device", "cpu"))  # a missing GPU or CuPy is said before any trial is planned
    out = check_output_folder(args.out or Path("sweeps") / sweep.name, "--out")  # before any trial trains
    log = (lambda message: None) if args.quiet else (lambda message: print(message, flush=True))
    results = run_sweep(sweep, out, scheduler=args.scheduler, workers=workers, progress=not args.quiet, log=log)
    chosen = results["chosen"]
    print(f"Best: {', '.join(f'{k} = {v}' for k, v in results['kept'].items())}: {sweep.measure} "
          f"{format_measure(chosen[str(sweep.measure)], sweep.measure)} (seed {chosen['seed']}), test accuracy "
          f"{100 * results['test_accuracy']:.2f}%")
    if results["failed"]:
        print(f"{len(results['failed'])} trial(s) failed; see {out / 'report.md'}")
    print(f"Wrote {out / 'report.md'}, results.csv, results.json and figures")
    return 0
