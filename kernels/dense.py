"""Dense (fully connected) layer kernels: the epilogue around the matrix products.

``Z = X @ W + b``, ``Y = act(Z)``. The two matrix products of the forward and backward pass go
to NumPy's BLAS in the public wrapper (a tuned multi-threaded GEMM beats any loop nest written
here, and calling BLAS from Numba would add SciPy as a dependency). The kernels here fuse what
surrounds them: bias and activation on the way forward; activation derivative and the bias
gradient on the way back, with float64 accumulation so wide float32 layers keep their answer.
"""

import numpy as np
from numba import njit, prange

from ._config import LAYER_JIT, build
from .activations import SIGMOID, SOFTMAX, activation_derivative, activation_value
from .losses import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, loss_term, loss_term_derivative
from .softmax import softmax_row, softmax_row_backward

#: Columns per task in the column reduction: each thread owns a disjoint block (no shared writes).
COLUMN_BLOCK = 64


# --- Training epilogues -------------------------------------------------------------------
#
# Each kernel below exists twice: a serial build (``*_serial``) for the small matrices of a
# notebook model or a small batch, where waking Numba's workers (~35 us) and competing with
# BLAS's own threads costs more than the loop, and the parallel build above a size threshold
# chosen by the caller. Both are the same Python function compiled with different options
# (``_config.build``: each under a name, and so a cache entry, of its own).

SERIAL_JIT = {**LAYER_JIT, "parallel": False}


def _bias_activation(code, alpha, Z, b, Y):
    n_samples, n_out = Z.shape
    for r in prange(n_samples):
        for j in range(n_out):
            Z[r, j] += b[j]
        if code == SOFTMAX:
            softmax_row(Z[r], Y[r])
        else:
            for j in range(n_out):
                Y[r, j] = activation_value(code, Z[r, j], alpha)


def _activation_backward_bias(code, alpha, Z, dLdY, dZ, db):
    """dZ = f'(Z) * dLdY and db = column sums of dZ in one pass (db accumulated in float64).

    Parallel over blocks of columns, so each thread owns its slice of db (softmax, whose
    derivative needs whole rows, goes row by row and sums afterwards).
    """
    n_samples, n_out = Z.shape
    if code == SOFTMAX:
        for r in prange(n_samples):
            scratch = np.empty(n_out, dtype=Z.dtype)
            softmax_row_backward(Z[r], dLdY[r], scratch, dZ[r])
        _column_sums_into(dZ, db)
        return
    n_blocks = (n_out + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    for block in prange(n_blocks):
        start = block * COLUMN_BLOCK
        stop = min(start + COLUMN_BLOCK, n_out)
        acc = np.zeros(stop - start, dtype=np.float64)
        for r in range(n_samples):
            for j in range(start, stop):
                d = activation_derivative(code, Z[r, j], alpha) * dLdY[r, j]
                dZ[r, j] = d
                acc[j - start] += d
        for j in range(start, stop):
            db[j] = acc[j - start]


def _column_sums_into(A, out):
    n_rows, n_cols = A.shape
    acc = np.zeros(n_cols, dtype=np.float64)
    for r in range(n_rows):
        for j in range(n_cols):
            acc[j] += A[r, j]
    for j in range(n_cols):
        out[j] = acc[j]


def _output_gradient(cost_code, act_code, alpha, scale, Z, A, Y, dZ, db):
    """The cost's gradient through the output activation, its bias gradient and the cost sum.

    Softmax with cross-entropy and sigmoid with binary cross-entropy use the combined
    derivative (``scale * (a * sum(y) - y)`` and ``scale * (a - y)``): no division by a
    probability, exact where a saturates. Every other pair multiplies the two derivatives.
    Returns ``sum(term(Y, A))`` in float64; the caller divides by the number of samples.
    """
    n_samples, n_out = Z.shape
    total = 0.0
    acc = np.zeros(n_out, dtype=np.float64)
    for r in range(n_samples):
        if act_code == SOFTMAX and cost_code == CROSS_ENTROPY:
            mass = 0.0
            for j in range(n_out):
                mass += Y[r, j]
            for j in range(n_out):
                total += loss_term(cost_code, Y[r, j], A[r, j])
                dZ[r, j] = scale * (A[r, j] * mass - Y[r, j])
        elif act_code == SOFTMAX:
            for j in range(n_out):
                total += loss_term(cost_code, Y[r, j], A[r, j])
                dZ[r, j] = scale * loss_term_derivative(cost_code, Y[r, j], A[r, j])
            scratch = np.empty(n_out, dtype=Z.dtype)
            upstream = dZ[r].copy()
            softmax_row_backward(Z[r], upstream, scratch, dZ[r])
        elif act_code == SIGMOID and cost_code == BINARY_CROSS_ENTROPY:
            for j in range(n_out):
                total += loss_term(cost_code, Y[r, j], A[r, j])
                dZ[r, j] = scale * (A[r, j] - Y[r, j])
        else:
            for j in range(n_out):
                total += loss_term(cost_code, Y[r, j], A[r, j])
                dZ[r, j] = scale * loss_term_derivative(cost_code, Y[r, j], A[r, j]) * \
                    activation_derivative(act_code, Z[r, j], alpha)
        for j in range(n_out):
            acc[j] += dZ[r, j]
    for j in range(n_out):
        db[j] = acc[j]
    return total


def _scale_mask(A, mask):
    """A *= mask in place (dropout forward and backward)."""
    flat = A.reshape(-1)
    m = mask.reshape(-1)
    for i in prange(flat.size):
        flat[i] *= m[i]


bias_activation_serial = build(_bias_activation, "_serial", **SERIAL_JIT)
bias_activation_parallel = build(_bias_activation, "_parallel", **LAYER_JIT)
activation_backward_bias_serial = build(_activation_backward_bias, "_serial", **SERIAL_JIT)
activation_backward_bias_parallel = build(_activation_backward_bias, "_parallel", **LAYER_JIT)
_column_sums_into = njit(**SERIAL_JIT)(_column_sums_into)
output_gradient = njit(**SERIAL_JIT)(_output_gradient)
scale_mask = njit(**SERIAL_JIT)(_scale_mask)
