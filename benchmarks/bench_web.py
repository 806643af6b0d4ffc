"""Benchmarks of ``nndl serve``: stroke-to-guess latency, the cost of watching training, the server's memory.

1. Draw latency: a [784, 100, 10] model, headless Chromium (the system's), N
   strokes drawn with the mouse; the page times each from the stroke's end to
   the guess rendered (performance.now() around request + render). Target < 50 ms.
2. Watching: the same run (MNIST, [784, 30, 10], η = 3.0, 50,000 images,
   2 epochs) trained by plain ``run_spec``, inside the server with an event
   stream open in another process (curl), and inside the server watched by two
   Chromium tabs on the Train tab (what a learner does); summary seconds compared
   (best of R alternating repeats). Target: watching slows training by ≤ 10%.
3. Memory: ``nndl serve`` in a process of its own through a scripted sequence:
   runs on 1,000, 5,000 and 50,000 images and on the 250,000 expanded ones, each
   stopped after a moment; 20 uploads of a 22 MB model; 40 reloads of the run's
   state; the Mistakes tab for every uploaded model. Its peak resident memory
   (VmHWM) is printed after each stage. Target < 500 MB.

    PYTHONPATH=src NNDL_DATA=/work/shared/datasets/mnist python benchmarks/bench_web.py [--strokes 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import re
import statistics
import subprocess
import sys
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


def watched_in_browser(url: str, app) -> float:
    """Seconds of a run started from the page and watched by two Chromium tabs on the Train tab."""
    import httpx
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("NNDL_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        tabs = [browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
        for tab in tabs:  # loaded before the run starts: the run pays for the watching, not for loading the page
            tab.goto(url + "#tab=train")
            tab.wait_for_load_state("networkidle")
        started = httpx.post(url + "api/train", json=RUN)
        assert started.status_code == 202
        for tab in tabs:
            tab.wait_for_function(f"(s => s.dataset.run === '{started.json()['run']}' && s.dataset.state === 'finished')"
                                  "(document.getElementById('train-status'))", timeout=600_000, polling=500)
        browser.close()
    app.state.server.live.thread.join()
    return app.state.server.live.result.summary["seconds"]


def watching_cost(models: Path, data: str | None, repeats: int) -> dict[str, list[float]]:
    """Seconds of the same run: plain run_spec, in the server with curl watching, with two browser tabs watching."""
    import httpx

    spec = RunSpec.from_flat({**RUN, "source": data})
    app = create_app(models, data)
    url, server = serve(app)
    cache = app.state.server.cache
    seconds: dict[str, list[float]] = {"plain": [], "curl": [], "browser": []}
    run_spec(spec, cache=cache)  # warm up: data loaded, BLAS started
    for _ in range(repeats):
        seconds["plain"].append(run_spec(spec, cache=cache).summary["seconds"])
        assert httpx.post(url + "api/train", json=RUN).status_code == 202
        subprocess.run(["curl", "-sN", url + "api/train/events", "-o", os.devnull], check=True)
        seconds["curl"].append(app.state.server.live.result.summary["seconds"])
        seconds["browser"].append(watched_in_browser(url, app))
    server.should_exit = True
    return seconds


def peak_memory(models: Path, data: str | None) -> list[tuple[str, float, float]]:
    """(stage, resident MB now, peak resident MB so far) of an nndl serve process through the scripted sequence."""
    import httpx

    server = subprocess.Popen([sys.executable, "-m", "nndl", "serve", "--port", "0", "--models", str(models)]
                              + (["--data", data] if data else []), stdout=subprocess.PIPE, text=True)
    url = re.search(r"(http://\S+/)", server.stdout.readline()).group(1)

    def memory(stage: str) -> tuple[str, float, float]:
        status = Path(f"/proc/{server.pid}/status").read_text()
        kb = {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) for key in ("VmRSS", "VmHWM")}
        return stage, kb["VmRSS"] / 1024, kb["VmHWM"] / 1024

    client = httpx.Client(base_url=url, timeout=600)
    stages = [memory("started")]
    for settings in ({"train_size": 1000}, {"train_size": 5000}, {"train_size": 50_000},
                     {"train_size": 50_000, "expand": "shift-one-pixel"}):
        assert client.post("api/train", json={**RUN, **settings, "epochs": 30}).status_code == 202
        time.sleep(1.0)
        client.post("api/train/stop")
        while client.get("api/train").json()["state"] not in ("stopped", "finished"):
            time.sleep(0.1)
        stages.append(memory(f"run on {settings}"))
    big = models / "big.npz"
    save_model(Network([784, 1000, 1000, 1000, 10], seed=0), big)
    payload = big.read_bytes()
    big.unlink()
    for i in range(20):
        assert client.put(f"api/models/upload-{i}.npz", content=payload).status_code == 201
    stages.append(memory(f"20 uploads of {len(payload) / 1e6:.0f} MB"))
    for _ in range(40):
        with client.stream("GET", "api/train/events") as stream:
            for _ in stream.iter_lines():
                pass
    stages.append(memory("40 reloads of the run's state"))
    for i in range(20):
        assert client.post("api/mistakes", json={"model": f"upload-{i}.npz"}).status_code == 200
    stages.append(memory("Mistakes tab for each upload"))
    server.terminate()
    server.wait()
    return stages


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

    seconds = watching_cost(models, data, args.repeats)
    plain = min(seconds["plain"])
    print(f"training: {RUN['train_size']:,} images × {RUN['epochs']} epochs, [784, 30, 10], best of {args.repeats}:")
    for key, what in (("plain", "plain run_spec"), ("curl", "in the server, one event stream (curl)"),
                      ("browser", "in the server, two Chromium tabs on the Train tab")):
        runs = seconds[key]
        print(f"  {what}: {min(runs):.2f} s (all {', '.join(f'{s:.2f}' for s in runs)}); "
              f"slowdown {100 * (min(runs) / plain - 1):+.1f}% (target ≤ 10%)")

    stages = peak_memory(models, data)
    print("nndl serve memory through a scripted sequence (target: peak < 500 MB):")
    for stage, now, peak in stages:
        print(f"  {stage}: {now:.0f} MB resident, peak so far {peak:.0f} MB")


if __name__ == "__main__":
    main()
