"""Artificially expanding the training data: one-pixel shifts, rotation, skew, elastic distortion.

Chapter 3 expands MNIST by shifting every image one pixel up, down, left and
right (50,000 → 250,000 images), and cites Simard, Steinkraus & Platt (2003),
who reached 99.3% with a fully connected network by also rotating, skewing and
*elastically distorting* the digits: each pixel moves by a displacement field
of uniform random numbers in [−1, 1], smoothed by a Gaussian of standard
deviation σ and scaled by α (σ = 4, α = 34 for 28×28 digits).

Every random distortion here is one map of source coordinates per image (the
affine part, rotation × skew about the image centre plus a shift, then the
elastic field, drawn from the few smooth patterns a Gaussian of width σ
leaves), sampled with bilinear interpolation: OpenCV's ``cv2.remap`` when it is
installed (5-8x faster, see benchmarks/bench_augment.py), else SciPy's
``map_coordinates``. Both are imported only when a distortion runs
(``pip install 'nndl[augment]'``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .mnist import MNIST_FILES, VALIDATION_SIZE, read_split, resolve_data_dir
from ..errors import ConfigError, NndlError
from ..files.atomic import current_umask
from .idx import IdxStream, write_idx
from ..pixels import as_bytes, unit_interval
from ..rng import make_rng
from ..settings import check_number, setting

ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0  # Simard et al.'s values for 28×28 digits
CHUNK = 1_000  # images distorted per block (and per worker task): temporary arrays stay near 10 MB
REMAP_MAX_ROWS = 32_766  # cv2.remap refuses images of 32,767 rows or more
BACKENDS = ("opencv", "scipy")
INSTALL_HINT = "pip install 'nndl[augment]'"


def opencv():
    """OpenCV's cv2 module, or an error saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise NndlError(f"the opencv backend needs OpenCV: {INSTALL_HINT}") from None
    return cv2


def scipy_ndimage():
    """SciPy's ndimage, or an error saying how to install it."""
    try:
        from scipy import ndimage
    except ImportError:
        raise NndlError(f"distorting images needs OpenCV or SciPy: {INSTALL_HINT}") from None
    return ndimage


def bilinear_backend(backend: str | None = None) -> str:
    """The library that samples the distorted images: 'opencv' or 'scipy'; None picks OpenCV when installed.

    Both give the same pictures within interpolation error (OpenCV 4 rounds the
    sampling position to 1/32 pixel); OpenCV is several times faster.
    """
    if backend not in (None, *BACKENDS):
        raise ConfigError(f"backend {backend!r}: choose from {', '.join(BACKENDS)}")
    if backend == "opencv" or backend is None:
        try:
            opencv()
            return "opencv"
        except NndlError:
            if backend == "opencv":
                raise
    scipy_ndimage()
    return "scipy"


@dataclass(frozen=True)
class Distortion:
    """Ranges of the random distortions; each image draws its own values uniformly within them.

    Every range is bounded where the distortion stops making sense (a digit
    turned upside down, shifted or sheared out of its image, a Gaussian wider
    than any image), which also keeps the arithmetic finite and small.
    """

    rotate: float = setting(0.0, "the largest angle in degrees", kind="float", minimum=0, maximum=180)
    skew: float = setting(0.0, "the largest shear factor (1 slides the top row half the image sideways)",
                          kind="float", minimum=0, maximum=1)
    shift: float = setting(0.0, "the largest translation in pixels, sub-pixel (28: MNIST's whole side)",
                           kind="float", minimum=0, maximum=28)
    elastic_alpha: float = setting(0.0, "the elastic field's strength α (0 = off; Simard et al.: 34)",
                                   kind="float", minimum=0, maximum=1000)
    elastic_sigma: float = setting(ELASTIC_SIGMA, "the elastic field's smoothness σ in pixels (below 0.125 it is "
                                   "not smoothed at all; beyond 100 the Gaussian is flat)",
                                   kind="float", minimum=0.1, maximum=100)
    scale: float = setting(0.0, "the largest relative change of height and of width, each drawn on its own "
                           "(0.15 lets a digit grow or shrink by up to 15%, as Ciresan et al. did)",
                           kind="float", minimum=0, below=1)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):  # named as the user spells them: 'sigma 1e+09: must be in ...'
            value = check_number(SPELLINGS[field.name], getattr(self, field.name), field.metadata)
            object.__setattr__(self, field.name, value)

    def __str__(self) -> str:
        """The spec form, e.g. 'rotate=10,skew=0.2,elastic=34,sigma=4'."""
        values = [(name, getattr(self, name)) for name in ("rotate", "skew", "shift", "scale")]
        if self.elastic_alpha:
            values += [("elastic", self.elastic_alpha), ("sigma", self.elastic_sigma)]
        return ",".join(f"{name}={shortest(value)}" for name, value in values if value) or "none"

    @property
    def is_identity(self) -> bool:
        return not (self.rotate or self.skew or self.shift or self.scale or self.elastic_alpha)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shortest(value: float) -> str:
    """The shortest spelling that reads back as exactly ``value``: 10, 0.15, 0.99999999 (never rounded to 1)."""
    return repr(float(value)).removesuffix(".0")


DISTORTION_KEYS = {"rotate": "rotate", "skew": "skew", "shift": "shift", "scale": "scale",
                   "elastic": "elastic_alpha", "alpha": "elastic_alpha", "sigma": "elastic_sigma"}
SPELLINGS = {"rotate": "rotate", "skew": "skew", "shift": "shift", "scale": "scale", "elastic_alpha": "elastic",
             "elastic_sigma": "sigma"}  # each field as the spec form writes it


def parse_distortion(text: str) -> Distortion:
    """'rotate=10,skew=0.2,elastic' → Distortion; a bare 'elastic' means α = 34, σ = 4."""
    values: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, value = part.partition("=")
        if name not in DISTORTION_KEYS:
            raise ConfigError(f"unknown distortion {name!r} in {text!r}; choose from rotate, skew, shift, "
                              f"scale, elastic, sigma (e.g. rotate=10,skew=0.2,elastic)")
        if not value and name == "elastic":
            value = str(ELASTIC_ALPHA)
        try:
            values[DISTORTION_KEYS[name]] = float(value)
        except ValueError:
            raise ConfigError(f"{part!r}: give a number, e.g. {name}=10") from None
    distortion = Distortion(**values)
    if distortion.is_identity:
        raise ConfigError(f"{text!r} distorts nothing; e.g. rotate=10,skew=0.2,elastic")
    return distortion


# -- the book's expansion: one-pixel shifts ---------------------------------------------------

def shift_images(images: np.ndarray, down: int, right: int, out: np.ndarray | None = None) -> np.ndarray:
    """Move every image (n, h, w) ``down`` rows and ``right`` columns, filling with 0 (exact, no interpolation).

    ``out`` (zeros, the shape of ``images``) receives the result in place of a new array.
    """
    out = np.zeros_like(images) if out is None else out
    h, w = images.shape[1:]
    out[:, max(down, 0) : h + min(down, 0), max(right, 0) : w + min(right, 0)] = \
        images[:, max(-down, 0) : h + min(-down, 0), max(-right, 0) : w + min(-right, 0)]
    return out


ONE_PIXEL_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))  # down, up, right, left, as expand_mnist.py


def expand_by_one_pixel(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The book's expanded set: each image (n, h, w), then it shifted down, up, right and left.

    Returns 5n images and labels, the five versions of each image consecutive.
    """
    versions = 1 + len(ONE_PIXEL_SHIFTS)
    expanded = np.zeros((len(images), versions, *images.shape[1:]), images.dtype)  # written in place: one copy
    expanded[:, 0] = images
    for k, (down, right) in enumerate(ONE_PIXEL_SHIFTS, start=1):
        shift_images(images, down, right, out=expanded[:, k])
    return expanded.reshape(-1, *images.shape[1:]), np.repeat(labels, versions)


# -- random distortions ---------------------------------------------------------------------

def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """The matrix G with G @ f = f smoothed along axis 0 by a Gaussian of width σ, zero beyond the edges.

    The same filter as ndimage.gaussian_filter1d(f, σ, mode="constant"): weights
    for offsets up to 4σ, normalised over the whole kernel. Smoothing an image F
    along both axes is G F Gᵀ.
    """
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    kernel = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    weights = np.exp(-offsets**2 / (2 * sigma**2)) * (np.abs(offsets) <= radius)  # G[i,j] ∝ exp(−(i−j)²/2σ²)
    return weights / kernel.sum()


SMOOTH_CUTOFF = 0.01  # smooth patterns kept: singular values of G down to 1% of the largest


@functools.lru_cache(maxsize=8)
def smooth_basis(size: int, sigma: float) -> np.ndarray:
    """The few smooth patterns a Gaussian of width σ leaves: B (size, k) = P S from G = P S Qᵀ, k largest kept.

    Keeping the singular values down to 1% of the largest gives B Bᵀ = G Gᵀ to
    1e-4 of its largest entry: for σ = 4 on 28 pixels, k = 8 patterns, not 28.
    """
    p, s, _ = np.linalg.svd(gaussian_matrix(size, sigma))
    k = int(np.sum(s >= SMOOTH_CUTOFF * s[0]))
    return (p[:, :k] * s[:k]).astype(np.float32)


def elastic_displacements(n: int, shape: tuple[int, int], alpha: float, sigma: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Simard's displacement fields (2, n, h, w): uniform noise in [−1, 1], Gaussian-smoothed with σ, scaled by α.

    Smoothing noise U is α G U Gᵀ, and with G = P S Qᵀ that is α (P S)(Qᵀ U Q)(P S)ᵀ,
    where Qᵀ U Q is again white noise of variance 1/3 (near-Gaussian: each entry
    sums h·w uniforms). So the field is drawn as α/√3 · B Z Bᵀ with Z standard
    normal and B from :func:`smooth_basis`: the same covariance, 4x faster.
    """
    h, w = shape
    basis_h, basis_w = smooth_basis(h, sigma), smooth_basis(w, sigma)
    k_h, k_w = basis_h.shape[1], basis_w.shape[1]
    z = rng.standard_normal((k_h, 2 * n, k_w), dtype=np.float32)  # (k, 2n, k): both products are single GEMMs
    scaled_h = np.float32(alpha / np.sqrt(3)) * basis_h
    field = (scaled_h @ z.reshape(k_h, 2 * n * k_w)).reshape(h * 2 * n, k_w) @ basis_w.T  # F = α/√3 · B Z Bᵀ
    return field.reshape(h, 2, n, w).transpose(1, 2, 0, 3)  # (2, n, h, w)


def transform_coordinates(shape: tuple[int, int], angles: np.ndarray, shears: np.ndarray, shifts: np.ndarray,
                          field: np.ndarray | None = None, sizes: np.ndarray | None = None) -> np.ndarray:
    """Where each output pixel p samples the original, (2, n, h, w) as (rows, columns), per image.

    ``angles`` in degrees and ``shears`` have shape (n,), ``shifts`` (2, n) in
    pixels (rows, columns); ``field`` (2, n, h, w) adds an elastic displacement;
    ``sizes`` (2, n) scales each digit's height and width (1 = unchanged).
    Rotation, skew and scaling turn about the image centre c.
    """
    h, w = shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2], dtype=np.float32)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    offsets = np.stack([rows.ravel(), cols.ravel()]) - centre[:, None]  # p − c for every pixel, (2, h·w)
    angle, shear = np.deg2rad(np.asarray(angles, dtype=np.float32)), np.asarray(shears, dtype=np.float32)
    cos, sin, one, zero = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)  # R(θ) = [[cos, −sin], [sin, cos]]
    skew = np.stack([np.stack([one, zero], -1), np.stack([shear, one], -1)], 1)  # S(k) = [[1, 0], [k, 1]]
    linear = rotation @ skew  # (n, 2, 2); the skew slides each row sideways in proportion to its height
    if sizes is not None:
        linear = linear / np.asarray(sizes, dtype=np.float32).T[:, None, :]  # · D⁻¹, D = diag(height, width)
    shift = np.asarray(shifts, dtype=np.float32)
    coordinates = linear.transpose(1, 0, 2) @ offsets  # (2, n, h·w): one matrix product per output axis
    coordinates += (centre[:, None] + shift)[:, :, None]  # source = R(θ) S(k) D⁻¹ (p − c) + c + shift
    coordinates = coordinates.reshape(2, len(angle), h, w)
    if field is not None:
        coordinates += field
    return coordinates


@functools.lru_cache(maxsize=1)
def blas_controller() -> Any:
    """threadpoolctl's handle on the loaded BLAS libraries, found once (0.3 ms a search), or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the enclosed matrix products on one BLAS thread, whatever the caller's limit.

    A multi-threaded BLAS splits a product into blocks whose last bits depend on
    the split (OpenBLAS's Haswell kernels: 1e-6 in the elastic field, a pixel's
    byte now and then), so the same distortions came out differently inline and
    in the one-thread workers. One thread is also no slower for these small products.
    """
    controller = blas_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@one_blas_thread()
def source_coordinates(n: int, shape: tuple[int, int], distortion: Distortion,
                       rng: np.random.Generator) -> np.ndarray:
    """Draw each image's random distortion and return where its pixels sample the original, (2, n, h, w).

    On one BLAS thread: the same result in every process, whatever the caller's thread limit.
    """
    angles = rng.uniform(-distortion.rotate, distortion.rotate, n)
    shears = rng.uniform(-distortion.skew, distortion.skew, n)
    shifts = rng.uniform(-distortion.shift, distortion.shift, (2, n))
    field = None
    if distortion.elastic_alpha:
        field = elastic_displacements(n, shape, distortion.elastic_alpha, distortion.elastic_sigma, rng)
    sizes = rng.uniform(1 - distortion.scale, 1 + distortion.scale, (2, n)) if distortion.scale else None
    return transform_coordinates(shape, angles, shears, shifts, field, sizes)


def sample_tall(images: np.ndarray, coordinates: np.ndarray, backend: str) -> np.ndarray:
    """images[i] sampled bilinearly at coordinates[:, i], 0 outside, by one call of ``backend``.

    The batch is laid out as one tall image with a zero row between digits, so a
    single remap (or map_coordinates) call serves every image; clipping the
    rows to that zero row keeps each digit from sampling its neighbours.
    """
    n, h, w = images.shape
    padded = np.zeros((n, h + 2, w), dtype=np.float32)
    padded[:, 1:-1] = images
    tall = padded.reshape(n * (h + 2), w)
    tall_rows = np.clip(coordinates[0], -1, h) + 1 + (np.arange(n, dtype=np.float32) * (h + 2))[:, None, None]
    if backend == "opencv":
        cv2 = opencv()
        out = cv2.remap(tall, np.ascontiguousarray(coordinates[1], np.float32).reshape(n * h, w),
                        tall_rows.reshape(n * h, w), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    else:
        out = scipy_ndimage().map_coordinates(tall, np.stack([tall_rows, coordinates[1]]), order=1,
                                              mode="grid-constant", cval=0.0)
    return out.reshape(n, h, w)


def sample_bilinear(images: np.ndarray, coordinates: np.ndarray, backend: str | None = None) -> np.ndarray:
    """images (n, h, w) sampled at ``coordinates`` (2, n, h, w) with bilinear interpolation; 0 outside the image."""
    backend = bilinear_backend(backend)
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape
    per_call = max(1, REMAP_MAX_ROWS // (h + 2))
    out = np.empty_like(images)
    for start in range(0, n, per_call):
        part = slice(start, start + per_call)
        out[part] = sample_tall(images[part], coordinates[:, part], backend)
    return np.clip(out, 0.0, 1.0, out=out)


def distort(images: np.ndarray, distortion: Distortion, rng: np.random.Generator,
            backend: str | None = None) -> np.ndarray:
    """Randomly distorted copies of ``images`` (n, h, w) in [0, 1], each with its own random draw.

    ``backend`` chooses the sampling library ('opencv' or 'scipy', see
    :func:`bilinear_backend`); the random draws do not depend on it.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ConfigError(f"images of shape {images.shape}: expected (n, height, width)")
    backend = bilinear_backend(backend)
    out = np.empty_like(images)
    for start in range(0, len(images), CHUNK):
        part = images[start : start + CHUNK]
        coordinates = source_coordinates(len(part), part.shape[1:], distortion, rng)
        out[start : start + CHUNK] = sample_bilinear(part, coordinates, backend)
    return out


def image_side(n_features: int) -> int:
    """The side of square images with ``n_features`` pixels (28 for MNIST)."""
    side = int(round(np.sqrt(n_features)))
    if side * side != n_features:
        raise ConfigError(f"images of {n_features} pixels are not square; distortions need square images")
    return side


def distort_rows(rows: np.ndarray, distortion: Distortion, rng: np.random.Generator,
                 backend: str | None = None) -> np.ndarray:
    """:func:`distort` for images stored as rows (n, h·w), as datasets hold them."""
    side = image_side(rows.shape[1])
    return distort(rows.reshape(-1, side, side), distortion, rng, backend).reshape(rows.shape)


# -- fresh distortions every epoch, prepared in the background -------------------------------

PARENT_POLL_SECONDS = 0.5  # how soon a worker whose parent died notices and exits
STOP_SECONDS = 2.0  # how long closing waits for a worker to finish its part before killing it

_worker_images: np.ndarray | None = None


def _exit_with_parent(parent: int) -> None:
    """Exit this worker process as soon as its parent has died (killed, crashed): it is then re-parented."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _start_worker(images: np.ndarray) -> None:
    """Set up a distortion worker: its copy of the images, no Ctrl-C of its own, one OpenCV thread, a watchdog.

    Ctrl-C in a terminal interrupts the whole process group; the parent handles
    it and stops the workers, which would otherwise each print a traceback.
    """
    global _worker_images
    _worker_images = images
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the parent while it forked us
    if bilinear_backend() == "opencv":
        opencv().setNumThreads(0)  # the workers are the parallelism (and setNumThreads(1) can hang after a fork)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


@contextlib.contextmanager
def sigint_held_back() -> Iterator[None]:
    """Hold back Ctrl-C while workers are forked, so none is interrupted before it can ignore it."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def how_it_died(processes: list[Any]) -> str:
    """How a dead worker ended, e.g. 'killed by SIGKILL', from the worker processes' exit codes.

    SIGTERM is skipped: that is the pool stopping the other workers once one died.
    The pool collects the dead in another thread, so their codes may take a moment to appear.
    """
    deadline = time.monotonic() + STOP_SECONDS
    while any(p.exitcode is None for p in processes) and time.monotonic() < deadline:
        time.sleep(0.01)
    codes = [p.exitcode for p in processes if p.exitcode not in (None, -signal.SIGTERM)]
    if not codes:
        return "cause unknown"
    if codes[0] < 0:
        return f"killed by {signal.Signals(-codes[0]).name}"
    return f"exit code {codes[0]}"


def distorted_part(images: np.ndarray | None, distortion: Distortion, seed: int, epoch: int,
                   start: int) -> np.ndarray:
    """Images start … start + CHUNK of one epoch, distorted and rounded to uint8.

    Each part draws from its own generator, seeded by (seed, epoch, start), so the
    result is the same however many workers share the parts. ``images`` None
    means the worker process's own copy.
    """
    images = _worker_images if images is None else images
    part = unit_interval(images[start : start + CHUNK])
    rng = make_rng(seed, "augment", epoch, start)
    return as_bytes(distort_rows(part, distortion, rng))


class DistortedEpochs:
    """Fresh random distortions of ``images`` for every epoch, seeded by (seed, epoch).

    While epoch e trains, ``workers`` processes distort the images for epoch
    e + 1, so the other core does the image work. Pixels pass between processes
    as uint8 (a quarter of the size; the originals are 8-bit anyway). With
    ``workers=0`` everything runs in this process, with the same result. The
    workers ignore Ctrl-C (this process stops them) and exit by themselves if
    this process dies; a worker that dies raises a one-line :class:`NndlError`.
    """

    def __init__(self, images: np.ndarray, distortion: Distortion, seed: int, workers: int = 2):
        image_side(images.shape[1])
        bilinear_backend()  # fail now, with the install hint, rather than in a worker
        self.images, self.distortion, self.seed = images, distortion, seed
        self.starts = range(0, len(images), CHUNK)
        self.pending: dict[int, list[Any]] = {}
        self.workers: list[Any] = []  # the worker processes (multiprocessing.Process)
        self.executor = None
        if workers > 0:
            import concurrent.futures

            self.executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=workers, initializer=_start_worker, initargs=(images,)
            )
            try:
                with sigint_held_back():
                    self._submit(0)  # starts the workers and the first epoch's distortions
            except BaseException:
                self.close()
                raise

    def __repr__(self) -> str:
        return (f"DistortedEpochs({len(self.images)} images, {self.distortion}, seed={self.seed}, "
                f"workers={len(self.workers)})")

    def _submit(self, epoch: int) -> None:
        if self.executor is not None and epoch not in self.pending:
            self.pending[epoch] = [
                self.executor.submit(distorted_part, None, self.distortion, self.seed, epoch, start)
                for start in self.starts
            ]
            self.workers = list(self.executor._processes.values())  # no public handle on them

    def epoch_images(self, epoch: int) -> np.ndarray:
        """The distorted images for ``epoch`` as rows of bytes; starts on the next epoch's."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            self._submit(epoch)
            if epoch in self.pending:
                parts = [future.result() for future in self.pending.pop(epoch)]
            else:
                parts = [distorted_part(self.images, self.distortion, self.seed, epoch, s) for s in self.starts]
            self._submit(epoch + 1)
        except BrokenProcessPool:
            raise NndlError(f"a distortion worker died ({how_it_died(self.workers)}); rerun, "
                            f"or use --augment-workers 0") from None
        return np.concatenate(parts)  # bytes, like the originals: the network scales each mini-batch

    def close(self) -> None:
        """Stop the workers without hanging: cancel parts not started; kill a worker busy after STOP_SECONDS."""
        if self.executor is None:
            return
        from multiprocessing.connection import wait

        manager = self.executor._executor_manager_thread  # the pool's thread that talks to the workers
        self.executor.shutdown(wait=False, cancel_futures=True)  # each worker finishes its part, then exits
        self.executor = None
        self.pending.clear()
        running = {process.sentinel: process for process in self.workers}
        deadline = time.monotonic() + STOP_SECONDS
        while running and time.monotonic() < deadline:
            for sentinel in wait(list(running), deadline - time.monotonic()):
                del running[sentinel]
        for process in running.values():
            process.kill()
        if manager is not None:
            manager.join(STOP_SECONDS)  # let it tidy up now, not race the interpreter's exit (a traceback)

    def __enter__(self) -> "DistortedEpochs":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- offline expansion and previews ----------------------------------------------------------

EXPAND_CHUNK = 1_000  # source images per block written: memory stays at a few MB


def expansion_blocks(images: np.ndarray, distortion: Distortion | None, copies: int,
                     seed: int) -> Iterator[np.ndarray]:
    """uint8 blocks of the expanded images (n, h, w): each image followed by its versions.

    ``distortion`` None gives the book's one-pixel shifts (4 versions); otherwise
    ``copies`` random distortions, seeded by (seed, copy, block start).
    """
    for start in range(0, len(images), EXPAND_CHUNK):
        chunk = images[start : start + EXPAND_CHUNK]
        if distortion is None:
            expanded, _ = expand_by_one_pixel(chunk, np.zeros(len(chunk), np.uint8))
            yield expanded
            continue
        as_float = unit_interval(chunk)
        versions = [chunk] + [
            as_bytes(distort(as_float, distortion, make_rng(seed, "augment", copy, start)))
            for copy in range(copies)
        ]
        yield np.stack(versions, axis=1).reshape(-1, *chunk.shape[1:])


def expand_dataset(source: str | os.PathLike | None, target: str | os.PathLike, *,
                   distortion: Distortion | None = None, copies: int = 1, seed: int = 0,
                   train_size: int | None = None) -> Path:
    """Write an expanded copy of MNIST to ``target``, in MNIST's own four-file layout.

    The training images become each image followed by its versions (the book's
    four one-pixel shifts, or ``copies`` random distortions); the last 10,000
    training images (validation data) and the test files are copied unchanged, so
    ``nndl train --data TARGET`` trains on the expanded set and validates and
    tests on the usual images. Files are streamed in blocks and written under a
    temporary folder that is renamed into place only when complete.
    """
    if distortion is not None:
        bilinear_backend()
    if copies < 1:
        raise ConfigError(f"copies {copies}: give at least 1")
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists and is not empty; choose a new folder or remove it")
    folder = resolve_data_dir(source)
    train_images, train_labels = read_split(folder, "train_images", "train_labels")
    test_images, test_labels = read_split(folder, "test_images", "test_labels")
    n_train = len(train_images) - VALIDATION_SIZE
    keep = n_train if train_size is None else train_size
    if not 1 <= keep <= n_train:
        raise ConfigError(f"train size {train_size}: choose from 1 to {n_train} training images")
    versions = 5 if distortion is None else copies + 1
    image_side(train_images.shape[1] * train_images.shape[2])

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))  # same disk: rename works
    try:
        shape = (keep * versions + VALIDATION_SIZE, *train_images.shape[1:])
        with IdxStream(staging / (MNIST_FILES["train_images"] + ".gz"), np.uint8, shape) as out:
            for block in expansion_blocks(train_images[:keep], distortion, copies, seed):
                out.write(block)
            out.write(train_images[n_train:])
        labels = np.concatenate([np.repeat(train_labels[:keep], versions), train_labels[n_train:]])
        write_idx(staging / (MNIST_FILES["train_labels"] + ".gz"), labels)
        write_idx(staging / (MNIST_FILES["test_images"] + ".gz"), test_images)
        write_idx(staging / (MNIST_FILES["test_labels"] + ".gz"), test_labels)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it owner-only
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def preview_grid(images: np.ndarray, distortion: Distortion, copies: int, seed: int, scale: int = 3) -> np.ndarray:
    """A uint8 picture: one row per image (n, h, w), the original then ``copies`` distortions."""
    rng = make_rng(seed, "augment")
    columns = [images] + [distort(images, distortion, rng) for _ in range(copies)]
    n, h, w = images.shape
    gap = 2
    grid = np.full((n * (h + gap) + gap, len(columns) * (w + gap) + gap + gap), 255, dtype=np.uint8)
    for j, column in enumerate(columns):
        left = gap + j * (w + gap) + (gap if j else 0)  # a wider gap after the originals
        for i in range(n):
            top = gap + i * (h + gap)
            grid[top : top + h, left : left + w] = 255 - as_bytes(column[i])
    return np.kron(grid, np.ones((scale, scale), dtype=np.uint8))  # dark digits on white, enlarged
