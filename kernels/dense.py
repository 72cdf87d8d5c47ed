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
from .activations import (
    IDENTITY,
    RELU,
    SIGMOID,
    SOFTMAX,
    activation_derivative,
    activation_value,
)
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
# (``_config.build``: each under a name, and so a cache entry, of its own), except the
# backward epilogue, whose serial build sweeps whole rows instead of column blocks.

SERIAL_JIT = {**LAYER_JIT, "parallel": False}

# ReLU and the identity, the activations of nearly every hidden and output layer, get loops of
# their own with the rule chosen once outside them: with the activation code tested per
# element (``activation_value``'s chain of ifs) LLVM keeps the loop scalar, and the epilogue
# of a 784->256 ReLU layer took longer than NumPy's separate passes (batch 256, float64, one
# thread: 138 us forward and 198 us backward before, 15 us and 19 us now). The numbers are
# the same, bit for bit: the same rule, written out.


def _bias_activation(code, alpha, Z, b, Y):
    """Z += b; Y = act(Z). ReLU and the identity have loops of their own (see above)."""
    n_samples, n_out = Z.shape
    if code == SOFTMAX:
        for r in prange(n_samples):
            for j in range(n_out):
                Z[r, j] += b[j]
            softmax_row(Z[r], Y[r])
    elif code == RELU:
        for r in prange(n_samples):
            for j in range(n_out):
                z = Z[r, j] + b[j]
                Z[r, j] = z
                Y[r, j] = z if z > 0 else 0.0
    elif code == IDENTITY:
        for r in prange(n_samples):
            for j in range(n_out):
                z = Z[r, j] + b[j]
                Z[r, j] = z
                Y[r, j] = z
    else:
        for r in prange(n_samples):
            for j in range(n_out):
                Z[r, j] += b[j]
            for j in range(n_out):
                Y[r, j] = activation_value(code, Z[r, j], alpha)


def _backward_columns(code, alpha, Z, dLdY, dZ, db, start, stop):
    """dZ = f'(Z) * dLdY and db = column sums of dZ for columns [start, stop), row by row.

    db is accumulated in float64, each column over the samples in order.
    """
    acc = np.zeros(stop - start, dtype=np.float64)
    if code == RELU:   # f' is 1 or 0: d is dLdY or 0 * dLdY (NaN and inf stay NaN)
        for r in range(Z.shape[0]):
            for j in range(start, stop):
                g = dLdY[r, j]
                d = g if Z[r, j] > 0 else 0.0 * g
                dZ[r, j] = d
                acc[j - start] += d
    elif code == IDENTITY:
        for r in range(Z.shape[0]):
            for j in range(start, stop):
                d = 1.0 * dLdY[r, j]
                dZ[r, j] = d
                acc[j - start] += d
    else:
        for r in range(Z.shape[0]):
            for j in range(start, stop):
                d = activation_derivative(code, Z[r, j], alpha) * dLdY[r, j]
                dZ[r, j] = d
                acc[j - start] += d
    for j in range(start, stop):
        db[j] = acc[j - start]


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
        _backward_columns(code, alpha, Z, dLdY, dZ, db, start, min(start + COLUMN_BLOCK, n_out))


def _activation_backward_bias_rows(code, alpha, Z, dLdY, dZ, db):
    """The serial build of ``_activation_backward_bias``: all columns in one row-major sweep
    (4x faster than blocks of 64 columns on one thread, 256-wide layers) and one softmax
    scratch row for all samples. The same sums in the same order."""
    n_samples, n_out = Z.shape
    if code == SOFTMAX:
        scratch = np.empty(n_out, dtype=Z.dtype)
        for r in range(n_samples):
            softmax_row_backward(Z[r], dLdY[r], scratch, dZ[r])
        _column_sums_into(dZ, db)
        return
    _backward_columns(code, alpha, Z, dLdY, dZ, db, 0, n_out)


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


_column_sums_into = njit(**SERIAL_JIT)(_column_sums_into)
_backward_columns = njit(**SERIAL_JIT)(_backward_columns)
bias_activation_serial = build(_bias_activation, "_serial", **SERIAL_JIT)
bias_activation_parallel = build(_bias_activation, "_parallel", **LAYER_JIT)
activation_backward_bias_serial = njit(**SERIAL_JIT)(_activation_backward_bias_rows)
activation_backward_bias_parallel = njit(**LAYER_JIT)(_activation_backward_bias)
output_gradient = njit(**SERIAL_JIT)(_output_gradient)
scale_mask = njit(**SERIAL_JIT)(_scale_mask)
