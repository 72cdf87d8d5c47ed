"""Compile every kernel ahead of timing (and load the methods' own, through tiny checks)."""

import time

import numpy as np

from .kernels import activations, dense, differences, directions, losses, model, softmax


def warmup(dtypes=(np.float64, np.float32)):
    """Compile (or load from Numba's cache) every kernel for the given dtypes.

    Parameters
    ----------
    dtypes : sequence of dtype
        Float dtypes to compile for.

    Returns
    -------
    float
        Seconds spent.
    """
    started = time.perf_counter()
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtypes: expected float32 or float64, got {dtype}")
        v = np.linspace(-1, 1, 4, dtype=dtype)
        out = np.empty_like(v)
        m = v.reshape(2, 2)
        out2 = np.empty_like(m)
        activations.activation_forward(activations.TANH, 1.0, v, out)
        activations.activation_backward(activations.TANH, 1.0, v, v, out)
        softmax.softmax_forward(m, out2)
        softmax.softmax_backward(m, m, out2)
        dense.bias_activation_forward(activations.TANH, 1.0, m.copy(), v[:2].copy(), out2)
        dense.activation_backward_rows(activations.TANH, 1.0, m, m, out2)
        dense.column_sums(m, v[:2].copy())
        p = np.full(4, 0.5, dtype=dtype)
        losses.loss_sum(losses.CROSS_ENTROPY, p, p)
        losses.loss_gradient(losses.CROSS_ENTROPY, 1.0, p, p, out)
        differences.elementwise_differences(activations.TANH, 1.0, v, v, 1e-5, True, 4, out,
                                            out.copy())
        differences.loss_differences(losses.CROSS_ENTROPY, p, p, 1.0, 1e-5, True, 4, out,
                                     out.copy())
        differences.softmax_differences(m, m, 1e-5, True, 4, out2, out2.copy())
        differences.dense_differences(activations.TANH, 1.0, m, m, m, m, m, 1e-5, True, 4,
                                      out2, out2.copy())
        differences.dense_softmax_differences(m, m, m, m, 1e-5, True, 4, out2, out2.copy())
        differences.dense_tanh_differences(m, m, m, m, m, m, m, m, 1e-5, True, 4, out2,
                                           out2.copy())
        signs = np.ones(4, dtype=np.int8)
        directions.perturb_along(v, signs, np.ones(4), np.ones(4), 1e-5, out)
        widths = np.array([2, 2], dtype=np.int64)
        offsets = np.zeros(2, dtype=np.int64)
        codes = np.array([0, activations.TANH], dtype=np.int64)
        flat = np.ones(4)
        base = np.ones(2)
        model.sample_losses(losses.SQUARED_ERROR, m.astype(np.float64), m.astype(np.float64),
                            base)
        central = np.empty((2, 2))
        model.model_differences(1, False, central.copy(), 0, widths, flat, offsets, flat,
                                offsets, np.ones(8), np.ones(8), np.array([0, 4]), codes,
                                np.zeros(2), losses.SQUARED_ERROR, m.astype(np.float64),
                                np.zeros((0, 0, 0)), np.zeros((0, 0)), 0, 1e-4, False, 2,
                                central, central.copy())
    directions.direction_norms(np.ones(4, dtype=np.int8), np.ones(4), np.ones(4))
    halves = np.full(4, 0.5)
    losses.loss_terms(losses.CROSS_ENTROPY, halves, halves, np.empty(4))
    _check_every_method(dtypes)
    return time.perf_counter() - started


def _check_every_method(dtypes):
    """A tiny black-box check per method: compiles what they call from Python (combine)."""
    from ._checker import check_gradients

    for dtype in dtypes:
        x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(2, 3)
        for method in ("exhaustive", "colored", "directional"):
            for order in (2, 4):
                check_gradients(np.sin, np.cos(x), x, method=method, order=order, progress=False,
                                seed=0)
