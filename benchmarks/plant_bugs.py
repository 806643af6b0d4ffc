"""Plant realistic bugs one at a time and check that the tests catch every one.

Each :class:`Mutation` replaces one exact piece of text in one file with a
plausible mistake (a missing 1/n, a floor γ instead of γη₀, the wrong epoch's
shuffle) and names the tests that should fail because of it. The script copies
the repository to a temporary folder once, then for each mutation writes the
changed file there, runs those tests with the copy's ``src`` first on the path,
and puts the file back: the checkout itself is never touched.

    python benchmarks/plant_bugs.py              # every mutation (several minutes)
    python benchmarks/plant_bugs.py --list       # what is planted, and the tests that should catch it
    python benchmarks/plant_bugs.py --only cosine-floor-gamma --only ensemble-last-votes

It first runs each distinct test selection on the unchanged copy (a selection
that already fails would "catch" anything), then prints caught or SURVIVED per
mutation and a total, and exits 1 when one survived or when a mutation's old
text is no longer in its file (the list must follow the code: update the entry).
The real MNIST files are needed (NNDL_DATA, or ../shared/datasets/mnist).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPIED = ("src", "tests", "pyproject.toml", "README.md", "docs", "examples", "Makefile")
SKIPPED = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis")


@dataclass(frozen=True)
class Mutation:
    """One planted bug: ``old`` (exactly once in ``file``) becomes ``new``; ``tests`` are pytest's arguments."""

    name: str
    file: str
    old: str
    new: str
    what: str
    tests: tuple[str, ...]


NETWORK_TESTS = ("tests/test_network.py", "tests/test_update_rule.py")
CONV_TESTS = ("tests/test_layers.py", "tests/test_network.py", "-k", "conv or pool or ties or gradient")
CHAPTER3_TESTS = ("tests/test_chapter3.py", "-k", "not learns")
DEVICE_TESTS = ("tests/test_device.py",)

MUTATIONS = [
    # -- the book's maths ----------------------------------------------------------------
    Mutation("quadratic-cost-no-half", "src/nndl/costs.py",
             "return 0.5 * float(np.sum((a - y) ** 2))", "return float(np.sum((a - y) ** 2))",
             "the quadratic cost without its 1/2 (C and δ^L disagree by a factor 2)", NETWORK_TESTS),
    Mutation("cross-entropy-sign", "src/nndl/costs.py",
             "np.logaddexp(0.0, z) - y * z", "np.logaddexp(0.0, z) + y * z",
             "cross-entropy's −y z term with the wrong sign", (*NETWORK_TESTS, "tests/test_chapter3.py")),
    Mutation("cross-entropy-delta-keeps-sigma-prime", "src/nndl/costs.py",
             "(σ'(z) cancels, eq. 66)\n        return a - y", "(σ'(z) cancels, eq. 66)\n        return (a - y) * a * (1 - a)",
             "cross-entropy's BP1 still multiplied by σ'(z): the learning slowdown it exists to remove",
             NETWORK_TESTS),
    Mutation("log-sum-exp-drops-max", "src/nndl/costs.py",
             "return top + np.log(", "return np.log(",
             "log Σ e^z forgets to add back the column max it subtracted", (*NETWORK_TESTS, "tests/test_chapter3.py")),
    Mutation("sigmoid-prime", "src/nndl/activations.py",
             "return a * (1.0 - a)", "return a * (1.0 + a)",
             "σ'(z) = σ(1 + σ) instead of σ(1 − σ)", NETWORK_TESTS),
    Mutation("tanh-prime", "src/nndl/activations.py",
             "return 1.0 - a * a", "return 1.0 - a",
             "tanh' = 1 − a instead of 1 − a²", NETWORK_TESTS),
    Mutation("relu-prime-everywhere", "src/nndl/activations.py",
             "return (z > 0).astype(z.dtype)", "return np.ones_like(z)",
             "ReLU's derivative 1 even where the neuron is off", NETWORK_TESTS),
    Mutation("softmax-wrong-axis", "src/nndl/activations.py",
             "return e / e.sum(axis=0, keepdims=True)", "return e / e.sum(axis=1, keepdims=True)",
             "softmax normalised across the mini-batch instead of across each example's outputs",
             (*NETWORK_TESTS, *CHAPTER3_TESTS)),
    Mutation("softmax-gradient-diagonal-only", "src/nndl/activations.py",
             "return a * (grad_a - np.sum(a * grad_a, axis=0, keepdims=True))", "return a * grad_a",
             "softmax's Jacobian reduced to its diagonal", NETWORK_TESTS),
    Mutation("bp2-without-sigma-prime", "src/nndl/layers.py",
             "return error if self.activation is None else error * self.activation.prime(z, a)", "return error",
             "BP2 without ⊙ σ'(z^l)", NETWORK_TESTS),
    Mutation("bp2-dropout-error-passes-deleted", "src/nndl/network.py",
             "delta *= masks[l].reshape(*layer.output_shape, 1)  # a deleted neuron has no error to pass back",
             "pass  # a deleted neuron has no error to pass back",
             "dropout: neurons deleted for the mini-batch still pass error back", NETWORK_TESTS),
    Mutation("conv-kernel-not-flipped-back", "src/nndl/convolution.py",
             "grad[:, i : i + h_out, j : j + w_out] += received[:, i, j]",
             "grad[:, i : i + h_out, j : j + w_out] += received[:, j, i]",
             "δ passed back through a convolution with the kernel transposed instead of flipped",
             CONV_TESTS),
    Mutation("conv-bias-gradient-one-example", "src/nndl/convolution.py",
             "return module_of(delta).add.reduce(delta.reshape(delta.shape[0], -1), axis=1, keepdims=True)",
             "return module_of(delta).add.reduce(delta[..., :1].reshape(delta.shape[0], -1), axis=1, keepdims=True)",
             "a shared bias's gradient summed over the first example only", CONV_TESTS),
    Mutation("pool-ties-to-the-last", "src/nndl/convolution.py",
             "larger = xp.greater(candidate, largest).view(np.uint8)",
             "larger = xp.greater_equal(candidate, largest).view(np.uint8)",
             "max-pooling ties routed to the last maximum, not the first", CONV_TESTS),
    Mutation("conv-dropout-thins-kernels", "src/nndl/optimizer.py",
             'own = masks[l] if layer.kind == "full" and l < len(masks) else None',
             "own = masks[l] if l < len(masks) else None",
             "dropout freezes the convolutional maps whose (flattened) units it deleted",
             ("tests/test_layers.py", "-k", "dropout")),
    Mutation("experiment-workers-never-checkpoint", "src/nndl/runs/experiments.py",
             "(seeded.to_dict(), None, True, keep, checkpoint and str(checkpoint)))",
             "(seeded.to_dict(), None, True, keep, None))",
             "a long experiment's runs on Dask workers train without checkpoints (hours lost to an interruption)",
             ("tests/test_sweep_experiments.py", "-k", "long")),
    Mutation("engine-loses-dropped-ctrl-c", "src/nndl/runs/engine.py",
             "if interrupted.is_set():", "if False:",
             "a Ctrl-C that Python drops in one of Dask's weakref callbacks is lost: the sweep runs to the end",
             ("tests/test_sweep.py", "-k", "drops")),
    Mutation("no-model-box-during-a-live-run", "src/nndl/app/web/static/draw.js",
             "  runLive = live;\n", "",
             "the Draw tab says \"No model yet\" while a training run's weights read the pad",
             ("tests/test_web_browser.py", "-k", "while_a_run")),
    Mutation("no-closest-subcommand", "src/nndl/app/cli.py",
             "get_close_matches(str(value).lower(), names, n=1)", "get_close_matches(str(value), names[:1], n=1)",
             "a mistyped subcommand ('nndl trian') gets no 'did you mean train?'",
             ("tests/test_first_use.py", "-k", "subcommand")),
    Mutation("report-time-forgets-earlier-attempts", "src/nndl/runs/experiments.py",
             'sum(record["seconds"] for runs in results.values() for run in runs\n                                       for record in run["history"])',
             'sum(run["seconds"] for runs in results.values() for run in runs)',
             "an experiment's report counts only a resumed run's last attempt (row 5's 83 minutes as 11)",
             ("tests/test_sweep_experiments.py", "-k", "long")),
    Mutation("engine-bar-in-log-files", "src/nndl/runs/engine.py",
             "if not self.progress or total == 0 or not sys.stderr.isatty():", "if not self.progress or total == 0:",
             "a sweep's progress bar is redrawn into a log file every second (megabytes for a day's run)",
             ("tests/test_sweep.py", "-k", "progress_bar")),
    Mutation("long-experiment-silent-for-hours", "src/nndl/runs/experiments.py",
             "if experiment.long else []", "if False else []",
             "a long experiment trained in-process says nothing until its first run ends, hours later",
             ("tests/test_sweep_experiments.py", "-k", "says_each")),
    Mutation("best-seed-chosen-on-test", "src/nndl/runs/experiments.py",
             'return validation is not None and getattr(', 'return False and getattr(',
             "an experiment's best of seeds picks the seed with the best test accuracy: the test set chooses",
             ("tests/test_experiments.py", "-k", "best_seed")),
    Mutation("conv-nets-take-every-core", "src/nndl/runs/blas.py",
             "return cores() if network.is_dense and largest", "return cores() if largest",
             "a convolutional network trains on every core by default: 30 times slower beside other work",
             ("tests/test_training.py", "-k", "blas")),
    Mutation("dask-workers-daemonic", "src/nndl/runs/engine.py",
             '"distributed.worker.daemon": False})', "})",
             "a local cluster's workers stay daemons, so a run with distortion workers cannot start them there",
             ("tests/test_sweep_experiments.py", "-k", "distort")),
    Mutation("daemon-starts-distortion-workers", "src/nndl/runs/engine.py",
             "run = run.replace(workers=0)  # a daemon may not start processes",
             "pass  # a daemon may not start processes",
             "a run with distortion workers on a daemonic (remote) Dask worker fails instead of distorting in-process",
             ("tests/test_sweep_experiments.py", "-k", "daemon")),
    # -- the GPU path (tests/test_device.py runs it on a CuPy stand-in that refuses implicit host copies) --
    Mutation("device-host-zeros-in-backprop", "src/nndl/convolution.py",
             "grad = xp.zeros(in_shape, delta.dtype)", "grad = np.zeros(in_shape, delta.dtype)",
             "BP2 through a convolution builds its result on the host while δ is on the GPU", DEVICE_TESTS),
    Mutation("device-host-labels-index", "src/nndl/training.py",
             "targets[:, network.xp.asarray(labels[chosen])]", "targets[:, labels[chosen]]",
             "mini-batch targets indexed on the GPU with host labels", DEVICE_TESTS),
    Mutation("device-checkpoint-device-arrays", "src/nndl/runs/checkpoint.py",
             'arrays.update({f"param.{i}": to_host(p) for i, p in enumerate(params)})',
             'arrays.update({f"param.{i}": p for i, p in enumerate(params)})',
             "a checkpoint written from the GPU's arrays, not host copies", DEVICE_TESTS),
    Mutation("device-page-reads-device-weights", "src/nndl/app/web/live.py",
             "weights = self.parameters.weights[0][:WEIGHT_IMAGES]", "weights = network.weights[0][:WEIGHT_IMAGES]",
             "the page's live weight images read from the GPU's arrays", DEVICE_TESTS),
    Mutation("device-masks-stay-on-host", "src/nndl/network.py",
             "masks.append(self.xp.asarray((~deleted).astype(self.dtype)[:, None]))",
             "masks.append((~deleted).astype(self.dtype)[:, None])",
             "dropout masks drawn on the host and never moved to the GPU", DEVICE_TESTS),
    Mutation("dropout-evaluation-scale", "src/nndl/network.py",
             "scale = 1.0 - self.dropout if masks", "scale = 1.0 / (1.0 - self.dropout) if masks",
             "at evaluation a dropout network's weights divided by (1 − p) instead of multiplied",
             ("tests/test_chapter3.py",)),
    Mutation("update-rule-no-mean", "src/nndl/optimizer.py",
             "self.xp.multiply(grad, -self.eta / m, out=", "self.xp.multiply(grad, -self.eta, out=",
             "the step −η Σ_x ∇C_x instead of −(η/m) Σ_x ∇C_x", ("tests/test_update_rule.py", "tests/test_training.py")),
    Mutation("weight-decay-on-biases", "src/nndl/optimizer.py",
             "if i < n_weights and self.regularization.active:", "if self.regularization.active:",
             "L2/L1 decay applied to the biases too", ("tests/test_update_rule.py",)),
    Mutation("momentum-keeps-1-minus-mu", "src/nndl/optimizer.py",
             "velocity *= self.momentum\n", "velocity *= 1.0 - self.momentum\n",
             "the velocity decays by 1 − μ instead of μ", ("tests/test_update_rule.py",)),
    Mutation("l2-gradient-not-over-n", "src/nndl/regularization.py",
             "if not self.l1:\n            return self.l2 / self.l2_divisor(n) * w",
             "if not self.l1:\n            return self.l2 * w",
             "the L2 gradient λw instead of (λ/n)w", ("tests/test_update_rule.py", "tests/test_network.py")),
    Mutation("l1-gradient-w-not-sign", "src/nndl/regularization.py",
             "return self.l1 / n * np.sign(w)", "return self.l1 / n * w",
             "the L1 gradient (λ/n) w instead of (λ/n) sgn(w)", ("tests/test_update_rule.py", "tests/test_network.py")),
    Mutation("l2-penalty-no-half", "src/nndl/regularization.py",
             "total += 0.5 * self.l2 / self.l2_divisor(n)", "total += self.l2 / self.l2_divisor(n)",
             "the L2 penalty (λ/n) Σ w² instead of (λ/2n) Σ w²", ("tests/test_resume.py", "-k", "penalty")),
    Mutation("l2-divisor-ignores-mini-batches", "src/nndl/regularization.py",
             'return n if self.l2_scale == "training-set" else max(n // self.mini_batch_size, 1)', "return n",
             "network3.py's L2 scale (λ over the number of mini-batches) quietly treated as λ/n",
             ("tests/test_chapter6.py", "-k", "l2")),
    Mutation("penalty-over-evaluated-set", "src/nndl/metrics.py",
             "regularization.penalty(network.weights, n_training)", "regularization.penalty(network.weights, len(dataset))",
             "the reported cost's penalty scaled by the evaluated set's size, not the training set's", CHAPTER3_TESTS),
    Mutation("pixels-over-256", "src/nndl/pixels.py",
             "np.divide(images, dtype.type(255), out=out)", "np.divide(images, dtype.type(256), out=out)",
             "pixel bytes divided by 256, so ink never reaches 1", ("tests/test_data.py", "tests/test_images.py")),
    # -- runs: shuffling, schedules, stopping, choosing ------------------------------------
    Mutation("same-shuffle-every-epoch", "src/nndl/training.py",
             'return make_rng(seed, "shuffle", epoch).permutation(n)', 'return make_rng(seed, "shuffle").permutation(n)',
             "every epoch visits the mini-batches in the same order", ("tests/test_training.py",)),
    Mutation("resume-restarts-the-epoch", "src/nndl/training.py",
             "first_batch = resume.batch if epoch == resume.epoch else 0", "first_batch = 0",
             "a run resumed mid-epoch starts that epoch again from its first mini-batch",
             ("tests/test_resume.py", "-k", "bit_identical")),
    Mutation("resume-from-oldest-checkpoint", "src/nndl/runs/checkpoint.py",
             "for path in reversed(files):", "for path in files:",
             "--resume picks the oldest checkpoint kept instead of the newest", ("tests/test_resume.py",)),
    Mutation("cosine-floor-gamma", "src/nndl/schedules.py",
             "low = self.gamma * eta0", "low = self.gamma",
             "(5c) the cosine schedule's floor γ instead of γη₀", ("tests/test_chapter3.py", "-k", "decay")),
    Mutation("early-stopping-one-epoch-late", "src/nndl/schedules.py",
             "if self.epochs_without_improvement >= self.patience:", "if self.epochs_without_improvement > self.patience:",
             "no-improvement-in-n waits n + 1 epochs", CHAPTER3_TESTS),
    Mutation("keep-best-rebinds", "src/nndl/schedules.py",
             "param[...] = best", "param = best",
             "keep-best 'restores' the best weights by rebinding a name: training ends with the last epoch's",
             ("tests/test_resume.py", "-k", "best")),
    Mutation("halve-never-resets-patience", "src/nndl/schedules.py",
             "run.eta /= 2\n        self.epochs_without_improvement = 0", "run.eta /= 2",
             "halve-on-plateau halves η every epoch once it first plateaus", CHAPTER3_TESTS),
    Mutation("measure-direction", "src/nndl/metrics.py",
             "return value > best if self.higher_is_better else value < best",
             "return value < best if self.higher_is_better else value > best",
             "'best' means worst: early stopping, keep-best and schedules watch the wrong direction",
             ("tests/test_training.py", "-k", "best")),
    Mutation("ensemble-last-votes", "src/nndl/metrics.py",
             ".astype(np.float64) for network in networks)", ".astype(np.float64) for network in networks[-1:])",
             "(5d) an ensemble in which only the last network votes", ("tests/test_experiments.py", "-k", "ensemble")),
    Mutation("sweep-ranks-worst-first", "src/nndl/runs/sweep.py",
             "reverse=measure.higher_is_better)", "reverse=not measure.higher_is_better)",
             "a sweep stage chooses the setting with the worst mean measure", ("tests/test_sweep.py", "-k", "rank")),
    Mutation("sweep-test-score-on-validation", "src/nndl/runs/sweep.py",
             "return evaluate(network, Monitor(mnist.test))", "return evaluate(network, Monitor(mnist.validation))",
             "(5b) the chosen trial's test accuracy measured on the validation set", ("tests/test_sweep.py",)),
    # -- data ----------------------------------------------------------------------------
    Mutation("distortions-seeded-per-epoch", "src/nndl/data/distortions.py",
             'rng = make_rng(seed, "augment", epoch, start)', 'rng = make_rng(seed, "augment", epoch)',
             "(5a) every block of 1,000 images gets the same distortions", ("tests/test_augmentation.py",)),
    Mutation("validation-overlaps-training", "src/nndl/data/mnist.py",
             'validation=Dataset(as_rows(train_images[n_train:]), labels[n_train:], "validation")',
             'validation=Dataset(as_rows(train_images[-keep:]), labels[-keep:], "validation")',
             "the validation set is the last train_size images, not the 10,000 held out",
             ("tests/test_data.py", "tests/test_idx.py")),
    Mutation("idx-cap-misses-empty-dimension", "src/nndl/data/idx.py",
             "if math.prod(max(n, 1) for n in shape) * dtype.itemsize > max_bytes:",
             "if math.prod(shape) * dtype.itemsize > max_bytes:",
             "an IDX header with a zero dimension escapes the size cap on the others",
             ("tests/test_idx.py", "tests/test_hostile_readers.py", "-k", "idx")),
    # -- the web page ----------------------------------------------------------------------
    Mutation("live-cost-next-epoch", "src/nndl/app/web/live.py",
             "self.order = epoch_order(run.seed, epoch, len(self.training))",
             "self.order = epoch_order(run.seed, epoch + 1, len(self.training))",
             "(5e) the page's live cost measured on the next epoch's mini-batch", ("tests/test_web_api.py", "-k", "live")),
]


def mnist_folder() -> str:
    """NNDL_DATA, else the checkout's ../shared/datasets/mnist (as the Makefile finds it)."""
    folder = os.environ.get("NNDL_DATA") or str(REPO.parent / "shared" / "datasets" / "mnist")
    if not (Path(folder) / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(f"MNIST not found in {folder}: set NNDL_DATA to a folder with the four IDX files")
    return folder


def copy_repository(target: Path) -> None:
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=SKIPPED)
        elif source.is_file():
            shutil.copy2(source, target / name)


def environment(copy: Path) -> dict[str, str]:
    """The copy's src ahead of the editable install, MNIST named, one BLAS thread (the machine is shared)."""
    return {**os.environ, "PYTHONPATH": str(copy / "src"), "NNDL_DATA": mnist_folder(),
            "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def check_imports_the_copy(copy: Path, env: dict[str, str]) -> None:
    found = subprocess.run([sys.executable, "-c", "import nndl; print(nndl.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True).stdout.strip()
    if not found.startswith(str(copy)):
        sys.exit(f"the copy's tests would import nndl from {found or '(nothing)'}, not from {copy / 'src'}")


def run_tests(copy: Path, env: dict[str, str], tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """'passed', 'failed', 'timed out' or 'error (pytest exit N)' for ``tests`` in ``copy``, the seconds
    taken, and the end of pytest's report."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timed out", time.perf_counter() - started, ""
    outcome = {0: "passed", 1: "failed"}.get(done.returncode, f"error (pytest exit {done.returncode})")
    return outcome, time.perf_counter() - started, (done.stdout + done.stderr)[-3000:]


def plant(copy: Path, mutation: Mutation) -> str | None:
    """Write ``mutation`` into the copy; the reason it cannot be planted, or None."""
    path = copy / mutation.file
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    count = text.count(mutation.old)
    if count != 1:
        return "old text not found" if count == 0 else f"old text found {count} times"
    path.write_text(text.replace(mutation.old, mutation.new), encoding="utf-8")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the mutations and their tests, run nothing")
    parser.add_argument("--only", action="append", metavar="NAME", help="plant only this mutation (repeatable)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help="seconds one test run may take (default 600); a planted bug that makes the tests "
                             "hang counts as caught")
    args = parser.parse_args(argv)
    names = [m.name for m in MUTATIONS]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown mutation {unknown[0]!r}; --list shows them")
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name}\n    {m.file}: {m.what}\n    pytest {' '.join(m.tests)}")
        return 0

    with tempfile.TemporaryDirectory(prefix="nndl-planted-") as folder:
        copy = Path(folder)
        copy_repository(copy)
        env = environment(copy)
        check_imports_the_copy(copy, env)
        for tests in dict.fromkeys(m.tests for m in chosen):
            outcome, seconds, report = run_tests(copy, env, tests, args.timeout)
            print(f"unchanged code: pytest {' '.join(tests)}: {outcome} ({seconds:.0f} s)", flush=True)
            if outcome != "passed":
                print(f"{report}\nthese tests must pass before bugs are planted; fix that first")
                return 2
        survived = 0
        for m in chosen:
            original = (copy / m.file).read_text(encoding="utf-8") if (copy / m.file).is_file() else None
            problem = plant(copy, m)
            if problem:
                result, seconds = f"NOT PLANTED: {problem} in {m.file}; update this entry", 0.0
            else:
                outcome, seconds, _ = run_tests(copy, env, m.tests, args.timeout)
                (copy / m.file).write_text(original, encoding="utf-8")
                result = {"passed": "SURVIVED", "failed": "caught"}.get(outcome, f"caught: {outcome}")
            survived += not result.startswith("caught")
            print(f"{m.name:40} {result:10} {seconds:5.0f} s  {m.what}", flush=True)
        print(f"{len(chosen) - survived} of {len(chosen)} planted bugs caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
