"""Peak memory of a whole `nndl train` process for each training-set size.

Not a test: it prints figures and targets. Run from the repository root:

    python benchmarks/bench_memory.py              # MNIST, the 250,000 shifts, 1,000,000 distorted images
    python benchmarks/bench_memory.py --skip-million

Each figure is the peak resident memory (the kernel's ru_maxrss) of one
`python -m nndl train` process training [784, 30, 10] for one epoch, read
from its resource usage when it exits, so it counts everything the process
held: Python, NumPy, the dataset as bytes, the network and each evaluation
chunk. The 1,000,000-image set is written first by `nndl expand` (50,000
images and 19 distorted copies of each) into a temporary folder, about 800 MB
of disk, and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

NNDL = [sys.executable, "-m", "nndl"]
TRAIN = ["train", "--epochs", "1", "--quiet"]


def peak_megabytes(argv: list[str]) -> float:
    """Run ``argv`` to completion and return its peak resident memory in MB (it must succeed)."""
    process = subprocess.Popen(argv)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(argv)} failed with exit code {process.returncode}")
    return usage.ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST folder (default: NNDL_DATA or the cache)")
    parser.add_argument("--skip-million", action="store_true", help="leave out the 1,000,000-image set")
    args = parser.parse_args()
    data = ["--data", args.data] if args.data else []
    print("peak resident memory of `nndl train`, [784, 30, 10], one epoch")
    print(f"{'training set':44s} {'peak':>8s}  target")
    cases = [("MNIST, 50,000 images", [], "< 200 MB"),
             ("the book's 250,000 one-pixel shifts", ["--expand", "shift-one-pixel"], "< 400 MB")]
    for name, options, target in cases:
        print(f"{name:44s} {peak_megabytes(NNDL + TRAIN + data + options):6.0f} MB  {target}", flush=True)
    if args.skip_million:
        return
    with tempfile.TemporaryDirectory(prefix="nndl-million-") as folder:
        million = Path(folder) / "mnist-1m"
        subprocess.run(NNDL + ["expand", str(million), "--augment", "rotate=10,skew=0.2,elastic",
                               "--copies", "19"] + data, check=True, stdout=subprocess.DEVNULL)
        peak = peak_megabytes(NNDL + TRAIN + ["--data", str(million)])
        print(f"{'1,000,000 distorted images (nndl expand)':44s} {peak:6.0f} MB  < 1500 MB", flush=True)


if __name__ == "__main__":
    main()
