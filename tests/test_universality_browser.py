"""Chapters 4 and 5 on the page, in a real headless Chromium: move each widget's sliders and check what it drew
against the formula (computed here, independently), keep the state in the URL, fit at 390 px, and watch the
gradient bars of a speed-of-learning run. With NNDL_SCREENSHOTS=DIR the tabs are saved as PNGs into DIR."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

from conftest import served  # noqa: E402

SCREENSHOTS = os.environ.get("NNDL_SCREENSHOTS")
STEEP = 1000.0
XS = [i / 400 for i in range(401)]


def sigma(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def shown(value: float) -> str:
    """A value as the page prints it: four decimals, trailing zeros dropped (JavaScript's +v.toFixed(4))."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def bump(x: float, s1: float, s2: float) -> float:
    return sigma(STEEP * (x - s1)) - sigma(STEEP * (x - s2))


def book_f(x: float) -> float:
    return 0.2 + 0.4 * x * x + 0.3 * x * math.sin(15 * x) + 0.05 * math.cos(50 * x)


def bumps_output(heights: list[float], x: float) -> float:
    n = len(heights)
    return sigma(sum(h * bump(x, j / n, (j + 1) / n) for j, h in enumerate(heights)))


@pytest.fixture(scope="module")
def url(mnist_dir, tmp_path_factory):
    from nndl.app.web.server import create_app

    with served(create_app(tmp_path_factory.mktemp("models"), str(mnist_dir))) as address:
        yield address


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "#tab=universality")
    yield page
    page.close()
    assert errors == [], errors  # no JavaScript error on the way


def drawn(page, widget: str):
    return page.evaluate(f"window.nndlUniversality.{widget}")


def slider(page, widget: str, name: str):
    return page.locator(f"#{widget}-controls input[data-name={name}], #{widget}-heights input[data-name={name}]")


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def test_one_neuron_by_keyboard_is_sigma_of_wx_plus_b_with_its_step_at_minus_b_over_w(page):
    w = slider(page, "u1", "w")
    w.focus()
    for _ in range(12):
        page.keyboard.press("ArrowRight")  # 8 → 20, by keyboard alone
    neuron = drawn(page, "neuron")
    assert (neuron["w"], neuron["b"]) == (20, -4)
    for x, y in neuron["points"][::40]:
        assert y == pytest.approx(sigma(20 * x - 4), abs=1e-12)
    assert neuron["s"] == pytest.approx(0.2)
    expect(page.locator("#u1-probe")).to_have_text(shown(sigma(20 * 0.5 - 4)))
    slider(page, "u1", "w").fill("200")
    slider(page, "u1", "b").fill("-120")  # a steep step at s = 0.6
    values = dict((round(x, 4), y) for x, y in drawn(page, "neuron")["points"])
    assert values[0.55] < 1e-4 and values[0.65] > 1 - 1e-4 and values[0.6] == pytest.approx(0.5)


def test_a_bump_is_h_between_the_two_steps(page):
    slider(page, "u2", "s1").fill("0.2")
    slider(page, "u2", "s2").fill("0.7")
    slider(page, "u2", "h").fill("-0.6")
    for x, y in drawn(page, "bump")["points"][::25]:
        assert y == pytest.approx(-0.6 * bump(x, 0.2, 0.7), abs=1e-12)
    expect(page.locator("#u2-probe")).to_have_text("-0.6")


def test_many_bumps_sum_and_the_output_sigma(page):
    for j, h in enumerate([0.5, -1.0, 2.0, 0.0, 1.5], start=1):
        slider(page, "u3", f"h{j}").fill(str(h))
    bumps = drawn(page, "bumps")
    assert bumps["heights"] == [0.5, -1.0, 2.0, 0.0, 1.5]
    for (x, total), (_, out) in list(zip(bumps["weighted"], bumps["output"]))[::20]:
        expected = sum(h * bump(x, j / 5, (j + 1) / 5) for j, h in enumerate(bumps["heights"]))
        assert total == pytest.approx(expected, abs=1e-12) and out == pytest.approx(sigma(expected), abs=1e-12)
    expect(page.locator("#u3-probe")).to_have_text(shown(sigma(2.0)))  # x = 0.5 is in the third bump


def test_design_the_function_fit_uses_the_inverse_sigmoid_and_scores_the_average_deviation(page):
    page.select_option("#u4-n", "10")
    page.click("#u4-zero")
    before = drawn(page, "design")["deviation"]
    assert before == pytest.approx(sum(abs(0.5 - book_f(x)) for x in XS) / len(XS), rel=1e-9)
    page.click("#u4-fit")
    design = drawn(page, "design")
    midpoints = [(j + 0.5) / 10 for j in range(10)]
    assert design["heights"] == pytest.approx([math.log(book_f(x) / (1 - book_f(x))) for x in midpoints], abs=1e-12)
    after = sum(abs(bumps_output(design["heights"], x) - book_f(x)) for x in XS) / len(XS)
    assert design["deviation"] == pytest.approx(after, rel=1e-9)
    assert after < before / 3
    expect(page.locator("#u4-score")).to_have_text(shown(after))
    page.select_option("#u4-n", "20")
    page.click("#u4-fit")
    assert drawn(page, "design")["deviation"] < after  # more bumps, closer
    slider(page, "u4", "h0").fill("3")  # a hand-set height moves the output
    assert drawn(page, "design")["heights"][0] == 3


def test_towers_in_two_dimensions(page):
    for name, value in (("x1", "0.1"), ("x2", "0.4"), ("y1", "0.5"), ("y2", "0.9"), ("h", "20")):
        slider(page, "u5", name).fill(value)
    towers = drawn(page, "towers")
    assert towers["inside"] == pytest.approx(sigma(20 + 20 - 30), abs=1e-9)  # both bumps: σ(2h − 3h/2)
    assert towers["outside"] == pytest.approx(sigma(-30), abs=1e-9)
    expect(page.locator("#u5-probe")).to_have_text(shown(sigma(10)))
    slider(page, "u5-sum", "k").fill("2")
    coarse = drawn(page, "towers")["deviation"]
    slider(page, "u5-sum", "k").fill("12")
    assert drawn(page, "towers")["deviation"] < coarse / 2
    filled = page.evaluate("""() => {
        const c = document.getElementById('u5-tower'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const at = (x, y) => d[4 * ((c.height - 1 - Math.floor(y * c.height)) * c.width + Math.floor(x * c.width))];
        return [at(0.25, 0.7), at(0.8, 0.2)];
    }""")
    assert filled[0] < 100 < filled[1]  # ink inside the tower, paper outside
    screenshot(page, "universality")


def test_every_widget_keeps_its_state_in_the_url(page, url):
    slider(page, "u1", "b").fill("-50")
    slider(page, "u2", "h").fill("0.3")
    page.select_option("#u4-target", "sine")
    page.click("#u4-fit")
    fitted = drawn(page, "design")
    address = page.url
    assert "u1=" in address and "u4=" in address
    page.goto("about:blank")
    page.goto(address)
    assert drawn(page, "neuron")["b"] == -50 and drawn(page, "bump")["h"] == 0.3
    design = drawn(page, "design")
    assert design["target"] == "sine" and design["heights"] == pytest.approx(fitted["heights"], abs=5e-5)
    assert design["deviation"] == pytest.approx(fitted["deviation"], abs=1e-4)
    expect(slider(page, "u1", "b")).to_have_value("-50")


@pytest.mark.parametrize("tab", ["universality", "unstable"])
def test_a_phone_sees_the_tab_without_scrolling_sideways(browser, url, tab):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(url + f"#tab={tab}")
    expect(page.locator(f"#tab-{tab}")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, f"{tab}-phone")
    context.close()


def test_unstable_gradients_bars_one_per_layer_with_the_books_values(page):
    page.click("nav button[data-tab=unstable]")
    page.select_option("#speed-layers", "4")
    page.fill("#speed-epochs", "40")
    page.click("#speed-go")
    bars = page.locator("#speed-bars .speed-bar")
    expect(page.locator("#speed-bars")).to_have_attribute("data-epoch", "39", timeout=30_000)
    expect(bars).to_have_count(4)
    expect(page.locator("#speed-bars .speed-book")).to_have_count(4)
    result = page.evaluate("""() => fetch('/api/unstable', {method: 'POST', headers: {'content-type': 'application/json'},
        body: JSON.stringify({layers: 4, activation: 'sigmoid', init: 'normalized', epochs: 40, seed: 1})}).then(r => r.json())""")
    shown = [float(bars.nth(l).get_attribute("data-value")) for l in range(4)]
    assert shown == result["speeds"][-1]
    assert shown[0] < shown[1] < shown[2] < shown[3]  # the vanishing gradient: early layers learn slowest
    widths = [float(bars.nth(l).locator(".speed-fill").evaluate("e => parseFloat(e.style.width)")) for l in range(4)]
    assert widths == pytest.approx([100 * (math.log10(v) + 6) / 7 for v in shown], abs=1e-3)  # log scale, 10⁻⁶ to 10
    expect(page.locator("#speed-status")).to_contain_text("test accuracy after training")
    assert "speed=layers=4" in page.url.replace("%3D", "=").replace("%2C", ",")
    screenshot(page, "unstable")
