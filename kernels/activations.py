"""Elementwise activation kernels.

Every activation is identified by an integer code so that one compiled kernel serves all of
them (compile time matters: each kernel is compiled once per dtype). The scalar rules are
written side by side, forward next to derivative, so the math can be checked at a glance.

Kernels take 1-D contiguous arrays of one float dtype; the public wrappers in
``fastgrad.activations`` ravel and allocate.
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_SCALAR_JIT, LAYER_JIT

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SELU = 6
SILU = 7
SOFTPLUS = 8
SOFTSIGN = 9
ARCTAN = 10
BENT_IDENTITY = 11
GAUSSIAN = 12
PIECEWISE_LINEAR = 13
#: Not elementwise: handled by ``kernels.softmax``; the code lets layers name it uniformly.
SOFTMAX = 14

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


@njit(**EXACT_SCALAR_JIT)
def sigmoid(x):
    """Logistic function, evaluated without overflow for either sign of x."""
    if x >= 0:
        return 1.0 / (1.0 + np.exp(-x))
    z = np.exp(x)
    return z / (1.0 + z)


@njit(**EXACT_SCALAR_JIT)
def activation_value(code, x, alpha):
    """y = f(x) for one element."""
    if code == IDENTITY:
        return x
    if code == SIGMOID:
        return sigmoid(x)
    if code == TANH:
        return np.tanh(x)
    if code == RELU:
        return x if x > 0 else 0.0
    if code == LEAKY_RELU:
        return x if x > 0 else alpha * x
    if code == ELU:
        return x if x > 0 else alpha * np.expm1(x)
    if code == SELU:
        return SELU_LAMBDA * x if x > 0 else SELU_LAMBDA * SELU_ALPHA * np.expm1(x)
    if code == SILU:
        return x * sigmoid(x)
    if code == SOFTPLUS:
        return max(x, 0.0) + np.log1p(np.exp(-abs(x)))
    if code == SOFTSIGN:
        return x / (1.0 + abs(x))
    if code == ARCTAN:
        return np.arctan(x)
    if code == BENT_IDENTITY:
        return (np.sqrt(x * x + 1.0) - 1.0) / 2.0 + x
    if code == GAUSSIAN:
        return np.exp(-x * x)
    if code == PIECEWISE_LINEAR:
        return min(max(x / alpha, -1.0), 1.0)
    return np.nan


@njit(**EXACT_SCALAR_JIT)
def activation_derivative(code, x, alpha):
    """dy/dx for one element, next to ``activation_value`` rule by rule."""
    if code == IDENTITY:
        return 1.0
    if code == SIGMOID:
        s = sigmoid(x)
        return s * (1.0 - s)
    if code == TANH:
        t = np.tanh(x)
        return 1.0 - t * t
    if code == RELU:
        return 1.0 if x > 0 else 0.0
    if code == LEAKY_RELU:
        return 1.0 if x > 0 else alpha
    if code == ELU:
        return 1.0 if x > 0 else alpha * np.exp(x)
    if code == SELU:
        return SELU_LAMBDA if x > 0 else SELU_LAMBDA * SELU_ALPHA * np.exp(x)
    if code == SILU:
        s = sigmoid(x)
        return s + x * s * (1.0 - s)
    if code == SOFTPLUS:
        return sigmoid(x)
    if code == SOFTSIGN:
        d = 1.0 + abs(x)
        return 1.0 / (d * d)
    if code == ARCTAN:
        return 1.0 / (1.0 + x * x)
    if code == BENT_IDENTITY:
        return x / (2.0 * np.sqrt(x * x + 1.0)) + 1.0
    if code == GAUSSIAN:
        return -2.0 * x * np.exp(-x * x)
    if code == PIECEWISE_LINEAR:
        return 1.0 / alpha if -alpha < x < alpha else 0.0
    return np.nan


@njit(**LAYER_JIT)
def activation_forward(code, alpha, x, out):
    """out[i] = f(x[i])."""
    for i in prange(x.size):
        out[i] = activation_value(code, x[i], alpha)


@njit(**LAYER_JIT)
def activation_backward(code, alpha, x, dLdY, out):
    """out[i] = f'(x[i]) * dLdY[i]."""
    for i in prange(x.size):
        out[i] = activation_derivative(code, x[i], alpha) * dLdY[i]
