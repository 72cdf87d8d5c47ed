"""Second look at failing elements with a step 100 times smaller.

A central difference whose step crosses a kink (a ReLU unit of some sample switching on) is
not about the gradient at x. Where perturbations move many samples at once, kinks can be
crossed on both sides of x, and no rule on f(x - h), f(x), f(x + h) alone tells that from a
wrong gradient. A few failing elements are therefore differenced again at ``step / 100``
(then ``/ 10000``), through fn itself or, for an elementwise structure, through the element's
own kernel: a wrong gradient stays wrong, a crossing becomes 100 times less likely. Values that
then agree replace the coarse ones and are listed as refined. A refined difference whose
rounding floor would exceed the element's tolerance is not taken: it could not tell a small
real error from noise, and would hide it behind its wider floor.
"""

import numpy as np

from ._tolerances import JUMP_STABILITY
from .methods import noise_floor

#: Most failing elements re-differenced through fn (more failures than this are not step
#: artefacts of a black box).
REFINE_MAX = 64
#: The same through a structure's own kernel, which re-differences an element for the cost of
#: a few rows: a wide ReLU network crosses kinks in hundreds of elements at the coarse step.
REFINE_MAX_STRUCTURED = 2**14
#: Step reductions tried in turn while an element still fails.
REFINE_FACTORS = (100.0, 10000.0)
#: No refined step goes below sqrt(eps) * max(1, |x|): rounding noise eps * |g| / h then stays
#: under sqrt(eps) * |g|, far below the tolerance (a noisy gap must not look like a kink).


def refine_failures(evaluate, x, dLdf, numerical, gap, failing_after, step_scale, relative,
                    noise=None, resolution=None, structure=None, elements=None, order=2):
    """Re-difference failing elements of ``x`` with smaller steps, in place.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(value) -> array``, the function being checked (value is a fresh copy).
    x, dLdf : numpy.ndarray
        The base point and the output weights (broadcast to the output's shape).
    numerical, gap : numpy.ndarray
        The coarse central differences and one-sided gaps, updated in place where refined:
        shaped like ``x``, or aligned with ``elements`` when given.
    failing_after : callable
        ``failing_after() -> bool array``: which entries of ``numerical`` fail with the
        current values.
    step_scale, relative : float, bool
        The step rule of the coarse differences.
    order : {2, 4}
        Their order: the finest coarse step, which ``noise`` was computed for, is
        ``step_scale`` (order 2) or ``step_scale / 2`` (order 4).
    noise : numpy.ndarray, optional
        Per-element noise floors, updated in place for refined elements: the re-evaluation
        goes through fn as a black box, so its floor is the black-box one at the finer step.
    resolution : numpy.ndarray, optional
        Per element, the tolerance without noise. An element whose refined floor would exceed
        it is left as it was: a difference that cannot resolve the tolerance decides nothing.
    structure : optional
        A structure that differences any subset of elements on its own (``elementwise``: an
        elementwise activation or loss in ``fastgrad._structure``, a model parameter in
        ``fastgrad._model_check``): its kernel re-differences the elements, so the refined
        floor is that of the element's own magnitude at the refined step, not the black box's
        (a scalar loss over 262,144 terms cannot resolve one term at a step 100x smaller), and
        up to ``REFINE_MAX_STRUCTURED`` elements are refined.
    elements : numpy.ndarray, optional
        Flat indices into ``x`` of the entries of ``numerical``, ``gap``, ``noise`` and
        ``resolution`` (a method that differenced only some elements: directional).

    Returns
    -------
    refined : numpy.ndarray
        Flat indices into ``x`` that were re-differenced (empty when there were none or too
        many).
    at_kink : numpy.ndarray
        Flat indices into ``x`` of failing elements where the slope jumps at x itself (a ReLU
        unit exactly at 0): the one-sided differences keep disagreeing at two steps, so no
        difference can check the analytic value there, which is a convention (compare
        reports them as kinks).
    """
    weights = np.asarray(dLdf, dtype=np.float64).reshape(-1)
    flat_x = x.reshape(-1)
    flat_numerical = numerical.reshape(-1)
    flat_gap = gap.reshape(-1) if gap is not None else None
    flat_noise = None if noise is None else noise.reshape(-1)
    coarse_noise = None if noise is None else flat_noise.copy()
    flat_resolution = None if resolution is None else resolution.reshape(-1)
    floor = float(np.sqrt(np.finfo(x.dtype).eps))
    refined = set()
    kink_entries = np.zeros(0, dtype=np.intp)  # positions in numerical of the at_kink elements
    elementwise = structure is not None and structure.elementwise
    if elementwise:
        magnitude = np.broadcast_to(structure.magnitude(x, dLdf, structure.evaluate(x)),
                                    x.shape).reshape(-1)
    else:
        base = np.asarray(evaluate(x.copy()), dtype=np.float64).reshape(-1)
        black_box = float(np.sqrt(np.sum((base * weights) ** 2)))
    for factor in REFINE_FACTORS:
        if step_scale / factor < floor:
            break
        candidates = np.flatnonzero(failing_after())
        if candidates.size > (REFINE_MAX_STRUCTURED if elementwise else REFINE_MAX):
            break
        candidates = candidates[~np.isin(candidates, kink_entries)]
        if candidates.size == 0:
            break
        where = candidates if elements is None else np.asarray(elements)[candidates]
        values = np.abs(flat_x[where].astype(np.float64))
        step = step_scale / factor
        steps = step * (np.maximum(1.0, values) if relative else 1.0)
        if elementwise:  # the element's own floor, order 2 at the refined step
            refined_noise = noise_floor(magnitude[where], steps, x.dtype)
        else:  # the black box's floor, and at least the coarse one scaled to the finer step
            refined_noise = noise_floor(black_box, steps, x.dtype)
            if coarse_noise is not None:
                shrink = factor / (2.0 if order == 4 else 1.0)  # finest coarse / refined step
                refined_noise = np.maximum(refined_noise, coarse_noise[candidates] * shrink)
        fine_enough = steps >= floor * np.maximum(1.0, values)
        if not fine_enough.all():
            candidates, where, refined_noise = (candidates[fine_enough], where[fine_enough],
                                                refined_noise[fine_enough])
        if candidates.size == 0:
            continue
        # a refined value replaces the coarse one only where its floor resolves the tolerance;
        # the jump test below needs no such resolution (a jump must only clear the noise)
        resolves = np.ones(candidates.size, dtype=bool) if flat_resolution is None else \
            refined_noise <= flat_resolution[candidates]
        if elementwise:
            central, half_gap = structure.subset_differences(x, dLdf, where, step, relative)
            _, finer_half_gap = structure.subset_differences(x, dLdf, where, step / 2, relative)
        else:
            central, half_gap, finer_half_gap = (np.empty(where.size) for _ in range(3))
            for n, index in enumerate(where):
                central[n], half_gap[n] = _black_box(evaluate, x, base, weights, index, step,
                                                     relative)
                _, finer_half_gap[n] = _black_box(evaluate, x, base, weights, index, step / 2,
                                                  relative)
        taken = candidates[resolves]
        flat_numerical[taken] = central[resolves]
        if flat_gap is not None:
            flat_gap[taken] = half_gap[resolves]
        if flat_noise is not None:  # the noise floor grows as the step shrinks
            flat_noise[taken] = refined_noise[resolves]
        refined.update(int(i) for i in where[resolves])
        # the slope jumps at x itself when the one-sided disagreement does not shrink with the
        # step (smooth: it halves); it must also stand clear of the finer step's noise and of
        # the tolerance, so that neither noise nor a wrong gradient can pass for one
        threshold = 2.0 * refined_noise + (flat_resolution[candidates] if flat_resolution
                                           is not None else 0.0)
        jumps = (np.abs(finer_half_gap) > threshold) & (
            np.abs(half_gap - finer_half_gap) <= JUMP_STABILITY * np.abs(finer_half_gap))
        kink_entries = np.union1d(kink_entries, candidates[jumps])
    at_kink = kink_entries if elements is None else np.asarray(elements)[kink_entries]
    return np.array(sorted(refined), dtype=np.intp), np.sort(at_kink).astype(np.intp)


def _black_box(evaluate, x, base, weights, index, step_scale, relative):
    """Order-2 (central, half gap) of one element through fn, at the given step."""
    value = x.reshape(-1)[index]
    h = step_scale * (max(1.0, abs(value)) if relative else 1.0)
    sums = []
    for target in (value + h, value - h):
        work = x.copy()
        work.reshape(-1)[index] = target
        change = np.asarray(evaluate(work), dtype=np.float64).reshape(-1) - base
        sums.append(float(np.dot(change, weights)))
    h_plus = (value + h) - value
    h_minus = value - (value - h)
    up, down = sums[0], -sums[1]
    return (up + down) / (h_plus + h_minus), (up / h_plus - down / h_minus) / 2.0
