"""Second look at failing elements with a step 100 times smaller.

A central difference whose step crosses a kink (a ReLU unit of some sample switching on) is
not about the gradient at x. Where perturbations move many samples at once, kinks can be
crossed on both sides of x, and no rule on f(x - h), f(x), f(x + h) alone tells that from a
wrong gradient. A few failing elements are therefore differenced again through fn itself at
``step / REFINE_FACTOR``: a wrong gradient stays wrong, a crossing becomes 100 times less
likely. Values that then agree replace the coarse ones and are listed as refined.
"""

import numpy as np

#: Most failing elements re-differenced (more failures than this are not step artefacts).
REFINE_MAX = 64
REFINE_FACTOR = 100.0


def refine_failures(evaluate, x, dLdf, numerical, outside, step_scale, relative):
    """Re-difference ``x`` at the flat indices where ``outside`` is true, with a smaller step.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(value) -> array``, the function being checked (value is a fresh copy).
    x, dLdf : numpy.ndarray
        The base point and the output weights (broadcast to the output's shape).
    numerical : numpy.ndarray
        The coarse differences, updated in place where refined.
    outside : numpy.ndarray of bool
        Elements that failed the comparison (NaN excluded).
    step_scale, relative : float, bool
        The step rule of the coarse differences.

    Returns
    -------
    numpy.ndarray
        Flat indices that were re-differenced (empty when there were none or too many).
    """
    candidates = np.flatnonzero(outside)
    if candidates.size == 0 or candidates.size > REFINE_MAX:
        return np.zeros(0, dtype=np.intp)
    weights = np.asarray(dLdf, dtype=np.float64).reshape(-1)
    flat_numerical = numerical.reshape(-1)
    for index in candidates:
        value = x.reshape(-1)[index]
        h = step_scale / REFINE_FACTOR * (max(1.0, abs(value)) if relative else 1.0)
        changes = []
        for target in (value + h, value - h):
            work = x.copy()
            work.reshape(-1)[index] = target
            changes.append(np.asarray(evaluate(work), dtype=np.float64).reshape(-1))
        step_taken = (value + h) - (value - h)
        flat_numerical[index] = float(np.dot(changes[0] - changes[1], weights)) / step_taken
    return candidates
