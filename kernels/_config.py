"""Numba options for every kernel, chosen once.

Two sets exist on purpose:

* ``LAYER_JIT`` for forward/backward passes of layers. ``fastmath`` is limited to flags that
  keep NaN and inf meaningful (no ``nnan``/``ninf``), so a NaN produced by a layer still
  propagates and can be reported by the checker; ``reassoc`` lets reductions vectorise.
* ``EXACT_JIT`` for scalar rules (shared by layers and checks) and for the finite-difference
  kernels of the checker. No fastmath at all: re-association would fold ``(x + h) - x`` into
  ``h`` and destroy the exactly representable step that central differences rely on.
"""

#: A set (Numba rejects frozenset); treat as read-only.
LAYER_FASTMATH = {"nsz", "contract", "arcp", "reassoc"}

EXACT_SCALAR_JIT = {"cache": True, "nogil": True, "fastmath": False}
EXACT_JIT = {"cache": True, "nogil": True, "parallel": True, "fastmath": False}
LAYER_JIT = {"cache": True, "nogil": True, "parallel": True, "fastmath": LAYER_FASTMATH}
