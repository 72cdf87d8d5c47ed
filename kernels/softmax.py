"""Row-wise softmax kernels (over the last axis, one sample per row).

Stable for large inputs: the row maximum is subtracted before exponentiating. Backward is the
full Jacobian-vector product ``dX = s * (dLdY - sum(dLdY * s))``, not its diagonal.

``softmax_row`` computes a whole row inside a kernel (the fused layer epilogues). The public
activation instead splits the row-wise softmax in three steps around NumPy's ``np.exp``
(``shift_rows``, then ``np.exp`` in place, then ``normalize_rows``): NumPy's exp runs in SIMD,
about 8x faster on this kind of machine than the scalar ``exp`` a Numba loop calls, and exp is
most of a softmax. The arithmetic around it is the same as ``softmax_row``'s, in the same
order (no fastmath).
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_JIT, EXACT_SCALAR_JIT, LAYER_JIT, build


@njit(**EXACT_SCALAR_JIT)
def softmax_row(z, out):
    """out = softmax(z) for one 1-D row."""
    row_max = z[0]
    for j in range(1, z.size):
        row_max = max(row_max, z[j])
    total = 0.0
    for j in range(z.size):
        e = np.exp(z[j] - row_max)
        out[j] = e
        total += e
    for j in range(z.size):
        out[j] = out[j] / total


@njit(**EXACT_SCALAR_JIT)
def softmax_row_backward(z, dLdY, s, out):
    """out = J_softmax(z)^T dLdY for one row; ``s`` is scratch for softmax(z)."""
    softmax_row(z, s)
    weighted = 0.0
    for j in range(z.size):
        weighted += dLdY[j] * s[j]
    for j in range(z.size):
        out[j] = s[j] * (dLdY[j] - weighted)


@njit(**LAYER_JIT)
def softmax_forward(x, out):
    """out[r] = softmax(x[r]) for each row of a 2-D array."""
    for r in prange(x.shape[0]):
        softmax_row(x[r], out[r])


def _shift_rows(x, out):
    """out[r] = x[r] - max(x[r]) for each row of a 2-D array (then exponentiated in place)."""
    for r in prange(x.shape[0]):
        row_max = x[r, 0]
        for j in range(1, x.shape[1]):
            row_max = max(row_max, x[r, j])
        for j in range(x.shape[1]):
            out[r, j] = x[r, j] - row_max


def _normalize_rows(e):
    """e[r] /= sum(e[r]) for each row of a 2-D array (the sum accumulated in float64)."""
    for r in prange(e.shape[0]):
        total = 0.0
        for j in range(e.shape[1]):
            total += e[r, j]
        for j in range(e.shape[1]):
            e[r, j] = e[r, j] / total


def _softmax_rows_backward(s, dLdY, out):
    """out[r] = s[r] * (dLdY[r] - sum(dLdY[r] * s[r])) given s = softmax(x); out may be s."""
    for r in prange(s.shape[0]):
        weighted = 0.0
        for j in range(s.shape[1]):
            weighted += dLdY[r, j] * s[r, j]
        for j in range(s.shape[1]):
            out[r, j] = s[r, j] * (dLdY[r, j] - weighted)


# Each twice, as the dense epilogues: a serial build for arrays under ``SERIAL_BELOW`` elements
# (no thread pool to wake, no thread count to set) and a parallel build for larger ones, each
# with a cache entry of its own (``_config.build``).
shift_rows = build(_shift_rows, "_parallel", **EXACT_JIT)
shift_rows_serial = build(_shift_rows, "_serial", **EXACT_SCALAR_JIT)
normalize_rows = build(_normalize_rows, "_parallel", **EXACT_JIT)
normalize_rows_serial = build(_normalize_rows, "_serial", **EXACT_SCALAR_JIT)
softmax_rows_backward = build(_softmax_rows_backward, "_parallel", **EXACT_JIT)
softmax_rows_backward_serial = build(_softmax_rows_backward, "_serial", **EXACT_SCALAR_JIT)
