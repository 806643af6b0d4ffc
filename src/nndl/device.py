"""Where a network's numbers live: NumPy arrays on the CPU, or CuPy arrays on a GPU.

The maths is written once. Every module that computes takes its array module
(``xp``: ``numpy`` or ``cupy``, the same functions under the same names) from
the arrays it is given or from the network, so ``--device gpu`` runs the very
equations ``--device cpu`` runs. Everything random is still drawn from NumPy's
seeded streams on the host and then moved to the device, so a seed means the
same run on both, up to floating-point rounding. Files (models, checkpoints),
plots and the web page read host copies (:func:`to_host`).

CuPy is optional (``pip install 'nndl[gpu]'``); nothing here imports it until
``device="gpu"`` is asked for.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ConfigError

DEVICES = ("cpu", "gpu")
GPU_MODULE = "cupy"
INSTALL_HINT = "pip install 'nndl[gpu]' (CuPy for CUDA 12; see cupy.dev for other CUDA versions)"


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise ConfigError(f"device {device!r}: choose from {', '.join(DEVICES)}")
    return device


def array_module(device: str) -> ModuleType:
    """The array module for ``device``: numpy for "cpu"; cupy for "gpu", once it is known to find a GPU."""
    if check_device(device) == "cpu":
        return np
    try:
        xp = importlib.import_module(GPU_MODULE)
    except ImportError:
        raise ConfigError(f"--device gpu needs CuPy, which is not installed: {INSTALL_HINT}, "
                          "or use --device cpu") from None
    gpu_count(xp)
    return xp


def gpu_count(xp: ModuleType) -> int:
    """How many GPUs CuPy (``xp``) sees, at least 1, or a ConfigError saying why there is none."""
    try:
        count = xp.cuda.runtime.getDeviceCount()
    except Exception as error:  # CuPy raises its CUDARuntimeError, or fails to load the CUDA libraries
        raise ConfigError(f"--device gpu: CuPy finds no usable GPU ({str(error).splitlines()[0]}); "
                          "use --device cpu") from None
    if count < 1:
        raise ConfigError("--device gpu: CuPy finds no GPU on this machine; use --device cpu")
    return count


def use_gpu(worker: int) -> None:
    """Make GPU ``worker`` mod the GPU count this process's device: one Dask worker per GPU."""
    xp = array_module("gpu")
    xp.cuda.Device(worker % gpu_count(xp)).use()


def module_of(array: Any) -> ModuleType:
    """The array module an array belongs to: numpy for NumPy arrays (and anything else), else the GPU module."""
    if isinstance(array, (np.ndarray, np.generic)) or GPU_MODULE not in sys.modules:
        return np
    gpu = sys.modules[GPU_MODULE]
    return gpu if isinstance(array, gpu.ndarray) else np


def to_host(array: Any) -> np.ndarray:
    """A NumPy array of ``array``'s numbers: itself if it is one already, else a copy from the device."""
    xp = module_of(array)
    return np.asarray(array) if xp is np else xp.asnumpy(array)


def to_module(array: Any, xp: ModuleType) -> Any:
    """``array`` in the array module ``xp``: moved to the device, or copied back to the host, when it must be."""
    return to_host(array) if xp is np else xp.asarray(array)


def copy_into(target: Any, source: Any) -> None:
    """``target[...] = source`` across devices: a saved host array back into a network's (device) array, and so on."""
    target[...] = to_module(source, module_of(target))
