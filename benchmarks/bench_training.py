"""Seconds per epoch: matrix vs per-example backprop, float32 vs float64, BLAS threads, PyTorch.

Not a test: it prints figures and ratios. Run from the repository root:

    python benchmarks/bench_training.py              # full epochs of 50,000 images
    python benchmarks/bench_training.py --images 10000
    python benchmarks/bench_training.py --busy       # with another process loading one core

Every figure is one epoch of SGD on the [784, 30, 10] network of chapter 1 with
η = 3.0 (the per-example mode and PyTorch run on fewer images and are scaled up,
see --slow-images). PyTorch rows appear when torch is installed
(``pip install torch==2.13.0``); it is a cross-check, never a dependency.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from typing import Iterator

import numpy as np

from nndl.data.mnist import Dataset, load_mnist
from nndl.network import Network
from nndl.runs.blas import blas_threads
from nndl.training import TrainingConfig, train


def nndl_epoch_seconds(data: Dataset, dtype: str, m: int, backprop: str, threads: int | None) -> float:
    """Seconds per epoch of nndl's SGD on ``data`` (best of two epochs)."""
    network = Network([784, 30, 10], seed=1, dtype=dtype)
    config = TrainingConfig(epochs=2, mini_batch_size=m, eta=3.0, seed=1, backprop=backprop)
    with blas_threads(threads):
        run = train(network, data, config)  # bytes, scaled to [0, 1] per mini-batch
    return min(record["seconds"] for record in run.history.epochs)


def torch_epoch_seconds(data: Dataset, m: int, threads: int | None) -> float | None:
    """Seconds per epoch of the same network and SGD in PyTorch autograd (float32), or None."""
    try:
        import torch
    except ImportError:
        return None
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.Sigmoid(), torch.nn.Linear(30, 10), torch.nn.Sigmoid())
    optimizer = torch.optim.SGD(model.parameters(), lr=3.0)
    images = torch.from_numpy(data.images.astype(np.float32))
    targets = torch.nn.functional.one_hot(torch.from_numpy(data.labels), 10).float()
    best = float("inf")
    for _ in range(2):
        order = torch.randperm(len(images))
        started = time.perf_counter()
        for first in range(0, len(images), m):
            chosen = order[first : first + m]
            x, y = images[chosen], targets[chosen]
            optimizer.zero_grad()
            # quadratic cost summed over outputs, averaged over the mini-batch, as in the book
            loss = 0.5 * ((model(x) - y) ** 2).sum() / len(chosen)
            loss.backward()
            optimizer.step()
        best = min(best, time.perf_counter() - started)
    return best


@contextlib.contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    """Keep one core busy with a spinning process, as on a loaded laptop (when enabled)."""
    if not enabled:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST folder (default: NNDL_DATA or the cache)")
    parser.add_argument("--images", type=int, default=50_000, help="training images per epoch for the fast rows")
    parser.add_argument("--slow-images", type=int, default=5_000, help="images timed for the slow rows, scaled up")
    parser.add_argument("--busy", action="store_true", help="run with another process spinning on one core")
    args = parser.parse_args()
    with busy_core(args.busy):
        run(args)


def run(args: argparse.Namespace) -> None:

    mnist = load_mnist(args.data)
    fast, slow = mnist.training.head(args.images), mnist.training.head(args.slow_images)
    scale = args.images / args.slow_images
    load = ", one core kept busy by another process" if args.busy else ""
    print(f"nndl benchmark: [784, 30, 10], one epoch = {args.images} images, {os.cpu_count()} cores{load}")
    print(f"{'what':44s} {'s/epoch':>8s}")
    rows: dict[str, float] = {}

    def row(name: str, seconds: float | None) -> None:
        if seconds is not None:
            rows[name] = seconds
            print(f"{name:44s} {seconds:8.2f}", flush=True)

    for dtype in ("float64", "float32"):
        for threads, label in ((1, "1 BLAS thread"), (None, "BLAS default threads")):
            for m in (10, 100):
                row(f"matrix {dtype} m={m} {label}", nndl_epoch_seconds(fast, dtype, m, "matrix", threads))
    for dtype in ("float64", "float32"):
        row(f"per-example {dtype} m=10", nndl_epoch_seconds(slow, dtype, 10, "per-example", 1) * scale)
    for m in (10, 100):
        for threads, label in ((1, "1 thread"), (None, "default threads")):
            seconds = torch_epoch_seconds(slow, m, threads)
            row(f"pytorch autograd float32 m={m} {label}", None if seconds is None else seconds * scale)

    print("\nratios (higher = nndl faster)")

    def ratio(name: str, slower: str, faster: str) -> None:
        if slower in rows and faster in rows:
            print(f"{name:60s} {rows[slower] / rows[faster]:6.1f}x")

    ratio("matrix vs per-example, float64 m=10", "per-example float64 m=10", "matrix float64 m=10 1 BLAS thread")
    ratio("matrix vs per-example, float32 m=10", "per-example float32 m=10", "matrix float32 m=10 1 BLAS thread")
    ratio("float32 vs float64, matrix m=10", "matrix float64 m=10 1 BLAS thread", "matrix float32 m=10 1 BLAS thread")
    for m in (10, 100):
        ratio(f"1 BLAS thread vs default, float32 m={m}",
              f"matrix float32 m={m} BLAS default threads", f"matrix float32 m={m} 1 BLAS thread")
        best_torch = min(
            (rows[k] for k in rows if k.startswith(f"pytorch autograd float32 m={m} ")), default=None
        )
        if best_torch is not None:
            rows[f"torch best m={m}"] = best_torch
            ratio(f"nndl float32 vs PyTorch (its faster thread setting), m={m}",
                  f"torch best m={m}", f"matrix float32 m={m} 1 BLAS thread")


if __name__ == "__main__":
    main()
