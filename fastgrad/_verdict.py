"""The one place where differences become a verdict.

Every method of :func:`fastgrad.check_gradients` and the model check hand their per-element
measurements to :func:`judge`, and their result's three-way verdict comes from
:func:`decide`. Nothing else in fastgrad decides whether an element passes.

The rules
---------
1. **Allowance, in the element's own units.** Element ``i`` with analytic value ``a_i`` is
   allowed ``rtol * |a_i| + atol * T_i + ANALYTIC_ULPS * eps_grad * max_j T_j + noise_i``.
   ``T_i`` is the magnitude of the terms that form the element, ``sum_k |dLdf_k df_k/dx_i|``,
   measured by the same differences (the rounding of a gradient computed in a dtype with
   machine epsilon ``eps`` is about ``eps * T_i``, not ``eps * |a_i|``, where terms cancel).
   ``noise_i`` is the rounding floor of the element's own difference: ``NOISE_ULPS * eps *
   S_i / h_i`` with ``S_i`` the root-sum-square of the weighted outputs the element moves. An
   ``atol`` given by the caller is absolute and replaces the two middle terms.
2. **Within the allowance: the element is right** (``OK``).
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
    JUMP_STABILITY,
    NOISE_ULPS,
    RESOLVE_FRACTION,
    SECOND_LOOK_FACTORS,
)

OK, FAILED, KINK, UNRESOLVED, UNEXAMINED, NAN = range(6)
STATUS_NAMES = ("ok", "failed", "kink", "unresolved", "unexamined", "nan")

PASSED_VERDICT, FAILED_VERDICT, INCONCLUSIVE_VERDICT = "passed", "failed", "inconclusive"


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

    def allowance(self, analytic, terms):
        """Per element, the allowance without the differences' noise."""
        magnitude = np.abs(analytic)
        if not self.atol_relative:
            return self.rtol * magnitude + self.atol
        terms = magnitude if terms is None else np.maximum(terms, 0.0)
        # the analytic value's own rounding: a backward pass rounds at the size of the terms
        # it combines, which for an element may be other elements' (an exact 0 that comes out
        # as a residue, 1 - tanh**2 near saturation times its upstream gradient), so the
        # largest element's terms (one NaN element must not make every allowance NaN)
        largest = float(np.where(np.isfinite(terms), terms, 0.0).max(initial=0.0))
        floor = ANALYTIC_ULPS * np.finfo(self.grad_dtype).eps * largest
        return self.rtol * magnitude + self.atol * terms + floor


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
    #: The kink indicator ``|G(h) - 2 G(h/2)|`` of order-4 differences (None for order 2):
    #: where it is within the tolerance, the first step counts as smooth.
    kink: np.ndarray = None


class Look:
    """Re-differences chosen elements at a given step (order 2). Subclasses implement it.

    ``cap`` is how many elements one judgement may re-difference.
    """

    cap = 64

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
        return np.flatnonzero(np.isin(self.status, statuses))

    def count(self, *statuses):
        return int(np.count_nonzero(np.isin(self.status, statuses)))

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
    resolution = criteria.allowance(analytic, terms)
    status = np.zeros(numerical.size, dtype=np.int8)
    finite = np.isfinite(numerical)
    status[~finite] = NAN
    error = np.abs(np.where(finite, numerical, 0.0) - analytic)
    outside = finite & (error > resolution + noise)
    refined = np.zeros(0, dtype=np.intp)
    notes = []
    if outside.any():
        candidates = np.flatnonzero(outside)
        ratio = error[candidates] / np.maximum(resolution + noise, 1e-300)[candidates]
        candidates = candidates[np.argsort(-ratio, kind="stable")]
        examined = candidates[:look.cap] if look is not None else candidates[:0]
        status[candidates[examined.size:]] = UNEXAMINED
        if examined.size:
            if measured.kink is None:
                coarse_smooth = np.zeros(examined.size, dtype=bool)
            else:
                kink = np.broadcast_to(measured.kink, numerical.shape)[examined]
                coarse_smooth = kink <= resolution[examined] + 2 * noise[examined]
            refined = _second_look(look, examined, analytic, resolution, criteria, x_flat,
                                   numerical, noise, status, notes, coarse_smooth)
        if candidates.size > examined.size:
            notes.append(f"{candidates.size - examined.size} element(s) outside tolerance "
                         "were not re-examined at a finer step ("
                         + ("more than the second look's budget of "
                            f"{look.cap}" if look is not None else
                            "this method cannot re-difference single elements") + ")")
    judgement = Judgement(status=status, numerical=numerical, noise=noise,
                          allowed=resolution + noise, refined=refined, notes=notes)
    if measured.upstream is not None and criteria.grad_dtype.itemsize < \
            criteria.eval_dtype.itemsize:
        _narrow_rounding(judgement, analytic, measured.upstream, criteria)
    if look is not None and look.jointly is not None and judgement.count(KINK) > 1:
        # (looks that can move several elements at once: black boxes)
        _joint_kinks(look, judgement, analytic, resolution, criteria, x_flat)
    return judgement


#: Most kink elements whose couplings the joint test examines (one evaluation each).
JOINT_MAX = 4096


def _narrow_rounding(judgement, analytic, upstream, criteria):
    """Failures within a narrow-dtype analytic's rounding of its upstream gradient are
    unresolved, not failed (see ``Measured.upstream``)."""
    failed = judgement.indices(FAILED)
    if failed.size == 0:
        return
    floor = ANALYTIC_ULPS * np.finfo(criteria.grad_dtype).eps * np.broadcast_to(
        upstream, judgement.status.shape)[failed]
    within = np.abs(judgement.numerical[failed] - analytic[failed]) <= floor
    if within.any():
        judgement.status[failed[within]] = UNRESOLVED
        judgement.notes.append(
            f"{int(within.sum())} element(s) differ from the differences by less than the "
            f"rounding of a {criteria.grad_dtype} backward pass at the size of their upstream "
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

    def violates(members):
        # one-sided changes at the step and at half of it; their Richardson combination is
        # the first-order change along the direction (the curvature of fn's smooth part would
        # otherwise count against a sum of many exact one-sided derivatives)
        up1, down1, steps = look.jointly(members, step)
        up2, down2, _ = look.jointly(members, step / 2)
        up, down = 4 * up2 - up1, 4 * down2 - down1
        change = float(np.dot(analytic[members], steps))
        slack = float(np.sum(resolution[members] * steps)) + 2 * 5 * float(
            np.sum(look.noise(members, step) * steps))
        low, high = min(up, down), max(up, down)
        if low - slack <= change <= high + slack:
            return None
        return FAILED if high - low <= 2 * slack else UNRESOLVED

    violating = []
    unresolved = []
    pending = []
    for piece in pieces:
        if piece.size > 1:
            outcome = violates(kinks[piece])
            if outcome == FAILED:
                pending.append(kinks[piece])
            elif outcome == UNRESOLVED:
                unresolved.append(kinks[piece])
    while pending and len(violating) < 64:
        members = pending.pop()
        halves = [half for half in np.array_split(members, 2) if half.size > 1]
        bad = [half for half in halves if violates(half) == FAILED]
        if bad:
            pending += bad
        else:
            violating.append(members)
    if unresolved:
        doubtful = np.concatenate(unresolved)
        judgement.status[doubtful] = UNRESOLVED
        judgement.notes.append(
            f"{doubtful.size} kink element(s) are each a one-sided derivative, but moved "
            "together fn has a kink along their joint direction as well and their gradient "
            "lies outside both of its one-sided slopes there (several units exactly at a kink "
            "at once): neither right nor wrong by differences (try another x)")
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
                 status, notes, coarse_smooth):
    """Re-difference ``examined`` at finer steps; set their status; return the refined ones.

    Per element, each step gives a Richardson value and says whether the function is smooth
    within the step (the one-sided gap halves) or jumps (the gap keeps its size). A value
    decides once two consecutive smooth steps put it at the same place.
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
        both_disagree = ~agrees & (np.abs(richardson - ana[now]) > res[now] + fine_noise)
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
        one_sided[now[jumps]] = np.stack([c2 - g2, c2 + g2, curvature + n2], axis=1)[jumps]
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
        coarse_error > res[pending] + coarse_noise[pending])
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
        notes.append(f"{rest} element(s) outside tolerance could not be judged at any step fine "
                     "enough to avoid kinks")
    if noise_limited:
        notes.append(f"{noise_limited} element(s) agree at finer steps only within their "
                     "rounding floor, which exceeds rtol |a| there (see result.tolerance)")
    return np.array(sorted(refined), dtype=np.intp)


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
    for code, what in ((UNRESOLVED, "could not be judged (non-smooth at every usable step)"),
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
