"""The structured dense tanh kernel against the definition, on every path it can take.

``dense_tanh_differences`` picks, per row, a division-free series (small ``t = tanh(h x)``),
one shared division per sample (``|t| <= 1/2``) or the plain identity (larger ``t``), and
the general path for elements with a relative step above 1. Each is compared here with
``g(W) = sum(tanh(X @ W) * dLdY)`` re-evaluated naively at the perturbed points.
"""

import numpy as np
import pytest

from fastgrad.kernels import differences

import reference


def _naive(X, W, dLdY, step, relative, order):
    """(central, gap) with the kernel's definitions (see ``kernels.differences``)."""

    def g(M):
        return float(np.sum(np.tanh(X @ M) * dLdY))

    base = g(W)
    central = np.empty_like(W)
    gap = np.empty_like(W)
    for i, j in np.ndindex(W.shape):
        w = W[i, j]
        nominal = step * max(1.0, abs(w)) if relative else step
        levels = []
        for h in (nominal, nominal / 2)[:order // 2]:
            M = W.copy()
            M[i, j] = w + h
            up = g(M) - base
            h_up = M[i, j] - w
            M[i, j] = w - h
            down = base - g(M)
            h_down = w - M[i, j]
            if abs(w) <= 1.0 or not relative:  # the kernel steps by the nominal h exactly
                up *= h / h_up
                down *= h / h_down
                h_up = h_down = h
            levels.append((up, down, h_up, h_down))
        estimates = [(u + d) / (hu + hd) for u, d, hu, hd in levels]
        halves = [(u / hu - d / hd) / 2 for u, d, hu, hd in levels]
        if order == 2:
            central[i, j], gap[i, j] = estimates[0], halves[0]
        else:
            central[i, j], gap[i, j] = reference.richardson_and_kink(levels)
    return central, gap


@pytest.mark.nojit
@pytest.mark.parametrize("order", [2, 4])
# 1e-5: every row on the series; 0.25: shared division and (rows with |x| > 2.2) the plain
# identity; relative steps with |W| > 1 take the general path
@pytest.mark.parametrize("step", [1e-5, 0.25])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (9, 70)])
def test_dense_tanh_kernel_matches_the_definition(shape, step, order):
    rng = np.random.default_rng(4)
    n_in, n_out = shape
    X = rng.normal(size=(6, n_in)) * np.linspace(0.2, 2.0, n_in)  # rows of every kind
    W = rng.normal(size=(n_in, n_out))
    W.flat[0] = 2.5  # relative step above 1
    dLdY = rng.normal(size=(6, n_out))
    Z = X @ W
    Y = np.tanh(Z)
    slope = (1 - Y) * (1 + Y)
    inputs_t = np.ascontiguousarray(X.T)
    central = np.empty_like(W)
    gap = np.empty_like(W)
    differences.dense_tanh_differences(
        inputs_t, np.ascontiguousarray(Z.T), np.ascontiguousarray(Y.T),
        np.ascontiguousarray(slope.T), np.ascontiguousarray(dLdY.T), np.tanh(step * inputs_t),
        np.tanh(step / 2 * inputs_t), W, step, True, order, central, gap)
    expected, expected_gap = _naive(X, W, dLdY, step, True, order)
    # the naive differences carry ~1e-16 / step of rounding; the kernel's are cancellation-free
    noise = 1e-15 / step * np.abs(dLdY).sum()
    np.testing.assert_allclose(central, expected, rtol=1e-9, atol=noise)
    np.testing.assert_allclose(gap, expected_gap, rtol=1e-6, atol=noise)
