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
  disagreement at each step: where g is smooth G grows linearly with the step (the steps
  actually taken: the 2 is their ratio) and this is
  ~0 however curved g is, while a kink crossed by either step breaks the proportion. (A
  single G cannot tell strong curvature from a kink: over 50,000 samples, curvature hid a
  real float32 accumulation bug that way.) That proportion also holds, by chance, for a
  kink a third of the step from x_i, so the indicator is the larger of it and
  ``|D(h/2) - D(h)|`` (three times the Richardson correction; the h^2 truncation where g is
  smooth): for one kink crossed at any distance the larger of the two bounds the error the
  kink leaves in the Richardson value.

Steps: ``h_i = step_scale * max(1, |x_i|)`` when ``relative`` is true, else ``step_scale``.
``h+ = (x_i + h_i) - x_i`` and ``h- = x_i - (x_i - h_i)`` are the steps actually taken in
floating point (no fastmath here, so the subtraction is not folded away).

All arrays are contiguous, of the evaluation dtype (float64 unless the function being checked
only accepts float32).
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_JIT, EXACT_SCALAR_JIT, SUM_JIT
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
    fine_span = h_plus + h_minus
    up, down, h_plus, h_minus = coarse
    coarse_gap = (up / h_plus - down / h_minus) / 2.0
    correction = central - (up + down) / (h_plus + h_minus)
    gap = kink_indicator(coarse_gap, gap, (h_plus + h_minus) / fine_span, correction,
                         central)
    return central + correction / 3.0, gap


@njit(**EXACT_SCALAR_JIT)
def kink_indicator(coarse_gap, fine_gap, ratio, correction, central):
    """The larger of ``|G(h) - ratio G(h/2)|`` and ``|D(h/2) - D(h)|`` (``correction``), less
    what float64 rounds in forming them (``KINK_ROUNDING`` eps of the one-sided slopes).

    ``ratio`` is that of the steps actually taken (x's rounding keeps it from 2: G grows with
    them). ``fastgrad.methods.exhaustive.kink_indicators`` is the NumPy twin.
    """
    rounding = KINK_ROUNDING * EPS64 * (abs(central) + abs(coarse_gap))
    return max(max(abs(coarse_gap - ratio * fine_gap), abs(correction)) - rounding, 0.0)


#: Float64 eps, and how many of them of the one-sided slopes the kink indicator's own
#: arithmetic may round (each slope divides a change by its step: 1 eps; G and D subtract
#: two, the indicator subtracts two of those).
EPS64 = float(np.finfo(np.float64).eps)
KINK_ROUNDING = 8.0


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


@njit(**SUM_JIT)
def _tanh_levels_shared(shifts_coarse, shifts_fine, y, slope, weights):
    """``_tanh_level`` at both step sizes with one division per sample instead of four.

    With ``u = y t`` and ``q = 1 - u^2``, ``1 / (1 + u) = (1 - u) / q`` and
    ``1 / (1 - u) = (1 + u) / q``; one reciprocal ``R = 1 / (q_coarse q_fine)`` gives both
    ``1 / q`` as ``q_other R``. Every step is still a product and a quotient of positive
    factors: no cancellation. The caller guarantees ``|t| <= 1/2`` (so ``q >= 3/4``). The
    sums over samples may be re-associated (``SUM_JIT``), which is what lets them vectorise.
    """
    up_coarse = 0.0
    down_coarse = 0.0
    up_fine = 0.0
    down_fine = 0.0
    for s in range(shifts_coarse.size):
        t_coarse = shifts_coarse[s]
        t_fine = shifts_fine[s]
        u_coarse = y[s] * t_coarse
        u_fine = y[s] * t_fine
        q_coarse = 1.0 - u_coarse * u_coarse
        q_fine = 1.0 - u_fine * u_fine
        reciprocal = 1.0 / (q_coarse * q_fine)
        weight = weights[s] * slope[s] * reciprocal
        w_coarse = weight * t_coarse * q_fine
        w_fine = weight * t_fine * q_coarse
        up_coarse += w_coarse * (1.0 - u_coarse)
        down_coarse += w_coarse * (1.0 + u_coarse)
        up_fine += w_fine * (1.0 - u_fine)
        down_fine += w_fine * (1.0 + u_fine)
    return up_coarse, down_coarse, up_fine, down_fine


#: Largest |t| for which ``_tanh_levels_series`` is exact to double precision.
TANH_SERIES_LIMIT = 2.0**-10


@njit(**SUM_JIT)
def _tanh_levels_series(shifts_coarse, shifts_fine, y, slope, weights):
    """``_tanh_levels_shared`` for rows with ``|t| <= TANH_SERIES_LIMIT``: no division.

    ``1 / q = 1 / (1 - u^2) = 1 + u^2 + u^4 + ...``; with ``|u| <= |t| <= 2^-10`` the terms
    after ``u^4`` are below ``2^-60``: the sum to ``u^4`` is ``1 / q`` to double precision.
    """
    up_coarse = 0.0
    down_coarse = 0.0
    up_fine = 0.0
    down_fine = 0.0
    for s in range(shifts_coarse.size):
        t_coarse = shifts_coarse[s]
        t_fine = shifts_fine[s]
        weight = weights[s] * slope[s]
        u_coarse = y[s] * t_coarse
        u_fine = y[s] * t_fine
        a_coarse = u_coarse * u_coarse
        a_fine = u_fine * u_fine
        w_coarse = weight * t_coarse * (1.0 + a_coarse * (1.0 + a_coarse))
        w_fine = weight * t_fine * (1.0 + a_fine * (1.0 + a_fine))
        up_coarse += w_coarse * (1.0 - u_coarse)
        down_coarse += w_coarse * (1.0 + u_coarse)
        up_fine += w_fine * (1.0 - u_fine)
        down_fine += w_fine * (1.0 + u_fine)
    return up_coarse, down_coarse, up_fine, down_fine


@njit(**SUM_JIT)
def _tanh_level_fast(shifts, y, slope, weights, series):
    """``_tanh_level`` at one step size (order 2): ``1 / (1 +- u) = (1 -+ u) / q``.

    ``1 / q`` is the series ``1 + u^2 + u^4`` when ``series`` (``|t| <= TANH_SERIES_LIMIT``),
    else one division (the caller guarantees ``|t| <= 1/2``).
    """
    up = 0.0
    down = 0.0
    for s in range(shifts.size):
        t = shifts[s]
        u = y[s] * t
        a = u * u
        if series:
            w = weights[s] * slope[s] * t * (1.0 + a * (1.0 + a))
        else:
            w = weights[s] * slope[s] * t / (1.0 - a)
        up += w * (1.0 - u)
        down += w * (1.0 + u)
    return up, down


@njit(**EXACT_SCALAR_JIT)
def _largest_abs(values):
    largest = 0.0
    for value in values:
        largest = max(largest, abs(value))
    return largest


#: Columns per parallel task: each column's tables are read once per call, then reused by
#: every row of the call from the first level of cache.
TANH_COLUMN_BLOCK = 32


@njit(**EXACT_JIT)
def dense_tanh_differences(inputs_t, Z_t, Y_t, slope_t, dLdf_t, shifts_coarse, shifts_fine,
                           param, step_scale, relative, order, central, gap):
    """``dense_differences`` for tanh, with the addition theorem (see ``_tanh_level``).

    The perturbation of ``param[i, j]`` never has to be stored, so its step is the nominal
    ``step_scale`` exactly for every element with ``|param| <= 1`` (all of them when steps are
    not relative); ``shifts_*[i, s] = tanh(step * inputs[s, i])`` are tabulated per row and
    sample. Elements with a larger relative step take the general path. Columns run in
    parallel blocks, each column through every row of the call while its tables are in cache.
    A row
    whose ``|t|`` stays within 1/2 takes one division per sample for both step sizes
    (``_tanh_levels_shared``, ``_tanh_level_fast``), and none when it stays within
    ``TANH_SERIES_LIMIT`` (``_tanh_levels_series``; the usual case, t is about the step).
    """
    n_rows, n_out = param.shape
    # per row: 0 general formula, 1 one division per sample, 2 no division
    kind = np.zeros(n_rows, dtype=np.int64)
    for i in range(n_rows):
        largest = max(_largest_abs(shifts_coarse[i]), _largest_abs(shifts_fine[i]))
        if largest <= TANH_SERIES_LIMIT:
            kind[i] = 2
        elif largest <= 0.5:
            kind[i] = 1
    n_blocks = (n_out + TANH_COLUMN_BLOCK - 1) // TANH_COLUMN_BLOCK
    for block in prange(n_blocks):
        for j in range(block * TANH_COLUMN_BLOCK, min((block + 1) * TANH_COLUMN_BLOCK, n_out)):
            for i in range(n_rows):
                if relative and abs(param[i, j]) > 1.0:
                    coarse = _dense_level(TANH, 0.0, inputs_t[i], Z_t[j], Y_t[j], dLdf_t[j],
                                          param[i, j], step_scale, relative)
                    fine = coarse
                    if order == 4:
                        fine = _dense_level(TANH, 0.0, inputs_t[i], Z_t[j], Y_t[j], dLdf_t[j],
                                            param[i, j], step_scale / 2, relative)
                elif kind[i] > 0 and order == 2:
                    up, down = _tanh_level_fast(shifts_coarse[i], Y_t[j], slope_t[j],
                                                dLdf_t[j], kind[i] == 2)
                    coarse = (up, down, step_scale, step_scale)
                    fine = coarse
                elif kind[i] > 0:
                    if kind[i] == 2:
                        up_c, down_c, up_f, down_f = _tanh_levels_series(
                            shifts_coarse[i], shifts_fine[i], Y_t[j], slope_t[j], dLdf_t[j])
                    else:
                        up_c, down_c, up_f, down_f = _tanh_levels_shared(
                            shifts_coarse[i], shifts_fine[i], Y_t[j], slope_t[j], dLdf_t[j])
                    coarse = (up_c, down_c, step_scale, step_scale)
                    fine = (up_f, down_f, step_scale / 2, step_scale / 2)
                else:
                    coarse = _tanh_level(shifts_coarse[i], Y_t[j], slope_t[j], dLdf_t[j],
                                         step_scale)
                    fine = coarse
                    if order == 4:
                        fine = _tanh_level(shifts_fine[i], Y_t[j], slope_t[j], dLdf_t[j],
                                           step_scale / 2)
                central[i, j], gap[i, j] = combine(coarse, fine, order)
