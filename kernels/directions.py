"""Random-direction perturbations of a wide x, one pass each (the directional method).

A direction is ``d[i] = signs[i] * scale[i]`` (Rademacher signs times ``max(1, |x_i|)``). For a
16M-element x every NumPy expression is a 128 MB pass; these kernels fuse what one evaluation
needs: write the perturbed entries and take the dot product of the steps actually taken with
the analytic gradient.
"""

import numpy as np
from numba import njit, prange

from ._config import EXACT_JIT


@njit(**EXACT_JIT)
def perturb_along(x, signs, scale, grad, step, work):
    """``work = x + step * signs * scale`` (in x's dtype); return ``(work - x) . grad``.

    ``work - x`` is the step actually taken in floating point, so the returned value is the
    analytic directional change exactly for the point that will be evaluated.
    """
    total = 0.0
    for i in prange(x.size):
        work[i] = x[i] + step * signs[i] * scale[i]
        total += (np.float64(work[i]) - np.float64(x[i])) * grad[i]
    return total


@njit(**EXACT_JIT)
def direction_norms(signs, scale, grad):
    """``(||signs * scale * grad||_2, ||scale||_2)``: the two norms of a direction's tolerance."""
    terms = 0.0
    scales = 0.0
    for i in prange(signs.size):
        term = signs[i] * scale[i] * grad[i]
        terms += term * term
        scales += scale[i] * scale[i]
    return np.sqrt(terms), np.sqrt(scales)
