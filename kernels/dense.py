"""Dense (fully connected) layer kernels: the epilogue around the matrix products.

``Z = X @ W + b``, ``Y = act(Z)``. The two matrix products of the forward and backward pass go
to NumPy's BLAS in the public wrapper (a tuned multi-threaded GEMM beats any loop nest written
here, and calling BLAS from Numba would add SciPy as a dependency). The kernels here fuse what
surrounds them: bias and activation on the way forward; activation derivative and the bias
gradient on the way back, with float64 accumulation so wide float32 layers keep their answer.
"""

import numpy as np
from numba import njit, prange

from ._config import LAYER_JIT
from .activations import SOFTMAX, activation_derivative, activation_value
from .softmax import softmax_row, softmax_row_backward

#: Columns per task in the column reduction: each thread owns a disjoint block (no shared writes).
COLUMN_BLOCK = 64


@njit(**LAYER_JIT)
def bias_activation_forward(code, alpha, Z, b, Y):
    """Z += b (in place, Z then holds the pre-activation); Y = act(Z), row by row."""
    n_samples, n_out = Z.shape
    for r in prange(n_samples):
        for j in range(n_out):
            Z[r, j] += b[j]
        if code == SOFTMAX:
            softmax_row(Z[r], Y[r])
        else:
            for j in range(n_out):
                Y[r, j] = activation_value(code, Z[r, j], alpha)


@njit(**LAYER_JIT)
def activation_backward_rows(code, alpha, Z, dLdY, dZ):
    """dZ = dL/dZ given the pre-activation Z and dL/dY, row by row."""
    n_samples, n_out = Z.shape
    for r in prange(n_samples):
        if code == SOFTMAX:
            scratch = np.empty(n_out, dtype=Z.dtype)
            softmax_row_backward(Z[r], dLdY[r], scratch, dZ[r])
        else:
            for j in range(n_out):
                dZ[r, j] = activation_derivative(code, Z[r, j], alpha) * dLdY[r, j]


@njit(**LAYER_JIT)
def column_sums(A, out):
    """out[j] = sum_r A[r, j], accumulated in float64."""
    n_rows, n_cols = A.shape
    n_blocks = (n_cols + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    for block in prange(n_blocks):
        start = block * COLUMN_BLOCK
        stop = min(start + COLUMN_BLOCK, n_cols)
        acc = np.zeros(stop - start, dtype=np.float64)
        for r in range(n_rows):
            for j in range(start, stop):
                acc[j - start] += A[r, j]
        for j in range(start, stop):
            out[j] = acc[j - start]
