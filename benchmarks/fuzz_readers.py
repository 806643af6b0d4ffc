"""Fuzz every reader with generated hostile files and a hostile mirror; print what happened.

For each reader: cases run, clean results, clean one-line errors, anything else
(a traceback: must be 0), and the peak memory (tracemalloc) of the largest
case, next to that case's size. Then the longest time one hostile mirror held a
download. The strategies are the tests' (tests/hostile.py).

    PYTHONPATH=src python benchmarks/fuzz_readers.py [--cases N] [--deadline SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hypothesis import strategies as st  # noqa: E402

from hostile import history_json, idx_bytes, maybe_gzipped, model_npz_bytes, network2_json, verdict  # noqa: E402
from nndl.data.idx import read_idx  # noqa: E402
from nndl.files.atomic import read_json  # noqa: E402
from nndl.files.models import load_model  # noqa: E402
from nndl.files.plots import checked_history, history_series  # noqa: E402


def idx_case() -> st.SearchStrategy:
    return idx_bytes().flatmap(maybe_gzipped)


def read_history(path: Path) -> None:
    history = checked_history(read_json(path, "a JSON history"))
    for kind in ("accuracy", "cost"):
        history_series(history, kind)


READERS = {
    "IDX (raw/gzip)": (idx_case(), lambda data: (data[0], ".idx.gz" if data[1] else ".idx"), read_idx),
    "model .npz": (model_npz_bytes(), lambda data: (data, ".npz"), load_model),
    "network2 JSON": (network2_json(), lambda data: (data, ".json"), load_model),
    "history JSON": (history_json(), lambda data: (data, ".json"), read_history),
}


def fuzz(name: str, cases: int, folder: Path) -> dict:
    """Run ``cases`` generated inputs through one reader; count outcomes and keep the largest peak."""
    strategy, to_file, reader = READERS[name]
    counts = {"result": 0, "error": 0, "other": 0}
    largest = (0, 0)  # (input bytes, peak bytes) of the largest input
    highest = (0, 0)  # (peak bytes, input bytes) of the case that took most memory
    for case in range(cases):
        content, suffix = to_file(strategy.example())
        path = folder / f"case{suffix}"
        path.write_bytes(content)
        try:
            outcome, _, peak = verdict(lambda: reader(path))
        except Exception:  # anything but a result or an NndlError is a bug: show it
            counts["other"] += 1
            print(f"  {name} case {case}: {traceback.format_exc().splitlines()[-1]}", file=sys.stderr)
            continue
        counts[outcome] += 1
        if len(content) >= largest[0]:
            largest = (len(content), peak)
        highest = max(highest, (peak, len(content)))
    return {"cases": cases, **counts, "largest": largest, "highest": highest}


def named_cases(folder: Path) -> list[tuple[str, Path, object]]:
    """The findings of the first fuzzing, rebuilt: (description, file, reader)."""
    import gzip
    import json
    import struct
    import zipfile

    from hostile import model_members, npz_bytes

    bomb = folder / "bomb.idx.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:  # 2 GB of zeros in about 2 MB
        out.write(struct.pack(">IIII", 0x0803, 2**21, 32, 32))
        zeros = bytes(2**24)
        for _ in range(128):
            out.write(zeros)
    overflow = folder / "overflow.idx"
    overflow.write_bytes(struct.pack(">HBB", 0, 0x0E, 4) + struct.pack(">4I", *[2**32 - 1] * 4))
    big_json = folder / "big.json"
    big_json.write_text(json.dumps({"sizes": [20000, 20000], "weights": [], "biases": [], "cost": "CrossEntropyCost"}))
    deep = folder / "deep.json"
    deep.write_text("[" * 2**20 + "]" * 2**20)
    extra = folder / "extra.npz"
    extra.write_bytes(npz_bytes(model_members([784, 30, 10])))
    with zipfile.ZipFile(extra, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("junk.npy", "w", force_zip64=True) as member:  # 1 GB, about 1 MB deflated
            for _ in range(64):
                member.write(zeros)
    return [
        (f"IDX gzip bomb ({bomb.stat().st_size:,} B -> 2 GB)", bomb, read_idx),
        ("IDX header of 2^128 float64s", overflow, read_idx),
        (f"network2 [20000, 20000] ({big_json.stat().st_size} B)", big_json, load_model),
        ("history nested 2^20 deep (2 MB)", deep, lambda p: read_json(p, "a JSON history")),
        (f"model .npz + 1 GB member ({extra.stat().st_size:,} B)", extra, load_model),
    ]


def hostile_mirror_hold(deadline: float) -> tuple[str, float]:
    """The longest a hostile mirror (tests/test_hostile_download.py's) held one download, in seconds."""
    import http.server
    import threading

    from test_hostile_download import HostileMirror
    from nndl.data.download import download_mnist
    from nndl.errors import DataError

    os.environ["NNDL_DOWNLOAD_DEADLINE"] = str(deadline)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileMirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    longest = ("", 0.0)
    try:
        for behaviour in ("hash", "bomb", "endless", "huge-length", "byte-by-byte", "silent", "trickle-header"):
            with tempfile.TemporaryDirectory() as folder:
                started = time.monotonic()
                try:
                    download_mnist(Path(folder), [base + behaviour + "/"], timeout=30.0, log=lambda line: None)
                except DataError:
                    pass
                held = time.monotonic() - started
            print(f"  mirror '{behaviour}': held {held:.2f} s")
            longest = max(longest, (behaviour, held), key=lambda item: item[1])
    finally:
        HostileMirror.stop.set()
        server.shutdown()
        server.server_close()
    return longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500, help="generated cases per reader (default 500)")
    parser.add_argument("--deadline", type=float, default=2.0, help="NNDL_DOWNLOAD_DEADLINE for the mirror (s)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # hypothesis warns that .example() is meant for the console
    print(f"{'reader':16} {'cases':>6} {'results':>8} {'errors':>7} {'other':>6}  "
          f"{'largest case: bytes -> peak':>28}  {'highest peak (its bytes)':>26}")
    total_other = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in READERS:
            started = time.perf_counter()
            row = fuzz(name, args.cases, Path(folder))
            total_other += row["other"]
            size, peak = row["largest"]
            top_peak, top_size = row["highest"]
            worst = f"{top_peak / 2**20:.2f} MB ({top_size:,} B)"
            print(f"{name:16} {row['cases']:6} {row['result']:8} {row['error']:7} {row['other']:6}  "
                  f"{size:>10,} B -> {peak / 2**20:7.2f} MB  {worst:>26}   ({time.perf_counter() - started:.1f} s)")
        print("named hostile cases (the first fuzzing's findings):")
        for description, path, reader in named_cases(Path(folder)):
            started = time.perf_counter()
            outcome, message, peak = verdict(lambda: reader(path))
            print(f"  {description:44} {outcome:6} peak {peak / 2**20:6.2f} MB  {time.perf_counter() - started:5.2f} s"
                  f"  {message.split(': ', 1)[-1][:70]}")
    behaviour, held = hostile_mirror_hold(args.deadline)
    print(f"longest hold by a hostile mirror: {held:.2f} s ('{behaviour}', deadline {args.deadline:g} s per file "
          f"per mirror)")
    print(f"anything else than a result or a one-line error: {total_other}")
    sys.exit(1 if total_other else 0)


if __name__ == "__main__":
    main()
