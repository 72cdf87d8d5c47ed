"""Second look at failing elements with a step 100 times smaller.

A central difference whose step crosses a kink (a ReLU unit of some sample switching on) is
not about the gradient at x. Where perturbations move many samples at once, kinks can be
crossed on both sides of x, and no rule on f(x - h), f(x), f(x + h) alone tells that from a
wrong gradient. A few failing elements are therefore differenced again through fn itself at
``step / REFINE_FACTOR``: a wrong gradient stays wrong, a crossing becomes 100 times less
likely. Values that then agree replace the coarse ones and are listed as refined.
"""

import numpy as np

from .methods import noise_floor

#: Most failing elements re-differenced (more failures than this are not step artefacts).
REFINE_MAX = 64
#: Step reductions tried in turn while an element still fails.
REFINE_FACTORS = (100.0, 10000.0)
#: No refined step goes below sqrt(eps) * max(1, |x|): rounding noise eps * |g| / h then stays
#: under sqrt(eps) * |g|, far below the tolerance (a noisy gap must not look like a kink).


def refine_failures(evaluate, x, dLdf, numerical, gap, failing_after, step_scale, relative,
                    noise=None, resolution=None, structure=None):
    """Re-difference failing elements of ``x`` with smaller steps, in place.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(value) -> array``, the function being checked (value is a fresh copy).
    x, dLdf : numpy.ndarray
        The base point and the output weights (broadcast to the output's shape).
    numerical, gap : numpy.ndarray
        The coarse central differences and one-sided gaps, updated in place where refined.
    failing_after : callable
        ``failing_after() -> bool array``: which elements fail with the current values.
    step_scale, relative : float, bool
        The step rule of the coarse differences.
    noise : numpy.ndarray, optional
        Per-element noise floors, updated in place for refined elements: the re-evaluation
        goes through fn as a black box, so its floor is the black-box one at the finer step.
    resolution : numpy.ndarray, optional
        Per element, the tolerance without noise. An element whose refined floor would exceed
        it is left as it was: a difference that cannot resolve the tolerance decides nothing.
    structure : optional
        An elementwise structure (see ``fastgrad._structure``): its kernel re-differences the
        elements themselves, so the refined floor is the element's own, not the black box's
        (a scalar loss over 262,144 terms cannot resolve one term at a step 100x smaller).

    Returns
    -------
    numpy.ndarray
        Flat indices that were re-differenced (empty when there were none or too many).
    """
    weights = np.asarray(dLdf, dtype=np.float64).reshape(-1)
    flat_numerical = numerical.reshape(-1)
    flat_gap = gap.reshape(-1) if gap is not None else None
    base = np.asarray(evaluate(x.copy()), dtype=np.float64).reshape(-1)
    floor = float(np.sqrt(np.finfo(x.dtype).eps))
    refined = set()
    coarse_noise = None if noise is None else noise.reshape(-1).copy()
    black_box = float(np.sqrt(np.sum((base * weights) ** 2)))
    for factor in REFINE_FACTORS:
        if step_scale / factor < floor:
            break
        candidates = np.flatnonzero(failing_after())
        if candidates.size == 0 or candidates.size > REFINE_MAX:
            break
        if structure is not None and structure.elementwise:
            central, gaps = structure.subset_differences(x, dLdf, candidates,
                                                         step_scale / factor, relative)
            flat_numerical[candidates] = central
            if flat_gap is not None:
                flat_gap[candidates] = gaps
            if noise is not None:
                noise.reshape(-1)[candidates] = coarse_noise[candidates] * factor
            refined.update(int(i) for i in candidates)
            continue
        for index in candidates:
            value = x.reshape(-1)[index]
            h = step_scale / factor * (max(1.0, abs(value)) if relative else 1.0)
            if h < floor * max(1.0, abs(value)):
                continue
            refined_noise = float(noise_floor(black_box, h, x.dtype))
            if resolution is not None and refined_noise > resolution.reshape(-1)[index]:
                continue
            sums = []
            for target in (value + h, value - h):
                work = x.copy()
                work.reshape(-1)[index] = target
                change = np.asarray(evaluate(work), dtype=np.float64).reshape(-1) - base
                sums.append(float(np.dot(change, weights)))
            h_plus = (value + h) - value
            h_minus = value - (value - h)
            up, down = sums[0], -sums[1]
            flat_numerical[index] = (up + down) / (h_plus + h_minus)
            if flat_gap is not None:
                flat_gap[index] = (up / h_plus - down / h_minus) / 2.0
            if noise is not None:  # the noise floor grows as the step shrinks
                noise.reshape(-1)[index] = max(coarse_noise[index] * factor, refined_noise)
            refined.add(int(index))
    return np.array(sorted(refined), dtype=np.intp)
