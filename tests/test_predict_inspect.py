"""nndl predict (your own digit images) and nndl inspect (confusion matrix, mistakes, weights, learning speed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from conftest import write_fake_mnist
from nndl.app.cli import main
from nndl.app.inspect import (
    confusion_matrix,
    inspect_network,
    learning_speed,
    misclassified,
    top_confusions,
    weight_images,
)
from nndl.data.images import preprocess
from nndl.data.mnist import load_mnist
from nndl.files.models import load_model, save_model
from nndl.files.network2 import save_network2_json
from nndl.network import Network
from nndl.pixels import unit_interval


def train_with_cli(path: Path, data: Path, *options: str) -> Network:
    assert main(["train", "--data", str(data), "--init", "normalized", "--cost", "cross-entropy", "--seed", "1",
                 "--save", str(path), "--quiet", *options]) == 0
    return load_model(path)


def on_a_page(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit enlarged 2-4.6×, inverted to dark ink, somewhere on a 200×160 white page."""
    side = int(rng.integers(56, 130))
    ink = Image.fromarray(np.round(255 - 255 * digit.reshape(28, 28)).astype(np.uint8))
    page = Image.new("L", (200, 160), 255)
    page.paste(ink.resize((side, side), Image.Resampling.BICUBIC),
               (int(rng.integers(0, 200 - side + 1)), int(rng.integers(0, 160 - side + 1))))
    return page


@pytest.fixture(scope="module")
def mnist_model(mnist_dir, tmp_path_factory) -> Path:
    """A [784, 100, 10] network trained for 2 epochs on 20,000 MNIST images (about 1 s)."""
    path = tmp_path_factory.mktemp("model") / "mnist.npz"
    train_with_cli(path, mnist_dir, "--train-size", "20000", "--epochs", "2", "--hidden", "100", "--eta", "0.5",
                   "--lmbda", "5")
    return path


def test_digits_on_a_page_read_as_the_originals(mnist_model, mnist):
    """Off-centre, enlarged, inverted digits keep the model's answers better than half a pixel's shift does."""
    network = load_model(mnist_model)
    originals = unit_interval(mnist.test.images[:1000])
    answers = network.predict(originals)
    rng = np.random.default_rng(0)
    prepared = np.stack([preprocess(on_a_page(x, rng)).input_row for x in originals])
    kept = np.mean(network.predict(prepared) == answers)
    half_pixel = np.stack([ndimage.shift(x.reshape(28, 28), (0.5, 0.5), order=1).ravel() for x in originals])
    kept_by_half_pixel_shift = np.mean(network.predict(half_pixel) == answers)
    assert kept >= 0.97 and kept > kept_by_half_pixel_shift, (kept, kept_by_half_pixel_shift)
    rng = np.random.default_rng(0)
    uncentred = np.stack([preprocess(on_a_page(x, rng), centre=False).input_row for x in originals])
    assert np.mean(network.predict(uncentred) == answers) < kept - 0.1  # centring by mass is what makes it work


def test_predict_cli_on_mnist_pages(mnist_model, mnist, tmp_path, capsys):
    rng = np.random.default_rng(1)
    files = []
    for k in range(3):
        files.append(tmp_path / f"digit{k}.png")
        on_a_page(unit_interval(mnist.test.images[k]), rng).convert("RGB").save(files[-1])
    assert main(["predict", str(mnist_model), *map(str, files), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    network = load_model(mnist_model)
    expected = network.predict(np.stack([preprocess(f).input_row for f in files]))
    assert [p["digit"] for p in result["predictions"]] == expected.tolist()
    assert [p["digit"] for p in result["predictions"]] == mnist.test.labels[:3].tolist()
    assert all(p["probabilities"] is None and len(p["outputs"]) == 10 for p in result["predictions"])


@pytest.fixture
def fake_digits(tmp_path) -> Path:
    """MNIST's four-file layout with random 28×28 images: covers the CLI without MNIST."""
    return write_fake_mnist(tmp_path / "fake28", n_train=10_200, n_test=50, side=28)


def digit_file(path: Path, **draw) -> Path:
    """A white page with a dark bar and a ring: something with ink."""
    image = np.full((90, 70), 250, np.uint8)
    image[20:70, 30:36] = 10
    image[15:25, 20:50] = 40
    Image.fromarray(image).save(path)
    return path


def float_tiff(path: Path, bad: float) -> Path:
    """:func:`digit_file`'s digit as a float TIFF (Pillow mode F) with one pixel ``bad``."""
    pixels = np.asarray(Image.open(digit_file(path.with_suffix(".png"))), dtype=np.float32) / 255
    pixels[0, 0] = bad
    Image.fromarray(pixels, mode="F").save(path)
    return path


def test_predict_cli_reads_a_cielab_tiff_by_its_lightness_and_writes_nothing_for_a_refused_image(tmp_path, capsys):
    model = tmp_path / "model.npz"
    save_model(Network([784, 10, 10], seed=0), model)
    grey = Image.open(digit_file(tmp_path / "grey.png"))
    Image.merge("LAB", (grey, *[Image.new("L", grey.size, 128)] * 2)).save(tmp_path / "lab.tif")
    assert Image.open(tmp_path / "lab.tif").mode == "LAB"
    assert main(["predict", str(model), str(tmp_path / "grey.png"), str(tmp_path / "lab.tif"), "--json"]) == 0
    grey_answer, lab_answer = json.loads(capsys.readouterr().out)["predictions"]
    assert lab_answer["outputs"] == pytest.approx(grey_answer["outputs"], abs=1e-6)
    seen = tmp_path / "seen"
    assert main(["predict", str(model), str(tmp_path / "grey.png"), str(float_tiff(tmp_path / "nan.tif", np.nan)),
                 "--show-input", str(seen)]) == 2
    assert "NaN or infinite" in capsys.readouterr().err and not seen.exists()  # not even the good image's input


def test_predict_cli_softmax_model_show_input_and_network2_json(fake_digits, tmp_path, capsys):
    model = tmp_path / "softmax.npz"
    train_with_cli(model, fake_digits, "--epochs", "1", "--train-size", "200", "--cost", "log-likelihood",
                   "--eta", "0.1")
    image = digit_file(tmp_path / "mine.png")
    assert main(["predict", str(model), str(image), "--json", "--show-input", str(tmp_path / "seen")]) == 0
    (record,) = json.loads(capsys.readouterr().out)["predictions"]
    assert record["probabilities"] == record["outputs"] and sum(record["probabilities"]) == pytest.approx(1, abs=1e-5)
    assert record["digit"] == int(np.argmax(record["outputs"])) and record["confidence"] == max(record["outputs"])
    seen = np.asarray(Image.open(tmp_path / "seen" / "mine-input.png"))
    assert seen.shape == (28, 28) and np.array_equal(seen, np.round(preprocess(image).input * 255).astype(np.uint8))

    sigmoid = tmp_path / "sigmoid.npz"
    network = train_with_cli(sigmoid, fake_digits, "--epochs", "1", "--train-size", "200", "--eta", "0.5")
    save_network2_json(network, tmp_path / "book.json")
    outputs = []
    for path in (sigmoid, tmp_path / "book.json"):
        assert main(["predict", str(path), str(image), str(image), "--json"]) == 0
        outputs.append([p["outputs"] for p in json.loads(capsys.readouterr().out)["predictions"]])
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)

    assert main(["predict", str(sigmoid), str(image)]) == 0
    text = capsys.readouterr().out
    assert re.match(r"\S+mine\.png: \d  \(output activation 0\.\d{3}, next \d at", text) and "a^L  0:" in text


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent.png", "no such image file"),
    (lambda d: (d / "notes.png").write_text("not a picture") and d / "notes.png", "not an image file"),
    (lambda d: Image.new("L", (40, 40), 255).save(d / "blank.png") or d / "blank.png", "blank"),
    (lambda d: float_tiff(d / "nan.tif", np.nan), "1 of its 6,300 pixel values are NaN or infinite"),
    (lambda d: float_tiff(d / "inf.tif", np.inf), "NaN or infinite"),
])
def test_predict_cli_refuses_bad_images_in_one_line(make, message, tmp_path, capsys):
    model = tmp_path / "model.npz"
    save_model(Network([784, 10, 10], seed=0), model)
    assert main(["predict", str(model), str(make(tmp_path))]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and re.fullmatch(rf"nndl predict: error: .*{message}.*\n", captured.err)


def test_predict_cli_refuses_missing_or_unsuitable_models(tmp_path, capsys):
    image = digit_file(tmp_path / "digit.png")
    assert main(["predict", str(tmp_path / "none.npz"), str(image)]) == 2
    assert "none.npz: file not found" in capsys.readouterr().err
    save_model(Network([16, 5, 10], seed=0), tmp_path / "small.npz")
    assert main(["predict", str(tmp_path / "small.npz"), str(image)]) == 2
    assert "takes 16 inputs" in capsys.readouterr().err


def test_confusion_matrix_and_mistakes_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    guesses = np.array([0, 1, 1, 1, 0, 2, 0])
    confidence = np.array([0.9, 0.6, 0.8, 0.7, 0.55, 0.9, 0.95])
    matrix = confusion_matrix(labels, guesses, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [2, 0, 1]]
    assert top_confusions(matrix) == [(2, 0, 2), (0, 1, 1)]
    wrong = misclassified(labels, guesses, confidence)
    assert wrong["index"].tolist() == [6, 1, 4]  # surest mistake first
    assert wrong["label"].tolist() == [2, 0, 2] and wrong["guess"].tolist() == [0, 1, 0]
    assert misclassified(labels, guesses, confidence, limit=1)["index"].tolist() == [6]


def test_weight_images_and_learning_speed():
    network = Network([784, 30, 20, 10], seed=0)
    images = weight_images(network, limit=12)
    assert images.shape == (12, 28, 28) and np.array_equal(images[3].ravel(), network.weights[0][3])
    history = [{"epoch": 1, "learning_speed": [0.01, 0.05, 0.2]}, {"epoch": 2, "test_accuracy": 0.9},
               {"epoch": 3, "learning_speed": [0.02, 0.04, 0.1]}]
    assert learning_speed(history, network) == {
        "hidden layer 1": ([1, 3], [0.01, 0.02]), "hidden layer 2": ([1, 3], [0.05, 0.04]),
        "output layer": ([1, 3], [0.2, 0.1])}
    assert learning_speed(None, network) == {} and learning_speed([{"epoch": 1}], network) == {}


def test_a_conv_nets_kernels_and_learning_speed():
    network = Network(layers="conv6x5,pool2,conv4x3,full30", seed=0)
    images = weight_images(network)
    assert images.shape == (6, 5, 5) and np.array_equal(images[2], network.weights[0][2, 0])
    history = [{"epoch": 0, "learning_speed": [0.1, 0.2, 0.3, 0.4]}]
    assert list(learning_speed(history, network)) == ["conv6x5 (layer 1)", "conv4x3 (layer 3)", "full30 (layer 4)",
                                                      "output layer"]


def test_inspect_network_on_fake_data(fake_digits):
    network = Network([784, 16, 10], seed=0)
    data = load_mnist(fake_digits)
    found = inspect_network(network, data.test, gallery_size=7)
    guesses = network.predict(data.test.images)
    assert found.confusion.sum() == 50 and np.trace(found.confusion) == np.sum(guesses == data.test.labels)
    assert found.accuracy == pytest.approx(np.mean(guesses == data.test.labels))
    assert len(found.mistakes["index"]) == min(7, 50 - np.trace(found.confusion))
    np.testing.assert_array_equal(found.mistake_images[0].ravel(),
                                  unit_interval(data.test.images[found.mistakes["index"][0]]))
    assert found.weights.shape == (16, 28, 28) and found.confidence_kind == "output activation"


def test_inspect_cli_writes_a_self_contained_page(fake_digits, tmp_path, capsys):
    network = train_with_cli(tmp_path / "m.npz", fake_digits, "--epochs", "1", "--train-size", "100",
                             "--eta", "0.5")
    network.metadata["history"] = [{"epoch": e, "learning_speed": [0.1 / e, 0.3 / e]} for e in (1, 2, 3)]
    save_model(network, tmp_path / "with-speed.npz")
    out = tmp_path / "page"
    assert main(["inspect", str(tmp_path / "with-speed.npz"), "--data", str(fake_digits), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "true\\guess" in printed and "of 50 images" in printed
    page = (out / "index.html").read_text(encoding="utf-8")
    pictures = re.findall(r'src="([^"]+)"', page)
    assert sorted(pictures) == ["confusion.png", "learning-speed.png", "misclassified.png", "weights.png"]
    assert all(Image.open(out / p).format == "PNG" for p in pictures)
    assert "http" not in page.replace("<!DOCTYPE html>", "") and "<script" not in page
    assert page.count('<td class="right">') == 10  # the confusion table's diagonal

    save_network2_json(network, tmp_path / "book.json")
    assert main(["inspect", str(tmp_path / "book.json"), "--data", str(fake_digits), "--out", str(tmp_path / "b"),
                 "--on", "validation", "--gallery", "5"]) == 0
    printed = capsys.readouterr().out
    assert "validation:" in printed and "of 10,000 images" in printed and "No per-layer learning speed" in printed
    assert "learning-speed.png" not in (tmp_path / "b" / "index.html").read_text(encoding="utf-8")


def test_inspect_cli_errors(fake_digits, tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "none.npz"), "--data", str(fake_digits)]) == 2
    assert re.fullmatch(r"nndl inspect: error: .*none.npz: file not found\n", capsys.readouterr().err)
    save_model(Network([16, 5, 10], seed=0), tmp_path / "small.npz")
    assert main(["inspect", str(tmp_path / "small.npz"), "--data", str(fake_digits), "--out", str(tmp_path)]) == 2
    assert "takes 16 inputs but the test images have 784 pixels" in capsys.readouterr().err


@pytest.mark.parametrize("outputs", [1, 5, 10, 12])
def test_inspect_shows_a_network_of_any_output_size(outputs, fake_digits, tmp_path, capsys):
    """A row per true digit, a column per output neuron: 10×1, 10×5, 10×10, 10×12."""
    network = Network([784, 8, outputs], seed=0)
    save_model(network, tmp_path / "m.npz")
    found = inspect_network(network, load_mnist(fake_digits).test, gallery_size=7)
    guesses = network.predict(load_mnist(fake_digits).test.images)
    assert found.confusion.shape == (10, outputs) and found.confusion.sum() == 50
    assert np.trace(found.confusion) == np.sum(guesses == load_mnist(fake_digits).test.labels)
    assert found.weights.shape == (8, 28, 28) and len(found.mistakes["index"]) == 7
    out = tmp_path / "page"
    assert main(["inspect", str(tmp_path / "m.npz"), "--data", str(fake_digits), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("true\\guess"))
    assert header.split()[1:] == [str(j) for j in range(outputs)]
    table = (out / "index.html").read_text(encoding="utf-8").split("<table>")[1]  # the confusion matrix's
    assert table.count("<tr>") == 1 + 10 and table.count("<th>") == 1 + outputs
    assert table.count("<td") == 10 * (1 + outputs) and table.count('<td class="right">') == min(10, outputs)
    assert all(Image.open(out / name).format == "PNG" for name in ("confusion.png", "misclassified.png", "weights.png"))
