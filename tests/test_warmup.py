"""warmup() compiles every kernel that fastgrad calls from Python."""

import importlib
import pkgutil

import numba
import numpy as np
import pytest

import fastgrad.kernels
from fastgrad import warmup


def _dispatchers():
    for info in pkgutil.iter_modules(fastgrad.kernels.__path__):
        module = importlib.import_module(f"fastgrad.kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and \
                    obj.__module__ == module.__name__:
                yield f"{info.name}.{name}", obj


def test_warmup_compiles_every_kernel_called_from_python():
    if numba.config.DISABLE_JIT:
        pytest.skip("kernels are plain Python with NUMBA_DISABLE_JIT")
    seconds = warmup()
    assert seconds >= 0
    # the parallel kernels are the entry points (black-box methods combine in NumPy)
    entry_points = {name: d for name, d in _dispatchers() if d.targetoptions.get("parallel")}
    assert "directions.perturb_along" in entry_points
    missing = sorted(name for name, d in entry_points.items() if not d.signatures)
    assert not missing


def test_warmup_rejects_other_dtypes():
    with pytest.raises(TypeError, match="dtypes"):
        warmup(dtypes=(np.int64,))
