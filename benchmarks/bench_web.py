"""Benchmarks of ``nndl serve``: stroke-to-guess latency in a real browser, and the cost of streaming training.

1. Draw latency: a [784, 100, 10] model, headless Chromium (the system's), N
   strokes drawn with the mouse; the page times each from the stroke's end to
   the guess rendered (performance.now() around request + render). Target < 50 ms.
2. Streaming overhead: the same run (MNIST, [784, 30, 10], η = 3.0, 50,000 images,
   2 epochs) trained by plain ``run_spec`` and inside the server (uvicorn) with an
   event stream open in another process (curl, as a browser would be); summary
   seconds compared (best of R alternating repeats). Target < 5%.

    PYTHONPATH=src NNDL_DATA=/work/shared/datasets/mnist python benchmarks/bench_web.py [--strokes 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from nndl.app.web.server import create_app
from nndl.files.models import save_model
from nndl.network import Network
from nndl.runs.runner import run_spec
from nndl.runs.spec import RunSpec

RUN = {"hidden": [30], "eta": 3.0, "epochs": 2, "train_size": 50_000, "seed": 1,
       "monitor": ["training-cost", "training-accuracy"]}


def serve(app) -> tuple[str, object]:
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{listener.getsockname()[1]}/", server


def draw_latency(models: Path, data: str | None, strokes: int) -> list[float]:
    """Milliseconds from each stroke's end to its guess on screen, as the page measures them."""
    from playwright.sync_api import sync_playwright

    url, server = serve(create_app(models, data))
    chromium = os.environ.get("NNDL_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page()
        page.goto(url + "#model=bench.npz")
        page.wait_for_function("document.getElementById('model').value === 'bench.npz'")
        box = page.locator("#pad").bounding_box()
        for i in range(strokes):
            x = box["x"] + 60 + (i % 8) * 20
            page.mouse.move(x, box["y"] + 40)
            page.mouse.down()
            page.mouse.move(x + 10, box["y"] + 240, steps=10)
            page.mouse.up()
            page.wait_for_function(f"window.nndlTimings.length > {i}")
        timings = page.evaluate("window.nndlTimings")
        browser.close()
    server.should_exit = True
    return timings


def streaming_overhead(models: Path, data: str | None, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of the same run by plain run_spec and inside the server with an event stream open."""
    import httpx

    spec = RunSpec.from_flat({**RUN, "source": data})
    app = create_app(models, data)
    url, server = serve(app)
    cache = app.state.server.cache
    plain, served = [], []
    run_spec(spec, cache=cache)  # warm up: data loaded, BLAS started
    for _ in range(repeats):
        plain.append(run_spec(spec, cache=cache).summary["seconds"])
        assert httpx.post(url + "api/train", json=RUN).status_code == 202
        subprocess.run(["curl", "-sN", url + "api/train/events", "-o", os.devnull], check=True)
        served.append(app.state.server.live.result.summary["seconds"])
    server.should_exit = True
    return plain, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = os.environ.get("NNDL_DATA")
    models = Path(tempfile.mkdtemp())
    save_model(Network([784, 100, 10], cost="cross-entropy", init="normalized", seed=0), models / "bench.npz")

    first, *timings = draw_latency(models, data, args.strokes)  # the first stroke loads the model
    timings.sort()
    p90 = timings[int(0.9 * (len(timings) - 1))]
    print(f"draw: stroke end → guess on screen, [784, 100, 10], {len(timings)} strokes after the first ({first:.0f} ms, loading the model): median "
          f"{statistics.median(timings):.1f} ms, p90 {p90:.1f} ms, max {timings[-1]:.1f} ms (target < 50 ms)")

    plain, served = streaming_overhead(models, data, args.repeats)
    overhead = min(served) / min(plain) - 1
    print(f"training: {RUN['train_size']:,} images × {RUN['epochs']} epochs, [784, 30, 10]: plain run_spec best "
          f"{min(plain):.2f} s (all {', '.join(f'{s:.2f}' for s in plain)}); in the server, streaming, best "
          f"{min(served):.2f} s (all {', '.join(f'{s:.2f}' for s in served)}); overhead {100 * overhead:+.1f}% "
          f"(target < 5%)")


if __name__ == "__main__":
    main()
