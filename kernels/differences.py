"""Finite-difference kernels of the structured checker.

Each kernel differences every element of a parameter vector and recomputes only what one
perturbation changes. For element i with step h_i it writes

* ``central[i] = (g(x + h e_i) - g(x - h e_i)) / (h+ + h-)``, the central difference of the
  contracted scalar ``g(x) = sum(f(x) * dLdf)``;
* ``gap[i] = (forward - backward) / 2``, half the disagreement of the one-sided differences.
  It is about ``h * g''`` where g is smooth and about half the jump in slope at a kink, which is
  how the checker tells a kink from a wrong gradient.

Steps: ``h_i = step_scale * max(1, |x_i|)`` when ``relative`` is true, else ``step_scale``.
``h+ = (x_i + h_i) - x_i`` and ``h- = x_i - (x_i - h_i)`` are the steps actually taken in
floating point (no fastmath here, so the subtraction is not folded away).

All arrays are contiguous, of the evaluation dtype (float64 unless the function being checked
only accepts float32).
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_JIT, EXACT_SCALAR_JIT
from .activations import activation_value
from .losses import loss_term


@njit(**EXACT_SCALAR_JIT)
def steps(x, step_scale, relative):
    """Return (x + h, x - h, h+, h-) for one element."""
    h = step_scale * max(1.0, abs(x)) if relative else step_scale
    x_plus = x + h
    x_minus = x - h
    return x_plus, x_minus, x_plus - x, x - x_minus


@njit(**EXACT_JIT)
def elementwise_differences(code, alpha, x, dLdf, step_scale, relative, central, gap):
    """Differences of g(x) = sum_i dLdf[i] * act(x[i]): O(1) work per element."""
    for i in prange(x.size):
        x_plus, x_minus, h_plus, h_minus = steps(x[i], step_scale, relative)
        y0 = activation_value(code, x[i], alpha)
        up = dLdf[i] * (activation_value(code, x_plus, alpha) - y0)
        down = dLdf[i] * (y0 - activation_value(code, x_minus, alpha))
        central[i] = (up + down) / (h_plus + h_minus)
        gap[i] = (up / h_plus - down / h_minus) / 2.0


@njit(**EXACT_JIT)
def loss_differences(code, y, y_hat, scale, step_scale, relative, central, gap):
    """Differences of g(y_hat) = scale * sum_i term(y[i], y_hat[i]): O(1) per element."""
    for i in prange(y_hat.size):
        x_plus, x_minus, h_plus, h_minus = steps(y_hat[i], step_scale, relative)
        t0 = loss_term(code, y[i], y_hat[i])
        up = scale * (loss_term(code, y[i], x_plus) - t0)
        down = scale * (t0 - loss_term(code, y[i], x_minus))
        central[i] = (up + down) / (h_plus + h_minus)
        gap[i] = (up / h_plus - down / h_minus) / 2.0


@njit(**EXACT_SCALAR_JIT)
def _softmax_change(p, c, delta):
    """Change of sum_j d_j softmax(z)_j when z_c moves by delta.

    With p = softmax(z)_c and c = d_c - sum_j d_j p_j, the exact change is
    u * c / (1 + u) with u = p * expm1(delta): no cancellation, O(1) per element.
    """
    u = p * np.expm1(delta)
    return u * c / (1.0 + u)


@njit(**EXACT_JIT)
def softmax_differences(x, dLdf, step_scale, relative, central, gap):
    """Differences of g(x) = sum dLdf * softmax(x) (rows): O(n) per row, O(1) per element."""
    n_rows, n_cols = x.shape
    for r in prange(n_rows):
        row_max = x[r, 0]
        for j in range(1, n_cols):
            row_max = max(row_max, x[r, j])
        p = np.empty(n_cols, dtype=np.float64)
        total = 0.0
        for j in range(n_cols):
            p[j] = np.exp(x[r, j] - row_max)
            total += p[j]
        mean_d = 0.0
        for j in range(n_cols):
            p[j] /= total
            mean_d += dLdf[r, j] * p[j]
        for j in range(n_cols):
            _, _, h_plus, h_minus = steps(x[r, j], step_scale, relative)
            coupling = dLdf[r, j] - mean_d
            up = _softmax_change(p[j], coupling, h_plus)
            down = -_softmax_change(p[j], coupling, -h_minus)
            central[r, j] = (up + down) / (h_plus + h_minus)
            gap[r, j] = (up / h_plus - down / h_minus) / 2.0


@njit(**EXACT_JIT)
def dense_differences(code, alpha, inputs_t, Z_t, Y_t, dLdf_t, param, step_scale, relative,
                      central, gap):
    """Differences for a dense layer's parameter through an elementwise activation.

    A step on ``param[i, j]`` moves column j of the pre-activation by ``h * inputs[:, i]``
    (``inputs`` is X for W, a column of ones for b), so only that column is recomputed:
    O(n_samples) work per element. Arrays are transposed so each inner loop is contiguous:
    ``inputs_t`` (n_rows, n_samples), ``Z_t``, ``Y_t = act(Z_t)``, ``dLdf_t`` (n_out, n_samples).
    """
    n_rows, n_out = param.shape
    n_samples = Z_t.shape[1]
    for i in prange(n_rows):
        for j in range(n_out):
            _, _, h_plus, h_minus = steps(param[i, j], step_scale, relative)
            up = 0.0
            down = 0.0
            for s in range(n_samples):
                shift = inputs_t[i, s]
                if shift == 0.0:
                    continue
                z = Z_t[j, s]
                y0 = Y_t[j, s]
                up += dLdf_t[j, s] * (activation_value(code, z + h_plus * shift, alpha) - y0)
                down += dLdf_t[j, s] * (y0 - activation_value(code, z - h_minus * shift, alpha))
            central[i, j] = (up + down) / (h_plus + h_minus)
            gap[i, j] = (up / h_plus - down / h_minus) / 2.0


@njit(**EXACT_JIT)
def dense_softmax_differences(inputs_t, P_t, C_t, param, step_scale, relative, central, gap):
    """Differences for a dense layer's parameter through a row softmax.

    A step on ``param[i, j]`` moves logit j of every sample s by ``h * inputs[s, i]``; the
    change of sum_k dLdf[s, k] * softmax_k is ``_softmax_change(P[s, j], C[s, j], shift)``
    with ``P`` the softmax output and ``C[s, j] = dLdf[s, j] - sum_k dLdf[s, k] P[s, k]``.
    """
    n_rows, n_out = param.shape
    n_samples = P_t.shape[1]
    for i in prange(n_rows):
        for j in range(n_out):
            _, _, h_plus, h_minus = steps(param[i, j], step_scale, relative)
            up = 0.0
            down = 0.0
            for s in range(n_samples):
                shift = inputs_t[i, s]
                if shift == 0.0:
                    continue
                up += _softmax_change(P_t[j, s], C_t[j, s], h_plus * shift)
                down -= _softmax_change(P_t[j, s], C_t[j, s], -h_minus * shift)
            central[i, j] = (up + down) / (h_plus + h_minus)
            gap[i, j] = (up / h_plus - down / h_minus) / 2.0
