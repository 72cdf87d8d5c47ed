"""Row-wise softmax kernels (over the last axis, one sample per row).

Stable for large inputs: the row maximum is subtracted before exponentiating. Backward is the
full Jacobian-vector product ``dX = s * (dLdY - sum(dLdY * s))``, not its diagonal.
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_SCALAR_JIT, LAYER_JIT


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


@njit(**LAYER_JIT)
def softmax_backward(x, dLdY, out):
    """out[r] = J_softmax(x[r])^T dLdY[r] for each row of a 2-D array."""
    for r in prange(x.shape[0]):
        scratch = np.empty(x.shape[1], dtype=x.dtype)
        softmax_row_backward(x[r], dLdY[r], scratch, out[r])
