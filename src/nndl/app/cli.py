"""The ``nndl`` command line: train, evaluate, gradcheck, expand, experiment, plot, convert.

Every problem a user can fix (bad option values, missing or corrupt data, a
damaged model file) ends in a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from .. import __version__
from ..data.distortions import Distortion, expand_dataset, parse_distortion, preview_grid
from ..data.mnist import load_mnist
from ..callbacks import Callback, EpochPrinter
from ..device import array_module
from ..errors import ConfigError, NndlError
from ..files.atomic import atomic_output, check_output_file, check_output_folder, read_json
from ..files.models import check_model_target, load_model, save_model
from ..files.network2 import save_network2_json
from ..files.plots import plot_history
from ..gradcheck import CONV_INPUT, CONV_LAYERS, TOLERANCE, check_all
from ..metrics import Monitor, ensemble_accuracy, evaluate
from ..network import Network
from ..pixels import unit_interval
from ..runs.blas import AUTO, blas_available
from ..runs.experiments import EXPERIMENTS, draw_vote_mistakes, get_experiment, run_all, run_experiment
from ..runs.runner import RunResult, run_spec
from ..runs.spec import FIELD_SECTION, SECTIONS, RunSpec
from ..settings import check_value
from ..text import plural
from ..training import check_data_fits
from . import inspect, predict, sweep_cmd, web
from .reporting import Announce, ProgressBar, StopOnSignal, strict_json
from .options import add_data_option, whole_number


def one_line(text: str) -> str:
    """``text`` with every line break or control character shown escaped, so a message stays one line."""
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where to look, and a mistyped option
    is refused by the subcommand it was meant for, with the closest option it has (--etta: did you mean --eta?)."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:  # nndl never passes arguments on, so they are mistakes, named here where the options are known
            self.error(f"unrecognized arguments: {' '.join(extras)}{self.closest_option(extras)}")
        return namespace, extras

    def closest_option(self, extras: list[str]) -> str:
        """'; did you mean --eta?' for the first unknown option that resembles one of this parser's, else ''."""
        for word in extras:
            if word.startswith("-"):
                close = difflib.get_close_matches(word.split("=")[0].lower(), self._option_string_actions, n=1)
                if close:
                    return f"; did you mean {close[0]}?"
        return ""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's 'invalid choice' (a subcommand, …) with the closest choice: 'trian': did you mean train?"""
        if action.choices is not None and value not in action.choices:
            names = [str(choice) for choice in action.choices]
            close = difflib.get_close_matches(str(value).lower(), names, n=1)
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from {', '.join(names)})" +
                                         (f"; did you mean {close[0]}?" if close else ""))

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


SEED = whole_number(0, 2**32 - 1)


def distortion_spec(text: str) -> Distortion:
    """'rotate=10,skew=0.2,elastic' → Distortion, with argparse's error on bad input."""
    try:
        return parse_distortion(text)
    except NndlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def gradcheck_layers(text: str) -> list[int]:
    """'4,5,3' → [4, 5, 3]: a small test network (finite differences cost two passes per parameter)."""
    try:
        sizes = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. 4,5,3") from None
    if not 2 <= len(sizes) <= 6 or any(not 1 <= n <= 50 for n in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: give 2 to 6 layers of 1 to 50 neurons")
    return sizes


def gradcheck_conv_layers(text: str) -> str:
    """A small convolutional test network in the layer shorthand, checked against the gradcheck input."""
    try:
        network = Network(layers=text, input_shape=CONV_INPUT, outputs=3)
    except NndlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if sum(w.size + b.size for w, b in zip(network.weights, network.biases)) > 2_000:
        raise argparse.ArgumentTypeError(f"{text!r}: at most 2,000 weights and biases (each costs two passes)")
    return text


def spec_option_type(name: str, meta: dict[str, Any]) -> Callable[[str], Any]:
    """The argparse type of one specification field: parse the text, then check it as the spec does."""

    def parse(text: str) -> Any:
        try:
            if meta["kind"] in ("ints", "strs"):
                parts = [part.strip() for part in text.split(",") if part.strip()]
                value: Any = [int(p) for p in parts] if meta["kind"] == "ints" else parts
            elif meta["kind"] in ("int", "float"):
                value = float(text) if meta["kind"] == "float" else int(text)
            else:
                value = text
        except ValueError:
            example = "whole numbers separated by commas, e.g. 100,30" if meta["kind"] == "ints" else "a number"
            raise argparse.ArgumentTypeError(f"{text!r}: give {example}") from None
        try:
            return check_value(name, value, meta)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """One option per run-specification field, with the field's help, default and allowed values.

    Options are not filled in when absent (``argparse.SUPPRESS``), so only what
    the user typed changes the specification (the defaults, --spec FILE or a
    resumed checkpoint's).
    """
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} (the run specification's {section} section)")
        for field in dataclasses.fields(cls):
            meta = field.metadata
            if not meta.get("cli", True):
                continue
            flag = meta["flag"] or "--" + field.name.replace("_", "-")
            flags = [flag, "-m"] if field.name == "mini_batch_size" else [flag]
            default = {None: "none", False: "off", True: "on"}.get(field.default, field.default) \
                if isinstance(field.default, (bool, type(None))) else field.default
            if isinstance(default, tuple):
                default = ",".join(map(str, default)) or "none"
            help_text = meta["help"] if "default" in meta["help"] else f"{meta['help']} (default {default})"
            if meta["kind"] == "bool":
                group.add_argument(*flags, dest=field.name, action="store_const", const=True,
                                   default=argparse.SUPPRESS, help=help_text)
                continue
            group.add_argument(*flags, dest=field.name, type=spec_option_type(field.name, meta),
                               choices=meta["choices"] if meta["kind"] == "str" else None,
                               metavar=meta["metavar"], default=argparse.SUPPRESS, help=help_text)


def spec_from_args(args: argparse.Namespace, base: RunSpec | None = None) -> RunSpec:
    """The run specification: ``base`` (or --spec FILE, or the defaults) changed by the options given."""
    given = {name: getattr(args, name) for name in FIELD_SECTION if hasattr(args, name)}
    shapes = [f"--{name}" for name in ("hidden", "sizes", "layers") if name in given]
    if len(shapes) > 1:
        raise ConfigError(f"give one of --hidden, --sizes and --layers, not {' and '.join(shapes)}")
    if base is None:
        base = RunSpec.from_dict(read_json(Path(args.spec), "a run specification"), args.spec) if args.spec \
            else RunSpec()
    return base.replace(where="options", **given)


def build_parser() -> Parser:
    parser = Parser(
        prog="nndl",
        description="Neural networks from Michael Nielsen's book 'Neural Networks and Deep Learning', "
        "trained on MNIST with NumPy.",
        epilog="Data: --data DIR, else $NNDL_DATA, else ../shared/datasets/mnist beside a source checkout, else the "
        "cache (downloaded on first use).",
    )
    parser.add_argument("--version", action="version", version=f"nndl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)

    t = commands.add_parser(
        "train",
        help="train a network with stochastic gradient descent",
        description="Train a network by mini-batch stochastic gradient descent. The defaults are the "
        "book's chapter-1 run: [784, 30, 10] sigmoid neurons, quadratic cost, N(0, 1) weights, "
        "eta 3.0, mini-batches of 10, 30 epochs, test accuracy printed after each epoch.",
    )
    add_spec_options(t)
    t.add_argument("--spec", metavar="FILE", help="start from the run specification in FILE (JSON, as "
                   "--print-spec writes it); options given as well override it")
    t.add_argument("--print-spec", action="store_true",
                   help="print the run specification these options describe, as JSON, and exit")
    t.add_argument("--checkpoint", metavar="DIR", help="save the run to DIR after every epoch and when interrupted "
                   "(the newest two checkpoints are kept)")
    t.add_argument("--resume", metavar="DIR", help="continue the run checkpointed in DIR with its settings (options "
                   "that change them are refused) and its --save and --json, and keep checkpointing there")
    t.add_argument("--blas-threads", type=whole_number(0, 64), metavar="N",
                   help="BLAS threads during training; 0 leaves BLAS's own choice (default: every core for a fully "
                   "connected network with large layers, (largest layer's weights) × m ≥ 3 million, without "
                   "distortion workers; else 1)")
    t.add_argument("--save", metavar="FILE",
                   help="save the trained model to FILE (.npz; .json writes the book's network2.py format); with "
                   "--resume, FILE replaces the --save the run was started with")
    t.add_argument("--json", action="store_true",
                   help="print the specification, per-epoch history and best/final accuracy as one JSON line at "
                   "the end, alone on stdout (the lines for people go to stderr), e.g. --json > run.json; "
                   "nndl plot run.json")
    t.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and --json output)")
    t.set_defaults(run=run_train)

    e = commands.add_parser("evaluate", help="score saved models (or their ensemble) on the validation and test data",
                            description="Print a saved model's accuracy and cost on the validation and test data. "
                            "With several models, also their ensemble's accuracy: the digit whose output, averaged "
                            "over the models, is highest.")
    e.add_argument("models", nargs="+", metavar="MODEL",
                   help="model files written by 'nndl train --save' (or the book's network2.py JSON)")
    add_data_option(e)
    e.add_argument("--json", action="store_true", help="print the results as one JSON line")
    e.add_argument("--mistakes", metavar="FILE.png",
                   help="also draw the test digits the model (or the models voting together) gets wrong, each with "
                   "its true digit and the guess, like the book's figure of its ensemble's 33 mistakes")
    e.set_defaults(run=run_evaluate)

    x = commands.add_parser(
        "expand", help="write an expanded training set (one-pixel shifts or random distortions)",
        description="Write an expanded copy of MNIST to OUT_DIR in MNIST's own four-file layout: each "
        "training image followed by its versions, then the usual validation and test images. Train on it with "
        "'nndl train --data OUT_DIR'.")
    x.add_argument("target", metavar="OUT_DIR", help="a new folder for the expanded dataset")
    kind = x.add_mutually_exclusive_group(required=True)
    kind.add_argument("--shift-one-pixel", action="store_true",
                      help="the book's expansion: each image shifted one pixel down, up, right, left (50,000 → 250,000)")
    kind.add_argument("--augment", type=distortion_spec, metavar="SPEC",
                      help="random distortions, e.g. rotate=10,skew=0.2,elastic")
    x.add_argument("--copies", type=whole_number(1, 20), default=1, help="distorted copies of each image (default 1)")
    x.add_argument("--seed", type=SEED, default=0, help="seed for the distortions (default 0)")
    x.add_argument("--train-size", type=whole_number(1, 10**7), metavar="N", help="expand only the first N training images")
    add_data_option(x)
    x.set_defaults(run=run_expand)

    a = commands.add_parser("augment", help="see what the distortions do",
                            description="Tools for the data-augmentation distortions.")
    augment_commands = a.add_subparsers(dest="augment_command", metavar="COMMAND", required=True,
                                        parser_class=Parser)
    p = augment_commands.add_parser("preview", help="draw digits beside distorted copies of them",
                                    description="Write a PNG grid: each row an original digit, then distorted "
                                    "copies of it.")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the picture to write")
    p.add_argument("--augment", type=distortion_spec, default=parse_distortion("rotate=10,skew=0.2,elastic"),
                   metavar="SPEC", help="the distortions (default rotate=10,skew=0.2,elastic)")
    p.add_argument("--count", type=whole_number(1, 100), default=8, help="digits, one per row (default 8)")
    p.add_argument("--copies", type=whole_number(1, 20), default=6, help="distorted copies per digit (default 6)")
    p.add_argument("--seed", type=SEED, default=0, help="seed (default 0)")
    add_data_option(p)
    p.set_defaults(run=run_preview)

    ex = commands.add_parser("experiment", help="the book's experiments: list them, or run one or all",
                             description="Reproduce the experiments of the book's chapters 1 and 3.")
    experiment_commands = ex.add_subparsers(dest="experiment_command", metavar="COMMAND", required=True,
                                            parser_class=Parser)
    el = experiment_commands.add_parser("list", help="the experiments, with the book's figure for each")
    el.set_defaults(run=run_experiment_list)
    er = experiment_commands.add_parser(
        "run", help="run an experiment (or --all) and write histories, figures and a report",
        description="Run an experiment for several seeds and write, under OUT/NAME: the history of every run "
        "as JSON, the figures as PNG, and report.md with the book's numbers beside nndl's.")
    which = er.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", metavar="NAME", help="the experiment ('nndl experiment list')")
    which.add_argument("--all", action="store_true", help="every experiment, with one report for them all")
    er.add_argument("--seeds", type=whole_number(1, 100), help="seeds 1…N per run (default 3; 1 with --quick)")
    er.add_argument("--quick", action="store_true",
                    help="a shortened form (a few epochs, at most 1,000 images) that checks the pipeline")
    er.add_argument("--include-long", action="store_true", help="with --all, include the long runs (elastic)")
    er.add_argument("--out", default="experiments", metavar="DIR", help="where to write (default ./experiments)")
    add_data_option(er)
    sweep_cmd.add_engine_options(er, "runs (each experiment × run × seed one task)")
    er.set_defaults(run=run_experiment_command)

    pl = commands.add_parser("plot", help="redraw the learning curves of a saved training history",
                             description="Draw accuracy and cost per epoch from the JSON of 'nndl train --json' "
                             "or from an experiment's history file.")
    pl.add_argument("history", metavar="HISTORY.json", help="the history to draw")
    pl.add_argument("--out", metavar="DIR", help="where to write the PNGs (default: beside the history)")
    pl.set_defaults(run=run_plot)

    c = commands.add_parser("convert", help="convert a model between nndl's .npz and network2.py's .json",
                            description="Convert a model: IN and OUT may each be an nndl .npz file or a .json "
                            "file in the format of the book's network2.py.")
    c.add_argument("source", metavar="IN", help="the model to read (.npz or network2.py .json)")
    c.add_argument("target", metavar="OUT", help="the file to write (.npz or .json)")
    c.set_defaults(run=run_convert)

    g = commands.add_parser(
        "gradcheck",
        help="check backpropagation against finite differences",
        description="Compare backpropagation's gradients with finite differences on a small random "
        "float64 network, for every cost, output and hidden activation nndl has, without and with L2 and L1 "
        "regularisation and with a fixed dropout mask. Exit code 1 if any fails.",
    )
    shape = g.add_mutually_exclusive_group()
    shape.add_argument("--sizes", type=gradcheck_layers, metavar="L0,L1,...",
                       help="check only a fully connected network of these layer sizes (default: 4,5,4,3, "
                       f"then {CONV_LAYERS})")
    shape.add_argument("--layers", type=gradcheck_conv_layers, metavar="LAYERS",
                       help=f"check only a convolutional network, e.g. {CONV_LAYERS}, on {len(CONV_INPUT)} maps "
                       f"of {CONV_INPUT[1]}×{CONV_INPUT[2]} inputs with 3 outputs")
    g.add_argument("--examples", type=whole_number(1, 50), default=3, help="examples in the test mini-batch (default 3)")
    g.add_argument("--seed", type=SEED, default=0, help="seed for the network and data (default 0)")
    g.add_argument("--json", action="store_true", help="print the results as one JSON line")
    g.set_defaults(run=run_gradcheck)
    predict.register(commands)
    inspect.register(commands)
    web.register(commands)
    sweep_cmd.register(commands)
    return parser


def for_people(args: argparse.Namespace) -> TextIO:
    """Where the lines for a person go: stdout, or stderr when --json keeps stdout for the JSON alone."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def say(args: argparse.Namespace, message: str) -> None:
    """Print ``message`` for a person, unless --quiet."""
    if not getattr(args, "quiet", False):
        print(message, file=for_people(args), flush=True)


def write_model(network: Network, path: str) -> str:
    """Save to .npz, or to network2.py's JSON format when the name ends in .json."""
    return str(save_network2_json(network, path) if path.endswith(".json") else save_model(network, path))


def run_train(args: argparse.Namespace) -> int:
    base = None
    if args.resume:
        from ..runs.checkpoint import latest_checkpoint

        if args.checkpoint and Path(args.checkpoint) != Path(args.resume):
            raise ConfigError("--resume DIR keeps checkpointing in DIR; leave out --checkpoint")
        saved = latest_checkpoint(Path(args.resume))
        base = saved.spec
        restore_outputs(args, saved.outputs)
    spec = spec_from_args(args, base)
    if args.print_spec:
        print(spec.to_json(), end="")
        return 0
    if args.save is not None:
        check_model_target(args.save, spec.network.describe())
    if args.checkpoint:
        check_output_folder(args.checkpoint, "--checkpoint")
    threads = AUTO if args.blas_threads is None else args.blas_threads or None
    if threads is not None and not blas_available():
        say(args, "(install threadpoolctl to limit BLAS threads: pip install 'nndl[cli]')")
    callbacks = [StopOnSignal(), *display_callbacks(args)]
    outputs = {"save": None if args.save is None else os.path.abspath(args.save), "json": args.json}
    result = run_spec(spec, callbacks=callbacks, checkpoint=args.resume or args.checkpoint,
                      resume=bool(args.resume), blas_thread_limit=threads, outputs=outputs)
    report_training(args, result)
    if args.json:
        print(strict_json(result.summary), flush=True)
    if result.summary["diverged"]:
        raise NndlError(result.summary["diverged"])
    return 130 if result.run.interrupted else 0


def restore_outputs(args: argparse.Namespace, outputs: dict[str, Any]) -> None:
    """Give a resumed run the --save and --json it was started with; a --save given now wins."""
    if args.save is None and isinstance(outputs.get("save"), str):
        args.save = outputs["save"]
    args.json = args.json or outputs.get("json") is True


def display_callbacks(args: argparse.Namespace) -> list[Callback]:
    """The opening line, a progress bar (on a terminal) and the book's epoch lines, unless --quiet."""
    if args.quiet:
        return []
    stream = for_people(args)
    callbacks: list[Callback] = [Announce(stream)]
    if sys.stderr.isatty() and progress_bar_available():
        callbacks.append(ProgressBar())  # before the printer, so it clears its line first
    callbacks.append(EpochPrinter(stream))
    return callbacks


def report_training(args: argparse.Namespace, result: RunResult) -> None:
    """The closing lines: best and final accuracy, how training ended, and what was saved."""
    summary, spec = result.summary, result.spec
    best, final = summary["best"], summary["final"]
    if best is not None:
        kept = " (the weights kept are the best validation epoch's)" if spec.monitoring.keeps_best else ""
        say(args, f"Best {best['measure']} {100 * best['accuracy']:.2f}% at epoch {best['epoch']}; "
                  f"final {100 * final['accuracy']:.2f}%; {plural(len(summary['history']), 'epoch')} in "
                  f"{summary['seconds']:.1f} s{kept}")
    saved = []
    if args.save:
        result.network.metadata = {"spec": summary["spec"], "history": summary["history"], "best": best,
                                   "final": final}
        saved.append(f"the model to {write_model(result.network, args.save)}")
    if result.checkpoint is not None and result.run.interrupted:
        saved.append(f"a checkpoint to {result.checkpoint} (continue with: nndl train --resume "
                     f"{args.resume or args.checkpoint})")
    if result.run.interrupted:
        run = result.run
        print(f"nndl train: interrupted at epoch {run.epoch}, after mini-batch {run.batch} of {run.n_batches}; "
              + ("saved " + " and ".join(saved) if saved else "nothing saved (use --checkpoint DIR to resume later)"),
              file=sys.stderr)
    elif saved:
        say(args, "Saved " + " and ".join(saved))


def progress_bar_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def run_evaluate(args: argparse.Namespace) -> int:
    if args.mistakes is not None:
        check_output_file(args.mistakes, "--mistakes")
    networks = [load_model(path) for path in args.models]
    mnist = load_mnist(args.data)
    datasets = (mnist.validation, mnist.test)
    results: list[dict[str, Any]] = []
    for path, network in zip(args.models, networks):
        result: dict[str, Any] = {"model": path, "network": network.describe()}
        for dataset in datasets:
            check_data_fits(network, dataset)
            result[dataset.name] = evaluate(network, Monitor(dataset, accuracy=True, cost=True))
        results.append(result)
    ensemble = {d.name: ensemble_accuracy(networks, d) for d in datasets} if len(networks) > 1 else None
    if args.mistakes is not None:
        title = f"{args.models[0]}:" if len(networks) == 1 else f"{len(networks)} models:"
        drawn = draw_vote_mistakes(networks, mnist.test, Path(args.mistakes), title)
        say(args, f"Drew the {len(drawn['shown'])} of the {drawn['mistakes']} test digits got wrong in {args.mistakes}")
    if args.json:
        print(strict_json(results[0] if ensemble is None else {"models": results, "ensemble": ensemble}))
        return 0
    for result, network in zip(results, networks):
        print(f"{result['model']}: {network}")
        for d in datasets:
            r = result[d.name]
            print(f"  {d.name + ':':12s} {r['correct']} / {r['total']} ({100 * r['accuracy']:.2f}%)  cost {r['cost']:.4f}")
    if ensemble is not None:
        print(f"ensemble of {len(networks)} (averaged outputs):")
        for name, r in ensemble.items():
            print(f"  {name + ':':12s} {r['correct']} / {r['total']} ({100 * r['accuracy']:.2f}%)")
    return 0


def run_expand(args: argparse.Namespace) -> int:
    check_output_folder(args.target, "OUT_DIR", must_be_new=True)
    started = time.perf_counter()
    target = expand_dataset(args.data, args.target, distortion=args.augment, copies=args.copies, seed=args.seed,
                            train_size=args.train_size)
    data = load_mnist(target)
    print(f"Wrote {target}: {len(data.training)} training, {len(data.validation)} validation and "
          f"{len(data.test)} test images in {time.perf_counter() - started:.1f} s; "
          f"train on it with: nndl train --data {target}")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    try:
        from PIL import Image
    except ImportError:
        raise NndlError("the preview needs Pillow: pip install 'nndl[augment]'") from None
    check_output_file(args.out, "--out")
    mnist = load_mnist(args.data, train_size=args.count)
    side = int(round(mnist.training.n_features ** 0.5))
    digits = unit_interval(mnist.training.images).reshape(-1, side, side)
    grid = preview_grid(digits, args.augment, args.copies, args.seed)
    with atomic_output(args.out) as handle:
        Image.fromarray(grid).save(handle, format="PNG")
    print(f"Wrote {args.out}: {args.count} digits (left) and {args.copies} distorted copies of each ({args.augment})")
    return 0


def run_experiment_list(args: argparse.Namespace) -> int:
    width = max(map(len, EXPERIMENTS))
    print(f"{'name':{width}s} {'book figure':24s} what")
    for experiment in EXPERIMENTS.values():
        long = " (long)" if experiment.long else ""
        print(f"{experiment.name:{width}s} {experiment.book_figure:24s} {experiment.title}{long}")
    return 0


def run_experiment_command(args: argparse.Namespace) -> int:
    seeds = args.seeds or (1 if args.quick else 3)
    experiment = None if args.all else get_experiment(args.name)
    array_module(args.device or "cpu")  # a missing GPU or CuPy is said before any folder is made
    check_output_folder(args.out, "--out")
    with sweep_cmd.engine_from_args(args) as engine:
        if args.all:
            path = run_all(args.out, seeds=seeds, quick=args.quick, data_dir=args.data, device=args.device or "cpu",
                           include_long=args.include_long, engine=engine)
            print(f"Wrote {path}")
            return 0
        outcome = run_experiment(experiment, args.out, seeds=seeds, quick=args.quick, data_dir=args.data,
                                 device=args.device or "cpu", engine=engine)
    print(f"Wrote {Path(args.out) / args.name / 'report.md'} ({outcome['seconds']:.0f} s)")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    path = Path(args.history)
    summary = read_json(path, "a JSON history")
    if not isinstance(summary, dict):
        raise NndlError(f"{path}: expected a JSON object with a 'history' list")
    written = plot_history(summary, check_output_folder(args.out or path.parent, "--out"), stem=path.stem)
    print("Wrote " + ", ".join(str(p) for p in written))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    network = load_model(args.source)
    check_model_target(args.target, network.describe(), what="OUT")
    print(f"Wrote {write_model(network, args.target)}: {network}")
    return 0


def run_gradcheck(args: argparse.Namespace) -> int:
    if args.sizes or args.layers:
        results = check_all(args.sizes, args.examples, args.seed, layers=args.layers)
    else:
        results = check_all((4, 5, 4, 3), args.examples, args.seed) + \
            check_all(None, args.examples, args.seed, layers=CONV_LAYERS)
    passed = all(r.passed for r in results)
    if args.json:
        print(json.dumps({"tolerance": TOLERANCE, "passed": passed,
                          "results": [{**r.__dict__, "passed": r.passed} for r in results]}))
    else:
        print(f"Backprop vs finite differences (float64): relative error "
              f"‖backprop − numerical‖ / (‖backprop‖ + ‖numerical‖), worst array, must be < {TOLERANCE:g}")
        for r in results:
            dropout = "dropout" if r.dropout else ""
            print(f"  {r.network:16s} {r.cost:14s} {r.activation:7s} → {r.output_activation:7s} {r.regularization:4s} "
                  f"{dropout:7s} {r.max_relative_error:.1e}  {'ok' if r.passed else 'FAILED'}")
        print("All gradients agree." if passed else "Some gradients disagree: backprop has a bug.")
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except NndlError as exc:
        print(f"nndl {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nndl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nndl train | head`: the reader left, so stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
