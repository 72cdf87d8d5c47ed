"""The one table of step sizes and tolerances, keyed by dtype.

Central differences have truncation error ~ h^2 |g'''| / 6 and rounding error ~ eps |g| / h;
the sum is smallest near h = eps^(1/3) * max(1, |x|), which is the default step.

Tolerances are keyed by (dtype of the analytic gradient, dtype the differences were taken
in). A float32 gradient checked against float64 differences is limited by the float32
backward pass itself; checked against float32 differences it is limited by the differences.
An element passes when ``|numerical - analytic| <= atol * scale + rtol * |analytic|``, with
``scale`` the largest magnitude of either gradient (so atol is relative to the gradient's size).
"""

from dataclasses import dataclass

import numpy as np

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)


@dataclass(frozen=True)
class Tolerance:
    """Per-element tolerance: ``atol * scale + rtol * |analytic|``."""

    rtol: float
    atol: float


#: Default step scale for central differences in each evaluation dtype: eps ** (1/3).
STEP_SCALE = {F64: float(np.finfo(F64).eps ** (1 / 3)), F32: float(np.finfo(F32).eps ** (1 / 3))}

#: (gradient dtype, evaluation dtype) -> default tolerance.
TOLERANCES = {
    (F64, F64): Tolerance(rtol=1e-6, atol=1e-8),
    (F32, F64): Tolerance(rtol=1e-4, atol=1e-5),
    (F32, F32): Tolerance(rtol=1e-2, atol=1e-3),
    (F64, F32): Tolerance(rtol=1e-2, atol=1e-3),
}


# Allowances in units of the machine epsilon of the dtype concerned (so they scale with the
# dtype by construction). Each is explained where it is used.

#: Rounding floor of one element's difference: NOISE_ULPS * eps * S / h, S the root-sum-square
#: of the outputs the element can move (fastgrad.methods.noise_floor).
NOISE_ULPS = 8
#: Rounding an analytic gradient may carry: ANALYTIC_ULPS * eps_grad * S.
ANALYTIC_ULPS = 8
#: Rounding floor of a random direction's difference (every output moves; sum of magnitudes).
DIRECTION_NOISE_ULPS = 16
#: Agreement required between fn and an inferred structure at two points.
VERIFY_ULPS = 1e3
#: Agreement required between a stacked call of fn and single calls (BLAS may round batches
#: differently; a function that mixes the stack axis differs at O(1)).
STACK_ULPS = 1e4
#: At a kink the analytic value must lie between the one-sided differences; each carries its own
#: O(h) curvature error, so the interval is widened by this fraction of its half-width.
KINK_SLACK = 0.1
#: The slope jumps at x itself (fastgrad._refine) when the one-sided disagreement at step s and
#: at s/2 differ by at most this fraction: it halves with the step where the function is
#: smooth, and stays where x sits on a kink.
JUMP_STABILITY = 0.25


def step_scale(eval_dtype):
    """Default central-difference step scale for an evaluation dtype."""
    return STEP_SCALE[np.dtype(eval_dtype)]


def tolerance(grad_dtype, eval_dtype):
    """Default tolerance for a gradient of ``grad_dtype`` checked in ``eval_dtype``."""
    return TOLERANCES[(np.dtype(grad_dtype), np.dtype(eval_dtype))]
