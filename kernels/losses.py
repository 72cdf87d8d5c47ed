"""Loss kernels: a loss is the mean over samples of a sum of elementwise terms.

``L = (1 / n_samples) * sum_ij term(Y[i, j], Y_hat[i, j])`` and
``dL/dY_hat[i, j] = term'(Y[i, j], Y_hat[i, j]) / n_samples``. Terms with a zero label weight
contribute exactly zero (the limit of ``0 * log(0)``), never NaN.
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_SCALAR_JIT, LAYER_JIT

CROSS_ENTROPY = 0
BINARY_CROSS_ENTROPY = 1
SQUARED_ERROR = 2
ABSOLUTE_ERROR = 3


@njit(**EXACT_SCALAR_JIT)
def loss_term(code, y, y_hat):
    """term(y, y_hat) for one element."""
    if code == CROSS_ENTROPY:
        return -y * np.log(y_hat) if y != 0 else 0.0
    if code == BINARY_CROSS_ENTROPY:
        positive = -y * np.log(y_hat) if y != 0 else 0.0
        negative = -(1.0 - y) * np.log1p(-y_hat) if y != 1 else 0.0
        return positive + negative
    if code == SQUARED_ERROR:
        return (y_hat - y) * (y_hat - y)
    if code == ABSOLUTE_ERROR:
        return abs(y_hat - y)
    return np.nan


@njit(**EXACT_SCALAR_JIT)
def loss_term_derivative(code, y, y_hat):
    """d term / d y_hat for one element, next to ``loss_term`` rule by rule."""
    if code == CROSS_ENTROPY:
        return -y / y_hat if y != 0 else 0.0
    if code == BINARY_CROSS_ENTROPY:
        positive = -y / y_hat if y != 0 else 0.0
        negative = (1.0 - y) / (1.0 - y_hat) if y != 1 else 0.0
        return positive + negative
    if code == SQUARED_ERROR:
        return 2.0 * (y_hat - y)
    if code == ABSOLUTE_ERROR:
        return np.sign(y_hat - y)
    return np.nan


@njit(**LAYER_JIT)
def loss_sum(code, Y, Y_hat):
    """sum_i term(Y[i], Y_hat[i]) over 1-D arrays, accumulated in float64."""
    total = 0.0
    for i in prange(Y.size):
        total += np.float64(loss_term(code, Y[i], Y_hat[i]))
    return total


@njit(**LAYER_JIT)
def loss_gradient(code, scale, Y, Y_hat, out):
    """out[i] = scale * term'(Y[i], Y_hat[i]) over 1-D arrays."""
    for i in prange(Y.size):
        out[i] = scale * loss_term_derivative(code, Y[i], Y_hat[i])


@njit(**LAYER_JIT)
def loss_terms(code, Y, Y_hat, out):
    """out[i] = term(Y[i], Y_hat[i]) over 1-D arrays (each element's share of the loss)."""
    for i in prange(Y.size):
        out[i] = loss_term(code, Y[i], Y_hat[i])
