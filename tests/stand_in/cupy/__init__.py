"""A stand-in for CuPy, for testing nndl's GPU path on machines without a GPU (CI included).

Its arrays live "on the device" as far as nndl can tell, and behave like
CuPy's where a CPU-only habit would break on a real GPU:

- no implicit conversion to NumPy: ``np.asarray(a)``, ``np.array(a)``,
  ``np.savez(..., a)`` and ``float32_numpy_array[...] = a`` raise TypeError, as
  CuPy's "Implicit conversion to a NumPy array is not allowed"; ``a.get()`` and
  ``cupy.asnumpy(a)`` are the way back to the host;
- no mixing: a NumPy array (of any size) next to a device array in an
  operator, a ufunc or a function raises TypeError; Python and NumPy scalars
  are fine, as in CuPy;
- reductions give 0-d device arrays, not NumPy scalars (``float()``, ``int()``
  and ``bool()`` of them work, as in CuPy);
- NumPy's ufuncs and functions called on device arrays dispatch to this
  module (CuPy's ``__array_ufunc__``/``__array_function__``), but ``ufunc.at``
  and reductions of ufuncs other than add and multiply are refused, as in CuPy.

Underneath, every array is a NumPy array, so the numbers are NumPy's own: a
run on the stand-in must equal the same run on NumPy bit for bit. Put this
folder first on ``sys.path`` (or ``PYTHONPATH``) to make ``import cupy`` find it.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import numpy as np

STAND_IN = True  # nndl never looks at this; tests can
DEVICE_COUNT = int(os.environ.get("STAND_IN_CUPY_DEVICES", "1"))
REDUCIBLE = {"add", "multiply", "maximum", "minimum"}
HOST_ONLY = {"save", "savez", "savez_compressed", "savetxt", "tofile"}  # files hold host arrays


def refuse_host(value: Any, what: str) -> None:
    if isinstance(value, np.ndarray):
        raise TypeError(f"Unsupported type {type(value)} in {what}: a NumPy array mixed with device arrays "
                        "(move it with cupy.asarray)")


def unwrap(value: Any, what: str) -> Any:
    """Device arrays → their NumPy data; NumPy arrays refused; lists and tuples looked into."""
    if isinstance(value, ndarray):
        return value._data
    refuse_host(value, what)
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v, what) for v in value)
    return value


def wrap(value: Any) -> Any:
    """NumPy results → device arrays (reductions' NumPy scalars → 0-d device arrays, as CuPy gives)."""
    if isinstance(value, np.ndarray):
        return ndarray(value)
    if isinstance(value, np.generic):
        return ndarray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(wrap(v) for v in value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


def device_function(name: str, function: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return wrap(function(*unwrap(args, name), **{k: unwrap(v, name) for k, v in kwargs.items()}))

    call.__name__ = name
    return call


class ndarray(np.lib.mixins.NDArrayOperatorsMixin):
    """A "device" array: NumPy data that refuses to become a NumPy array by accident."""

    __array_priority__ = 100

    def __init__(self, data: np.ndarray):
        object.__setattr__(self, "_data", data)

    # -- what CuPy refuses --------------------------------------------------------------------------

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
                        "a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "at" or (method != "__call__" and ufunc.__name__ not in REDUCIBLE):
            raise TypeError(f"the stand-in (as CuPy) has no {ufunc.__name__}.{method}")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(unwrap(o, ufunc.__name__) for o in out)
        result = getattr(ufunc, method)(*unwrap(inputs, ufunc.__name__), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out  # the very arrays given, as NumPy and CuPy return
        return wrap(result)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        if func.__name__ in HOST_ONLY:
            raise TypeError(f"numpy.{func.__name__} of a device array: copy it to the host first (.get())")
        return device_function(func.__name__, func)(*args, **kwargs)

    # -- the array's own attributes and methods, results kept on the device -------------------------

    def get(self) -> np.ndarray:
        """A NumPy copy on the host (CuPy's ``ndarray.get``)."""
        return self._data.copy()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # no __array_interface__, __array_struct__, buffer: NumPy must not see the data
            raise AttributeError(name)
        attribute = getattr(self._data, name)
        if callable(attribute):
            return device_function(name, attribute)
        return wrap(attribute)

    def __getitem__(self, key: Any) -> Any:
        return wrap(self._data[unwrap(key, "indexing")])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._data[unwrap(key, "indexing")] = unwrap(value, "assignment")

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self):
        return (wrap(row) for row in self._data)

    def __float__(self) -> float:
        return float(self._data)

    def __int__(self) -> int:
        return int(self._data)

    def __index__(self) -> int:
        return self._data.__index__()

    def __bool__(self) -> bool:
        return bool(self._data)

    def __repr__(self) -> str:
        return f"stand_in_cupy.{self._data!r}"

    @property
    def T(self) -> ndarray:
        return ndarray(self._data.T)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def nbytes(self) -> int:
        return self._data.nbytes


def asarray(value: Any, dtype: Any = None) -> ndarray:
    """Host (or device) data → a device array (CuPy's ``cupy.asarray``, a copy from the host)."""
    if isinstance(value, ndarray):
        return value if dtype is None else value.astype(dtype, copy=False)
    return ndarray(np.array(value, dtype=dtype))


def asnumpy(value: Any) -> np.ndarray:
    """A device array → a NumPy array on the host (CuPy's ``cupy.asnumpy``)."""
    return value.get() if isinstance(value, ndarray) else np.asarray(value)


def get_array_module(*arrays: Any) -> types.ModuleType:
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else np


class _Runtime:
    @staticmethod
    def getDeviceCount() -> int:  # noqa: N802 - CuPy's name
        if DEVICE_COUNT < 1:
            raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return DEVICE_COUNT


class CUDARuntimeError(RuntimeError):
    pass


class _Device:
    def __init__(self, index: int = 0):
        self.id = index

    def use(self) -> None:
        pass

    def synchronize(self) -> None:
        pass


class _MemoryPool:
    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        pass


_POOL = _MemoryPool()
cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=_Runtime.getDeviceCount,
                                                           CUDARuntimeError=CUDARuntimeError),
                             Device=_Device)
get_default_memory_pool = lambda: _POOL  # noqa: E731 - CuPy's function
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
    sliding_window_view=device_function("sliding_window_view", np.lib.stride_tricks.sliding_window_view),
    as_strided=device_function("as_strided", np.lib.stride_tricks.as_strided)))
random = None  # nndl draws every random number from NumPy's seeded streams on the host


class ufunc:
    """A NumPy ufunc on device arrays: called, or reduced for the few ufuncs CuPy reduces (``cupy.add.reduce``)."""

    def __init__(self, numpy_ufunc: np.ufunc):
        self.numpy_ufunc, self.__name__ = numpy_ufunc, numpy_ufunc.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return device_function(self.__name__, self.numpy_ufunc)(*args, **kwargs)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        if self.__name__ not in REDUCIBLE:
            raise TypeError(f"the stand-in (as CuPy) has no {self.__name__}.reduce")
        return device_function(f"{self.__name__}.reduce", self.numpy_ufunc.reduce)(*args, **kwargs)


def __getattr__(name: str) -> Any:
    """Everything else NumPy has, on device arrays: dtypes and constants as they are, functions wrapped."""
    attribute = getattr(np, name)
    if isinstance(attribute, (type, float, int)) or name.startswith("_"):
        return attribute
    if isinstance(attribute, np.ufunc):
        return ufunc(attribute)
    if callable(attribute):
        return device_function(name, attribute)
    return attribute

