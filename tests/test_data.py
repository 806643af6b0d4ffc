import re
import shutil

import numpy as np
import pytest
from conftest import write_fake_mnist

from nndl.app.cli import main
from nndl.data.mnist import MNIST_FILES, load_mnist, one_hot
from nndl.errors import ConfigError, DataError
from nndl.data.idx import read_idx, write_idx
from nndl.files.models import save_model
from nndl.network import Network
from nndl.pixels import unit_interval


def test_known_facts_of_mnist(mnist, mnist_dir):
    assert list(mnist.training.labels[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(mnist.test.labels[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    all_train_labels = np.concatenate([mnist.training.labels, mnist.validation.labels])
    assert list(np.bincount(all_train_labels)) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    pixels = unit_interval(np.concatenate([mnist.training.images, mnist.validation.images]), np.float64)
    assert pixels.mean(dtype=np.float64) == pytest.approx(0.1307, abs=5e-5)
    assert pixels.std(dtype=np.float64) == pytest.approx(0.3081, abs=5e-5)
    assert mnist.source == mnist_dir and mnist.n_classes == 10


def test_the_books_split(mnist, mnist_dir):
    assert (len(mnist.training), len(mnist.validation), len(mnist.test)) == (50_000, 10_000, 10_000)
    raw_labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(mnist.validation.labels, raw_labels[50_000:])
    for dataset in (mnist.training, mnist.validation, mnist.test):
        assert dataset.images.shape[1] == 784 and dataset.images.dtype == np.uint8  # bytes: a quarter of float32
        assert dataset.images.min() == 0 and dataset.images.max() == 255


def test_full_set_fits_in_60_mb(mnist):
    total = sum(d.images.nbytes for d in (mnist.training, mnist.validation, mnist.test))
    assert total <= 60e6


def test_train_size_takes_the_first_images(mnist, mnist_dir):
    small = load_mnist(mnist_dir, train_size=1000)
    assert len(small.training) == 1000
    np.testing.assert_array_equal(small.training.labels, mnist.training.labels[:1000])
    np.testing.assert_array_equal(small.training.images, mnist.training.images[:1000])
    assert len(small.validation) == 10_000


@pytest.mark.parametrize("train_size", [0, 10_021])
def test_train_size_out_of_range(fake_mnist_dir, train_size):
    with pytest.raises(ConfigError, match="choose from 1 to 20"):
        load_mnist(fake_mnist_dir, train_size=train_size)


def test_any_dataset_in_the_four_file_layout_loads(fake_mnist_dir):
    data = load_mnist(fake_mnist_dir)
    assert data.training.images.shape == (20, 16)
    assert data.validation.images.shape == (10_000, 16)
    assert data.test.images.shape == (30, 16)
    raw = read_idx(fake_mnist_dir / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data.training.images[3], raw[3].ravel())
    np.testing.assert_allclose(unit_interval(data.training.images[3]), raw[3].ravel() / 255, rtol=1e-6)


def test_raw_and_dotted_file_names_load(tmp_path):
    folder = write_fake_mnist(tmp_path / "raw", gz=False)
    (folder / "t10k-images-idx3-ubyte").rename(folder / "t10k-images.idx3-ubyte")
    assert len(load_mnist(folder).test) == 30


def test_data_dir_then_environment(fake_mnist_dir, tmp_path, monkeypatch):
    other = write_fake_mnist(tmp_path / "other", n_test=40)
    monkeypatch.setenv("NNDL_DATA", str(other))
    assert len(load_mnist().test) == 40
    assert len(load_mnist(fake_mnist_dir).test) == 30


def test_missing_folder_and_files_explain_the_fix(fake_mnist_dir, tmp_path):
    with pytest.raises(DataError, match="no such folder.*--data DIR or the NNDL_DATA"):
        load_mnist(tmp_path / "nowhere")
    (fake_mnist_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_mnist(fake_mnist_dir)


def test_truncated_file_is_named(fake_mnist_dir):
    path = fake_mnist_dir / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: truncated"):
        load_mnist(fake_mnist_dir)


def test_corrupt_file_is_named(fake_mnist_dir):
    path = fake_mnist_dir / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[20:40] = bytes(20)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: corrupt"):
        load_mnist(fake_mnist_dir)


def test_wrong_magic_is_named(fake_mnist_dir):
    images = fake_mnist_dir / "train-images-idx3-ubyte.gz"
    labels = fake_mnist_dir / "train-labels-idx1-ubyte.gz"
    shutil.copy(labels, images)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: magic number 2049, expected 2051"):
        load_mnist(fake_mnist_dir)


def test_image_and_label_counts_must_agree(fake_mnist_dir):
    write_idx(fake_mnist_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(29, dtype=np.uint8))
    with pytest.raises(DataError, match="30 images but .* 29 labels"):
        load_mnist(fake_mnist_dir)


def test_too_few_training_images_for_the_split(tmp_path):
    folder = write_fake_mnist(tmp_path / "tiny", n_train=500)
    with pytest.raises(DataError, match="needs more than 10000"):
        load_mnist(folder)


def test_bytes_become_the_networks_inputs_in_its_precision():
    pixels = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    for dtype in (np.float32, np.float64):
        x = unit_interval(pixels, dtype)
        assert x.dtype == dtype and x[0, 0] == 0 and x[0, 3] == 1 and x[0, 2] == dtype(128) / dtype(255)
    floats = np.array([[0.0, 0.5]], np.float32)
    assert unit_interval(floats, np.float32) is floats  # values already in [0, 1] are not copied


def test_one_hot():
    y = one_hot(np.array([3, 0, 9]))
    assert y.shape == (10, 3) and y.dtype == np.float32
    assert list(np.argmax(y, axis=0)) == [3, 0, 9] and y.sum() == 3


def test_mnist_file_names_are_the_standard_ones():
    assert sorted(MNIST_FILES.values()) == sorted(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    )


@pytest.mark.parametrize("key, array, message", [
    ("test_images", np.zeros((0, 4, 4), np.uint8), r"t10k-images-idx3-ubyte.gz: holds 0 images of 4×4 pixels"),
    ("train_images", np.zeros((10_020, 0, 4), np.uint8), r"train-images-idx3-ubyte.gz: holds 10,020 images of 0×4"),
    ("test_labels", np.array([3] * 29 + [10], np.uint8), r"t10k-labels-idx1-ubyte.gz: label 10 \(example 29\); "
                                                         r"labels must be the digits 0-9"),
    ("train_labels", np.full(10_020, 255, np.uint8), r"train-labels-idx1-ubyte.gz: label 255 \(example 0\)"),
])
def test_no_images_or_labels_past_nine_are_refused_at_load(tmp_path, key, array, message, capsys):
    folder = write_fake_mnist(tmp_path / "data", n_test=len(array) if key == "test_images" else 30)
    write_idx(folder / (MNIST_FILES[key] + ".gz"), array)
    with pytest.raises(DataError, match=message):
        load_mnist(folder)
    model = save_model(Network([16, 5, 10], seed=0), tmp_path / "m.npz")
    for command in (["evaluate", str(model)], ["train", "--epochs", "1", "--quiet", "--save", str(tmp_path / "t.npz")]):
        assert main([*command, "--data", str(folder)]) == 2
        assert re.fullmatch(rf"nndl {command[0]}: error: .*{message}.*\n", capsys.readouterr().err)
    assert not (tmp_path / "t.npz").exists()
