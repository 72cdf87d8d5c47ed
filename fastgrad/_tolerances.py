"""The one table of step sizes and tolerances, keyed by dtype.

Central differences have truncation error ~ h^2 |g'''| / 6 and rounding error ~ eps |g| / h;
the sum is smallest near h = eps^(1/3) * max(1, |x|), which is the default step.

Tolerances are keyed by (dtype of the analytic gradient, dtype the differences were taken
in). A float32 gradient checked against float64 differences is limited by the float32
backward pass itself; checked against float32 differences it is limited by the differences.
Element ``i`` is allowed ``rtol * |a_i| + atol * T_i`` plus rounding floors (see
``fastgrad._verdict``), with ``T_i`` the magnitude of the terms that form the element: every
allowance is in the units of the element it judges.
"""

from dataclasses import dataclass

import numpy as np

from .kernels.differences import KINK_ROUNDING as _kink_rounding

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)


@dataclass(frozen=True)
class Tolerance:
    """Per-element tolerance: ``rtol * |a_i| + atol * T_i`` (``T_i``: the element's terms)."""

    rtol: float
    atol: float


#: Default step scale for central differences in each evaluation dtype: eps ** (1/3).
STEP_SCALE = {F64: float(np.finfo(F64).eps ** (1 / 3)), F32: float(np.finfo(F32).eps ** (1 / 3))}

#: (gradient dtype, evaluation dtype) -> default tolerance.
TOLERANCES = {
    # atol is relative to the element's terms T_i: the rounding of a gradient summed from n
    # terms is ~sqrt(n) eps T_i (pairwise: log2(n) eps T_i); 1e-10 covers float64 sums of
    # millions of terms, and a float32 accumulation (~1e-7 T_i) stands clear of it
    (F64, F64): Tolerance(rtol=1e-6, atol=1e-10),
    (F32, F64): Tolerance(rtol=1e-4, atol=1e-5),
    (F32, F32): Tolerance(rtol=1e-2, atol=1e-3),
    (F64, F32): Tolerance(rtol=1e-2, atol=1e-3),
}


#: A direction's rtol where the table's is taken, by evaluation dtype: a random direction's
#: difference sums every element's change, and ``rtol * ||d * grad||_2`` at float32's 1e-2
#: let one element of 50 be 3% off; its difference resolves the derivative to ~1e-4 of that
#: norm (its noise is counted apart), so 1e-3 is ten times what the numbers need.
DIRECTION_RTOL = {F32: 1e-3}
#: A direction's atol (relative to the magnitude of its terms) where the table's is taken, by
#: evaluation dtype. The element table's float32 1e-3 is an allowance per element; summed
#: along a direction it let one element of a 4,096-element float32 layer be 4% off. What a
#: direction's analytic side rounds is a float32 accumulation, ~sqrt(n) eps32 of its terms:
#: the float32-gradient, float64-differences atol, 1e-5, is ten times that at n = 10**4.
DIRECTION_ATOL = {F32: 1e-5}
#: The one-element error, as a fraction of the largest gradient element, that a directional
#: pass rules out, by dtype of the check (x's): a random direction's tolerance grows with the
#: norm of the whole gradient, so where one element off by this much would hide under it the
#: search also measures blocks of the direction small enough to show it (or says it cannot).
#: float32's is its table rtol (1e-2); float64's lets a few blocks cover millions of elements.
RESOLVED_ERROR = {F64: 1e-3, F32: 1e-2}


# Allowances in units of the machine epsilon of the dtype concerned (so they scale with the
# dtype by construction). Each is explained where it is used.

#: Where a method knows how many terms ``n_i`` an element sums (fastgrad's own functions),
#: ``atol * T_i`` is at most SUM_ULPS * n_i * eps_grad * T_i: recursive summation of n terms
#: rounds by at most (n - 1) u T_i (u = eps / 2), whatever the order, so a flat 1e-10 T_i
#: would excuse a 0.5% error in a three-class softmax row whose element cancels to 1e-8 T_i.
SUM_ULPS = 2
#: Rounding floor of one element's difference: NOISE_ULPS * eps * S / h, S the root-sum-square
#: of the outputs the element can move (fastgrad.methods.noise_floor).
NOISE_ULPS = 2
#: Rounding an analytic gradient may carry beyond its own terms: ANALYTIC_ULPS * eps_grad times
#: the largest element's terms (an element that should be exactly 0 may come out as a rounding
#: residue of a computation over other elements).
ANALYTIC_ULPS = 8
#: A float32 elementwise map differenced in float32: a disagreement within UPSTREAM_ULPS ulps
#: of the element's upstream gradient is unresolved, not failed (fastgrad._verdict.
#: _rounding_band). Both sides round at that size: the backward multiplies its intermediates'
#: rounding by its formula's coefficients (tanh-GELU's ``x * u'`` is 16 at x = -5), and an
#: intermediate that saturates (``1 + tanh(u)``, rounded to eps / 2 of 1, times x / 2) puts
#: about eps**(2/3) / 4 of the upstream, some 50 ulps, into a difference at the default step,
#: unseen by ulp-sized probes because an ulp-sized move of x leaves it where it is.
UPSTREAM_ULPS = 64
#: Measured rounding: fn is evaluated at x +- delta for ROUNDING_PROBES random delta of a few
#: ulps; the second difference f(x + delta) - 2 f(x) + f(x - delta) of each output is pure
#: rounding (the linear part cancels exactly), with standard deviation sqrt(6) sigma. An
#: output's floor is NOISE_SIGMAS times its measured sigma where that exceeds the modelled
#: NOISE_ULPS * eps * |f|: intermediates larger than the output (a loss of 1e-13 computed from
#: logits of 30) round at their own size.
ROUNDING_PROBES = 3
NOISE_SIGMAS = 6.0
#: Rounding of intermediates that an ulp-sized move leaves unchanged: fourth differences at
#: moves of PLATEAU_FRACTION of the step and an eighth of that, PLATEAU_PROBES random
#: directions each (fastgrad.methods._plateau_rounding).
PLATEAU_FRACTION = 1 / 512
PLATEAU_PROBES = 2
#: Two calls of fn at the same x may differ by this many ulps of max |fn(x)| (threaded
#: reductions round in varying order); more, and fn is not deterministic.
NONDETERMINISM_ULPS = 64
#: An explicit step must be at least this many ulps of max(1, max |x|) (fewer leave the
#: difference with two or three significant digits).
MIN_STEP_ULPS = 1024
#: Rounding floor of a kernel that forms a change without differencing outputs (the row
#: softmax's u c / (1 + u)): EXACT_CHANGE_ULPS * eps times the sum its coupling is formed from.
EXACT_CHANGE_ULPS = 8
#: Rounding floor of the colored method's verifying directions (every output moves; sum of
#: magnitudes: a bound, so that a verification rejects a pairing only on a clear disagreement).
DIRECTION_NOISE_ULPS = 16
#: Agreement required between fn and an inferred structure at two points.
VERIFY_ULPS = 1e3
#: Agreement required between a stacked call of fn and single calls (BLAS may round batches
#: differently; a function that mixes the stack axis differs at O(1)).
STACK_ULPS = 1e4
#: The slope jumps within s/6 of x (fastgrad._verdict) when the one-sided disagreement at step
#: s and at s/2 differ by at most this fraction: it halves with the step where the function is
#: smooth, and keeps its size where a kink sits that close.
JUMP_STABILITY = 0.25
#: The kink indicator (``fastgrad.kernels.differences.kink_indicator``) leaves out this many
#: float64 eps of the one-sided slopes it is formed from (its own arithmetic's rounding; the
#: kernels hold the value, as a compile-time constant).
KINK_ROUNDING = _kink_rounding
#: The second look's steps, as divisors of the first step: a kink crossed at h is crossed at
#: h / f with probability about 1 / f.
SECOND_LOOK_FACTORS = (10.0, 100.0, 1000.0, 10000.0)
#: A black-box element (or direction) whose noise floor exceeds this fraction of the gradient's
#: scale (its largest analytic or numerical magnitude) is not confirmed by its difference: a
#: constant of 1e10 in fn's output, or a declared noise that large.
SWAMPED_FRACTION = 0.5
#: An element that passed at the first step with a rounding floor above its tolerance (rtol
#: |a_i| + atol T_i, at least rtol times the gradient's largest magnitude) is re-differenced
#: at a coarser step, at most COARSEST_STEP (times max(1, |x_i|)), where the floor is smaller.
#: (Coarse steps are safe because their truncation and smoothness are measured, not assumed.)
#: One whose floor stays above NOISE_DOMINANCE times that tolerance is unresolved: its pass
#: would promise agreement only to within its noise, not to rtol.
NOISE_DOMINANCE = 8.0
COARSEST_STEP = 0.25
#: A finer step is used only where its rounding floor is at most this fraction of the
#: element's tolerance: a difference that cannot resolve the tolerance decides nothing.
RESOLVE_FRACTION = 0.5
#: The default work budget of method="auto", in element-evaluations: evaluations of fn times
#: (elements of x + elements of fn(x)). Counts, not seconds, so that the choice (and with it
#: the verdict) is the same on an idle and on a busy machine. 2**34 is about 15-20 s of
#: NumPy work on a 2-core machine.
WORK_BUDGET = 2**34
#: An inconclusive directional search falls back to a complete method whose work is at most
#: this multiple of the budget.
FALLBACK_WORK_FACTOR = 16


def step_scale(eval_dtype):
    """Default central-difference step scale for an evaluation dtype."""
    return STEP_SCALE[np.dtype(eval_dtype)]


def tolerance(grad_dtype, eval_dtype):
    """Default tolerance for a gradient of ``grad_dtype`` checked in ``eval_dtype``."""
    return TOLERANCES[(np.dtype(grad_dtype), np.dtype(eval_dtype))]
