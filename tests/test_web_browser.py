"""The web page in a real headless Chromium, doing what a person does: draw, train, save, look at mistakes.

The server runs in a thread (uvicorn on a socket bound beforehand to port 0);
the model is trained on real MNIST in a fixture ([784, 100, 10], cross-entropy,
3 epochs: about 97%, enough to read a drawn 1 and 7). With NNDL_SCREENSHOTS=DIR
the test also saves a screenshot of each tab into DIR (docs/screenshots).

Then what broke for learners (issue 19): a reload after a finished run, two tabs
on one run, +1 mini-batch, a server killed and restarted, a first visit with no
model, a keyboard and no mouse, a 390-px phone, and axe-core's accessibility
rules (the npm package, injected; NNDL_AXE names axe.min.js, else
node_modules/axe-core beside the tests, as ``make test`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

from conftest import served  # noqa: E402

from nndl.files.models import save_model  # noqa: E402
from nndl.runs.runner import run_spec  # noqa: E402
from nndl.runs.spec import RunSpec  # noqa: E402

SCREENSHOTS = os.environ.get("NNDL_SCREENSHOTS")
AXE = Path(os.environ.get("NNDL_AXE") or Path(__file__).resolve().parent.parent / "node_modules/axe-core/axe.min.js")
TABS = ("draw", "train", "mistakes", "slowdown", "universality", "unstable", "models")
LONG_RUN = {"epochs": "100", "train_size": "5000"}  # minutes of training: always live while a test looks
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
    from nndl.app.web.server import create_app

    with served(create_app(models_dir, str(mnist_dir))) as address:
        yield address


@pytest.fixture(scope="module")
def page(url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "#model=mnist100.npz")
    yield page
    page.close()
    assert errors == [], errors  # no JavaScript error on the way


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_process(models: Path, data: Path, port: int) -> subprocess.Popen:
    """``nndl serve`` in a process of its own (one a test can kill), answering once this returns."""
    server = subprocess.Popen([sys.executable, "-m", "nndl", "serve", "--port", str(port), "--models", str(models),
                               "--data", str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "the page is at" in server.stdout.readline()
    return server


@contextlib.contextmanager
def page_on_a_server_process(browser, models: Path, data: Path) -> Iterator:
    """A desktop-sized page on ``nndl serve`` in its own process, both closed afterwards; yields (page, URL)."""
    port = free_port()
    server = serve_process(models, data, port)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        yield page, f"http://127.0.0.1:{port}/"
    finally:
        page.close()
        server.terminate()
        server.communicate(timeout=10)


def start_training(page, settings: dict[str, str]) -> None:
    page.click("#tab-button-train")
    page.select_option("#preset", "cross-entropy")
    for name, value in {"seed": "1", **settings}.items():
        page.fill(f"input[name={name}]", value)
    page.click("#start")


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
    expect(page.locator("#diagram circle")).to_have_count(40 + 10)  # the first 40 of 100 hidden neurons, 10 outputs
    expect(page.locator("#diagram line")).to_have_count(150)  # the largest weights from hidden to output
    screenshot(page, "draw")
    page.click("#clear")
    draw(page, SEVEN)
    expect(page.locator("#guess")).to_have_text("7")


def test_train_watch_the_curves_save_and_use_the_model(page, browser):
    page.click("nav button[data-tab=train]")
    page.select_option("#preset", "cross-entropy")
    page.fill("input[name=epochs]", "12")  # long enough (a few seconds) for the page to draw it mid-run
    page.fill("input[name=train_size]", "2000")
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
    shared = browser.new_page()  # the address holds the run's settings: a teacher's link reproduces them
    shared.goto(page.url)
    for name, value in (("epochs", "12"), ("train_size", "2000"), ("seed", "1"), ("eta", "0.5")):
        expect(shared.locator(f"input[name={name}]")).to_have_value(value)
    shared.close()
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
    page.click("#slow-start-2")  # the book's saturated start
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


# -- what broke for learners (issue 19) ----------------------------------------------------------------------


def test_a_reload_after_a_finished_run_shows_it_finished_at_once(page):
    page.goto(page.url.split("#")[0] + "#tab=train&model=browser-run.npz")
    page.reload()
    status = page.locator("#train-status")
    expect(status).to_have_attribute("data-state", "finished", timeout=3000)
    expect(status).to_contain_text("best test accuracy")
    expect(page.locator("#start")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()
    states = {state for state, _ in page.evaluate("window.nndlTrainFrames")}
    assert "running" not in states and "starting" not in states, states  # never shown as running, not even briefly
    best = int(re.search(r"at epoch (\d+)", status.text_content()).group(1))
    assert 0 <= best <= 11  # the 12-epoch run counts epochs 0-11, as nndl train prints them
    expect(status).to_contain_text("12 epochs trained (of epochs 0-11)")


def test_two_tabs_watch_and_steer_the_same_run(page, browser, url):
    other = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        other.goto(url + "#tab=train")
        start_training(page, LONG_RUN)
        for tab in (page, other):
            expect(tab.locator("#train-status")).to_have_attribute("data-state", "running", timeout=10_000)
        other.click("#pause")  # the second tab steers the run the first one started
        for tab in (page, other):
            expect(tab.locator("#train-status")).to_have_attribute("data-state", "paused", timeout=5000)
        before = page.locator("#train-status").get_attribute("data-batch")
        epoch, batch = map(int, before.split(":"))
        for more in (1, 2):  # twice: at most one of two mini-batches in a row has its cost sent
            page.click("#step-batch")
            for tab in (page, other):  # +1 mini-batch moves the counter on every page watching
                expect(tab.locator("#train-status")).to_have_attribute("data-batch", f"{epoch}:{batch + more}")
                expect(tab.locator("#train-status")).to_contain_text(f"mini-batch {batch + more:,} of 500")
        other.click("#stop")
        for tab in (page, other):
            expect(tab.locator("#train-status")).to_have_attribute("data-state", "stopped", timeout=10_000)
            expect(tab.locator("#train-status")).to_contain_text("stopped from the page")
    finally:
        other.close()


def test_a_killed_server_is_reported_and_the_page_recovers_when_it_is_back(browser, models_dir, mnist_dir):
    port = free_port()
    server = serve_process(models_dir, mnist_dir, port)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"http://127.0.0.1:{port}/#tab=train")
        start_training(page, LONG_RUN)
        expect(page.locator("#train-status")).to_have_attribute("data-state", "running", timeout=10_000)
        server.send_signal(signal.SIGKILL)
        server.communicate()
        expect(page.locator("#connection")).to_be_visible(timeout=5000)
        page.click("#stop")  # a button pressed meanwhile says what is wrong in the page's words
        expect(page.locator("#message")).to_contain_text("the server does not answer")
        server = serve_process(models_dir, mnist_dir, port)
        expect(page.locator("#connection")).to_be_hidden(timeout=5000)
        expect(page.locator("#train-status")).to_have_attribute("data-state", "idle", timeout=5000)
        expect(page.locator("#message")).to_contain_text("the server restarted")
        expect(page.locator("#start")).to_be_enabled()
    finally:
        page.close()
        server.terminate()
        server.communicate(timeout=10)


def test_a_first_visit_with_no_model_reaches_a_guess_without_leaving_the_page(browser, mnist_dir, tmp_path):
    with page_on_a_server_process(browser, tmp_path, mnist_dir) as (page, url):
        page.goto(url)
        expect(page.locator("#first-model")).to_be_visible()
        page.click("#quick-train")
        expect(page.locator("#guess")).to_have_text(re.compile(r"^\d$"), timeout=60_000)
        expect(page.locator("#model")).to_have_value("quick-784-30-10.npz")
        expect(page.locator("#first-model")).to_be_hidden()
        expect(page.locator("#digit-source")).to_contain_text("test image #")
        assert (tmp_path / "quick-784-30-10.npz").is_file()
        screenshot(page, "first-visit")


def test_while_a_run_trains_the_pad_is_read_with_its_weights_as_they_change(browser, mnist_dir, tmp_path):
    with page_on_a_server_process(browser, tmp_path, mnist_dir) as (page, url):  # no model: only the run reads
        page.goto(url)
        start_training(page, LONG_RUN)
        expect(page.locator("#train-status")).to_have_attribute("data-state", "running", timeout=10_000)
        page.click("#tab-button-draw")
        expect(page.locator("#live-choice")).to_be_visible()
        expect(page.locator("#first-model")).to_be_hidden()  # the run reads the pad: no "No model yet"
        draw(page, ONE)
        reader, outputs = page.locator("#reader"), page.locator("#outputs")
        expect(reader).to_have_text(re.compile(r"^read with the live run's weights (in|after) epoch \d+"))
        expect(page.locator("#guess")).to_have_text(re.compile(r"^\d$"))
        first_reader, first_outputs = reader.text_content(), outputs.text_content()
        expect(reader).not_to_have_text(first_reader, timeout=5000)  # read again with later weights ...
        expect(outputs).not_to_have_text(first_outputs)  # ... which give other outputs
        page.fill("#neuron-pick", "3")
        page.dispatch_event("#neuron-pick", "change")  # a hidden neuron's weights: the run's too, as there is no model
        expect(page.locator("#neuron-values")).to_contain_text("bias b")
        screenshot(page, "draw-live-run")
        page.click("#tab-button-train")
        page.click("#stop")
        page.click("#tab-button-draw")
        expect(page.locator("#live-choice")).to_be_hidden(timeout=5000)
        expect(reader).to_contain_text("the run has ended")
        expect(page.locator("#first-model")).to_be_visible()  # unsaved, so still no model


def test_the_keyboard_alone_reaches_a_guess(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url + "#model=mnist100.npz")
        expect(page.locator("#model")).to_have_value("mnist100.npz")
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "random-digit":
                break
        assert page.evaluate("document.activeElement.id") == "random-digit"
        page.keyboard.press("Enter")
        expect(page.locator("#guess")).to_have_text(re.compile(r"^\d$"))
        label = re.search(r"labelled (\d)", page.locator("#digit-source").text_content()).group(1)
        expect(page.locator("#label")).to_have_value(label)
        page.locator("#neuron-pick").focus()  # the hidden neurons without a mouse
        page.keyboard.press("Control+A")
        page.keyboard.type("5")
        page.keyboard.press("Enter")
        expect(page.locator("#neuron-id")).to_have_text("5")
        page.locator("#tab-button-draw").focus()  # arrow keys move between the tabs
        page.keyboard.press("ArrowRight")
        expect(page.locator("#tab-button-train")).to_be_focused()
        expect(page.locator("#tab-button-train")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#tab-train")).to_be_visible()
    finally:
        page.close()


def test_a_mistake_opens_in_the_draw_tab(page):
    page.click("#tab-button-mistakes")
    expect(page.locator("#mistakes-summary")).to_contain_text("on the 10,000 test images")  # the matrix is drawn
    cell = page.locator("#confusion td").filter(has_text=re.compile(r"^[1-9]\d*$"))
    chosen = next(c for c in cell.all() if c.get_attribute("data-label") != c.get_attribute("data-guess"))
    chosen.locator("button").focus()
    page.keyboard.press("Enter")
    first = page.locator("#gallery button").first
    index = re.search(r"#(\d+)", first.get_attribute("aria-label")).group(1)
    first.click()
    expect(page.locator("#tab-draw")).to_be_visible()
    expect(page.locator("#digit-source")).to_contain_text(f"image #{index}, labelled {chosen.get_attribute('data-label')}")
    expect(page.locator("#guess")).to_have_text(chosen.get_attribute("data-guess"))  # the model's mistake, again


def test_a_phone_sees_every_tab_without_sideways_scrolling(browser, url):
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    try:
        page.goto(url + "#model=mnist100.npz")
        expect(page.locator("#model")).to_have_value("mnist100.npz")
        page.click("#random-digit")
        expect(page.locator("#guess")).to_have_text(re.compile(r"^\d$"))
        for tab in TABS:
            page.click(f"#tab-button-{tab}")
            page.wait_for_timeout(300)
            if tab == "mistakes":
                expect(page.locator("#confusion td").first).to_be_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the {tab} tab is {width} px wide at 390 px"
            if tab in ("draw", "train", "models"):
                screenshot(page, f"phone-{tab}")
    finally:
        phone.close()


def test_axe_finds_nothing_critical_or_serious_on_any_tab(browser, url):
    if not AXE.is_file():
        pytest.skip(f"axe-core not installed at {AXE}: npm install axe-core (make test does), or set NNDL_AXE")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url + "#model=mnist100.npz")
        expect(page.locator("#model")).to_have_value("mnist100.npz")
        page.click("#random-digit")
        expect(page.locator("#guess")).to_have_text(re.compile(r"^\d$"))
        page.add_script_tag(content=AXE.read_text())
        found = {}
        for tab in TABS:
            page.click(f"#tab-button-{tab}")
            page.wait_for_timeout(400)
            violations = page.evaluate("async () => (await axe.run(document)).violations"
                                       ".filter((v) => ['critical', 'serious'].includes(v.impact))"
                                       ".map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target).join(' ')}`)")
            if violations:
                found[tab] = violations
        assert found == {}, found
    finally:
        page.close()


def test_the_book_widgets_move_with_their_sliders_and_live_in_the_url(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url + "#tab=slowdown")
        expect(page.locator("#slowdown-maths")).to_contain_text("σ(1.50) = 0.818")  # the book's first start
        page.locator("#slow-w").focus()
        for _ in range(4):
            page.keyboard.press("ArrowRight")  # w from 0.6 by four steps of 0.05
        expect(page.locator("#slowdown-maths")).to_contain_text("σ(1.70) = 0.846")
        page.locator("#softmax-z3").focus()
        before = page.evaluate("window.nndlSlowdown.softmax")
        page.keyboard.press("End")  # z4 to its largest, 5
        expect(page.locator("#softmax-z3-value")).to_have_text("5")
        page.wait_for_function("window.nndlSlowdown.softmax[3] > 0.5")
        after = page.evaluate("window.nndlSlowdown.softmax")
        assert after[3] > before[3] and all(a < b for a, b in zip(after[:3], before[:3])) and sum(after) == pytest.approx(1)
        shared = page.url  # a teacher's link: the same sliders on another page
        other = browser.new_page()
        other.goto(shared)
        expect(other.locator("#slow-w-value")).to_have_text("0.8")
        expect(other.locator("#slowdown-maths")).to_contain_text("σ(1.70) = 0.846")
        expect(other.locator("#softmax-z3-value")).to_have_text("5")
        other.close()
    finally:
        page.close()


def test_a_convolutional_model_shows_its_filters_and_feature_maps_in_draw(browser, url, models_dir):
    from nndl.network import Network

    save_model(Network(layers="conv6x5,pool2,full30", cost="log-likelihood", seed=2), models_dir / "conv.npz")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url + "#model=conv.npz")
        expect(page.locator("#model")).to_have_value("conv.npz")
        page.click("#random-digit")
        expect(page.locator("#guess")).to_have_text(re.compile(r"^\d$"))
        expect(page.locator("#conv-panel")).to_be_visible()
        strips = page.locator("#conv-layers .conv-strip")
        expect(strips).to_have_count(3)  # filters, maps before pooling, maps after
        for k, (title, size) in enumerate((("6 filters of 5×5", 5), ("before pooling: 6 of 24×24", 24),
                                            ("2×2 max-pooling: 12×12, then sigmoid", 12))):
            expect(strips.nth(k).locator("h3")).to_contain_text(title)
            expect(strips.nth(k).locator(".conv-images canvas")).to_have_count(6)
            assert strips.nth(k).locator(".conv-images canvas").first.evaluate("c => [c.width, c.height]") == [size, size]
        expect(page.locator("#hidden-legend")).to_contain_text("convolutional")
        screenshot(page, "draw-conv")
        page.click("#tab-button-train")
        page.select_option("#preset", "ch6-conv1")
        expect(page.locator("input[name=layers]")).to_have_value("conv20x5,pool2,full100")
        expect(page.locator("select[name=init]")).to_have_value("network3")
    finally:
        page.close()
