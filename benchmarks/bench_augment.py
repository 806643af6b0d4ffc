"""Data augmentation: distortion throughput, and the cost of on-the-fly distortions per epoch.

Not a test: it prints figures and ratios. Run from the repository root:

    python benchmarks/bench_augment.py

It times each distortion on 10,000 MNIST digits with SciPy's map_coordinates
(the fallback) and OpenCV's remap (the default when installed), one BLAS and
one OpenCV thread, as in a worker. Then it times epochs of the [784, 100, 10]
and [784, 800, 10] networks (cross-entropy, η = 0.5, λ = 5, m = 10) on the
50,000 training images, plain and with rotation + skew + elastic distortions
prepared by the default 2 worker processes (the target: at most 1.5x plain).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from nndl.data.distortions import bilinear_backend, distort_rows, opencv, parse_distortion
from nndl.data.mnist import load_mnist
from nndl.runs import RunSpec
from nndl.runs.runner import DataCache, run_spec

SPECS = ("shift=2", "rotate=10", "skew=0.2", "elastic", "rotate=10,skew=0.2,elastic")
ON_THE_FLY = "rotate=10,skew=0.2,elastic"


def digits_per_second(images: np.ndarray, spec: str, backend: str, repeats: int) -> float:
    """The best of ``repeats`` timings of distorting ``images`` (rows), in digits per second."""
    distortion = parse_distortion(spec)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        distort_rows(images, distortion, np.random.default_rng(0), backend)
        seconds.append(time.perf_counter() - started)
    return len(images) / min(seconds)


def train_epochs(hidden: int, data_dir: str | None, augmentation: str | None, epochs: int,
                 cache: DataCache) -> list[float]:
    """Seconds of each epoch of one training run (the training alone, not the evaluation after it)."""
    spec = RunSpec().replace(hidden=[hidden], cost="cross-entropy", init="normalized", eta=0.5, lmbda=5.0,
                             epochs=epochs, seed=1, source=data_dir, augment=augmentation)
    return [record["seconds"] for record in run_spec(spec, cache=cache).run.history.epochs]


def epoch_seconds(hidden: int, data_dir: str | None, augmentation: str | None, epochs: int,
                  cache: DataCache) -> float:
    """Median seconds per epoch after the first (which waits for the first distortions)."""
    return float(np.median(train_epochs(hidden, data_dir, augmentation, epochs, cache)[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST folder (default: NNDL_DATA or the cache)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per training measurement (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per distortion, best kept (default 3)")
    args = parser.parse_args()
    mnist = load_mnist(args.data)
    print(f"nndl augmentation benchmark, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}), "
          f"sampling with {bilinear_backend()} by default")

    from threadpoolctl import threadpool_limits

    sample = mnist.training.images[:10_000]
    with threadpool_limits(1):
        opencv().setNumThreads(0)  # one thread, as each worker runs
        print(f"\n{'digits/s on one core':34s} {'SciPy':>9s} {'OpenCV':>9s} {'speed-up':>9s}")
        for spec in SPECS:
            old, new = (digits_per_second(sample, spec, backend, args.repeats) for backend in ("scipy", "opencv"))
            print(f"{spec:34s} {old:9.0f} {new:9.0f} {new / old:8.1f}x", flush=True)
        opencv().setNumThreads(-1)  # back to OpenCV's default

    print(f"\nseconds per epoch, 50,000 images, distortions {ON_THE_FLY} by 2 workers")
    print(f"{'network':16s} {'plain':>7s} {'distorted':>10s} {'ratio':>7s}")
    cache = DataCache()
    for hidden in (100, 800):
        plain = epoch_seconds(hidden, args.data, None, args.epochs, cache)
        distorted = epoch_seconds(hidden, args.data, ON_THE_FLY, args.epochs, cache)
        network = f"[784, {hidden}, 10]"
        print(f"{network:16s} {plain:7.2f} {distorted:10.2f} {distorted / plain:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
