"""Artificially expanding the training data: shifts, rotation, skew, elastic distortion."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy import ndimage

import nndl
from nndl.data.distortions import (
    DistortedEpochs,
    Distortion,
    bilinear_backend,
    distort,
    elastic_displacements,
    expand_by_one_pixel,
    expand_dataset,
    expansion_blocks,
    gaussian_matrix,
    parse_distortion,
    sample_bilinear,
    shift_images,
    transform_coordinates,
)
from conftest import write_fake_mnist
from nndl.app.cli import main
from nndl.data.mnist import Dataset, load_mnist
from nndl.errors import ConfigError, NndlError
from nndl.data.idx import IdxStream, read_idx
from nndl.network import Network
from nndl.callbacks import Callback
from nndl.runs import runner
from nndl.runs.blas import cores
from nndl.runs.checkpoint import checkpoint_files
from nndl.runs.runner import DistortedData, run_spec
from nndl.runs.spec import RunSpec
from nndl.training import TrainingConfig, train
from nndl.pixels import unit_interval
from test_resume import StopAt


@pytest.fixture(scope="module")
def digits(mnist):
    return unit_interval(mnist.training.images[:200]).reshape(-1, 28, 28)


@pytest.fixture(scope="module")
def rings():
    """Generated digit-like images, so these tests need no MNIST: 50 smooth ellipses of random size and place."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:28, 0:28]
    centres, radii = rng.uniform(11, 17, (2, 50, 1, 1)), rng.uniform(4, 9, (2, 50, 1, 1))
    distance = np.hypot((rows - centres[0]) / radii[0], (cols - centres[1]) / radii[1])  # 1 on the ellipse
    return np.clip(1.5 - 6 * np.abs(distance - 1), 0, 1).astype(np.float32)


def centre_of_mass(images):
    return np.array([ndimage.center_of_mass(image) for image in images])


def transformed(images, angle=0.0, shear=0.0, shift=(0.0, 0.0)):
    n = len(images)
    coordinates = transform_coordinates(images.shape[1:], np.full(n, angle), np.full(n, shear),
                                        np.tile(np.array(shift, dtype=float)[:, None], (1, n)))
    return sample_bilinear(images, coordinates)


# -- one-pixel shifts ------------------------------------------------------------------------

@pytest.mark.parametrize("down, right", [(1, 0), (-1, 0), (0, 1), (0, -1)])
def test_shifts_move_the_pixel_mass_by_exactly_one_pixel(digits, down, right):
    inside = digits[(digits[:, 0].sum(1) + digits[:, -1].sum(1) + digits[:, :, 0].sum(1) + digits[:, :, -1].sum(1)) == 0]
    moved = shift_images(inside, down, right)
    np.testing.assert_allclose(centre_of_mass(moved) - centre_of_mass(inside), [[down, right]] * len(inside),
                               atol=1e-5)  # float32 rounding only
    np.testing.assert_allclose(moved.sum(axis=(1, 2)), inside.sum(axis=(1, 2)), rtol=1e-6)  # nothing lost


def test_the_books_expansion_has_five_versions_in_order(digits):
    labels = np.arange(len(digits)) % 10
    images, expanded_labels = expand_by_one_pixel(digits, labels)
    assert images.shape == (5 * len(digits), 28, 28)
    np.testing.assert_array_equal(expanded_labels[:10], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(images[5], digits[1])  # each original leads its versions
    np.testing.assert_array_equal(images[6], shift_images(digits[1:2], 1, 0)[0])
    np.testing.assert_array_equal(images[9], shift_images(digits[1:2], 0, -1)[0])


def test_expand_writes_the_250k_set_in_mnist_layout(mnist_dir, mnist, tmp_path):
    target = expand_dataset(mnist_dir, tmp_path / "shifted", train_size=300)
    data = load_mnist(target)
    assert (len(data.training), len(data.validation), len(data.test)) == (1500, 10_000, 10_000)
    np.testing.assert_array_equal(data.training.labels, np.repeat(mnist.training.labels[:300], 5))
    np.testing.assert_array_equal(data.validation.images, mnist.validation.images)
    np.testing.assert_array_equal(data.test.labels, mnist.test.labels)
    np.testing.assert_allclose(data.training.images[5:10].reshape(-1, 28, 28),
                               expand_by_one_pixel(mnist.training.images[1:2].reshape(-1, 28, 28), [0])[0])


def test_full_expansion_is_250000_images(mnist_dir, tmp_path):
    target = expand_dataset(mnist_dir, tmp_path / "full")
    labels = read_idx(target / "train-labels-idx1-ubyte.gz")
    assert len(labels) == 260_000 and list(labels[:10]) == [5] * 5 + [0] * 5


def test_expand_refuses_a_used_folder_and_leaves_nothing_when_interrupted(fake_mnist_dir, tmp_path, monkeypatch):
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        expand_dataset(fake_mnist_dir, used)
    assert (used / "keep.txt").read_text() == "mine"

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("nndl.data.distortions.distort", broken)
    with pytest.raises(KeyboardInterrupt):
        expand_dataset(fake_mnist_dir, tmp_path / "new", distortion=Distortion(rotate=5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "used"]


def test_expand_with_distorted_copies_is_seeded(fake_mnist_dir, tmp_path):
    a = expand_dataset(fake_mnist_dir, tmp_path / "a", distortion=Distortion(rotate=20), copies=2, seed=1)
    b = expand_dataset(fake_mnist_dir, tmp_path / "b", distortion=Distortion(rotate=20), copies=2, seed=1)
    c = expand_dataset(fake_mnist_dir, tmp_path / "c", distortion=Distortion(rotate=20), copies=2, seed=2)
    images = [read_idx(p / "train-images-idx3-ubyte.gz") for p in (a, b, c)]
    assert len(images[0]) == 20 * 3 + 10_000
    np.testing.assert_array_equal(images[0], images[1])
    assert not np.array_equal(images[0], images[2])
    original = read_idx(fake_mnist_dir / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(images[0][3], original[1])  # every third image is an original


# -- random distortions ----------------------------------------------------------------------

def test_rotating_there_and_back_restores_the_image(digits):
    there = transformed(digits, angle=12.0)
    back = transformed(there, angle=-12.0)
    change = np.abs(there - digits).mean()
    residue = np.abs(back - digits).mean()
    assert residue < 0.5 * change  # what remains is the blur of interpolating twice
    np.testing.assert_allclose(centre_of_mass(back), centre_of_mass(digits), atol=0.15)


def test_rotation_turns_about_the_centre():
    image = np.zeros((1, 29, 29), np.float32)
    image[0, 14, 24] = 1.0  # 10 pixels right of the centre (14, 14)
    quarter = transformed(image, angle=90.0)
    row, col = np.unravel_index(np.argmax(quarter[0]), (29, 29))
    assert (abs(row - 14), col) == (10, 14)


def test_skew_slides_rows_in_proportion_to_height():
    image = np.zeros((1, 29, 29), np.float32)
    image[0, 4, 14] = 1.0  # 10 rows above the centre
    skewed = transformed(image, shear=0.3)
    row, col = np.unravel_index(np.argmax(skewed[0]), (29, 29))
    assert row == 4 and abs(col - 14) == 3


@pytest.mark.parametrize("backend", ["opencv", "scipy"])
@pytest.mark.parametrize("distortion", [Distortion(), Distortion(skew=0.0, elastic_alpha=0.0, rotate=0.0)])
def test_zero_distortions_are_the_identity(rings, distortion, backend):
    np.testing.assert_array_equal(distort(rings, distortion, np.random.default_rng(0), backend), rings)


KINDS = ["shift=2", "rotate=15", "skew=0.3", "scale=0.2", "elastic", "rotate=10,skew=0.2,shift=1,scale=0.15,elastic"]


@pytest.mark.parametrize("spec", KINDS)
def test_opencv_draws_the_same_distortions_as_scipy(rings, spec):
    distortion = parse_distortion(spec)
    fast = distort(rings, distortion, np.random.default_rng(7), backend="opencv")
    reference = distort(rings, distortion, np.random.default_rng(7), backend="scipy")
    assert np.abs(fast - reference).mean() < 1e-3  # interpolation error only
    correlations = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(fast, reference)]
    assert min(correlations) > 0.999
    assert np.abs(fast - rings).mean() > 0.02  # and both did distort


def test_scipy_serves_when_opencv_is_missing_and_neither_is_a_one_line_error(rings, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if not installed: importing it fails
    assert bilinear_backend() == "scipy"
    assert distort(rings[:3], Distortion(rotate=10), np.random.default_rng(0)).shape == (3, 28, 28)
    with pytest.raises(NndlError, match="needs OpenCV: pip install"):
        bilinear_backend("opencv")
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(NndlError, match=r"needs OpenCV or SciPy: pip install 'nndl\[augment\]'"):
        DistortedEpochs(rings.reshape(-1, 784), Distortion(rotate=10), seed=0, workers=0)


def test_an_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="choose from opencv, scipy"):
        bilinear_backend("pillow")


def test_outputs_stay_in_range_and_follow_the_seed(digits):
    spec = parse_distortion("rotate=15,skew=0.3,shift=2,elastic")
    a = distort(digits, spec, np.random.default_rng(4))
    b = distort(digits, spec, np.random.default_rng(4))
    c = distort(digits, spec, np.random.default_rng(5))
    assert a.min() >= 0 and a.max() <= 1 and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a - digits).mean() > 0.02  # it does distort


def ink_extent(image: np.ndarray, axis: int) -> int:
    """How many rows (axis=1) or columns (axis=0) hold ink."""
    return int((image.max(axis=axis) > 0.5).sum())


def test_scaling_stretches_height_and_width_separately_about_the_centre():
    square = np.zeros((1, 28, 28), dtype=np.float32)
    square[0, 10:18, 10:18] = 1.0  # 8 × 8 about the centre
    taller = transform_coordinates((28, 28), np.zeros(1), np.zeros(1), np.zeros((2, 1)), sizes=np.array([[1.5], [1.0]]))
    out = sample_bilinear(square, taller)[0]
    assert ink_extent(out, axis=1) == 12 and ink_extent(out, axis=0) == 8  # 8 rows × 1.5, columns unchanged
    np.testing.assert_allclose(ndimage.center_of_mass(out), ndimage.center_of_mass(square[0]), atol=1e-4)


def test_the_gaussian_matrix_is_ndimage_gaussian_filter():
    noise = np.random.default_rng(0).uniform(-1, 1, (5, 28, 28))
    expected = ndimage.gaussian_filter(noise, sigma=(0, 4, 4), mode="constant")
    g = gaussian_matrix(28, 4.0)
    np.testing.assert_allclose(g @ noise @ g.T, expected, atol=1e-12)


def test_elastic_fields_have_the_covariance_of_smoothed_uniform_noise():
    # Simard's field α G U Gᵀ, U uniform in [−1, 1], has Cov(vec F) = α²/3 (G Gᵀ ⊗ G Gᵀ); 7×7 images keep it small.
    alpha, n = 34.0, 4000
    fields = elastic_displacements(n, (7, 7), alpha, 2.0, np.random.default_rng(1)).reshape(2 * n, 49)

    def expected(sigma):
        g = gaussian_matrix(7, sigma)
        return alpha**2 / 3 * np.kron(g @ g.T, g @ g.T)

    error = np.linalg.norm(np.cov(fields.T) - expected(2.0)) / np.linalg.norm(expected(2.0))
    assert error < 0.05  # sampling noise with 8,000 fields
    assert np.linalg.norm(np.cov(fields.T) - expected(1.5)) / np.linalg.norm(expected(1.5)) > 3 * error


def test_elastic_displacements_are_smooth_and_scale_with_alpha():
    def fields(alpha, sigma):
        return elastic_displacements(400, (28, 28), alpha, sigma, np.random.default_rng(0))

    def neighbour_correlation(field, step):
        return np.corrcoef(field[..., :-step].ravel(), field[..., step:].ravel())[0, 1]

    base = fields(34.0, 4.0)
    assert neighbour_correlation(base, 1) > 0.95  # neighbouring displacements move together
    assert neighbour_correlation(fields(34.0, 8.0), 4) > neighbour_correlation(fields(34.0, 2.0), 4)
    np.testing.assert_allclose(fields(68.0, 4.0), 2 * base, rtol=1e-6)  # α only scales
    # A 2-D Gaussian of width σ averages white noise down by 1/(2√π σ); edges (zero padding) lower it a little.
    unsmoothed_std = np.sqrt(1 / 3)  # uniform [−1, 1]
    for sigma in (2.0, 4.0):
        ratio = fields(34.0, sigma).std() / (34 * unsmoothed_std)
        assert ratio == pytest.approx(1 / (2 * np.sqrt(np.pi) * sigma), rel=0.15)
    assert abs(base.mean()) < 0.05 * base.std()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("rotate=200", r"rotate 200.0: must be in \[0, 180\]"),
        ("sigma=-1,elastic", r"sigma -1.0: must be in \[0.1, 100\]"),
        ("skew=-0.2", r"skew -0.2: must be in \[0, 1\]"),
        ("scale=1", r"scale 1.0: must be in \[0, 1\)"),
        ("shift=nan", "shift nan: must be a finite number"),
        ("twist=3", "unknown distortion 'twist'"),
        ("rotate=ten", "give a number"),
        ("rotate=0", "distorts nothing"),
    ],
)
def test_bad_distortions_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_distortion(spec)


# Issue 16: each of these passed the parser, then overflowed, asked for 59.6 GiB or failed an SVD.
EXTREMES = {"shift=1e308": "shift 1e+308", "elastic,sigma=1e9": "sigma 1000000000.0", "elastic,sigma=1e-300":
            "sigma 1e-300", "elastic=1e308": "elastic 1e+308", "skew=1e308": "skew 1e+308", "rotate=inf": "rotate inf"}


@pytest.mark.parametrize("command", [["train"], ["expand", "OUT"], ["augment", "preview", "--out", "OUT"]])
@pytest.mark.parametrize("spec", list(EXTREMES))
def test_extreme_distortions_are_one_line_through_the_cli(capsys, tmp_path, command, spec):
    out = tmp_path / "out"
    try:
        code = main([str(out) if word == "OUT" else word for word in command] + ["--augment", spec])
    except SystemExit as exit_info:  # found by the option parser
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert EXTREMES[spec] in err and "must be" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", ["rotate=180,skew=1,shift=28,scale=0.999999999,elastic=1000,sigma=0.1",
                                  "elastic=1000,sigma=100"])
def test_the_largest_allowed_distortions_still_give_images(rings, spec):
    out = distort(rings, parse_distortion(spec), np.random.default_rng(0))
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


PARTS = st.one_of(st.sampled_from(["rotate", "skew", "shift", "scale", "elastic", "alpha", "sigma", "twist", ""]),
                  st.text(max_size=8))
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                    st.text("0123456789.e+-_infa", max_size=12))


def allowed(meta):
    """Any number a distortion parameter's declared range allows."""
    high = meta["below"] if meta["maximum"] is None else meta["maximum"]
    return st.floats(meta["minimum"], high, exclude_max=meta["maximum"] is None)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({f.name: allowed(f.metadata) for f in dataclasses.fields(Distortion)}))
def test_the_spec_form_reads_back_exactly(values):
    distortion = Distortion(**values)
    assume(distortion.elastic_alpha and not distortion.is_identity)  # σ is written only with an elastic field
    assert parse_distortion(str(distortion)) == distortion  # 'scale=0.99999999' was written 'scale=1'


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(PARTS, st.booleans(), NUMBERS), max_size=6))
def test_any_distortion_text_is_a_usable_distortion_or_a_config_error(rings, parts):
    text = ",".join(f"{name}={number}" if has_value else name for name, has_value, number in parts)
    try:
        distortion = parse_distortion(text)
    except ConfigError:
        return  # one line at the command line; any other exception would be a traceback
    assert np.isfinite(distort(rings[:2], distortion, np.random.default_rng(0))).all()


# -- on the fly, during training -------------------------------------------------------------

def test_every_epoch_gets_fresh_distortions_the_same_with_0_1_or_2_workers(mnist):
    images = mnist.training.images[:2500]  # three parts, shared differently by 1 and 2 workers
    spec = parse_distortion("rotate=10,elastic")
    with DistortedEpochs(images, spec, seed=3, workers=0) as inline:
        first, second = inline.epoch_images(0), inline.epoch_images(1)
    assert not np.array_equal(first, second)
    for workers in (1, 2):
        with DistortedEpochs(images, spec, seed=3, workers=workers) as background:
            np.testing.assert_array_equal(background.epoch_images(0), first)
            np.testing.assert_array_equal(background.epoch_images(1), second)
    assert first.dtype == np.uint8 and first.shape == images.shape  # bytes, like the originals
    assert np.abs(unit_interval(first) - unit_interval(images)).mean() > 0.01


# OpenBLAS picks its kernels by CPU. On its Haswell kernels (issue 16's AMD EPYC) a product split
# between two threads rounds unlike one thread's, which this machine's own kernels may hide; so the
# check runs in a process with those kernels forced, on any x86 CPU with AVX2.
THREADS_SCRIPT = """
import numpy as np, threadpoolctl
from nndl.data.distortions import parse_distortion, source_coordinates
distortion = parse_distortion("rotate=10,skew=0.2,scale=0.15,elastic")
coordinates = []
for threads in (1, 2):
    with threadpoolctl.threadpool_limits(threads):
        assert {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"} == {threads}
        coordinates.append([source_coordinates(1000, (28, 28), distortion, np.random.default_rng(block))
                            for block in range(3)])
np.testing.assert_array_equal(*coordinates)
"""


def has_avx2():
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and " avx2" in cpuinfo.read_text()


def test_distortions_are_bit_identical_on_one_or_two_blas_threads():
    pytest.importorskip("threadpoolctl")
    env = {**os.environ, "PYTHONPATH": str(Path(nndl.__file__).parents[1]), "OPENBLAS_NUM_THREADS": "2"}
    if has_avx2():
        env["OPENBLAS_CORETYPE"] = "Haswell"
    result = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_blocks_of_the_same_images_get_different_distortions(rings):
    block = np.tile(rings.reshape(-1, 784), (20, 1))  # 1,000 images: one block
    images = np.concatenate([block, block])
    with DistortedEpochs(images, parse_distortion("rotate=10,elastic"), seed=0, workers=0) as epochs:
        distorted = epochs.epoch_images(0)
    assert not np.array_equal(distorted[:1000], distorted[1000:])  # each block draws its own
    expanded = np.concatenate(list(expansion_blocks(images.reshape(-1, 28, 28), Distortion(rotate=10), 1, 0)))
    assert not np.array_equal(expanded[1:2000:2], expanded[2001::2])  # every second image is a distorted copy


@pytest.fixture(scope="module")
def noise_mnist(tmp_path_factory):
    """500 training images of random 28×28 pixels (and 10,000 validation, 100 test)."""
    return write_fake_mnist(tmp_path_factory.mktemp("noise") / "data", n_train=10_500, n_test=100, side=28)


def test_a_run_resumed_with_other_worker_counts_ends_bit_identical(noise_mnist, tmp_path):
    # [784, 400, 10] with m = 10: large enough for two BLAS threads if it trained without distortions,
    # and two threads round its products unlike one, so a thread count that followed the workers shows.
    spec = RunSpec().replace(source=str(noise_mnist), hidden=[400], eta=0.5, epochs=3, seed=5,
                             augment="rotate=10,elastic", workers=2)
    whole = run_spec(spec)
    folder = tmp_path / "checkpoints"
    for workers, (epoch, batch) in ((0, (0, 17)), (1, (1, 32))):
        part = run_spec(spec.replace(workers=workers), checkpoint=folder, resume=bool(checkpoint_files(folder)),
                        callbacks=[StopAt(epoch, batch)])
        assert part.run.interrupted
    final = run_spec(spec.replace(workers=0), checkpoint=folder, resume=True)
    for got, want in zip(final.network.parameters(), whole.network.parameters()):
        np.testing.assert_array_equal(got, want)


def test_no_more_workers_start_than_there_are_cores(noise_mnist, monkeypatch):
    started = []

    class Counted(DistortedEpochs):
        def __init__(self, images, distortion, seed, workers=2):
            started.append(workers)
            super().__init__(images, distortion, seed, workers)

    monkeypatch.setattr(runner, "DistortedEpochs", Counted)
    run_spec(RunSpec().replace(source=str(noise_mnist), hidden=[10], epochs=1, seed=1, augment="rotate=10",
                               workers=64, train_size=200))
    assert started == [min(64, cores())]


# A stand-in for `nndl train --augment`: two workers distort 4,000 small generated images while this
# process "trains"; it prints the worker ids, then trains until told to stop or until a worker dies.
TRAINING_SCRIPT = """
import json, sys, numpy as np
from nndl.data.distortions import DistortedEpochs, parse_distortion
from nndl.errors import NndlError
images = np.random.default_rng(0).random((4000, 784), dtype=np.float32)
try:
    with DistortedEpochs(images, parse_distortion("rotate=10,elastic"), seed=0, workers=2) as epochs:
        epochs.epoch_images(0)
        print(json.dumps([worker.pid for worker in epochs.workers]), flush=True)
        sys.stdin.readline()
        for epoch in range(1, 1000):
            x = epochs.epoch_images(epoch)[:500].astype(np.float32)
            x @ x.T  # the training step
except NndlError as exc:
    sys.exit(f"error: {exc}")
except KeyboardInterrupt:
    sys.exit(130)
"""


def alive(pid):
    """Whether process ``pid`` runs (a zombie, dead but not yet collected, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def training_script():
    """Start TRAINING_SCRIPT in its own process group; yields (process, worker pids); kills leftovers."""
    env = {**os.environ, "PYTHONPATH": str(Path(nndl.__file__).parents[1])}
    process = subprocess.Popen([sys.executable, "-c", TRAINING_SCRIPT], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    workers = json.loads(process.stdout.readline())
    yield process, workers
    for pid in [process.pid, *workers]:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    process.communicate()


def wait_until_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def test_ctrl_c_stops_training_and_its_workers_quietly(training_script):
    process, workers = training_script
    assert len(workers) == 2 and all(alive(pid) for pid in workers)
    process.stdin.write("go\n")
    process.stdin.flush()
    time.sleep(0.3)  # mid-epoch, workers busy
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, stderr = process.communicate(timeout=30)  # generous: a loaded CI machine is slow, a hang is not
    assert process.returncode == 130 and stderr == ""
    assert wait_until_gone(workers, 1) == []


def test_workers_exit_when_the_training_process_is_killed(training_script):
    process, workers = training_script
    process.stdin.write("go\n")
    process.stdin.flush()
    process.kill()  # SIGKILL: no clean-up runs in the parent
    process.wait(timeout=5)
    assert wait_until_gone(workers, 5) == []


def test_a_dead_worker_is_a_one_line_error(training_script):
    process, workers = training_script
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = process.communicate("go\n", timeout=10)
    assert process.returncode == 1
    assert stderr == ("error: a distortion worker died (killed by SIGKILL); rerun, or use --augment-workers 0\n")
    assert wait_until_gone(workers, 1) == []


def test_training_sees_the_distorted_images(mnist):
    data = Dataset(mnist.training.images[:200], mnist.training.labels[:200])
    seen = []

    class Spy(Callback):
        def on_batch_end(self, run, batch):
            if batch == 0:
                seen.append([w.copy() for w in run.network.weights])

    def run(augmentation):
        net = Network([784, 10, 10], seed=0)
        source = data if augmentation is None else DistortedData(data, DistortedEpochs(data.images, augmentation, 0, 0))
        train(net, source, TrainingConfig(epochs=2, mini_batch_size=200, eta=1.0, seed=0), callbacks=[Spy()])
        return net.weights[0]

    plain = run(None)
    augmented = run(Distortion(rotate=15))
    assert not np.allclose(plain, augmented)


def test_idx_stream_refuses_a_short_file(tmp_path):
    with pytest.raises(ValueError, match="wrote 2 of 3 rows"):
        with IdxStream(tmp_path / "x.idx.gz", np.uint8, (3, 2)) as out:
            out.write(np.zeros((2, 2), np.uint8))
    assert not list(tmp_path.iterdir())


# -- command line ----------------------------------------------------------------------------

def test_cli_expand_preview_and_train_with_augment(capsys, mnist_dir, tmp_path):
    from PIL import Image

    assert main(["expand", str(tmp_path / "x"), "--shift-one-pixel", "--train-size", "100",
                 "--data", str(mnist_dir)]) == 0
    assert "500 training" in capsys.readouterr().out
    png = tmp_path / "grid.png"
    assert main(["augment", "preview", "--out", str(png), "--count", "3", "--copies", "4",
                 "--data", str(mnist_dir)]) == 0
    with Image.open(png) as picture:
        assert picture.size == (3 * (5 * 30 + 4), 3 * (3 * 30 + 2))
    assert main(["train", "--data", str(mnist_dir), "--train-size", "500", "--epochs", "1", "--augment",
                 "rotate=10,elastic", "--augment-workers", "0", "--seed", "1", "--quiet", "--json"]) == 0
    import json
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["spec"]["distortions"]["augment"] == "rotate=10,elastic=34,sigma=4"


@pytest.mark.parametrize("argv", [["train", "--augment", "rotate=181"], ["expand", "out", "--augment", "melt=1"]])
def test_cli_refuses_bad_distortions(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exit_info:  # found by the option parser
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
