"""The one place where differences become a verdict.

Every method of :func:`fastgrad.check_gradients` and the model check hand their per-element
measurements to :func:`judge`, and their result's three-way verdict comes from
:func:`decide`. Nothing else in fastgrad decides whether an element passes.

The rules
---------
1. **Allowance, in the element's own units.** Element ``i`` with analytic value ``a_i`` is
   allowed ``rtol * |a_i| + atol * T_i + ANALYTIC_ULPS * eps_grad * R_i + noise_i``.
   ``T_i`` is the magnitude of the terms that form the element, ``sum_k |dLdf_k df_k/dx_i|``,
   measured by the same differences (the rounding of a gradient computed in a dtype with
   machine epsilon ``eps`` is about ``eps * T_i``, not ``eps * |a_i|``, where terms cancel).
   Where the method knows how many terms ``n_i`` the element sums (fastgrad's own
   functions), ``atol`` is at most ``SUM_ULPS * n_i * eps_grad``, the most such a sum rounds.
   ``noise_i`` is the rounding floor of the element's own difference: ``NOISE_ULPS * eps *
   S_i / h_i`` with ``S_i`` the root-sum-square of the weighted outputs the element moves. An
   ``atol`` given by the caller is absolute and replaces the two middle terms. ``R_i`` is
   the largest ``T_j`` over the elements that share an output with ``i`` (where the method
   knows fn's axis structure; for an elementwise map also ``|dLdf_i|``), else over all.
   An element whose floor ``noise_i`` exceeds its tolerance is re-differenced at a coarser
   step (rule 3b below); one that stays above ``NOISE_DOMINANCE`` times it is unresolved.
2. **Within the allowance: the element is right** (``OK``), where the first step was smooth:
   an element whose kink indicator (the larger of ``|G(h) - 2 G(h/2)|`` and
   ``|D(h/2) - D(h)|``, which bounds what one kink crossed leaves in the Richardson value)
   exceeds its tolerance and noise crossed a kink, so agreeing there is no evidence: it
   gets the second look, after the elements outside (beyond the budget it is unresolved).
3. **Outside it: a second look** at finer steps ``h / 10`` to ``h / 10**4`` (never below
   ``eps**(2/3)``), each differenced at ``s`` and ``s / 2``. A step is *smooth* where the
   one-sided gap halves with the step (``|G(s) - 2 G(s/2)|`` within the tolerance and noise);
   it shows a *jump* where the gap keeps its size (the slope jumps within ``s / 6`` of x).

   * Two consecutive smooth steps whose Richardson values agree within their noise decide:
     ``OK`` (listed in ``refined``) when the less noisy of the two agrees with the analytic
     value, ``FAILED`` (confirmed at two steps) when both disagree.
   * While every finer step is smooth and agrees with the first step's value within its
     noise, that first value is the most precise one; as it disagreed, the element is
     ``FAILED`` at the end (finer steps only added noise to the same value).
   * A value that keeps moving in proportion to the step, clear of the noise and less at
     each step (a kink at x smooth to first order, ``relu(v)**2`` at 0), is a ``KINK`` when
     the analytic value lies within its last movement, ``FAILED`` when far outside it.
   * An element whose last steps jump is a ``KINK`` (excused, with that evidence) when its
     analytic value is one of the one-sided derivatives or their mean (the usual
     conventions: ``relu'(0)``, ``sign(0) = 0``, the first of tied maxima), else
     ``UNRESOLVED``.
   * Anything else is ``UNRESOLVED``.

   Excused kink elements must also be right together: those that move a common output are
   moved together, and the gradient's change must lie between fn's one-sided changes (a
   gradient that gives every tied maximum the whole upstream gradient fails there).

   A method that cannot re-difference an element leaves it ``UNEXAMINED``; so are the
   failing elements beyond a second look's budget (the worst are examined first).
3b. **Coarse look.** Finer steps round more, so an element whose first-step floor exceeds
   its tolerance, or whose error exceeds its allowance without the floor (the floor is its
   only excuse), is differenced at a coarser step ``s`` (up to ``COARSEST_STEP``), at ``s``,
   ``s / 2`` and ``s / 4``, with the rounding measured there by jittering the step: the
   gaps must halve (no kink within ``s``) and two Richardson values bound the truncation.
   It decides where it is more certain than the first step. A failure found at the first
   and finer steps is also checked there (worst first, stopping at the first that holds):
   where the coarse value is smooth and agrees, the finer steps rounded more than fn's
   outputs show, and the element is ``OK`` if the coarse value resolves its tolerance,
   ``UNRESOLVED`` if not.
4. **Verdict** (:func:`decide`): ``"failed"`` when any element is ``FAILED``; else
   ``"inconclusive"`` when any element is ``UNRESOLVED``, ``UNEXAMINED`` or ``NAN`` or the
   method reports something it could not judge (a directional search that stopped at its
   limit); else ``"passed"``. A pass therefore means: every element was differenced within
   its allowance, or excused by measured evidence of a kink within its step.
"""

from dataclasses import dataclass, field

import numpy as np

from ._tolerances import (
    ANALYTIC_ULPS,
    COARSEST_STEP,
    JUMP_STABILITY,
    NOISE_DOMINANCE,
    NOISE_SIGMAS,
    NOISE_ULPS,
    RESOLVE_FRACTION,
    SECOND_LOOK_FACTORS,
    SUM_ULPS,
    SWAMPED_FRACTION,
    UPSTREAM_ULPS,
)

OK, FAILED, KINK, UNRESOLVED, UNEXAMINED, NAN = range(6)
STATUS_NAMES = ("ok", "failed", "kink", "unresolved", "unexamined", "nan")

PASSED_VERDICT, FAILED_VERDICT, INCONCLUSIVE_VERDICT = "passed", "failed", "inconclusive"


def has_status(status, statuses):
    """Where ``status`` is one of ``statuses`` (a few codes: cheaper than ``np.isin``, whose
    sorting dominated a small check)."""
    mask = np.zeros(np.shape(status), dtype=bool)
    for code in statuses:
        mask |= status == code
    return mask


def noise_floor(magnitude, steps, dtype):
    """``NOISE_ULPS * eps * magnitude / steps``: the rounding floor of a central difference.

    ``magnitude`` is the root-sum-square of the weighted outputs the perturbation moves: the
    rounding errors of many outputs add with random signs, and an output that does not move
    does not round differently.
    """
    return NOISE_ULPS * np.finfo(dtype).eps * np.asarray(magnitude, np.float64) / steps


@dataclass(frozen=True)
class Criteria:
    """What an element is judged against, and the step rule of its first differences."""

    rtol: float
    atol: float
    #: True: ``atol`` is relative to the element's terms (the per-dtype table); False: absolute.
    atol_relative: bool
    grad_dtype: np.dtype
    eval_dtype: np.dtype
    #: Step scale of the first differences (h, or h_i = h * max(1, |x_i|) when ``relative``).
    step_scale: float
    relative: bool

    def allowance(self, analytic, terms, reach=None, count=None):
        """Per element, the allowance without the differences' noise (``reach``, ``count``:
        see :attr:`Measured.reach`, :attr:`Measured.count`)."""
        magnitude = np.abs(analytic)
        if not self.atol_relative:
            return self.rtol * magnitude + self.atol
        terms = magnitude if terms is None else np.maximum(terms, 0.0)
        eps = np.finfo(self.grad_dtype).eps
        atol = self.atol if count is None else np.minimum(
            self.atol, SUM_ULPS * eps * np.maximum(count, 1.0))
        # the analytic value's own rounding: a backward pass rounds at the size of the terms
        # it combines, which for an element may be other elements' (an exact 0 that comes out
        # as a residue, 1 - tanh**2 near saturation times its upstream gradient): those of the
        # elements it shares an output with where the method knows them, else the largest
        # element's (one NaN element must not make every allowance NaN)
        if reach is None:
            reach = float(np.where(np.isfinite(terms), terms, 0.0).max(initial=0.0))
        floor = ANALYTIC_ULPS * eps * np.maximum(reach, terms)
        return self.rtol * magnitude + atol * terms + floor


@dataclass
class Measured:
    """What a method measured, per element (flat arrays of one length, float64)."""

    central: np.ndarray
    noise: np.ndarray
    #: Magnitude of the terms that form each element (gradient units), or None (then |a_i|).
    terms: np.ndarray = None
    #: Half the gap between the one-sided differences (reported; not a verdict input).
    gap: np.ndarray = None
    #: Per element, the largest |dLdf_k| it reaches (black boxes; None where the terms of the
    #: analytic computation are known): an analytic value computed in a narrower dtype than
    #: the differences may carry ANALYTIC_ULPS of its rounding of that, whatever the terms of
    #: the true derivative (a float32 softmax backward at saturated logits); a disagreement
    #: below it is not a failure but cannot be called right either.
    upstream: np.ndarray = None
    #: The kink indicator of order-4 differences, the larger of ``|G(h) - 2 G(h/2)|`` and
    #: ``|D(h/2) - D(h)|`` (None for order 2): where it is within the tolerance, the first
    #: step counts as smooth; beyond it, agreement at the first step is no evidence.
    kink: np.ndarray = None
    #: Per element, the largest terms its analytic computation may combine (its own and those
    #: of elements sharing an output with it; for an elementwise map also its upstream
    #: gradient), or None: the largest of all elements' (an element that should be 0 may
    #: come out as a residue of a computation over other elements).
    reach: np.ndarray = None
    #: Per element, how many terms its analytic value sums (nested sums: the sum of their
    #: lengths), or None where unknown (black boxes): bounds the rounding ``atol`` stands for.
    count: np.ndarray = None


class Look:
    """Re-differences chosen elements at a given step (order 2). Subclasses implement it.

    ``cap`` is how many elements one judgement may re-difference.
    """

    cap = 64
    #: How many noise-dominated elements one judgement may re-difference at a coarser step.
    coarse_cap = 256

    def noise(self, flat_indices, step_scale):
        """The rounding floor of those elements' differences at ``step_scale``."""
        raise NotImplementedError

    def differences(self, flat_indices, step_scale):
        """``(central, half_gap)`` of those elements at ``step_scale`` (order 2)."""
        raise NotImplementedError

    #: ``jointly(flat_indices, step_scale) -> (up, down, steps)``: one-sided changes of g when
    #: the elements move together (each by its step), and ``coupled(flat_indices, step_scale)
    #: -> bool rows``: which outputs each element moves. None where kinks are separable (an
    #: elementwise structure), so no joint test is needed.
    jointly = None
    coupled = None


@dataclass
class Judgement:
    """Per element: status, the numerical value it was judged by, its allowance."""

    status: np.ndarray
    numerical: np.ndarray
    noise: np.ndarray
    allowed: np.ndarray
    #: Flat indices whose value comes from a second look at a finer step.
    refined: np.ndarray
    notes: list = field(default_factory=list)

    def indices(self, *statuses):
        return np.flatnonzero(has_status(self.status, statuses))

    def count(self, *statuses):
        return int(np.count_nonzero(has_status(self.status, statuses)))

    @property
    def n_failed(self):
        """Confirmed failures plus elements outside tolerance that were not re-examined."""
        return self.count(FAILED) + self.count(UNEXAMINED)


def judge(measured, analytic, criteria, x_flat, look=None):
    """Judge every element of a measurement (see the module docstring for the rules).

    Parameters
    ----------
    measured : Measured
        The method's per-element values (copied, never modified).
    analytic : numpy.ndarray
        The gradient being checked, flat, float64.
    criteria : Criteria
    x_flat : numpy.ndarray
        The point, flat (for the finest step allowed at each element).
    look : Look, optional
        Re-differences failing elements; without one they stay ``UNEXAMINED``.

    Returns
    -------
    Judgement
    """
    analytic = np.asarray(analytic, dtype=np.float64).reshape(-1)
    numerical = np.array(measured.central, dtype=np.float64).reshape(-1)
    noise = np.array(np.broadcast_to(measured.noise, numerical.shape), dtype=np.float64)
    terms = None if measured.terms is None else np.asarray(
        np.broadcast_to(measured.terms, numerical.shape), dtype=np.float64)
    reach = None if measured.reach is None else np.asarray(
        np.broadcast_to(measured.reach, numerical.shape), dtype=np.float64)
    count = None if measured.count is None else np.asarray(
        np.broadcast_to(measured.count, numerical.shape), dtype=np.float64)
    resolution = criteria.allowance(analytic, terms, reach, count)
    status = np.zeros(numerical.size, dtype=np.int8)
    finite = np.isfinite(numerical)
    status[~finite] = NAN
    error = np.abs(np.where(finite, numerical, 0.0) - analytic)
    outside = finite & (error > resolution + noise)
    # within the tolerance at a step that crossed a kink (the one-sided gap did not halve):
    # the central value mixes two slopes, so agreeing with it is no evidence (a 2% error of
    # a ReLU layer's weight met a value 3% off its derivative); it is judged at finer steps
    kink = None if measured.kink is None else np.broadcast_to(measured.kink, numerical.shape)
    crossed = np.zeros(numerical.size, dtype=bool) if kink is None else (
        finite & ~outside & (kink > resolution + 2 * noise))
    refined = np.zeros(0, dtype=np.intp)
    notes = []
    if outside.any() or crossed.any():
        candidates, beside = np.flatnonzero(outside), np.flatnonzero(crossed)
        ratio = error[candidates] / np.maximum(resolution + noise, 1e-300)[candidates]
        candidates = candidates[np.argsort(-ratio, kind="stable")]
        if beside.size:
            beside_ratio = kink[beside] / np.maximum(resolution + 2 * noise, 1e-300)[beside]
            candidates = np.concatenate([candidates,
                                         beside[np.argsort(-beside_ratio, kind="stable")]])
        examined = candidates[:look.cap] if look is not None else candidates[:0]
        left = candidates[examined.size:]
        status[left] = np.where(outside[left], UNEXAMINED, UNRESOLVED)
        if examined.size:
            coarse_smooth = (np.zeros(examined.size, dtype=bool) if kink is None else
                             kink[examined] <= resolution[examined] + 2 * noise[examined])
            refined = _second_look(look, examined, analytic, resolution, criteria, x_flat,
                                   numerical, noise, status, notes, coarse_smooth,
                                   None if kink is None else kink[examined])
        if left.size:
            n_outside = int(np.count_nonzero(outside[left]))
            notes.append(f"{n_outside} element(s) outside tolerance and "
                         f"{left.size - n_outside} within it across a kink at the first step "
                         "were not re-examined at a finer step ("
                         + ("more than the second look's budget of "
                            f"{look.cap}" if look is not None else
                            "this method cannot re-difference single elements") + ")")
    judgement = Judgement(status=status, numerical=numerical, noise=noise,
                          allowed=resolution + noise, refined=refined, notes=notes)
    tolerance = _tolerance_proper(judgement, analytic, resolution, criteria)
    # (every element within a floor above its tolerance gets the coarse look; those the
    # second look decided keep its verdict where the coarse look cannot do better: it weighed
    # their noise at its own steps, a tie's kink among them)
    first_step = np.ones(numerical.size, dtype=bool)
    first_step[refined] = False
    band = _rounding_band(measured.upstream, criteria, numerical.size)
    if look is not None and tolerance is not None:
        _coarse_confirm(look, judgement, analytic, resolution, tolerance, criteria, x_flat,
                        band)
        _coarse_resolve(look, judgement, analytic, resolution, tolerance, criteria, x_flat)
        _coarse_look(look, judgement, analytic, resolution, tolerance, criteria, x_flat)
    if tolerance is not None:
        _noise_dominated(judgement, analytic, tolerance, first_step, criteria.eval_dtype)
    _narrow_rounding(judgement, analytic, band, criteria.grad_dtype)
    if look is not None and look.jointly is not None and judgement.count(KINK) > 1:
        # (looks that can move several elements at once: black boxes)
        _joint_kinks(look, judgement, analytic, resolution, criteria, x_flat)
    return judgement


#: Most kink elements whose couplings the joint test examines (one evaluation each).
JOINT_MAX = 4096
#: The joint test's allowance for the noise of its one-sided changes, in noise floors (two
#: steps of a Richardson combination, 5 floors each).
JOINT_NOISE_SIGMAS = 10.0
#: Coarser steps of the joint kink test (divisors of the first step), tried in turn where the
#: rounding of fn's outputs swamps the joint change at the finest (float32 differences).
JOINT_COARSER_FACTORS = (10.0, 3.0)
#: The joint test's outcome where no step resolves it.
NOISY = -1
#: The coarse look's steps, as multiples of the first step (each needs COARSEST_STEP room).
COARSE_FACTORS = (4.0, 16.0, 64.0, 256.0, 1024.0)


def _tolerance_proper(judgement, analytic, resolution, criteria):
    """Per element, the tolerance without the differences' noise: its allowance, at least
    ``rtol`` times the gradient's largest magnitude (an element that should be 0 is judged
    against the gradient's scale). None where the gradient and every difference are exactly 0
    (nothing moved: no scale to judge a noise floor against)."""
    finite = np.isfinite(judgement.numerical) & np.isfinite(analytic)
    scale = max(float(np.max(np.abs(analytic[finite]), initial=0.0)),
                float(np.max(np.abs(judgement.numerical[finite]), initial=0.0)))
    if scale < np.finfo(np.float64).tiny:
        return None
    return resolution + criteria.rtol * scale


def _coarse_look(look, judgement, analytic, resolution, tolerance, criteria, x_flat):
    """Elements that passed only within a rounding floor larger than their tolerance are
    re-differenced at coarser steps, where the floor is smaller (it falls as 1 / step).

    At the coarse step ``s`` the element is differenced at ``s``, ``s / 2`` and ``s / 4``: two
    Richardson values whose difference bounds the truncation of the finer one, and one-sided
    gaps that must halve with the step (no kink within ``s``). Where that holds and the
    finer value is more certain than the first step's, it decides: within the tolerance and
    its uncertainty, ``OK``; both values outside, ``FAILED`` (a 5% error hidden in the floor
    of a loss that carries a large constant); one of them outside, ``UNRESOLVED``.
    """
    status, noise = judgement.status, judgement.noise
    # (an element's own allowance, not the scale-based tolerance, decides who is looked at:
    # a floor above it, or an error above it that only the floor excuses, however small the
    # floor: a 2% error of a float32 sum of 240 terms passed within a floor of 0.9 allowances)
    error = np.abs(judgement.numerical - analytic)
    candidates = np.flatnonzero((status == OK) & ((noise > resolution) | (error > resolution)))
    if candidates.size == 0:
        return
    # those that agree only within their floor (their error exceeds their allowance without
    # it) first, those using most of their whole allowance first: beyond the budget, one of
    # them could be a 3% error of a float32 loss of 10^4 terms, which passed or failed by the
    # draw of its floor (and measured against the allowance alone, the small elements of a
    # float32 sum of 2,000 logits, whose floors are many allowances, crowded out a 2% error
    # of the largest); then the most dominated (a tolerance of 0, rtol=atol=0 given, first)
    error = error[candidates]
    relies = error > resolution[candidates]
    order = np.lexsort((-(noise[candidates] / np.maximum(tolerance[candidates], 1e-300)),
                        -np.where(relies, error / np.maximum(resolution[candidates]
                                                             + noise[candidates], 1e-300),
                                  0.0), ~relies))
    candidates = candidates[order][:look.coarse_cap]
    fine, uncertainty, coarse, coarse_noise, truncation, valid = _coarse_values(
        look, candidates, tolerance[candidates], resolution[candidates], criteria, x_flat)
    better = valid & (uncertainty < noise[candidates])
    where = candidates[better]
    decided = {OK: 0, FAILED: 0, UNRESOLVED: 0}
    if where.size:
        res, ana = resolution[where], analytic[where]
        fine, coarse, uncertainty = fine[better], coarse[better], uncertainty[better]
        agrees = np.abs(fine - ana) <= res + uncertainty
        both = ~agrees & (np.abs(coarse - ana) > res + coarse_noise[better]
                          + 16 * truncation[better])
        verdicts = np.where(agrees, OK, np.where(both, FAILED, UNRESOLVED))
        _record(judgement, where, verdicts, fine, uncertainty, resolution)
        for code in decided:
            decided[code] = int(np.count_nonzero(verdicts == code))
        judgement.notes.append(
            f"{where.size} element(s) whose rounding floor exceeded their tolerance were "
            f"re-differenced at a coarser step: {decided[OK]} agree, {decided[FAILED]} "
            f"disagree at two steps, {decided[UNRESOLVED]} at one only")


def _record(judgement, where, verdicts, values, uncertainty, resolution):
    """Elements ``where`` decided at a coarse step: their status, value, noise, allowance,
    and a place in ``refined``."""
    judgement.status[where] = verdicts
    judgement.numerical[where] = values
    judgement.noise[where] = uncertainty
    judgement.allowed[where] = resolution[where] + uncertainty
    judgement.refined = np.union1d(judgement.refined, where).astype(np.intp)


def _coarse_values(look, where, tolerance, resolution, criteria, x_flat, largest=False):
    """Order-4 values of elements at a coarse step, with their uncertainty (see
    :func:`_coarse_look`): ``(fine, uncertainty, coarse, coarse_noise, truncation, valid)``.

    Each element gets the smallest factor of COARSE_FACTORS whose floor resolves its
    tolerance, else (or with ``largest``: where the modelled floor is in doubt) the largest
    that fits COARSEST_STEP; ``valid`` is False where none fits,
    the gaps do not halve (a kink within the step) or a value is not finite.
    """
    scale = np.maximum(1.0, np.abs(x_flat[where].astype(np.float64)))
    first = criteria.step_scale * (scale if criteria.relative else 1.0)
    room = COARSEST_STEP * scale / first
    chosen = np.zeros(where.size)
    for factor in COARSE_FACTORS:
        fits = (factor <= room) & (chosen == 0)
        if not fits.any():
            continue
        # the finer Richardson value's floor, (4 n(s/4) + n(s/2)) / 3 = 6 n(s), with room
        # for rounding the modelled floor does not see (saturated intermediates)
        enough = 6 * COARSE_MARGIN * look.noise(where, criteria.step_scale * factor) <= \
            RESOLVE_FRACTION * tolerance
        # the coarsest factor that fits an element is taken when none is enough
        coarsest = (factor == COARSE_FACTORS[-1]) | (4 * factor > room)
        chosen[fits & ((enough & (not largest)) | coarsest)] = factor
    out = [np.full(where.size, np.nan) for _ in range(5)]
    valid = np.zeros(where.size, dtype=bool)
    for factor in np.unique(chosen[chosen > 0]):
        group = np.flatnonzero(chosen == factor)
        elements = where[group]
        step = criteria.step_scale * factor
        (c1, g1), (c2, g2), (c3, g3) = (look.differences(elements, step / k)
                                        for k in (1, 2, 4))
        n1, n2, n3 = (look.noise(elements, step / k) for k in (1, 2, 4))
        # the rounding actually seen: the finest of the three steps, jittered by a few parts
        # in 64 (truncation moves smoothly with the step and is fitted out; rounding does
        # not), scaled to the other steps as 1 / step
        jittered = np.stack([c3] + [look.differences(elements, step / 4 * (1 + j / 64))[0]
                                    for j in JITTERS])
        n3 = np.maximum(n3, NOISE_SIGMAS * _detrended_sigma(jittered))
        n2, n1 = np.maximum(n2, n3 / 2), np.maximum(n1, n3 / 4)
        fine, fine_noise = c3 + (c3 - c2) / 3.0, (4 * n3 + n2) / 3.0
        coarse, coarse_noise = c2 + (c2 - c1) / 3.0, (4 * n2 + n1) / 3.0
        # the finer value's truncation is a sixteenth of the coarser one's where the step is
        # in the asymptotic range: the two values differ much less than the plain
        # differences do (a kink at x smooth to first order, relu(v)**2 at 0, leaves an error
        # proportional to the step, which Richardson does not remove); else their difference
        # itself bounds it
        spread = np.abs(coarse - fine) + coarse_noise + fine_noise
        asymptotic = np.abs(coarse - fine) <= 0.25 * np.abs(c2 - c3) + coarse_noise + fine_noise
        truncation = np.where(asymptotic, spread / 15.0, spread)
        # (judged against the element's own allowance: a kink's jump below the gradient's
        # scale is still a jump)
        tol = resolution[group]
        # the gaps halve with the step: within the tolerance, or with a residual that falls
        # as the cube of the step (a smooth function's next term; a kink within the step
        # keeps the residual's size)
        coarse_residual, fine_residual = np.abs(g1 - 2 * g2), np.abs(g2 - 2 * g3)
        smooth = (((coarse_residual <= tol + n1 + 2 * n2)
                   & (fine_residual <= tol + n2 + 2 * n3))
                  | (fine_residual <= 0.25 * coarse_residual + tol + n2 + 2 * n3))
        # a gap that does not halve, though within the tolerance (the smooth test allows it),
        # is a kink at x of that size: each value is uncertain by it too (a float32 tie in
        # max-pool whose analytic value is a one-sided derivative failed by its central one)
        for array, values in zip(out, (fine, fine_noise + truncation + fine_residual, coarse,
                                       coarse_noise + coarse_residual, truncation),
                                 strict=True):
            array[group] = values
        valid[group] = smooth & np.isfinite(fine) & np.isfinite(coarse)
    return (*out, valid)


#: Most unresolved and kink elements one judgement re-differences at a coarse step.
RESOLVE_CAP = 256
#: The jitters (in 64ths of the step) of the coarse look's measured rounding.
JITTERS = (1, 2, 3, 4, 5, 6)
#: The coarse look's step leaves this factor of room below the tolerance for rounding the
#: modelled floor does not see; the jitter measures what is there.
COARSE_MARGIN = 64.0


def _detrended_sigma(samples):
    """Per column, the standard deviation of ``samples`` (rows: steps 0, 1, 2, 3 / 64 apart)
    about their least-squares line in the step."""
    offsets = np.arange(samples.shape[0], dtype=np.float64)
    offsets -= offsets.mean()
    mean = samples.mean(axis=0)
    slope = (offsets @ (samples - mean)) / (offsets @ offsets)
    residual = samples - mean - np.outer(offsets, slope)
    return np.sqrt(np.sum(residual ** 2, axis=0) / (samples.shape[0] - 2))


def _coarse_confirm(look, judgement, analytic, resolution, tolerance, criteria, x_flat,
                    band=None):
    """A failure found at the first and finer steps must hold at a coarser one too.

    Finer steps round more, and an intermediate that rounds more than fn's outputs show (the
    ``1 + tanh(u)`` of GELU at u = -8, ``log(1 + exp(v))`` at v = -25) can make them
    disagree in a correct gradient. Failed elements, worst first, are differenced at a
    coarse step (see :func:`_coarse_look`); one whose coarse value is smooth, resolves its
    tolerance and agrees is ``OK``. Checking stops at the first failure that holds there
    beyond the rounding ``band`` (one that holds within it is unresolved, and the next may be
    the same: a float32 GELU's saturated elements).
    """
    failed = judgement.indices(FAILED)
    if failed.size == 0:
        return
    ratio = np.abs(judgement.numerical[failed] - analytic[failed]) / np.maximum(
        judgement.allowed[failed], 1e-300)
    failed = failed[np.argsort(-ratio, kind="stable")][:look.coarse_cap]
    cleared = []
    for start in range(0, failed.size, 8):
        batch = failed[start:start + 8]
        fine, uncertainty, _, _, _, valid = _coarse_values(
            look, batch, tolerance[batch], resolution[batch], criteria, x_flat, largest=True)
        res = resolution[batch]
        within = valid & (np.abs(fine - analytic[batch]) <= res + uncertainty)
        cleared.append((batch[within], fine[within], uncertainty[within],
                        np.where(uncertainty[within] <= res[within], OK, UNRESOLVED)))
        # a failure that holds keeps the more certain value (what it is reported with, and
        # what _narrow_rounding weighs), or the coarse one where the two differ by more than
        # both uncertainties: the first step's modelled floor missed rounding there
        first, first_noise = judgement.numerical[batch], judgement.noise[batch]
        sharper = valid & ~within & ((uncertainty < first_noise)
                                     | (np.abs(fine - first) > uncertainty + first_noise))
        if sharper.any():
            _record(judgement, batch[sharper], FAILED, fine[sharper], uncertainty[sharper],
                    resolution)
        held = ~within
        if band is not None:  # (judged by the value just recorded where it is sharper)
            held &= np.abs(judgement.numerical[batch] - analytic[batch]) > band[batch]
        if held.any():
            break
    where = np.concatenate([c[0] for c in cleared])
    if where.size == 0:
        return
    verdicts = np.concatenate([c[3] for c in cleared])
    _record(judgement, where, verdicts, np.concatenate([c[1] for c in cleared]),
            np.concatenate([c[2] for c in cleared]), resolution)
    n_ok = int(np.count_nonzero(verdicts == OK))
    judgement.notes.append(
        f"{where.size} element(s) disagreed at the first and finer steps but agree at a "
        f"coarser, smooth one within its measured rounding: the finer steps rounded more than "
        f"fn's outputs show (saturated intermediates); {n_ok} resolve their tolerance there "
        f"(passed), {where.size - n_ok} do not (unresolved)")


def _coarse_resolve(look, judgement, analytic, resolution, tolerance, criteria, x_flat):
    """Unresolved elements (no finer step was usable: an explicit step at a large |x|; or
    finer steps too noisy) get a coarse look too: where it is smooth and resolves the
    tolerance it decides, ``OK`` or ``FAILED`` (both of its values outside). A kink within
    the coarse step leaves them unresolved."""
    # (and elements excused as kinks smooth to first order, whose only evidence is that their
    # finer values kept moving: where a coarser step is smooth and in its asymptotic range,
    # there is no kink within it, and rounding moved them; a kink at x leaves them as they are)
    unresolved = judgement.indices(UNRESOLVED, KINK)[:min(look.coarse_cap, RESOLVE_CAP)]
    if unresolved.size == 0:
        return
    fine, uncertainty, coarse, coarse_noise, truncation, valid = _coarse_values(
        look, unresolved, tolerance[unresolved], resolution[unresolved], criteria, x_flat,
        largest=True)
    res, ana = resolution[unresolved], analytic[unresolved]
    decides = valid & (uncertainty <= res)
    agrees = decides & (np.abs(fine - ana) <= res + uncertainty)
    disagrees = decides & ~agrees & (np.abs(coarse - ana) > res + coarse_noise
                                     + 16 * truncation)
    changed = agrees | disagrees
    if not changed.any():
        return
    where = unresolved[changed]
    _record(judgement, where, np.where(agrees[changed], OK, FAILED), fine[changed],
            uncertainty[changed], resolution)
    judgement.notes.append(
        f"{where.size} element(s) no finer step could judge were judged at a coarser, smooth "
        f"step: {int(agrees.sum())} agree, {int(disagrees.sum())} disagree at two steps")


def _noise_dominated(judgement, analytic, tolerance, first_step, criteria_dtype):
    """A pass within a rounding floor far above the tolerance promises nothing at rtol: such
    elements are unresolved (a large constant in fn's output, a float32 loss summed over
    thousands of terms, saturated intermediates)."""
    # (an element whose analytic and numerical values are both within its floor of 0 is
    # consistently zero: nothing there for an error to hide in beyond the floor itself)
    zero = (np.abs(judgement.numerical) <= judgement.noise) & (
        np.abs(analytic) <= judgement.noise)
    dominated = (judgement.status == OK) & (judgement.noise > NOISE_DOMINANCE * tolerance) \
        & ~zero & first_step
    if dominated.any():
        judgement.status[dominated] = UNRESOLVED
        worst = float(np.max(judgement.noise[dominated]
                             / np.maximum(tolerance[dominated], 1e-300)))
        judgement.notes.append(
            f"{int(dominated.sum())} element(s) agree only within a rounding floor up to "
            f"{worst:.3g} x their tolerance, also at the coarsest usable step: the "
            f"differences in {criteria_dtype} cannot check them to rtol (a large constant in "
            "fn's output? subtract it" + ("; a float32 computation? difference it in float64)"
                                          if np.dtype(criteria_dtype).itemsize < 8 else ")"))


def _rounding_band(upstream, criteria, size):
    """Per element, the disagreement a narrow-dtype analytic's rounding of its upstream
    gradient can explain (see ``Measured.upstream``), or None where none is allowed.

    Differenced in a wider dtype, the differences are exact at that size and the band is
    ANALYTIC_ULPS of the upstream. Differenced in the analytic's own dtype, an elementwise
    map's float32 backward also multiplies that rounding by its formula's coefficients, and
    the differences round at that size too (a tanh-GELU at x = -5: ``x * u'`` is 16 there,
    and ``1 + tanh`` rounds where an ulp-sized move does not show it): UPSTREAM_ULPS, where
    fn's axis structure gives each element its own upstream gradient (a scalar loss's single
    upstream of 1 would make the band a flat absolute allowance)."""
    if upstream is None or criteria.grad_dtype.itemsize >= 8:
        return None
    upstream = np.broadcast_to(np.asarray(upstream, np.float64), (size,))
    if criteria.grad_dtype.itemsize < criteria.eval_dtype.itemsize:
        ulps = ANALYTIC_ULPS
    elif size > 1 and np.ptp(upstream) > 0:
        ulps = UPSTREAM_ULPS
    else:
        return None
    return ulps * np.finfo(criteria.grad_dtype).eps * upstream


def _narrow_rounding(judgement, analytic, band, grad_dtype):
    """Failures within the rounding band of a narrow-dtype analytic (``_rounding_band``) are
    unresolved, not failed: neither right nor wrong at this precision."""
    failed = judgement.indices(FAILED)
    if failed.size == 0 or band is None:
        return
    within = np.abs(judgement.numerical[failed] - analytic[failed]) <= band[failed]
    if within.any():
        judgement.status[failed[within]] = UNRESOLVED
        judgement.notes.append(
            f"{int(within.sum())} element(s) differ from the differences by less than the "
            f"rounding of a {grad_dtype} backward pass at the size of their upstream "
            "gradient: neither right nor wrong at this precision")


def _joint_kinks(look, judgement, analytic, resolution, criteria, x_flat):
    """Excused kink elements must also be right together.

    Each matched a one-sided derivative alone, but a gradient that gives every tied maximum
    the whole upstream gradient is wrong jointly: moved together, fn changes by one upstream
    gradient, not by one per tie. Kink elements that move a common output form one piece; along
    the direction that moves a piece's elements together, fn has one-sided derivatives, and
    the gradient's change must lie between them. That is evidence of an error only where fn
    is smooth along that direction (both one-sided changes agree: tied maxima moved together
    move the maximum by their step on both sides) and the gradient's change is not that slope:
    such a piece is split in halves down to the smallest violating sets, and their elements
    fail. Where fn has a kink along the joint direction too (several ReLU units exactly at 0,
    moved in different directions by one parameter), a backprop convention such as relu'(0) = 0
    need not lie between the joint one-sided slopes of a nonconvex composition: those elements
    are unresolved, not failed. (Pieces are tested one by one: separate kinks of opposite
    orientation need not satisfy it together.)
    """
    eps = np.finfo(criteria.eval_dtype).eps
    step = criteria.step_scale / SECOND_LOOK_FACTORS[1]
    kinks = judgement.indices(KINK)
    scale = np.maximum(1.0, np.abs(x_flat.astype(np.float64)))
    usable = (step * (scale if criteria.relative else 1.0)) >= eps ** (2 / 3) * scale
    kinks = kinks[usable[kinks]][:JOINT_MAX]
    if kinks.size < 2:
        return
    moved = look.coupled(kinks, step)
    pieces = _components(moved)

    def along(members, coefficients):
        # one-sided changes at the step and at half of it; their Richardson combination is
        # the first-order change along the direction (the curvature of fn's smooth part would
        # otherwise count against a sum of many exact one-sided derivatives). The noise part
        # of the slack does not shrink with the step while the changes do: where it would
        # swamp the gradient's own change (float32 differences), a coarser step is taken, and
        # where none resolves it the test gives no evidence (unresolved, never passed)
        for joint_step in (step, *(criteria.step_scale / factor for factor in
                                   JOINT_COARSER_FACTORS)):
            up1, down1, steps = look.jointly(members, joint_step, coefficients)
            up2, down2, _ = look.jointly(members, joint_step / 2, coefficients)
            up, down = 4 * up2 - up1, 4 * down2 - down1
            change = float(np.dot(analytic[members], steps))
            magnitude = np.abs(steps)
            noise = JOINT_NOISE_SIGMAS * float(
                np.sum(look.noise(members, joint_step) * magnitude))
            signal = max(float(np.sum(np.abs(analytic[members]) * magnitude)), abs(up),
                         abs(down))
            if noise <= RESOLVE_FRACTION * signal:
                break
        else:
            return NOISY
        slack = float(np.sum(resolution[members] * magnitude)) + noise
        low, high = min(up, down), max(up, down)
        if low - slack <= change <= high + slack:
            return None
        return FAILED if high - low <= 2 * slack else UNRESOLVED

    def violates(members):
        return along(members, None)

    violating = []
    unresolved = []
    pending = []
    noisy = []
    for piece in pieces:
        if piece.size > 1:
            outcome = violates(kinks[piece])
            if outcome == FAILED:
                pending.append(kinks[piece])
            elif outcome == UNRESOLVED:
                unresolved.append(kinks[piece])
            elif outcome == NOISY:
                noisy.append(kinks[piece])
    while pending and len(violating) < 64:
        members = pending.pop()
        halves = [half for half in np.array_split(members, 2) if half.size > 1]
        bad = [half for half in halves if violates(half) == FAILED]
        if bad:
            pending += bad
        else:
            violating.append(members)
    for doubtful, why in (
            (unresolved, "moved together fn has a kink along their joint direction as well and "
                         "their gradient lies outside both of its one-sided slopes there "
                         "(several units exactly at a kink at once): neither right nor wrong "
                         "by differences (try another x)"),
            (noisy, "whether they are right together (moved together, fn must change as "
                    "their gradient says) is below the rounding of fn's outputs at every step "
                    "that keeps to their kinks: unresolved (a float64 fn resolves it)")):
        if doubtful:
            doubtful = np.concatenate(doubtful)
            judgement.status[doubtful] = UNRESOLVED
            judgement.notes.append(f"{doubtful.size} kink element(s) are each a one-sided "
                                   f"derivative, but {why}")
    # and along x itself, every element moved in proportion to its value: there a max or a
    # ReLU of linear pieces is smooth (positively homogeneous) even where moving the kink
    # elements alike crosses the kink (tied pieces that grow at different rates)
    everything = np.flatnonzero(has_status(judgement.status, (OK, KINK)))
    values = x_flat.astype(np.float64)
    if not violating and everything.size == values.size and everything.size <= JOINT_MAX \
            and np.any(values != 0) and along(everything, values / np.max(np.abs(values))) \
            == FAILED:
        violating.append(judgement.indices(KINK))
    if violating:
        blamed = np.concatenate(violating)
        judgement.status[blamed] = FAILED
        judgement.notes.append(
            f"{blamed.size} kink element(s) are each a one-sided derivative, but not together: "
            "moved together, fn changes by less (or more) than their gradient says on either "
            "side (for example every tied maximum given the whole upstream gradient)")


def _components(moved):
    """Groups of rows that share a True column, transitively (indices into the rows)."""
    n = moved.shape[0]
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in np.flatnonzero(moved.any(axis=0)):
        rows = np.flatnonzero(moved[:, column])
        first = root(rows[0])
        for other in rows[1:]:
            parent[root(other)] = first
    roots = np.array([root(i) for i in range(n)])
    return [np.flatnonzero(roots == r) for r in np.unique(roots)]


def _second_look(look, examined, analytic, resolution, criteria, x_flat, numerical, noise,
                 status, notes, coarse_smooth, first_kink=None):
    """Re-difference ``examined`` at finer steps; set their status; return the refined ones.

    Per element, each step gives a Richardson value and says whether the function is smooth
    within the step (the one-sided gap halves) or jumps (the gap keeps its size). A value
    decides once two consecutive smooth steps put it at the same place. The first step's
    value is uncertain by its floor plus its kink indicator ``first_kink`` (which bounds what
    one kink crossed leaves in a Richardson value): a kink crossed just below the indicator's
    threshold must not make the first step's value the most precise one.
    """
    eps = np.finfo(criteria.eval_dtype).eps
    scale = np.maximum(1.0, np.abs(x_flat[examined].astype(np.float64)))
    # below eps**(2/3) a step keeps fewer than a third of the digits of x; the noise floor
    # decides whether a step resolves the tolerance
    finest_allowed = eps ** (2 / 3) * scale
    pending = np.arange(examined.size)
    status[examined] = UNRESOLVED
    res = resolution[examined]
    ana = analytic[examined]
    value = numerical[examined].copy()          # the value at the latest step
    value_noise = noise[examined].copy()
    if first_kink is not None:
        value_noise += np.where(np.isfinite(first_kink), first_kink, 0.0)
    smooth_before = np.asarray(coarse_smooth, dtype=bool).copy()
    drift = np.full(examined.size, np.inf)       # movement between the last two smooth steps
    drift_before = np.full(examined.size, np.inf)
    drift_noise = np.zeros(examined.size)        # the noise of the two values it compares
    # every finer step so far was smooth and put the value where the first step did
    coarse_value, coarse_noise = value.copy(), value_noise.copy()
    consistent = smooth_before.copy()
    settled_drift = np.full(examined.size, np.nan)
    settled_value = np.full(examined.size, np.nan)
    jumped = np.zeros(examined.size, dtype=bool)  # the latest step showed a jump
    kink_fits = np.ones(examined.size, dtype=bool)  # a kink within the noise fits every step
    one_sided = np.full((examined.size, 3), np.nan)  # D-, D+, curvature allowance
    jump_gap = np.zeros(examined.size)  # the gap of the latest jump seen
    # a jump was seen and finer steps are too noisy to see it again: refining stops there (a
    # step whose noise swallows the gap would pass for smooth and overrule the evidence)
    frozen = np.zeros(examined.size, dtype=bool)
    # |Richardson value - analytic| at each finer step (NaN where not taken)
    errors = np.full((examined.size, len(SECOND_LOOK_FACTORS)), np.nan)
    errors_noise = np.full((examined.size, len(SECOND_LOOK_FACTORS)), np.nan)
    refined = []
    noise_limited = 0

    def settle(positions, verdicts):
        status[examined[positions]] = verdicts
        numerical[examined[positions]] = value[positions]
        noise[examined[positions]] = value_noise[positions]
        refined.extend(examined[positions].tolist())

    for level, factor in enumerate(SECOND_LOOK_FACTORS):
        if pending.size == 0:
            break
        step = criteria.step_scale / factor
        steps = step * (scale[pending] if criteria.relative else 1.0)
        now = pending[(steps / 2 >= finest_allowed[pending]) & ~frozen[pending]]
        if now.size == 0:
            break
        n1 = look.noise(examined[now], step)
        blind = jumped[now] & (jump_gap[now] <= 2 * (res[now] + 2 * (3 * n1)))
        frozen[now[blind]] = True
        now, n1 = now[~blind], n1[~blind]
        if now.size == 0:
            continue
        where = examined[now]
        c1, g1 = look.differences(where, step)
        c2, g2 = look.differences(where, step / 2)
        n2 = 2 * n1
        richardson = c2 + (c2 - c1) / 3.0
        fine_noise = (4 * n2 + n1) / 3.0
        errors[now, level] = np.abs(richardson - ana[now])
        errors_noise[now, level] = fine_noise
        # the slope jumps within step/6 of x: the gap keeps its size as the step halves, clear
        # of the noise -- evidence of a kink even where the gap is within the tolerance (a
        # backprop convention at several kinks at once can then lie outside both slopes)
        jumps = (np.abs(g2) > 4 * n2) & (np.abs(g1 - g2) <= JUMP_STABILITY * np.abs(g2))
        smooth = (np.abs(g1 - 2 * g2) <= res[now] + 2 * fine_noise) & ~jumps
        # a gap that keeps its size (though not clear of the modelled noise) with a one-sided
        # value at the analytic one, at every step so far: a kink at x explains the
        # disagreement of the central value (the mean of the one-sided ones there) as well as
        # a wrong value does (float32 differences of a tie whose upstream gradient is small),
        # so it is no evidence of an error (nor of a kink: unresolved). A smooth function's
        # gap halves with the step, and noise keeps it within a quarter, with a one-sided
        # value within the tolerance proper of the analytic one, at every step only rarely
        with np.errstate(invalid="ignore"):
            kink_fits[now] &= (np.abs(g1 - g2) <= JUMP_STABILITY * np.abs(g2)) & (np.minimum(
                                   np.abs(c2 - g2 - ana[now]), np.abs(c2 + g2 - ana[now]))
                                   <= res[now])
        # a value is settled when the previous step, also smooth, put it at the same place: a
        # kink at x that is smooth to first order (relu(v)**2) still moves it with the step
        moved = np.abs(richardson - value[now])
        stable = smooth & smooth_before[now] & (moved <= res[now] + fine_noise +
                                                value_noise[now])
        drift_before[now] = drift[now]
        drift[now] = np.where(smooth & smooth_before[now], moved, np.inf)
        drift_noise[now] = fine_noise + value_noise[now]
        # the last movement that stood clear of the noise, and where it left the value
        significant = smooth & smooth_before[now] & (moved > 4 * drift_noise[now])
        settled_drift[now[significant]] = moved[significant]
        settled_value[now[significant]] = richardson[significant]
        consistent[now] &= smooth & (np.abs(richardson - coarse_value[now]) <= res[now] +
                                     fine_noise + coarse_noise[now])
        # a stable pair decides by the coarser of its two values: the less noisy one
        previous, previous_noise = value[now].copy(), value_noise[now].copy()
        use_previous = stable & (previous_noise < fine_noise)
        value[now] = np.where(use_previous, previous, richardson)
        value_noise[now] = np.where(use_previous, previous_noise, fine_noise)
        smooth_before[now] = smooth
        error = np.abs(value[now] - ana[now])
        # the less noisy value of a stable pair decides agreement (a noisier one could hide
        # a real error in its floor, which is why the first step's disagreement is kept when
        # finer steps only add noise to it: see `confirmed` below)
        agrees = error <= res[now] + value_noise[now]
        resolved = (value_noise[now] <= RESOLVE_FRACTION * res[now]) | (error <= res[now])
        # disagreement must hold for both values of the pair: a value still converging (a
        # kink at x smooth to first order) can hide its last movement in a noisier step
        both_disagree = ~agrees & (np.abs(richardson - ana[now]) > res[now] + fine_noise) & \
            ~kink_fits[now]
        # while every step is smooth and consistent with the first one, the first step's value
        # is the most precise, and it disagreed: agreement at a noisier step cannot overrule it
        # -- unless that step resolves the tolerance with room to spare (a kink at x smooth to
        # first order leaves the first step a truncation error of O(h) that Richardson does
        # not remove, and a finer step's value, clear of its noise, is the better one)
        clear_agreement = agrees & (value_noise[now] <= RESOLVE_FRACTION * res[now]) & (
            error + value_noise[now] <= res[now])
        decided = stable & ((agrees & (~consistent[now] | clear_agreement)) | both_disagree)
        noise_limited += int(np.count_nonzero(stable & agrees & ~resolved))
        settle(now[decided], np.where(agrees[decided], OK, FAILED))
        # the next step compares with this one's own value
        value[now[~decided]] = richardson[~decided]
        value_noise[now[~decided]] = fine_noise[~decided]
        jumped[now] = jumps | (jumped[now] & ~smooth)  # a later crossing keeps the jump
        jump_gap[now[jumps]] = np.abs(g2[jumps])
        curvature = np.maximum(np.abs((c1 + g1) - (c2 + g2)), np.abs((c1 - g1) - (c2 - g2)))
        # (the least noisy level that showed the jump keeps its one-sided values: a finer
        # one, in float32 differences, can carry a floor of several percent of them, within
        # which any value near one of them would pass for it)
        seen = np.stack([c2 - g2, c2 + g2, curvature + n2], axis=1)[jumps]
        with np.errstate(invalid="ignore"):
            better = ~(one_sided[now[jumps], 2] <= seen[:, 2])
        one_sided[now[jumps][better]] = seen[better]
        pending = pending[~np.isin(pending, now[decided])]
    numerical[examined[pending]] = value[pending]  # the finest value measured
    noise[examined[pending]] = value_noise[pending]
    if pending.size == 0:
        return np.array(sorted(refined), dtype=np.intp)
    error = np.abs(value[pending] - ana[pending])
    allowance = res[pending] + value_noise[pending]
    last_smooth = smooth_before[pending]
    moving = last_smooth & np.isfinite(drift[pending])
    # one smooth step at the end, after steps that crossed kinks: it decides
    single = last_smooth & ~moving
    settle(pending[single & (error > allowance)], FAILED)
    settle(pending[single & (error <= allowance)], OK)
    # the first step disagreed where it was smooth, and every finer step, smooth too, only
    # added noise around the same value: the first step's disagreement stands
    coarse_error = np.abs(coarse_value[pending] - ana[pending])
    confirmed = ~single & consistent[pending] & (
        coarse_error > res[pending] + coarse_noise[pending]) & ~kink_fits[pending]
    # ... unless a finer step's value, floor included, is closer to the analytic value than
    # the first step's (a kink at x smooth to first order leaves the first step an O(h)
    # truncation error that Richardson does not remove): the finer steps then do not confirm
    # the disagreement, and with floors too high to decide either way the element is
    # unresolved, not failed
    with np.errstate(invalid="ignore"):
        closer = np.any(errors[pending] + errors_noise[pending]
                        < (coarse_error - coarse_noise[pending])[:, None], axis=1)
    converging = confirmed & closer
    if converging.any():
        status[examined[pending[converging]]] = UNRESOLVED
        notes.append(f"{int(converging.sum())} element(s) disagree at the first step, but a "
                     "finer step puts them closer to the analytic value than its floor can "
                     "resolve (a kink at x smooth to first order): unresolved")
    confirmed &= ~converging
    value[pending[confirmed]] = coarse_value[pending[confirmed]]  # the most precise value
    value_noise[pending[confirmed]] = coarse_noise[pending[confirmed]]
    settle(pending[confirmed], FAILED)
    # still moving with the step at the finest one, well beyond the noise and less at each
    # step: a kink at x of higher order; the limit is within a ninth of the last movement of
    # the finest value (it shrinks tenfold a step)
    # (the last movement may have sunk into a noisier step's noise: then the last one that
    # stood clear of it, with the value it left, bounds the limit)
    clear = np.isfinite(settled_drift[pending])
    moving = last_smooth & ~confirmed & clear
    envelope = np.where(clear, settled_drift[pending], 0.0)
    limit_error = np.abs(np.where(clear, settled_value[pending], 0.0) - ana[pending])
    within = moving & (limit_error <= envelope + res[pending]) & (
        np.abs(value[pending] - np.where(clear, settled_value[pending], 0.0))
        <= envelope + value_noise[pending])
    beyond = moving & (limit_error > 2 * envelope + allowance)
    status[examined[pending[within]]] = KINK
    settle(pending[beyond], FAILED)
    if within.any():
        notes.append(f"{int(within.sum())} element(s) sit on a kink smooth to first order (their "
                     "differences keep moving in proportion to the step) and their analytic "
                     "value lies within that movement: excused, listed in kinks")
    at_jump = pending[jumped[pending]]
    if at_jump.size:
        d_minus, d_plus, slack = one_sided[at_jump].T
        allowed = res[at_jump] + slack
        matches = ((np.abs(ana[at_jump] - d_minus) <= allowed)
                   | (np.abs(ana[at_jump] - d_plus) <= allowed)
                   | (np.abs(ana[at_jump] - (d_minus + d_plus) / 2) <= allowed))
        status[examined[at_jump[matches]]] = KINK
        if matches.any():
            notes.append(f"{int(matches.sum())} element(s) sit on a kink (the one-sided "
                         "differences keep their gap as the step shrinks) and their analytic "
                         "value is a one-sided derivative there or the mean of the two: "
                         "excused, listed in kinks")
        if (~matches).any():
            notes.append(f"{int((~matches).sum())} element(s) sit on a kink where the analytic "
                         "value is neither one-sided derivative nor their mean: a difference "
                         "cannot check that convention (try another x)")
    rest = int(np.count_nonzero(status[examined[pending]] == UNRESOLVED)) - int(
        np.count_nonzero(status[examined[at_jump]] == UNRESOLVED))
    if rest:
        notes.append(f"{rest} element(s) outside tolerance could not be judged: no finer step "
                     "was both smooth and clear of its rounding floor (a kink within every "
                     "step, or rounding above the tolerance at the finer ones: a float32 "
                     "function of large values, say)")
    if noise_limited:
        notes.append(f"{noise_limited} element(s) agree at finer steps only within their "
                     "rounding floor, which exceeds rtol |a| there (see result.tolerance)")
    return np.array(sorted(refined), dtype=np.intp)


def swamped(judgement, analytic):
    """Black boxes: elements "within tolerance" only because a noise floor swamps their
    difference are unresolved: such a difference cannot tell the gradient from 0 or from 3
    times itself (fn's outputs carry a large constant, or a declared noise is that large)."""
    numerical = judgement.numerical
    scale = max(float(np.max(np.abs(analytic[np.isfinite(analytic)]), initial=0.0)),
                float(np.max(np.abs(numerical[np.isfinite(numerical)]), initial=0.0)))
    if scale == 0:
        return
    swamped = (judgement.status == OK) & (judgement.noise > SWAMPED_FRACTION * scale)
    if not swamped.any():
        return
    judgement.status[swamped] = UNRESOLVED
    judgement.notes.append(
        zero_gradient_note(scale, "difference") if not np.any(analytic[np.isfinite(analytic)])
        else f"{int(swamped.sum())} element(s) have a rounding floor (or declared noise) above "
             f"{SWAMPED_FRACTION:g} x the gradient's largest magnitude ({scale:.3g}): their "
             "differences cannot confirm them (a large constant in fn's output? subtract it; "
             "or give a larger h, or reduce the noise)")


def zero_gradient_note(scale, what):
    """Why an exactly zero gradient whose ``what`` (differences, or directions' differences)
    lie within their rounding floor of 0 (at most ``scale``) is not passed: no constant, no
    noise; the only scale is the differences' own rounding."""
    return (f"the gradient is exactly 0 and every {what} is within its rounding floor of 0 "
            f"(at most {scale:.3g}): with no scale to judge against, a zero gradient cannot "
            "be told from a tiny one by differences (fn's outputs do not move with x to first "
            "order: check what feeds them, or a quantity that depends on x)")


def decide(judgement, blockers=()):
    """Return ``(verdict, reason)`` from a judgement and method-level blockers.

    ``blockers`` are reasons the method itself could not judge (a directional search that
    stopped at its limit); any makes a result that found no failure inconclusive.
    """
    n_failed = judgement.count(FAILED)
    if n_failed:
        unexamined = judgement.count(UNEXAMINED)
        more = f" ({unexamined} more outside tolerance, not re-examined)" if unexamined else ""
        return FAILED_VERDICT, (f"{n_failed} element(s) disagree with the analytic gradient "
                                f"at two steps{more}")
    reasons = []
    for code, what in ((UNRESOLVED, "could not be judged (non-smooth, or rounding above their "
                                   "tolerance, at every usable step: the notes say which)"),
                       (UNEXAMINED, "are outside tolerance and were not re-examined"),
                       (NAN, "gave NaN or inf differences")):
        count = judgement.count(code)
        if count:
            reasons.append(f"{count} element(s) {what}")
    reasons += list(blockers)
    if reasons:
        return INCONCLUSIVE_VERDICT, "; ".join(reasons) + (
            "; check at another x or with another method (colored or exhaustive check every "
            "element)")
    return PASSED_VERDICT, "every element within its tolerance" + (
        f" ({judgement.count(KINK)} excused at kinks)" if judgement.count(KINK) else "")


def combine_verdicts(verdicts):
    """The verdict of several checks (a model's parameters): failed > inconclusive > passed."""
    if FAILED_VERDICT in verdicts:
        return FAILED_VERDICT
    if INCONCLUSIVE_VERDICT in verdicts:
        return INCONCLUSIVE_VERDICT
    return PASSED_VERDICT
