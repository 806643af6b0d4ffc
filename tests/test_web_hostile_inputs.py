"""The web page's routes on the inputs that once got a 500: odd images, odd output sizes, overflowing weights.

Through FastAPI's TestClient, as tests/test_web_api.py does: each answer is a
result or a 4xx naming the problem, never a server error.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from conftest import write_fake_mnist  # noqa: E402
from hostile import image_sources  # noqa: E402
from nndl.data.mnist import load_mnist  # noqa: E402
from nndl.files.models import save_model  # noqa: E402
from nndl.network import Network  # noqa: E402
from nndl.app.web.server import create_app  # noqa: E402


def encoded(image: Image.Image, fmt: str = "TIFF") -> str:
    """``image`` saved as ``fmt`` and base64-encoded, as the page sends a drawing."""
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def stroke() -> Image.Image:
    """A white 140×140 page with a black bar: a '1'."""
    image = Image.new("L", (140, 140), 255)
    ImageDraw.Draw(image).line([(70, 20), (70, 120)], fill=0, width=10)
    return image


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    save_model(Network([784, 20, 10], seed=0), folder / "digits.npz")
    for outputs in (1, 5, 12):
        save_model(Network([16, 8, outputs], seed=1), folder / f"outputs{outputs}.npz")
    data = write_fake_mnist(tmp_path_factory.mktemp("data") / "fake")
    with TestClient(create_app(folder, str(data), abandon_after=30.0)) as test_client:
        yield test_client


def test_a_cielab_drawing_reads_as_its_lightness(client):
    grey = stroke()
    lab = Image.merge("LAB", (grey, *[Image.new("L", grey.size, 128)] * 2))
    answers = [client.post("/api/draw", json={"model": "digits.npz", "image": encoded(image)}) for image in (grey, lab)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["output"] == pytest.approx(answers[1].json()["output"], abs=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_drawing_with_non_finite_pixels_is_422_naming_them(client, bad):
    pixels = np.asarray(stroke(), dtype=np.float32) / 255
    pixels[5, 5] = bad
    response = client.post("/api/draw", json={"model": "digits.npz", "image": encoded(Image.fromarray(pixels, "F"))})
    assert response.status_code == 422 and "1 of its 19,600 pixel values are NaN or infinite" in response.json()["detail"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(source=image_sources())
def test_no_image_gets_a_server_error(client, source):
    assume(isinstance(source, bytes))  # the page sends files only
    response = client.post("/api/draw", json={"model": "digits.npz", "image": base64.b64encode(source).decode()})
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("outputs", [1, 5, 12])
def test_the_confusion_matrix_of_any_output_size(client, outputs):
    """A row per true digit, a column per output neuron."""
    response = client.post("/api/mistakes", json={"model": f"outputs{outputs}.npz"})
    assert response.status_code == 200
    matrix = np.array(response.json()["matrix"])
    assert matrix.shape == (10, outputs) and matrix.sum() == len(load_mnist(client.app.state.server.data).test)


def test_an_upload_whose_weights_overflow_its_precision_is_422(client, tmp_path):
    path = save_model(Network([16, 8, 10], seed=0, dtype="float32"), tmp_path / "model.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["weights_1"] = np.full((10, 8), 1e300)  # finite as float64, infinite as the model's float32
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    response = client.put("/api/models/overflow.npz", content=buffer.getvalue())
    assert response.status_code == 422 and "weights_1 holds NaN or infinite values as float32" in response.json()["detail"]
    assert "overflow.npz" not in [m["name"] for m in client.get("/api/models").json()["models"]]
