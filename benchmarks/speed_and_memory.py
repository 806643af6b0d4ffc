"""Every speed and memory figure of the README in one run: training step, distortions, peak memory.

Not a test: it prints figures and ratios. Run from the repository root on an
otherwise idle machine (about 20 minutes on 2 cores):

    python benchmarks/speed_and_memory.py [--data DIR]

It runs, one after the other, each printing its own figures, ratios and targets:

- bench_training.py: an epoch of [784, 30, 10] against the book's own loop,
  PyTorch and the matrix-product floor; 1 against 2 BLAS threads for large layers;
- bench_augment.py: distortions per second (SciPy against OpenCV) and what
  fresh distortions add to an epoch of [784, 100, 10] and [784, 800, 10];
- bench_memory.py: peak memory of `nndl train` on 50,000, 250,000 and 1,000,000 images.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

PARTS = ("bench_training.py", "bench_augment.py", "bench_memory.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST folder (default: NNDL_DATA or the cache)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    data = ["--data", args.data] if args.data else []
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    for part in PARTS:
        print(f"\n==== {part} ====", flush=True)
        subprocess.run([sys.executable, str(here / part)] + data, check=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
