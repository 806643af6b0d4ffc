"""Seconds per epoch of SGD: nndl against the book's own loop, PyTorch and the matrix-product floor.

Not a test: it prints figures and ratios. Run from the repository root:

    python benchmarks/bench_training.py               # both parts below (about 10 minutes on 2 cores)
    python benchmarks/bench_training.py --part small  # chapter 1's [784, 30, 10]: nndl, book, PyTorch, floor
    python benchmarks/bench_training.py --part phases # where its step spends the time: data, forward, backprop, update
    python benchmarks/bench_training.py --part blas   # large layers: 1 against 2 BLAS threads, idle and busy
    python benchmarks/bench_training.py --busy        # either, with another process spinning on one core

Every figure is seconds per epoch of 50,000 images (contenders time a slice of
the training set and are scaled up), best of ``--reps`` repetitions, and the
contenders take turns within each repetition, so a machine whose load changes
during the run slows them all alike. The load average is printed beside the
figures: compare ratios, not seconds, across machines.

The contenders on [784, 30, 10], sigmoid neurons, quadratic cost, η = 3:

- nndl: :func:`nndl.training.train` (pixels as bytes, scaled per mini-batch).
- book: chapter 1's algorithm as the book's network.py runs it, written out
  below: images as (784, 1) columns, one image at a time, gradients summed in
  Python lists, float64.
- PyTorch: the same network and SGD with CPU autograd (``pip install
  torch``); a cross-check, never a dependency. Its images are floats already.
- floor: the matrix products of one step alone (forward z^l, BP2's (w^(l+1))ᵀ δ
  and BP4's δ aᵀ: five for two layers), in the layouts nndl uses, each one
  ``np.dot`` into an existing array. Any implementation of this algorithm
  pays at least this.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator

import numpy as np

from nndl.data.mnist import Dataset, load_mnist
from nndl.network import Network
from nndl.runs.blas import blas_threads
from nndl.optimizer import SGD
from nndl.training import TrainingConfig, mini_batches, train

EPOCH = 50_000  # images in one epoch of the book's training set
SMALL = [784, 30, 10]
LARGE = ([784, 800, 10], [784, 1000, 500, 10])
ETA = 3.0
Timer = Callable[[], float]  # one timed pass; returns seconds per EPOCH images


def load_average() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


# -- nndl -------------------------------------------------------------------------------------


def nndl_timer(data: Dataset, sizes: list[int], dtype: str, m: int, backprop: str = "matrix",
               threads: int | None = 1) -> Timer:
    """One epoch of nndl's SGD over ``data`` (a slice of MNIST), scaled to EPOCH images."""

    def timed() -> float:
        network = Network(sizes, seed=1, dtype=dtype)
        config = TrainingConfig(epochs=1, mini_batch_size=m, eta=ETA, seed=1, backprop=backprop)
        with blas_threads(threads):
            run = train(network, data, config)
        return run.history.epochs[0]["seconds"] * EPOCH / len(data)

    return timed


def phase_timer(data: Dataset, sizes: list[int], dtype: str, m: int, phase: str) -> Timer:
    """An epoch of one part of nndl's step alone, for the table of where the time goes.

    ``phase``: "data" (mini-batches as input columns), "forward" (z = w·a + b and
    σ per layer), "backprop" (forward and BP1-BP4) or "step" (backprop and the update).
    """
    network = Network(sizes, seed=1, dtype=dtype)
    optimizer = SGD(network, ETA, len(data))
    order = np.random.default_rng(1).permutation(len(data))
    batches = list(mini_batches(network, data.images, data.labels, order, m))
    parts = {
        "data": lambda: sum(1 for _ in mini_batches(network, data.images, data.labels, order, m)),
        "forward": lambda: [network.forward(x) for _, x, _ in batches],
        "backprop": lambda: [network.backprop(x, y) for _, x, y in batches],
        "step": lambda: [optimizer.step(network, *network.backprop(x, y), m) for _, x, y in batches],
    }

    def timed() -> float:
        with blas_threads(1):
            started = time.perf_counter()
            parts[phase]()
            return (time.perf_counter() - started) * EPOCH / len(data)

    return timed


# -- the book's loop --------------------------------------------------------------------------


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    return sigmoid(z) * (1 - sigmoid(z))


class BookNetwork:
    """Chapter 1's network as the book runs it: column vectors, one training example at a time."""

    def __init__(self, sizes: list[int], rng: np.random.Generator):
        self.biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
        self.weights = [rng.standard_normal((n, k)) for k, n in zip(sizes[:-1], sizes[1:])]

    def update_mini_batch(self, mini_batch: list[tuple[np.ndarray, np.ndarray]], eta: float) -> None:
        """One gradient step: backpropagate each (x, y) pair, sum the gradients in lists, move."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_b, delta_w = self.backprop(x, y)
            nabla_b = [nb + db for nb, db in zip(nabla_b, delta_b)]
            nabla_w = [nw + dw for nw, dw in zip(nabla_w, delta_w)]
        step = eta / len(mini_batch)
        self.weights = [w - step * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - step * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The gradient of the quadratic cost for one example, by BP1-BP4."""
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        nabla_b[-1], nabla_w[-1] = delta, np.dot(delta, activations[-2].T)
        for l in range(2, len(self.weights) + 1):
            delta = np.dot(self.weights[-l + 1].T, delta) * sigmoid_prime(zs[-l])
            nabla_b[-l], nabla_w[-l] = delta, np.dot(delta, activations[-l - 1].T)
        return nabla_b, nabla_w


def book_timer(data: Dataset, m: int = 10) -> Timer:
    """One epoch of the book's loop over ``data``, scaled to EPOCH images (data prepared beforehand, as the book's
    loader does)."""
    pairs = [(row.reshape(784, 1) / 255.0, np.eye(10)[:, [label]]) for row, label in zip(data.images, data.labels)]

    def timed() -> float:
        network = BookNetwork(SMALL, np.random.default_rng(1))
        random.seed(1)
        started = time.perf_counter()
        random.shuffle(pairs)
        for k in range(0, len(pairs), m):
            network.update_mini_batch(pairs[k : k + m], ETA)
        return (time.perf_counter() - started) * EPOCH / len(pairs)

    return timed


# -- PyTorch ----------------------------------------------------------------------------------


def torch_timer(data: Dataset, m: int, threads: int) -> Timer | None:
    """One epoch of the same network and SGD in PyTorch CPU autograd (float32), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    images = torch.from_numpy(data.images.astype(np.float32) / 255.0)
    targets = torch.nn.functional.one_hot(torch.from_numpy(data.labels.astype(np.int64)), 10).float()

    def timed() -> float:
        torch.set_num_threads(threads)
        torch.manual_seed(1)
        layers = [torch.nn.Linear(k, n) for k, n in zip(SMALL[:-1], SMALL[1:])]
        model = torch.nn.Sequential(layers[0], torch.nn.Sigmoid(), layers[1], torch.nn.Sigmoid())
        optimizer = torch.optim.SGD(model.parameters(), lr=ETA)
        order = torch.randperm(len(images))
        started = time.perf_counter()
        for first in range(0, len(images), m):
            chosen = order[first : first + m]
            x, y = images[chosen], targets[chosen]
            optimizer.zero_grad()
            loss = 0.5 * ((model(x) - y) ** 2).sum() / len(chosen)  # C = (1/2m) Σ_x ||y − a||², the book's
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - started) * EPOCH / len(images)

    return timed


# -- the matrix-product floor -----------------------------------------------------------------


def floor_timer(data: Dataset, sizes: list[int], dtype: str, m: int, threads: int | None = 1) -> Timer:
    """The matrix products of one SGD step alone, once per mini-batch of an epoch, scaled to EPOCH images."""
    network = Network(sizes, seed=1, dtype=dtype)
    x = network.inputs(data.images[:m])  # the layout training uses: (784, m) columns of a row-major batch
    rng = np.random.default_rng(0)
    zs = [np.empty((n, m), network.dtype) for n in sizes[1:]]
    deltas = [rng.standard_normal((n, m)).astype(network.dtype) for n in sizes[1:]]  # δ^L: any numbers
    nabla_w = [np.empty_like(w) for w in network.weights]
    steps = len(data) // m

    def timed() -> float:
        weights, last = network.weights, len(network.weights) - 1
        with blas_threads(threads):
            started = time.perf_counter()
            for _ in range(steps):
                a = x
                for w, z in zip(weights, zs):
                    a = np.dot(w, a, out=z)  # w^l a^(l−1)
                for l in range(last, -1, -1):
                    if l < last:
                        np.dot(weights[l + 1].T, deltas[l + 1], out=deltas[l])  # (w^(l+1))ᵀ δ^(l+1)
                    np.dot(deltas[l], (zs[l - 1] if l else x).T, out=nabla_w[l])  # δ^l (a^(l−1))ᵀ
            return (time.perf_counter() - started) * EPOCH / (steps * m)

    return timed


# -- running and reporting --------------------------------------------------------------------


def best_of(timers: dict[str, Timer | None], reps: int) -> dict[str, float]:
    """Each timer's best over ``reps`` rounds, the timers taking turns within every round."""
    timers = {name: timer for name, timer in timers.items() if timer is not None}
    best = {name: float("inf") for name in timers}
    for rep in range(reps):
        for name, timer in timers.items():
            best[name] = min(best[name], timer())
        print(f"  round {rep + 1}/{reps} done, {load_average()}", flush=True)
    return best


def print_rows(rows: dict[str, float]) -> None:
    for name, seconds in rows.items():
        print(f"  {name:52s} {seconds:8.3f} s/epoch")


def print_ratio(rows: dict[str, float], label: str, slower: str, faster: str, target: str = "") -> None:
    if slower in rows and faster in rows:
        print(f"  {label:64s} {rows[slower] / rows[faster]:6.2f}x  {target}")


def small_part(mnist_training: Dataset, args: argparse.Namespace) -> None:
    fast, slow = mnist_training.head(args.images), mnist_training.head(args.slow_images)
    print(f"\n[784, 30, 10], m = mini-batch size, 1 BLAS thread for nndl and the floor; nndl rows time "
          f"{len(fast)} images, book and PyTorch {len(slow)}; best of {args.reps}; {load_average()}")
    timers: dict[str, Timer | None] = {
        "nndl float64 m=10": nndl_timer(fast, SMALL, "float64", 10),
        "nndl float32 m=10": nndl_timer(fast, SMALL, "float32", 10),
        "nndl float32 m=100": nndl_timer(fast, SMALL, "float32", 100),
        "nndl per-example float64 m=10": nndl_timer(slow, SMALL, "float64", 10, "per-example"),
        "book loop float64 m=10": book_timer(slow, 10),
        "floor float64 m=10": floor_timer(fast, SMALL, "float64", 10),
        "floor float32 m=10": floor_timer(fast, SMALL, "float32", 10),
        "floor float32 m=100": floor_timer(fast, SMALL, "float32", 100),
    }
    for m, threads in itertools.product((10, 100), (1, 2)):
        timers[f"pytorch float32 m={m} {threads} thread(s)"] = torch_timer(slow, m, threads)
    rows = best_of(timers, args.reps)
    for m in (10, 100):
        torch_rows = [rows[k] for k in rows if k.startswith(f"pytorch float32 m={m} ")]
        if torch_rows:
            rows[f"pytorch float32 m={m} (faster thread setting)"] = min(torch_rows)
    print_rows(rows)
    print(f"\nratios (higher = nndl faster); {load_average()}")
    print_ratio(rows, "nndl vs the book's loop, float64 m=10", "book loop float64 m=10", "nndl float64 m=10",
                "(target ≥ 10x)")
    print_ratio(rows, "nndl's per-example mode vs the book's loop, float64 m=10", "book loop float64 m=10",
                "nndl per-example float64 m=10")
    print_ratio(rows, "nndl vs PyTorch, float32 m=10", "pytorch float32 m=10 (faster thread setting)",
                "nndl float32 m=10", "(target ≥ 8x)")
    print_ratio(rows, "nndl vs PyTorch, float32 m=100", "pytorch float32 m=100 (faster thread setting)",
                "nndl float32 m=100", "(target ≥ 2x)")
    print_ratio(rows, "float32 vs float64, nndl m=10", "nndl float64 m=10", "nndl float32 m=10")
    print("  (below: nndl's time as a multiple of the matrix products alone; lower = nearer the floor)")
    print_ratio(rows, "nndl / floor, float32 m=10", "nndl float32 m=10", "floor float32 m=10", "(target ≤ 1.5x)")
    print_ratio(rows, "nndl / floor, float64 m=10", "nndl float64 m=10", "floor float64 m=10")
    print_ratio(rows, "nndl / floor, float32 m=100", "nndl float32 m=100", "floor float32 m=100")


def phases_part(mnist_training: Dataset, args: argparse.Namespace) -> None:
    """Where an epoch of [784, 30, 10] at m = 10 spends its time, each part timed on its own (cumulative)."""
    data = mnist_training.head(args.images)
    for dtype in ("float32", "float64"):
        print(f"\nwhere the time goes, [784, 30, 10] {dtype} m=10, each row includes the ones above it but data; "
              f"best of {args.reps}")
        timers: dict[str, Timer | None] = {phase: phase_timer(data, SMALL, dtype, 10, phase)
                                           for phase in ("data", "forward", "backprop", "step")}
        timers["matrix products alone (the floor)"] = floor_timer(data, SMALL, dtype, 10)
        timers["the whole epoch (train)"] = nndl_timer(data, SMALL, dtype, 10)
        print_rows(best_of(timers, args.reps))


@contextlib.contextmanager
def distortion_workers(data: Dataset, workers: int) -> Iterator[None]:
    """Keep ``workers`` distortion processes busy (rotations, skews, elastic), as ``--augment`` training does."""
    from nndl.data.distortions import DistortedEpochs, parse_distortion

    stop = threading.Event()
    with DistortedEpochs(data.images, parse_distortion("rotate=8,skew=0.1,elastic"), seed=1,
                         workers=workers) as epochs:

        def keep_busy() -> None:
            for epoch in itertools.count():
                if stop.is_set():
                    return
                epochs.epoch_images(epoch)

        thread = threading.Thread(target=keep_busy, daemon=True)
        thread.start()
        time.sleep(2.0)  # let the workers start and load their copy of the images
        try:
            yield
        finally:
            stop.set()
            thread.join()


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


def blas_part(mnist_training: Dataset, args: argparse.Namespace) -> None:
    data = mnist_training.head(args.large_images)
    print(f"\nlarge layers, float32, nndl training on {len(data)} images (scaled to an epoch), best of "
          f"{args.reps}: 1 against 2 BLAS threads; {load_average()}")
    timers: dict[str, Timer | None] = {}
    for sizes, m, threads in itertools.product(LARGE, (10, 100), (1, 2)):
        timers[f"nndl {sizes} m={m} {threads} thread(s)"] = nndl_timer(data, sizes, "float32", m, threads=threads)
        timers[f"floor {sizes} m={m} {threads} thread(s)"] = floor_timer(data, sizes, "float32", m, threads)
    for busy in (0, args.workers):
        state = f"{busy} distortion workers busy" if busy else "no distortion workers"
        print(f"\n{state}")
        if busy:
            with distortion_workers(mnist_training.head(5000), busy):
                rows = best_of(timers, args.reps)
        else:
            rows = best_of(timers, args.reps)
        print_rows(rows)
        print(f"ratios with {state} (above 1: 2 threads faster); {load_average()}")
        for sizes, m in itertools.product(LARGE, (10, 100)):
            for what in ("nndl", "floor"):
                print_ratio(rows, f"{what} {sizes} m={m}: 1 thread / 2 threads",
                            f"{what} {sizes} m={m} 1 thread(s)", f"{what} {sizes} m={m} 2 thread(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST folder (default: NNDL_DATA or the cache)")
    parser.add_argument("--part", choices=("small", "phases", "blas", "all"), default="all")
    parser.add_argument("--images", type=int, default=10_000, help="images timed for the fast rows")
    parser.add_argument("--slow-images", type=int, default=2_000, help="images timed for the book and PyTorch")
    parser.add_argument("--large-images", type=int, default=2_000, help="images timed for the large layers")
    parser.add_argument("--workers", type=int, default=2, help="distortion workers kept busy in the busy rounds")
    parser.add_argument("--reps", type=int, default=5, help="rounds; each figure is the best")
    parser.add_argument("--busy", action="store_true", help="run with another process spinning on one core")
    args = parser.parse_args()
    spinning = ", one core kept busy by another process" if args.busy else ""
    print(f"nndl training benchmark: {os.cpu_count()} cores{spinning}, {load_average()}")
    mnist_training = load_mnist(args.data).training
    with busy_core(args.busy):
        if args.part in ("small", "all"):
            small_part(mnist_training, args)
        if args.part in ("phases", "all"):
            phases_part(mnist_training, args)
        if args.part in ("blas", "all"):
            blas_part(mnist_training, args)


if __name__ == "__main__":
    main()
