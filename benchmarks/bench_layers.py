"""Convolutional layers against PyTorch, and fully connected epochs against the code before layers existed.

Not a test: it prints figures and ratios. Run from the repository root:

    python benchmarks/bench_layers.py --part conv     # chapter 6's networks: nndl, PyTorch CPU, the products alone
    python benchmarks/bench_layers.py --part dense    # [784, 30, 10] and [784, 100, 10]: this tree against --against
    python benchmarks/bench_layers.py --part memory   # peak memory of `nndl train` on the two-conv network, MNIST

- conv: one epoch (50,000 images, timed on a slice and scaled) of
  conv20x5,pool2,full100 and conv20x5,pool2,conv40x5,pool2,full100, sigmoid,
  softmax + log-likelihood, mini-batches of 10, float32, on 1 and on 2
  threads. nndl trains with :func:`nndl.training.train`; PyTorch (``pip
  install torch``, a cross-check, never a dependency) runs the same network
  (conv2d, max_pool2d, σ after pooling as network3.py) with SGD in a plain
  loop over a float tensor. "products" times only the matrix products of
  nndl's step (each layer's forward product, BP2's wᵀδ and BP4's gradient), the
  floor of this algorithm. The contenders take turns within each repetition.
- dense: seconds per epoch of nndl's fully connected step in this tree and in
  a git worktree of ``--against`` (default: the commit before src/nndl/layers.py
  was added), each in its own process, taking turns, one BLAS thread; and of
  conv20x5,pool2,full100 when ``--against`` has layers (e.g. the commit before
  the GPU path: ``--against f0fb518``).
- memory: the peak resident memory of ``nndl train --layers
  conv20x5,pool2,conv40x5,pool2,full100`` for one epoch on MNIST, from the
  child's rusage.

The load average is printed beside every figure: compare ratios, not seconds, across machines.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from nndl.data.mnist import Dataset, load_mnist, resolve_data_dir
from nndl.network import Network
from nndl.runs.blas import blas_threads
from nndl.training import TrainingConfig, train

REPO = Path(__file__).resolve().parent.parent
EPOCH = 50_000
CONV_NETS = ("conv20x5,pool2,full100", "conv20x5,pool2,conv40x5,pool2,full100")
ETA, M = 0.1, 10


def load_average() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def best_of(reps: int, timers: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each timer's best time over ``reps`` rounds, the timers taking turns within each round."""
    best = {name: float("inf") for name in timers}
    for _ in range(reps):
        for name, timer in timers.items():
            best[name] = min(best[name], timer())
    return best


# -- chapter 6's networks --------------------------------------------------------------------------


def nndl_epoch(data: Dataset, layers: str, threads: int) -> Callable[[], float]:
    def timed() -> float:
        network = Network(layers=layers, cost="log-likelihood", seed=1)
        with blas_threads(threads):
            run = train(network, data, TrainingConfig(epochs=1, mini_batch_size=M, eta=ETA, seed=1))
        return run.history.epochs[0]["seconds"] * EPOCH / len(data)

    return timed


def torch_model(layers: str):
    """The network ``layers`` describes (σ after pooling, as nndl's default and network3.py) in PyTorch."""
    import torch

    nn = torch.nn
    stack: list[nn.Module] = []
    maps, side = 1, 28
    for piece in layers.split(","):
        if piece.startswith("conv"):
            out, k = map(int, piece[4:].split("x"))
            stack.append(nn.Conv2d(maps, out, k))
            maps, side = out, side - k + 1
        elif piece.startswith("pool"):
            p = int(piece[4:])
            stack += [nn.MaxPool2d(p), nn.Sigmoid()]
            side //= p
        else:
            n = int(piece[4:])
            stack += [nn.Flatten(), nn.Linear(maps * side * side, n), nn.Sigmoid()]
            maps, side = n, 1
    return nn.Sequential(*stack, nn.Linear(maps * side * side, 10))


def torch_epoch(data: Dataset, layers: str, threads: int) -> Callable[[], float]:
    import torch

    images = torch.tensor(data.images.reshape(-1, 1, 28, 28) / np.float32(255), dtype=torch.float32)
    labels = torch.tensor(data.labels, dtype=torch.long)

    def timed() -> float:
        torch.manual_seed(1)
        torch.set_num_threads(threads)
        model = torch_model(layers)
        optimizer = torch.optim.SGD(model.parameters(), lr=ETA / M)  # w → w − (η/m) Σ_x ∂C_x/∂w, as nndl
        order = torch.randperm(len(labels))
        started = time.perf_counter()
        for start in range(0, len(labels), M):
            chosen = order[start:start + M]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[chosen]), labels[chosen], reduction="sum")
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - started) * EPOCH / len(labels)

    return timed


def products_epoch(data: Dataset, layers: str, threads: int) -> Callable[[], float]:
    """Only the matrix products of nndl's step for one epoch: the floor under any implementation of it."""
    network = Network(layers=layers, cost="log-likelihood", seed=1)
    x = network.inputs(data.images[:M])
    zs, activations, kept = network.forward_kept(x)
    products: list[Callable[[], object]] = []
    for l, layer in enumerate(network.layers):
        if not layer.has_parameters:
            continue
        w2 = layer.w.reshape(layer.w.shape[0], -1)
        below = kept[l] if layer.kind == "conv" else activations[l].reshape(w2.shape[1], -1)
        delta = zs[l].reshape(w2.shape[0], -1).copy()
        products.append(lambda w2=w2, below=below: np.dot(w2, below))  # z = w a (or w ⋆ a)
        products.append(lambda delta=delta, below=below: np.dot(delta, below.T))  # BP4
        if l > 0:
            products.append(lambda w2=w2, delta=delta: np.dot(w2.T, delta))  # BP2's wᵀδ

    def timed() -> float:
        with blas_threads(threads):
            started = time.perf_counter()
            for _ in range(len(data) // M):
                for product in products:
                    product()
            return (time.perf_counter() - started) * EPOCH / len(data)

    return timed


def conv_part(data: Dataset, reps: int) -> None:
    print(f"Seconds per epoch of {EPOCH:,} images, m = {M}, float32 (best of {reps}; nndl, PyTorch and the products "
          "take turns)")
    print(f"{'network':40s} {'threads':>7s} {'nndl':>7s} {'PyTorch':>8s} {'products':>9s} {'nndl/PyTorch':>13s} "
          f"{'nndl/products':>14s}")
    for layers in CONV_NETS:
        for threads in (1, 2):
            best = best_of(reps, {"nndl": nndl_epoch(data, layers, threads), "torch": torch_epoch(data, layers, threads),
                                  "products": products_epoch(data, layers, threads)})
            print(f"{layers:40s} {threads:7d} {best['nndl']:7.1f} {best['torch']:8.1f} {best['products']:9.1f} "
                  f"{best['nndl'] / best['torch']:13.2f} {best['nndl'] / best['products']:14.2f}   {load_average()}")


# -- fully connected epochs before and after ------------------------------------------------------

DENSE_TIMER = """
import sys, time
from nndl.data.mnist import load_mnist
from nndl.network import Network
from nndl.runs.blas import blas_threads
from nndl.training import TrainingConfig, train
data = load_mnist().training.head(int(sys.argv[2]))
shape = sys.argv[1]
network = (Network([784, int(shape), 10], seed=1) if shape.isdigit()
           else Network(layers=shape, cost="log-likelihood", seed=1))
with blas_threads(1):
    run = train(network, data, TrainingConfig(epochs=1, mini_batch_size=10, eta=3.0 if shape.isdigit() else 0.1,
                                              seed=1))
print(run.history.epochs[0]["seconds"] * 50_000 / len(data))
"""


def before_layers() -> str:
    """The commit before the one that added src/nndl/layers.py."""
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "src/nndl/layers.py"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    return f"{added[-1]}^"


def dense_part(against: str, reps: int, images: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["git", "worktree", "add", "--detach", folder, against], cwd=REPO, check=True,
                       capture_output=True)
        try:
            trees = {"this tree": REPO / "src", against: Path(folder) / "src"}

            data = resolve_data_dir()  # the worktree has no ../shared beside it

            def timer(src: Path, shape: str) -> Callable[[], float]:
                env = {**os.environ, "PYTHONPATH": str(src), "NNDL_DATA": str(data)}
                return lambda: float(subprocess.run([sys.executable, "-c", DENSE_TIMER, shape, str(images)],
                                                    env=env, capture_output=True, text=True, check=True).stdout)

            print(f"Seconds per epoch of {EPOCH:,} images, m = 10, float32, one BLAS thread (best of {reps}, "
                  "taking turns)")
            has_layers = (Path(folder) / "src" / "nndl" / "layers.py").is_file()
            for shape in ("30", "100", *((CONV_NETS[0],) if has_layers else ())):
                best = best_of(reps, {name: timer(src, shape) for name, src in trees.items()})
                now, then = best["this tree"], best[against]
                name = f"[784, {shape}, 10]" if shape.isdigit() else shape
                print(f"{name}: this tree {now:.3f} s, {against} {then:.3f} s, ratio {now / then:.3f}   "
                      f"{load_average()}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", folder], cwd=REPO, capture_output=True)


def memory_part(images: int) -> None:
    command = [sys.executable, "-m", "nndl", "train", "--layers", CONV_NETS[1], "--cost", "log-likelihood",
               "--eta", str(ETA), "--epochs", "1", "--train-size", str(images), "--seed", "1", "--quiet"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"nndl train --layers {CONV_NETS[1]} on {images:,} MNIST images: peak {peak:.0f} MB, "
          f"{time.perf_counter() - started:.0f} s   {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("conv", "dense", "memory", "all"), default="all")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--images", type=int, default=5_000, help="training images timed per epoch (scaled to 50,000)")
    parser.add_argument("--against", default=None, help="git revision for the dense comparison")
    args = parser.parse_args()
    if args.part in ("conv", "all"):
        conv_part(load_mnist().training.head(args.images), args.reps)
    if args.part in ("dense", "all"):
        dense_part(args.against or before_layers(), args.reps, args.images * 4)
    if args.part in ("memory", "all"):
        memory_part(EPOCH)


if __name__ == "__main__":
    main()
