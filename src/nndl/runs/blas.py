"""Limiting the threads of NumPy's BLAS library during training.

Training multiplies small matrices (30×784 by 784×10) thousands of times a
second. A multi-threaded BLAS splits each product across cores, and on a small
or busy machine the threads spend more time waiting for each other than
computing: training can be 5-50x slower. nndl therefore runs training with one
BLAS thread by default, whatever the layer sizes: on the 2-core machines nndl
is built on, two threads were 2-20x slower than one for [784, 800, 10] and
[784, 1000, 500, 10] as well, at m = 10 and m = 100, with and without two
distortion workers busy, while another training run used about one core
(``python benchmarks/bench_training.py --part blas`` measures both ways).
This uses threadpoolctl when it is installed (``pip install 'nndl[cli]'``).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

DEFAULT_BLAS_THREADS = 1


def blas_available() -> bool:
    """Whether nndl can control BLAS threads here (threadpoolctl is installed)."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Run the enclosed block with at most ``limit`` BLAS threads (None: leave BLAS alone)."""
    if limit is None or not blas_available():
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit, user_api="blas"):
        yield
