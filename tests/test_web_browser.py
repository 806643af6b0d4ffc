"""The web page in a real headless Chromium, doing what a person does: draw, train, save, look at mistakes.

The server runs in a thread (uvicorn on a socket bound beforehand to port 0);
the model is trained on real MNIST in a fixture ([784, 100, 10], cross-entropy,
3 epochs: about 97%, enough to read a drawn 1 and 7). With NNDL_SCREENSHOTS=DIR
the test also saves a screenshot of each tab into DIR (docs/screenshots).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from nndl.files.models import save_model  # noqa: E402
from nndl.runs.runner import run_spec  # noqa: E402
from nndl.runs.spec import RunSpec  # noqa: E402

SCREENSHOTS = os.environ.get("NNDL_SCREENSHOTS")
ONE = [(140, 40), (142, 240)]  # pad coordinates of the strokes (the pad is 280×280)
SEVEN = [(70, 55), (205, 55), (125, 245)]


@pytest.fixture(scope="module")
def models_dir(mnist_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    spec = RunSpec.from_flat({"hidden": [100], "cost": "cross-entropy", "init": "normalized", "eta": 0.5,
                              "epochs": 3, "seed": 1, "source": str(mnist_dir)})
    result = run_spec(spec)
    result.network.metadata = {key: result.summary[key] for key in ("spec", "history", "best", "final")}
    save_model(result.network, folder / "mnist100.npz")
    return folder


@pytest.fixture(scope="module")
def url(models_dir, mnist_dir):
    import uvicorn

    from nndl.app.web.server import create_app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(models_dir, str(mnist_dir)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(url, chromium_executable):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "#model=mnist100.npz")
        yield page
        browser.close()
        assert errors == [], errors  # no JavaScript error on the way


def draw(page, strokes) -> None:
    """Draw one stroke through the points with the mouse (pointer events, as a finger or pen would)."""
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + strokes[0][0], box["y"] + strokes[0][1])
    page.mouse.down()
    for x, y in strokes[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
    page.mouse.up()


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def test_draw_a_one_and_a_seven(page):
    expect(page.locator("#model")).to_have_value("mnist100.npz")
    draw(page, ONE)
    expect(page.locator("#guess")).to_have_text("1")
    expect(page.locator("#cap-input")).to_contain_text("moved")  # the centring step is shown
    input_pixels = page.evaluate("""() => {
        const c = document.getElementById('step-input');
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)
                .filter((v, i) => i % 4 === 0 && v < 128).length];
    }""")
    assert input_pixels[:2] == [112, 112] and input_pixels[2] > 100  # 28×28 drawn ×4, with dark ink in it
    page.locator("#hidden").click(position={"x": 5, "y": 5})
    expect(page.locator("#neuron-id")).to_have_text("0")
    expect(page.locator("#neuron-values")).to_contain_text("σ'(z)")
    expect(page.locator("#costs")).to_contain_text("log-likelihood")
    expect(page.locator("#norms")).to_contain_text("hidden 1")
    screenshot(page, "draw")
    page.click("#clear")
    draw(page, SEVEN)
    expect(page.locator("#guess")).to_have_text("7")


def test_train_watch_the_curves_save_and_use_the_model(page):
    page.click("nav button[data-tab=train]")
    page.select_option("#preset", "cross-entropy")
    page.fill("input[name=epochs]", "2")
    page.fill("input[name=train_size]", "1000")
    page.fill("input[name=seed]", "1")
    page.click("#start")
    status = page.locator("#train-status")
    expect(status).to_have_attribute("data-state", "finished", timeout=30_000)
    expect(status).to_contain_text("best test accuracy")
    frames = page.evaluate("window.nndlTrainFrames")
    final_points = frames[-1][1]
    assert final_points > 0 and any(state == "running" and 0 < points < final_points for state, points in frames)
    assert page.locator("#train-weights canvas").count() == 16
    screenshot(page, "train")
    page.fill("#save-name", "browser-run.npz")
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("saved browser-run.npz")
    expect(page.locator("#model")).to_have_value("browser-run.npz")


def test_confusion_matrix_cell_shows_its_digits(page):
    page.click("nav button[data-tab=mistakes]")
    expect(page.locator("#mistakes-summary")).to_contain_text("browser-run.npz on the 10,000 test images")
    cell = page.locator("#confusion td").filter(has_text=re.compile(r"^[1-9]\d*$"))
    chosen = next(c for c in cell.all() if c.get_attribute("data-label") != c.get_attribute("data-guess"))
    count = int(chosen.text_content())
    chosen.click()
    expect(page.locator("#gallery figure")).to_have_count(min(count, 60))
    expect(page.locator("#gallery-title")).to_contain_text(
        f"{count} {'image' if count == 1 else 'images'} of {chosen.get_attribute('data-label')} the network called "
        f"{chosen.get_attribute('data-guess')}")
    screenshot(page, "mistakes")


def test_learning_slowdown_and_models_tabs(page):
    page.click("nav button[data-tab=slowdown]")
    page.wait_for_timeout(3300)  # the animation of 300 epochs
    red_pixels = page.evaluate("""() => {
        const c = document.getElementById('slowdown-output'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] < 110 && d[i + 2] < 110) n++;
        return n;
    }""")
    assert red_pixels > 500  # the w = b = 2 curves are drawn
    screenshot(page, "slowdown")
    page.click("nav button[data-tab=models]")
    expect(page.locator("#models-table")).to_contain_text("browser-run.npz")
    expect(page.locator("#models-table")).to_contain_text("mnist100.npz")
    screenshot(page, "models")
