"""Numba options for every kernel, chosen once.

Two sets exist on purpose:

* ``LAYER_JIT`` for forward/backward passes of layers. ``fastmath`` is limited to flags that
  keep NaN and inf meaningful (no ``nnan``/``ninf``), so a NaN produced by a layer still
  propagates and can be reported by the checker; ``reassoc`` lets reductions vectorise.
* ``EXACT_JIT`` for scalar rules (shared by layers and checks) and for the finite-difference
  kernels of the checker. No fastmath at all: re-association would fold ``(x + h) - x`` into
  ``h`` and destroy the exactly representable step that central differences rely on.

``SERIES_JIT`` only for short polynomial evaluations (Taylor series of expm1 and log1p on
small arguments) that touch no step: ``contract`` lets ``a * b + c`` become one fused
multiply-add, which is faster and rounds once instead of twice; it cannot fold ``(x + h) - x``.

``SUM_JIT`` for sums over samples of terms built from steps that were computed elsewhere:
``reassoc`` lets such a sum run as several partial sums, which is what vectorises it (the
rounding is of the same size, only in another order); nothing in these functions forms a step
or a difference like ``(x + h) - x``.

All use NumPy's error model: a division by zero gives inf or NaN (which the checker reports
like any other NaN) instead of raising, and the loops stay free of the checks that would keep
them from vectorising.
"""

#: A set (Numba rejects frozenset); treat as read-only.
LAYER_FASTMATH = {"nsz", "contract", "arcp", "reassoc"}

_COMMON = {"cache": True, "nogil": True, "error_model": "numpy"}
EXACT_SCALAR_JIT = {**_COMMON, "fastmath": False}
EXACT_JIT = {**_COMMON, "parallel": True, "fastmath": False}
SERIES_JIT = {**_COMMON, "fastmath": {"contract"}}
SUM_JIT = {**_COMMON, "fastmath": {"reassoc", "contract"}}
LAYER_JIT = {**_COMMON, "parallel": True, "fastmath": LAYER_FASTMATH}


def build(function, suffix, **options):
    """``njit(**options)`` of a copy of ``function`` named ``<name><suffix>``.

    For a kernel compiled twice (a serial and a parallel build of one loop). Numba's on-disk
    cache names an entry by the function's qualified name and line and keys it by signature
    and bytecode, not by the compile options: two builds of one function share one entry, and
    each process loads whichever build was saved last for both (a "serial" update that wakes
    the thread pool for 48 numbers took 86 us instead of under 1 us). The copy has a name, and
    so a cache entry, of its own.
    """
    import types

    from numba import njit

    copy = types.FunctionType(function.__code__, function.__globals__,
                              function.__name__ + suffix, function.__defaults__,
                              function.__closure__)
    copy.__qualname__ = function.__qualname__ + suffix
    copy.__doc__ = function.__doc__
    copy.__module__ = function.__module__
    return njit(**options)(copy)
