"""The ``nndl`` command line: train, evaluate and gradcheck.

Every problem a user can fix (bad option values, missing or corrupt data, a
damaged model file) ends in a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Sequence

from . import __version__
from .blas import DEFAULT_BLAS_THREADS, blas_available
from .data import load_mnist
from .errors import NndlError
from .gradcheck import TOLERANCE, check_all
from .initializers import INITIALIZERS
from .io import load_model, save_model
from .network import Network
from .reporting import EpochPrinter, ProgressBar
from .rng import fresh_seed
from .training import BACKPROP_MODES, Callback, TrainingConfig, check_data_fits, evaluate, train


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
    t.add_argument("--init", choices=sorted(INITIALIZERS), default="large",
                   help="weight initialisation: large = N(0,1) as network.py, normalized = N(0,1/n_in) "
                   "as network2.py (default large)")
    t.add_argument("--seed", type=non_negative_int,
                   help="seed for the initial weights and mini-batch order (default: random, and printed)")
    t.add_argument("--data", metavar="DIR", help="folder with the four MNIST IDX files (default $NNDL_DATA or cache)")
    t.add_argument("--train-size", type=positive_int, metavar="N",
                   help="train on the first N of the 50,000 training images (default all)")
    t.add_argument("--evaluate-on", choices=("test", "validation"), default="test",
                   help="dataset scored after each epoch (default test, as in chapter 1)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point precision (default float32: as accurate, faster)")
    t.add_argument("--backprop", choices=BACKPROP_MODES, default="matrix",
                   help="matrix = whole mini-batch at once (default); per-example = the book's loop "
                   "over single images, same result, ~10x slower")
    t.add_argument("--blas-threads", type=non_negative_int, default=DEFAULT_BLAS_THREADS, metavar="N",
                   help=f"BLAS threads during training; 0 leaves BLAS's own choice (default "
                   f"{DEFAULT_BLAS_THREADS}: fastest for these small matrices)")
    t.add_argument("--save", metavar="FILE", help="save the trained model to FILE (.npz)")
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

    g = commands.add_parser(
        "gradcheck",
        help="check backpropagation against finite differences",
        description="Compare backpropagation's gradients with finite differences on a small random "
        "float64 network, for every cost and activation nndl has. Exit code 1 if any fails.",
    )
    g.add_argument("--sizes", type=layer_list, default=[4, 5, 3], metavar="L0,L1,...",
                   help="layer sizes of the test network (default 4,5,3)")
    g.add_argument("--examples", type=positive_int, default=3, help="examples in the test mini-batch (default 3)")
    g.add_argument("--seed", type=non_negative_int, default=0, help="seed for the network and data (default 0)")
    g.add_argument("--json", action="store_true", help="print the results as one JSON line")
    g.set_defaults(run=run_gradcheck)
    return parser


def say(args: argparse.Namespace, message: str) -> None:
    """Print ``message`` unless --quiet."""
    if not getattr(args, "quiet", False):
        print(message, flush=True)


def run_train(args: argparse.Namespace) -> int:
    seed = fresh_seed() if args.seed is None else args.seed
    mnist = load_mnist(args.data, train_size=args.train_size)  # float32 pixels; the network casts each batch
    evaluation = mnist.split(args.evaluate_on)
    n_in, n_out = mnist.training.n_features, mnist.n_classes
    sizes = args.sizes or [n_in, *(args.hidden or [30]), n_out]
    config = TrainingConfig(epochs=args.epochs, mini_batch_size=args.mini_batch_size, eta=args.eta,
                            seed=seed, backprop=args.backprop)
    network = Network(sizes, init=args.init, seed=seed, dtype=args.dtype)
    for dataset in (mnist.training, evaluation):
        check_data_fits(network, dataset)

    callbacks: list[Callback] = []
    if not args.quiet:
        if sys.stderr.isatty() and progress_bar_available():
            callbacks.append(ProgressBar())  # first, so it clears its line before the epoch is printed
        callbacks.append(EpochPrinter())
    threads = args.blas_threads or None
    d = network.describe()
    say(args, f"Training {d['sizes']} ({d['activation']} neurons, {d['cost']} cost, {d['init']} init, "
              f"{d['dtype']}) on {len(mnist.training)} images from {mnist.source}: "
              f"η={config.eta}, m={config.mini_batch_size}, {config.epochs} epochs, seed {seed}")
    if threads is not None and not blas_available():
        say(args, "(install threadpoolctl to limit BLAS threads: pip install 'nndl[cli]')")
    started = time.perf_counter()
    history = train(network, mnist.training, config, evaluation=[evaluation], callbacks=callbacks,
                    blas_thread_limit=threads)
    seconds = time.perf_counter() - started

    key = f"{evaluation.name}_accuracy"
    best, final = history.best(key), history.final()
    summary = {
        "nndl_version": __version__,
        "settings": {
            "network": network.describe(),
            "training": config.to_dict(),
            "data": {"source": str(mnist.source), "train_size": len(mnist.training), "evaluate_on": evaluation.name},
            "blas_threads": threads,
        },
        "history": history.epochs,
        "best": {"epoch": best["epoch"], "accuracy": best[key], "correct": best[f"{evaluation.name}_correct"]},
        "final": {"epoch": final["epoch"], "accuracy": final[key], "correct": final[f"{evaluation.name}_correct"]},
        "seconds": seconds,
    }
    say(args, f"Best {evaluation.name} accuracy {100 * best[key]:.2f}% at epoch {best['epoch']}; "
              f"final {100 * final[key]:.2f}%; {len(history.epochs)} epochs in {seconds:.1f} s")
    if args.save:
        network.metadata = {k: summary[k] for k in ("settings", "history", "best", "final")}
        path = save_model(network, args.save)
        say(args, f"Saved the model to {path}")
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
        metrics = evaluate(network, dataset, with_cost=True)
        results[dataset.name] = {key[len(dataset.name) + 1 :]: value for key, value in metrics.items()}
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{args.model}: {network}")
    for name in ("validation", "test"):
        r = results[name]
        print(f"{name + ':':12s} {r['correct']} / {r['total']} ({100 * r['accuracy']:.2f}%)  cost {r['cost']:.4f}")
    return 0


def run_gradcheck(args: argparse.Namespace) -> int:
    results = check_all(args.sizes, args.examples, args.seed)
    passed = all(r.passed for r in results)
    if args.json:
        print(json.dumps({"sizes": args.sizes, "tolerance": TOLERANCE, "passed": passed,
                          "results": [{**r.__dict__, "passed": r.passed} for r in results]}))
    else:
        print(f"Backprop vs finite differences on {args.sizes} (float64), max relative error, must be < {TOLERANCE:g}:")
        for r in results:
            print(f"  {r.cost:14s} {r.activation:8s} → {r.output_activation:8s} {r.max_relative_error:.2e}  "
                  f"{'ok' if r.passed else 'FAILED'}")
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
