"""What checkpointing costs: seconds per epoch of [784, 100, 10] with and without --checkpoint.

Not a test: it prints figures and a ratio. Run from the repository root:

    python benchmarks/bench_checkpoint.py            # NNDL_DATA or the cache must hold MNIST

Each figure is the median over the epochs of a run of the book's [784, 100, 10]
cross-entropy network (η = 0.5, λ = 5, momentum 0.5 so velocities are saved too,
with early stopping so the best weights are saved as well). The checkpoint cost
is measured directly: the time of each save, against the epoch's time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from nndl.runs.checkpoint import Checkpointer
from nndl.runs.runner import DataCache, run_spec
from nndl.runs.spec import RunSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    spec = RunSpec().replace(hidden=[100], cost="cross-entropy", eta=0.5, lmbda=5.0, momentum=0.5, epochs=args.epochs,
                             early_stopping=10, evaluate_on="validation", seed=1, source=args.data)
    cache = DataCache()
    saves: list[float] = []
    original = Checkpointer.save

    def timed_save(self, run, finished):
        started = time.perf_counter()
        path = original(self, run, finished)
        saves.append(time.perf_counter() - started)
        return path

    Checkpointer.save = timed_save  # type: ignore[method-assign]
    plain = run_spec(spec, cache=cache)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        checkpointed = run_spec(spec, cache=cache, checkpoint=folder)
        wall = time.perf_counter() - started
        size = sum(p.stat().st_size for p in __import__("pathlib").Path(folder).iterdir())
    epoch = statistics.median(r["seconds"] for r in plain.summary["history"])
    epoch_ck = statistics.median(r["seconds"] for r in checkpointed.summary["history"])
    save = statistics.median(saves)
    print(f"[784, 100, 10], {args.epochs} epochs of 50,000 images, float32, 1 BLAS thread")
    print(f"epoch (training only), no checkpoint:   {epoch:.3f} s")
    print(f"epoch (training only), with checkpoint: {epoch_ck:.3f} s")
    print(f"one checkpoint save (median of {len(saves)}): {1000 * save:.1f} ms, {size / 2**20:.1f} MB for the newest two")
    print(f"checkpoint cost per epoch: {100 * save / epoch:.2f}% of the epoch (target < 2%)")
    print(f"wall time of the checkpointed run: {wall:.1f} s (includes the one-off data fingerprint)")


if __name__ == "__main__":
    main()
