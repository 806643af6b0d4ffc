"""The ``nndl`` command line: train, evaluate, gradcheck, expand, experiment, plot, convert.

Every problem a user can fix (bad option values, missing or corrupt data, a
damaged model file) ends in a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import __version__
from ..activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..data.distortions import Distortion, expand_dataset, parse_distortion, preview_grid
from ..runs.blas import DEFAULT_BLAS_THREADS, blas_available
from ..files.network2 import save_network2_json
from ..costs import COSTS
from ..data.mnist import load_mnist
from ..errors import NndlError
from ..runs.experiments import EXPERIMENTS, get_experiment, run_all, run_experiment
from ..files.atomic import atomic_output, read_json
from ..gradcheck import TOLERANCE, check_all
from ..initializers import INITIALIZERS
from ..files.models import load_model, save_model
from ..network import Network
from ..files.plots import plot_history
from ..runs.spec import MONITOR_CHOICES, Recipe, run_recipe
from .reporting import EpochPrinter, ProgressBar
from . import inspect, predict
from ..rng import fresh_seed
from ..schedules import SCHEDULES
from ..training import BACKPROP_MODES, Callback, Monitor, TrainingRun, check_data_fits, evaluate


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where to look."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def number_type(cast: Callable[[str], Any], minimum: float, strict: bool, what: str) -> Callable[[str], Any]:
    """An argparse type accepting numbers above (or from) ``minimum``."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value or value < minimum or (strict and value == minimum):  # NaN, or out of range
            bound = f"greater than {minimum}" if strict else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {bound}")
        return value

    return parse


positive_int = number_type(int, 1, False, "a whole number")
non_negative_int = number_type(int, 0, False, "a whole number")
positive_float = number_type(float, 0.0, True, "a number")
non_negative_float = number_type(float, 0.0, False, "a number")


def fraction(text: str) -> float:
    """A number in [0, 1), for dropout p and momentum μ."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 0 and less than 1")
    return value


def distortion_spec(text: str) -> Distortion:
    """'rotate=10,skew=0.2,elastic' → Distortion, with argparse's error on bad input."""
    try:
        return parse_distortion(text)
    except NndlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def monitor_list(text: str) -> list[str]:
    """'training-cost,evaluation-cost' → the names, each checked."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in MONITOR_CHOICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(MONITOR_CHOICES)}")
    return names


def layer_list(text: str) -> list[int]:
    """'784,30,10' → [784, 30, 10]."""
    try:
        sizes = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. 784,30,10") from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: every layer needs at least one neuron")
    return sizes


def build_parser() -> Parser:
    parser = Parser(
        prog="nndl",
        description="Neural networks from Michael Nielsen's book 'Neural Networks and Deep Learning', "
        "trained on MNIST with NumPy.",
        epilog="Data: --data DIR, else $NNDL_DATA, else the cache (downloaded on first use).",
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
    shape = t.add_mutually_exclusive_group()
    shape.add_argument("--sizes", type=layer_list, metavar="L0,L1,...",
                       help="neurons per layer, input to output (default 784,30,10)")
    shape.add_argument("--hidden", type=layer_list, metavar="H1,...",
                       help="hidden layer sizes only, e.g. 100 or 100,30; input and output fit the data")
    t.add_argument("--epochs", type=positive_int, default=30, help="passes over the training data (default 30)")
    t.add_argument("--mini-batch-size", "-m", type=positive_int, default=10,
                   help="examples per gradient step, m (default 10)")
    t.add_argument("--eta", type=positive_float, default=3.0, help="learning rate η (default 3.0)")
    t.add_argument("--cost", choices=list(COSTS), default="quadratic",
                   help="quadratic (chapter 1), cross-entropy (chapter 3, learns fast from saturated sigmoid "
                   "outputs) or log-likelihood (with softmax outputs); default quadratic")
    t.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="sigmoid",
                   help="hidden neurons: sigmoid (default), tanh or relu (rectified linear)")
    t.add_argument("--output-activation", choices=OUTPUT_ACTIVATIONS,
                   help="output neurons: sigmoid, or softmax (default: softmax for log-likelihood, else sigmoid)")
    t.add_argument("--init", choices=list(INITIALIZERS), default="large",
                   help="weight initialisation: large = N(0,1) as network.py (default), normalized = "
                   "N(0,1/n_in) as network2.py, he = N(0,2/n_in) for relu")
    t.add_argument("--lmbda", type=non_negative_float, default=0.0, metavar="λ",
                   help="L2 regularisation (weight decay) λ, scaled by the training-set size n (default 0)")
    t.add_argument("--l1", type=non_negative_float, default=0.0, metavar="λ",
                   help="L1 regularisation λ, scaled by n (default 0)")
    t.add_argument("--dropout", type=fraction, default=0.0, metavar="P",
                   help="dropout: remove a fraction P of hidden neurons for each mini-batch, e.g. 0.5 (default 0)")
    t.add_argument("--momentum", type=fraction, default=0.0, metavar="μ",
                   help="momentum coefficient μ; 0 is plain SGD (default 0)")
    t.add_argument("--early-stopping", type=positive_int, metavar="N",
                   help="stop when the evaluation accuracy has not improved in N epochs (no-improvement-in-N); "
                   "the best epoch's weights are kept")
    t.add_argument("--schedule", choices=SCHEDULES,
                   help="learning-rate schedule: halve-on-plateau halves η after --patience epochs without "
                   "improvement and stops once η is 1/128 of its start; the best weights are kept")
    t.add_argument("--patience", type=positive_int, default=10, metavar="N",
                   help="epochs without improvement before the schedule halves η (default 10)")
    t.add_argument("--monitor", type=monitor_list, default=[], metavar="LIST",
                   help="also record, each epoch, any of: " + ", ".join(MONITOR_CHOICES[:3]) +
                   " (comma-separated; evaluation accuracy is always recorded)")
    t.add_argument("--seed", type=non_negative_int,
                   help="seed for the initial weights and mini-batch order (default: random, and printed)")
    t.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files (default $NNDL_DATA or cache)")
    t.add_argument("--train-size", type=positive_int, metavar="N",
                   help="train on the first N of the 50,000 training images (default all)")
    t.add_argument("--augment", type=distortion_spec, metavar="SPEC",
                   help="train on fresh random distortions every epoch, e.g. rotate=10,skew=0.2,elastic "
                   "(rotate=DEGREES, skew=FACTOR, shift=PIXELS, elastic[=ALPHA], sigma=SIGMA)")
    t.add_argument("--augment-workers", type=non_negative_int, default=2, metavar="N",
                   help="processes preparing the next epoch's distortions while this one trains (default 2)")
    t.add_argument("--time-limit", type=positive_float, metavar="MINUTES",
                   help="stop after the first epoch that ends past MINUTES of training")
    t.add_argument("--evaluate-on", choices=("test", "validation"), default="test",
                   help="dataset scored after each epoch (default test, as in chapter 1; chapter 3 uses "
                   "validation)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point precision (default float32: as accurate, faster)")
    t.add_argument("--backprop", choices=BACKPROP_MODES, default="matrix",
                   help="matrix = whole mini-batch at once (default); per-example = the book's loop "
                   "over single images, same result, ~10x slower")
    t.add_argument("--blas-threads", type=non_negative_int, default=DEFAULT_BLAS_THREADS, metavar="N",
                   help=f"BLAS threads during training; 0 leaves BLAS's own choice (default "
                   f"{DEFAULT_BLAS_THREADS}: fastest for these small matrices)")
    t.add_argument("--save", metavar="FILE",
                   help="save the trained model to FILE (.npz; .json writes the book's network2.py format)")
    t.add_argument("--json", action="store_true",
                   help="print the settings, per-epoch history and best/final accuracy as one JSON line at the end")
    t.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and --json output)")
    t.set_defaults(run=run_train)

    e = commands.add_parser("evaluate", help="score a saved model on the validation and test data",
                            description="Print a saved model's accuracy and cost on the validation and test data.")
    e.add_argument("model", metavar="MODEL", help="a model file written by 'nndl train --save'")
    e.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files")
    e.add_argument("--json", action="store_true", help="print the results as one JSON line")
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
    x.add_argument("--copies", type=positive_int, default=1, help="distorted copies of each image (default 1)")
    x.add_argument("--seed", type=non_negative_int, default=0, help="seed for the distortions (default 0)")
    x.add_argument("--train-size", type=positive_int, metavar="N", help="expand only the first N training images")
    x.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files")
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
    p.add_argument("--count", type=positive_int, default=8, help="digits, one per row (default 8)")
    p.add_argument("--copies", type=positive_int, default=6, help="distorted copies per digit (default 6)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    p.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files")
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
    er.add_argument("--seeds", type=positive_int, help="seeds 1…N per run (default 3; 1 with --quick)")
    er.add_argument("--quick", action="store_true",
                    help="a shortened form (a few epochs, at most 1,000 images) that checks the pipeline")
    er.add_argument("--include-long", action="store_true", help="with --all, include the long runs (elastic)")
    er.add_argument("--out", default="experiments", metavar="DIR", help="where to write (default ./experiments)")
    er.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files")
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
    g.add_argument("--sizes", type=layer_list, default=[4, 5, 4, 3], metavar="L0,L1,...",
                   help="layer sizes of the test network (default 4,5,4,3)")
    g.add_argument("--examples", type=positive_int, default=3, help="examples in the test mini-batch (default 3)")
    g.add_argument("--seed", type=non_negative_int, default=0, help="seed for the network and data (default 0)")
    g.add_argument("--json", action="store_true", help="print the results as one JSON line")
    g.set_defaults(run=run_gradcheck)
    predict.register(commands)
    inspect.register(commands)
    return parser


def plural(count: int, noun: str) -> str:
    """'1 epoch', '30 epochs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def say(args: argparse.Namespace, message: str) -> None:
    """Print ``message`` unless --quiet."""
    if not getattr(args, "quiet", False):
        print(message, flush=True)


def write_model(network: Network, path: str) -> str:
    """Save to .npz, or to network2.py's JSON format when the name ends in .json."""
    return str(save_network2_json(network, path) if path.endswith(".json") else save_model(network, path))


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The training recipe the options describe."""
    return Recipe(
        hidden=tuple(args.hidden or (30,)), sizes=tuple(args.sizes) if args.sizes else None, cost=args.cost,
        activation=args.activation, output_activation=args.output_activation, init=args.init,
        dropout=args.dropout, dtype=args.dtype, epochs=args.epochs, mini_batch_size=args.mini_batch_size,
        eta=args.eta, lmbda=args.lmbda, l1=args.l1, momentum=args.momentum, backprop=args.backprop,
        train_size=args.train_size, evaluate_on=args.evaluate_on, monitor=tuple(args.monitor),
        early_stopping=args.early_stopping, schedule=args.schedule, patience=args.patience,
        augment=str(args.augment) if args.augment else None, augment_workers=args.augment_workers,
        time_limit=args.time_limit,
    )


def display_callbacks(quiet: bool) -> list[Callback]:
    """A progress bar (on a terminal) and the book's epoch lines, unless quiet."""
    if quiet:
        return []
    callbacks: list[Callback] = []
    if sys.stderr.isatty() and progress_bar_available():
        callbacks.append(ProgressBar())  # before the printer, so it clears its line first
    callbacks.append(EpochPrinter())
    return callbacks


class Announce(Callback):
    """Print what is about to be trained, from the network and settings the run really uses."""

    def __init__(self, args: argparse.Namespace, source: object, seed: int):
        self.args, self.source, self.seed = args, source, seed

    def on_train_begin(self, run: TrainingRun) -> None:
        d, config = run.network.describe(), run.config
        settings = [f"η={config.eta}", f"m={config.mini_batch_size}"]
        settings += [f"{name}={value}" for name, value in (("λ", config.lmbda), ("λ1", config.l1),
                                                           ("μ", config.momentum), ("dropout", d["dropout"])) if value]
        if self.args.augment:
            settings.append(f"distortions {self.args.augment}")
        say(self.args, f"Training {d['sizes']} ({d['activation']} neurons, {d['output_activation']} outputs, "
                       f"{d['cost']} cost, {d['init']} init, {d['dtype']}) on {run.optimizer.n} images from "
                       f"{self.source}: "
                       f"{', '.join(settings)}, {plural(config.epochs, 'epoch')}, seed {self.seed}")


def run_train(args: argparse.Namespace) -> int:
    seed = fresh_seed() if args.seed is None else args.seed
    recipe = recipe_from_args(args)
    mnist = load_mnist(args.data, train_size=args.train_size)  # float32 pixels; the network casts each batch
    threads = args.blas_threads or None
    if threads is not None and not blas_available():
        say(args, "(install threadpoolctl to limit BLAS threads: pip install 'nndl[cli]')")
    callbacks = [Announce(args, mnist.source, seed), *display_callbacks(args.quiet)]
    network, summary = run_recipe(recipe, mnist, seed, callbacks, blas_thread_limit=threads)
    summary["settings"]["training"] = recipe.training_config(seed).to_dict()
    summary["settings"]["blas_threads"] = threads

    best, final, name = summary["best"], summary["final"], recipe.evaluate_on
    kept = " (the weights kept are the best epoch's)" if args.schedule or args.early_stopping else ""
    say(args, f"Best {name} accuracy {100 * best['accuracy']:.2f}% at epoch {best['epoch']}; "
              f"final {100 * final['accuracy']:.2f}%; {plural(len(summary['history']), 'epoch')} in "
              f"{summary['seconds']:.1f} s{kept}")
    if args.save:
        network.metadata = {k: summary[k] for k in ("settings", "history", "best", "final")}
        say(args, f"Saved the model to {write_model(network, args.save)}")
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


def progress_bar_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def run_evaluate(args: argparse.Namespace) -> int:
    network = load_model(args.model)
    mnist = load_mnist(args.data)
    results: dict[str, Any] = {"model": args.model, "network": network.describe()}
    for dataset in (mnist.validation, mnist.test):
        check_data_fits(network, dataset)
        metrics = evaluate(network, Monitor(dataset, accuracy=True, cost=True))
        results[dataset.name] = {key[len(dataset.name) + 1 :]: value for key, value in metrics.items()}
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{args.model}: {network}")
    for name in ("validation", "test"):
        r = results[name]
        print(f"{name + ':':12s} {r['correct']} / {r['total']} ({100 * r['accuracy']:.2f}%)  cost {r['cost']:.4f}")
    return 0


def run_expand(args: argparse.Namespace) -> int:
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
    mnist = load_mnist(args.data, train_size=args.count)
    side = int(round(mnist.training.n_features ** 0.5))
    digits = mnist.training.images.reshape(-1, side, side)
    grid = preview_grid(digits, args.augment, args.copies, args.seed)
    with atomic_output(args.out) as handle:
        Image.fromarray(grid).save(handle, format="PNG")
    print(f"Wrote {args.out}: {args.count} digits (left) and {args.copies} distorted copies of each ({args.augment})")
    return 0


def run_experiment_list(args: argparse.Namespace) -> int:
    print(f"{'name':20s} {'book figure':24s} what")
    for experiment in EXPERIMENTS.values():
        long = " (long)" if experiment.long else ""
        print(f"{experiment.name:20s} {experiment.book_figure:24s} {experiment.title}{long}")
    return 0


def run_experiment_command(args: argparse.Namespace) -> int:
    seeds = args.seeds or (1 if args.quick else 3)
    if args.all:
        path = run_all(args.out, seeds=seeds, quick=args.quick, data_dir=args.data, include_long=args.include_long)
        print(f"Wrote {path}")
        return 0
    outcome = run_experiment(get_experiment(args.name), args.out, seeds=seeds, quick=args.quick, data_dir=args.data)
    print(f"Wrote {Path(args.out) / args.name / 'report.md'} ({outcome['seconds']:.0f} s)")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    path = Path(args.history)
    summary = read_json(path, "a JSON history")
    if not isinstance(summary, dict):
        raise NndlError(f"{path}: expected a JSON object with a 'history' list")
    written = plot_history(summary, args.out or path.parent, stem=path.stem)
    print("Wrote " + ", ".join(str(p) for p in written))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    network = load_model(args.source)
    print(f"Wrote {write_model(network, args.target)}: {network}")
    return 0


def run_gradcheck(args: argparse.Namespace) -> int:
    results = check_all(args.sizes, args.examples, args.seed)
    passed = all(r.passed for r in results)
    if args.json:
        print(json.dumps({"sizes": args.sizes, "tolerance": TOLERANCE, "passed": passed,
                          "results": [{**r.__dict__, "passed": r.passed} for r in results]}))
    else:
        print(f"Backprop vs finite differences on {args.sizes} (float64): relative error "
              f"‖backprop − numerical‖ / (‖backprop‖ + ‖numerical‖), worst array, must be < {TOLERANCE:g}")
        for r in results:
            dropout = "dropout" if r.dropout else ""
            print(f"  {r.cost:14s} {r.activation:7s} → {r.output_activation:7s} {r.regularization:4s} {dropout:7s} "
                  f"{r.max_relative_error:.1e}  {'ok' if r.passed else 'FAILED'}")
        print("All gradients agree." if passed else "Some gradients disagree: backprop has a bug.")
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except NndlError as exc:
        print(f"nndl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nndl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nndl train | head`: the reader left, so stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
