"""Data augmentation: distortion throughput, and the cost of on-the-fly distortions per epoch.

Not a test: it prints figures and ratios. Run from the repository root:

    python benchmarks/bench_augment.py

It times each distortion on 10,000 MNIST digits, then one epoch of the
[784, 100, 10] network (cross-entropy, η = 0.5, λ = 5, m = 10) on the 50,000
training images without augmentation and with rotation + skew + elastic
distortions prepared by 0, 1 and 2 worker processes (the target: at most 1.5x
the plain epoch).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from nndl.data.distortions import distort_rows, parse_distortion
from nndl.data.mnist import load_mnist
from nndl.network import Network
from nndl.training import TrainingConfig, train

SPECS = ("shift=2", "rotate=10", "skew=0.2", "elastic", "rotate=10,skew=0.2,elastic")


def epoch_seconds(data, augmentation, workers: int, epochs: int) -> float:
    """Mean wall seconds per epoch after the first (which waits for the first distortions)."""
    network = Network([784, 100, 10], cost="cross-entropy", init="normalized", seed=1)
    history = train(network, data, TrainingConfig(epochs=epochs, eta=0.5, lmbda=5.0, seed=1),
                    augmentation=augmentation, augment_workers=workers)
    return float(np.mean([r["seconds"] for r in history.epochs[1:]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST folder (default: NNDL_DATA or the cache)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per training measurement (default 4)")
    args = parser.parse_args()
    mnist = load_mnist(args.data)
    print(f"nndl augmentation benchmark, {os.cpu_count()} cores")
    sample = mnist.training.images[:10_000]
    distort_rows(sample[:10], parse_distortion("elastic"), np.random.default_rng(0))  # import SciPy first
    print(f"{'distortion':34s} {'images/s':>10s} {'s per 50k':>10s}")
    for spec in SPECS:
        started = time.perf_counter()
        distort_rows(sample, parse_distortion(spec), np.random.default_rng(0))
        rate = len(sample) / (time.perf_counter() - started)
        print(f"{spec:34s} {rate:10.0f} {50_000 / rate:10.2f}", flush=True)

    spec = parse_distortion("rotate=10,skew=0.2,elastic")
    plain = epoch_seconds(mnist.training, None, 0, args.epochs)
    print(f"\n[784, 100, 10] epoch, 50,000 images: plain {plain:.2f} s")
    for workers in (0, 1, 2):
        seconds = epoch_seconds(mnist.training, spec, workers, args.epochs)
        print(f"  with {spec}, {workers} worker(s): {seconds:.2f} s  = {seconds / plain:.1f}x plain", flush=True)


if __name__ == "__main__":
    main()
