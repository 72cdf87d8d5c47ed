"""The ``"structured"`` method: fastgrad's own functions, differenced by dedicated kernels.

Functions handed out by fastgrad's objects (an activation's ``forward``, a loss wrapped with
fixed labels, ``FullyConnected.forward_with_param``) carry or reveal a structure. It is used
only after it reproduces ``fn`` at the base point and at a second, nearby random point; then
every element is differenced by a kernel that recomputes only what its perturbation changes.
"""

import numpy as np

from .. import _structure
from .._progress import progress_bar
from .._tolerances import VERIFY_ULPS
from .._verdict import noise_floor
from . import Differences, finest_steps, register

#: Below this many elements a structured check cannot take seconds: no progress bar.
SMALL_WORK = 2**16


def _agrees(a, b, dtype):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(a), initial=0.0)), 1e-300)
    return bool(np.all(np.abs(a - b) <= VERIFY_ULPS * np.finfo(dtype).eps * scale))


def find_structure(problem):
    """Set ``problem.structure`` when fn has one that reproduces it; else say why not.

    Returns None when a structure is set (fastgrad's own function: trusted; otherwise
    verified at x and at a random nearby point, one call of fn), else the reason.
    """
    if problem.structure is not None:
        return None
    found, trusted = _structure.candidates(problem.fn)
    if not found:
        return "fn is not a function fastgrad recognises (an activation's forward, a loss " \
               "with fixed labels, or FullyConnected.forward_with_param)"
    if trusted:  # fn is fastgrad's own function: its structure is known, not inferred
        problem.structure = found[0]
        problem.structure_trusted = True
        return None
    x = problem.x
    jitter = problem.rng.uniform(-1e-3, 1e-3, size=x.shape).astype(x.dtype)
    nearby = x * (1 + jitter) + jitter * 1e-3
    fn_nearby = None
    for candidate in found:
        try:
            if not _agrees(candidate.evaluate(x), problem.f0, x.dtype):
                continue
            if fn_nearby is None:
                fn_nearby = problem.call(nearby, "at a random point near x "
                                                 "(verifying its structure)")
            if _agrees(candidate.evaluate(nearby), fn_nearby, x.dtype):
                problem.structure = candidate
                return None
        except (ValueError, TypeError, FloatingPointError):
            continue
    return "its structure did not reproduce fn at two points"


class Structured:
    name = "structured"
    priority = 100

    def unavailable(self, problem):
        return find_structure(problem)

    def run(self, problem):
        structure = problem.structure
        central = np.empty(problem.x.shape, dtype=problem.x.dtype)
        gap = np.empty_like(central)
        small = problem.x.size < SMALL_WORK
        with progress_bar(problem.x.size, problem.progress, "structured check",
                          small=small) as bar:
            structure.differences(problem.x, problem.dLdf, problem.step_scale,
                                  problem.relative, problem.order, central, gap, bar.update)
        how = "fastgrad's own function" if problem.structure_trusted else \
            "verified against fn at two points"
        output = np.asarray(problem.f0, dtype=np.float64)
        noise = structure.noise(problem.x, problem.dLdf, output, finest_steps(problem),
                                problem.x.dtype)
        terms = structure.terms(problem.x, problem.dLdf, problem.f0)
        reach = None
        if structure.elementwise and terms is not None:
            # an elementwise backward computes f'(x_i) dLdf_i: it rounds at the element's
            # own terms and upstream gradient, never at other elements'
            reach = np.maximum(np.abs(np.asarray(terms, np.float64)),
                               np.abs(np.broadcast_to(problem.dLdf, problem.x.shape)
                                      .astype(np.float64))).reshape(-1)
        return Differences(central, gap, f"{structure.description} ({how})", noise=noise,
                           # (the second look differences fn itself: its outputs round
                           # as a black box's, whatever the kernel's own floor)
                           rounding=noise_floor(structure.magnitude(problem.x, problem.dLdf,
                                                                    output), 1.0,
                                                problem.x.dtype),
                           terms=None if terms is None else np.asarray(terms, np.float64),
                           reach=reach, count=structure.term_count(problem.x))


register(Structured())
