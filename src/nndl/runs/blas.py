"""How many threads NumPy's BLAS library uses during training, chosen by the size of the products.

Each SGD step multiplies every weight matrix by a mini-batch of m columns.
A multi-threaded BLAS splits each product across cores; for small products
the threads spend more time waiting for each other than computing. Measured
on an idle 2-core machine (``python benchmarks/bench_training.py --part
blas``), 2 threads against 1 were:

- 1.0x for [784, 100, 10] at m = 10 and 0.93x for [784, 200, 10], 1.09x for
  [784, 400, 10], 1.38x for [784, 800, 10] and 1.33x for [784, 1000, 500, 10];
- at m = 100: 1.28x for [784, 100, 10], 1.48x-1.77x for the larger ones;
- but with two distortion workers busy, 0.54-0.76x: slower for every size.

Chapter 6's convolutional networks gain little and can lose a great deal
(``python benchmarks/bench_layers.py --part conv``, m = 10): on a quiet
machine 2 threads were 0.95x for conv20x5,pool2,full100 and 1.13x for
conv20x5,pool2,conv40x5,pool2,full100; with one other training run on the
2 cores (``--images 2000 --reps 2``, load average 3), 0.035x for the first
(192 s an epoch against 6.7 s; PyTorch alike, 288 s against 11.4 s), and an
experiment's row of the second took 185 s an epoch instead of about 22.

So by default nndl trains a fully connected network with every core when
the largest product is big, (multiply-adds of the largest layer per example)
× m ≥ MULTITHREAD_WORK, and no distortions run (their workers want the
cores); a convolutional network, or any other, with one thread. On a machine
busy with other work, ``--blas-threads 1`` is the faster choice for every network.
This uses threadpoolctl when it is installed (``pip install 'nndl[cli]'``).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from ..network import Network

AUTO = -1  # choose by the size of the products (see default_threads)
MULTITHREAD_WORK = 3_000_000  # multiply-adds in one product above which all cores pay (784 × 400 × 10 ≈ 3.1 M)


def blas_available() -> bool:
    """Whether nndl can control BLAS threads here (threadpoolctl is installed)."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads(network: Network, m: int, distorting: bool) -> int:
    """BLAS threads for training ``network`` on mini-batches of ``m`` (see the module notes).

    One whenever the images are distorted, however many workers do it (0 too):
    a product's last bits depend on its thread count, so a choice that followed
    the worker count would make the result follow it as well.
    """
    largest = max(layer.multiply_adds() for layer in network.layers)
    return cores() if network.is_dense and largest * m >= MULTITHREAD_WORK and not distorting else 1


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Run the enclosed block with at most ``limit`` BLAS threads (None: leave BLAS alone)."""
    if limit is None or not blas_available():
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit, user_api="blas"):
        yield
