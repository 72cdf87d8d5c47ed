"""Run small matrix products on one BLAS thread.

A training step of a small network multiplies matrices of a few million multiply-adds. Split
over OpenBLAS's threads on a small or busy machine, each product waits for threads that are
spinning or descheduled: on the shared 2-core development machine an epoch of the
784-256-128-10 network on 3,000 samples at batch 32 took 1.2-4.0 s with NumPy's default
threads and 0.16-0.21 s on one thread (the plain-NumPy original: 7.9-8.4 s and 0.31-0.32 s).
``one_blas_thread`` sets
the thread count of the OpenBLAS that NumPy loaded for the duration of a ``with`` block and
restores it afterwards; where no OpenBLAS is found (MKL, Accelerate) it does nothing.
"""

import ctypes
import glob
import os

import numpy as np

_NAMES = [(f"{prefix}get_num_threads{suffix}", f"{prefix}set_num_threads{suffix}")
          for prefix in ("scipy_openblas_", "openblas_") for suffix in ("64_", "")]
_controls = None


def _find():
    """(get, set) of the OpenBLAS NumPy uses, or None."""
    root = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*openblas*")) + \
        glob.glob(os.path.join(root, ".dylibs", "*openblas*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _NAMES:
            get, put = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                return get, put
    return None


class one_blas_thread:
    """Context manager: NumPy's OpenBLAS on one thread while ``small`` is true."""

    __slots__ = ("_saved", "_small")

    def __init__(self, small=True):
        self._small = bool(small)
        self._saved = None

    def __enter__(self):
        global _controls
        if not self._small:
            return self
        if _controls is None:
            _controls = _find() or False
        if _controls:
            get, put = _controls
            self._saved = get()
            if self._saved != 1:
                put(1)
        return self

    def __exit__(self, *exc_info):
        if self._saved is not None and self._saved != 1:
            _controls[1](self._saved)
        return False
