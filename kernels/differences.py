"""Finite-difference kernels of the structured checker.

Each kernel differences every element of a parameter vector and recomputes only what one
perturbation changes. For element i with step h_i it writes

* ``central[i]``: for ``order == 2`` the central difference
  ``D(h) = (g(x + h e_i) - g(x - h e_i)) / (h+ + h-)`` of the contracted scalar
  ``g(x) = sum(f(x) * dLdf)``; for ``order == 4`` the Richardson extrapolation
  ``D(h/2) + (D(h/2) - D(h)) / 3``, which cancels the h^2 term of the truncation error;
* ``gap[i]``, the kink indicator. For order 2 it is ``(forward - backward) / 2``, half the
  disagreement of the one-sided differences: about ``h * g''`` where g is smooth, about half
  the jump in slope at a kink. For order 4 it is ``|G(h) - 2 G(h/2)|`` with G that half
  disagreement at each step: where g is smooth G grows linearly with the step and this is
  ~0 however curved g is, while a kink crossed by either step breaks the proportion. (A
  single G cannot tell strong curvature from a kink: over 50,000 samples, curvature hid a
  real float32 accumulation bug that way.)

Steps: ``h_i = step_scale * max(1, |x_i|)`` when ``relative`` is true, else ``step_scale``.
``h+ = (x_i + h_i) - x_i`` and ``h- = x_i - (x_i - h_i)`` are the steps actually taken in
floating point (no fastmath here, so the subtraction is not folded away).

All arrays are contiguous, of the evaluation dtype (float64 unless the function being checked
only accepts float32).
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_JIT, EXACT_SCALAR_JIT
from .activations import TANH, activation_value
from .losses import loss_term


@njit(**EXACT_SCALAR_JIT)
def steps(x, step_scale, relative):
    """Return (x + h, x - h, h+, h-) for one element."""
    h = step_scale * max(1.0, abs(x)) if relative else step_scale
    x_plus = x + h
    x_minus = x - h
    return x_plus, x_minus, x_plus - x, x - x_minus


@njit(**EXACT_SCALAR_JIT)
def combine(coarse, fine, order):
    """(central, gap) from the (up, down, h+, h-) sums at step h (coarse) and h/2 (fine).

    ``up`` and ``down`` are the changes ``g(x + h+) - g(x)`` and ``g(x) - g(x - h-)``. For
    order 2 only ``coarse`` is used.
    """
    if order == 2:
        fine = coarse
    up, down, h_plus, h_minus = fine
    central = (up + down) / (h_plus + h_minus)
    gap = (up / h_plus - down / h_minus) / 2.0
    if order == 2:
        return central, gap
    up, down, h_plus, h_minus = coarse
    coarse_gap = (up / h_plus - down / h_minus) / 2.0
    gap = np.abs(coarse_gap - 2.0 * gap)  # also runs on arrays (exhaustive, directional)
    return central + (central - (up + down) / (h_plus + h_minus)) / 3.0, gap


@njit(**EXACT_SCALAR_JIT)
def _activation_level(code, alpha, x, y0, weight, step_scale, relative):
    x_plus, x_minus, h_plus, h_minus = steps(x, step_scale, relative)
    up = weight * (activation_value(code, x_plus, alpha) - y0)
    down = weight * (y0 - activation_value(code, x_minus, alpha))
    return up, down, h_plus, h_minus


@njit(**EXACT_JIT)
def elementwise_differences(code, alpha, x, dLdf, step_scale, relative, order, central, gap):
    """Differences of g(x) = sum_i dLdf[i] * act(x[i]): O(1) work per element."""
    for i in prange(x.size):
        y0 = activation_value(code, x[i], alpha)
        coarse = _activation_level(code, alpha, x[i], y0, dLdf[i], step_scale, relative)
        fine = coarse
        if order == 4:
            fine = _activation_level(code, alpha, x[i], y0, dLdf[i], step_scale / 2, relative)
        central[i], gap[i] = combine(coarse, fine, order)


@njit(**EXACT_SCALAR_JIT)
def _loss_level(code, y, y_hat, t0, scale, step_scale, relative):
    x_plus, x_minus, h_plus, h_minus = steps(y_hat, step_scale, relative)
    up = scale * (loss_term(code, y, x_plus) - t0)
    down = scale * (t0 - loss_term(code, y, x_minus))
    return up, down, h_plus, h_minus


@njit(**EXACT_JIT)
def loss_differences(code, y, y_hat, scale, step_scale, relative, order, central, gap):
    """Differences of g(y_hat) = scale * sum_i term(y[i], y_hat[i]): O(1) per element."""
    for i in prange(y_hat.size):
        t0 = loss_term(code, y[i], y_hat[i])
        coarse = _loss_level(code, y[i], y_hat[i], t0, scale, step_scale, relative)
        fine = coarse
        if order == 4:
            fine = _loss_level(code, y[i], y_hat[i], t0, scale, step_scale / 2, relative)
        central[i], gap[i] = combine(coarse, fine, order)


@njit(**EXACT_SCALAR_JIT)
def _softmax_change(p, c, delta):
    """Change of sum_j d_j softmax(z)_j when z_c moves by delta.

    With p = softmax(z)_c and c = d_c - sum_j d_j p_j, the exact change is
    u * c / (1 + u) with u = p * expm1(delta): no cancellation, O(1) per element.
    """
    u = p * np.expm1(delta)
    return u * c / (1.0 + u)


@njit(**EXACT_SCALAR_JIT)
def _softmax_level(p, coupling, x, step_scale, relative):
    _, _, h_plus, h_minus = steps(x, step_scale, relative)
    return (_softmax_change(p, coupling, h_plus), -_softmax_change(p, coupling, -h_minus),
            h_plus, h_minus)


@njit(**EXACT_JIT)
def softmax_differences(x, dLdf, step_scale, relative, order, central, gap):
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
            coupling = dLdf[r, j] - mean_d
            coarse = _softmax_level(p[j], coupling, x[r, j], step_scale, relative)
            fine = coarse
            if order == 4:
                fine = _softmax_level(p[j], coupling, x[r, j], step_scale / 2, relative)
            central[r, j], gap[r, j] = combine(coarse, fine, order)


@njit(**EXACT_SCALAR_JIT)
def _dense_level(code, alpha, shifts, z, y, weights, param, step_scale, relative):
    _, _, h_plus, h_minus = steps(param, step_scale, relative)
    up = 0.0
    down = 0.0
    for s in range(shifts.size):
        shift = shifts[s]
        if shift == 0.0:
            continue
        up += weights[s] * (activation_value(code, z[s] + h_plus * shift, alpha) - y[s])
        down += weights[s] * (y[s] - activation_value(code, z[s] - h_minus * shift, alpha))
    return up, down, h_plus, h_minus


@njit(**EXACT_JIT)
def dense_differences(code, alpha, inputs_t, Z_t, Y_t, dLdf_t, param, step_scale, relative,
                      order, central, gap):
    """Differences for a dense layer's parameter through an elementwise activation.

    A step on ``param[i, j]`` moves column j of the pre-activation by ``h * inputs[:, i]``
    (``inputs`` is X for W, a column of ones for b), so only that column is recomputed:
    O(n_samples) work per element. Arrays are transposed so each inner loop is contiguous:
    ``inputs_t`` (n_rows, n_samples), ``Z_t``, ``Y_t = act(Z_t)``, ``dLdf_t`` (n_out, n_samples).
    """
    n_rows, n_out = param.shape
    for i in prange(n_rows):
        for j in range(n_out):
            coarse = _dense_level(code, alpha, inputs_t[i], Z_t[j], Y_t[j], dLdf_t[j],
                                  param[i, j], step_scale, relative)
            fine = coarse
            if order == 4:
                fine = _dense_level(code, alpha, inputs_t[i], Z_t[j], Y_t[j], dLdf_t[j],
                                    param[i, j], step_scale / 2, relative)
            central[i, j], gap[i, j] = combine(coarse, fine, order)


@njit(**EXACT_SCALAR_JIT)
def _dense_softmax_level(shifts, p, coupling, param, step_scale, relative):
    _, _, h_plus, h_minus = steps(param, step_scale, relative)
    up = 0.0
    down = 0.0
    for s in range(shifts.size):
        shift = shifts[s]
        if shift == 0.0:
            continue
        up += _softmax_change(p[s], coupling[s], h_plus * shift)
        down -= _softmax_change(p[s], coupling[s], -h_minus * shift)
    return up, down, h_plus, h_minus


@njit(**EXACT_JIT)
def dense_softmax_differences(inputs_t, P_t, C_t, param, step_scale, relative, order, central,
                              gap):
    """Differences for a dense layer's parameter through a row softmax.

    A step on ``param[i, j]`` moves logit j of every sample s by ``h * inputs[s, i]``; the
    change of sum_k dLdf[s, k] * softmax_k is ``_softmax_change(P[s, j], C[s, j], shift)``
    with ``P`` the softmax output and ``C[s, j] = dLdf[s, j] - sum_k dLdf[s, k] P[s, k]``.
    """
    n_rows, n_out = param.shape
    for i in prange(n_rows):
        for j in range(n_out):
            coarse = _dense_softmax_level(inputs_t[i], P_t[j], C_t[j], param[i, j], step_scale,
                                          relative)
            fine = coarse
            if order == 4:
                fine = _dense_softmax_level(inputs_t[i], P_t[j], C_t[j], param[i, j],
                                            step_scale / 2, relative)
            central[i, j], gap[i, j] = combine(coarse, fine, order)


@njit(**EXACT_SCALAR_JIT)
def _tanh_level(shifts, y, slope, weights, step):
    """Changes of sum_s weights * tanh(z_s +- step * x_s) with tabulated tanh(step * x_s).

    ``tanh(z + d) - tanh(z) = t (1 - y^2) / (1 + y t)`` and
    ``tanh(z) - tanh(z - d) = t (1 - y^2) / (1 - y t)`` with ``y = tanh(z)``, ``t = tanh(d)``:
    exact identities, free of cancellation, with no transcendental call in the loop.
    """
    up = 0.0
    down = 0.0
    for s in range(shifts.size):
        t = shifts[s]
        w = weights[s] * slope[s] * t
        yt = y[s] * t
        up += w / (1.0 + yt)
        down += w / (1.0 - yt)
    return up, down, step, step


@njit(**EXACT_JIT)
def dense_tanh_differences(inputs_t, Z_t, Y_t, slope_t, dLdf_t, shifts_coarse, shifts_fine,
                           param, step_scale, relative, order, central, gap):
    """``dense_differences`` for tanh, with the addition theorem (see ``_tanh_level``).

    The perturbation of ``param[i, j]`` never has to be stored, so its step is the nominal
    ``step_scale`` exactly for every element with ``|param| <= 1`` (all of them when steps are
    not relative); ``shifts_*[i, s] = tanh(step * inputs[s, i])`` are tabulated per row and
    sample. Elements with a larger relative step take the general path.
    """
    n_rows, n_out = param.shape
    for i in prange(n_rows):
        for j in range(n_out):
            if relative and abs(param[i, j]) > 1.0:
                coarse = _dense_level(TANH, 0.0, inputs_t[i], Z_t[j], Y_t[j], dLdf_t[j],
                                      param[i, j], step_scale, relative)
                fine = coarse
                if order == 4:
                    fine = _dense_level(TANH, 0.0, inputs_t[i], Z_t[j], Y_t[j], dLdf_t[j],
                                        param[i, j], step_scale / 2, relative)
            else:
                coarse = _tanh_level(shifts_coarse[i], Y_t[j], slope_t[j], dLdf_t[j],
                                     step_scale)
                fine = coarse
                if order == 4:
                    fine = _tanh_level(shifts_fine[i], Y_t[j], slope_t[j], dLdf_t[j],
                                       step_scale / 2)
            central[i, j], gap[i, j] = combine(coarse, fine, order)
