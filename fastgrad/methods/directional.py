"""The ``"directional"`` method: a few random directions, then bisection to the wrong elements.

For K random directions ``d = v * max(1, |x|)`` with Rademacher signs v, it compares the
central difference ``(g(x + t d) - g(x - t d)) / 2t`` of ``g = sum(fn(x) * dLdf)`` with
``d . grad`` (computed from the steps actually taken). A direction that disagrees is split
into halves, each half evaluated as its own direction (one fused pass over x per evaluation,
``fastgrad.kernels.directions``), recursing into the halves that disagree until single
elements remain; those are differenced exactly, and the ones that fail get the second look of
``fastgrad._refine`` (a step 100 times smaller, through the function's own kernel when it has
an elementwise structure).

What it guarantees: a direction's tolerance is ``rtol * ||d * grad||_2`` plus the rounding
noise of the differences (``DIRECTION_NOISE_ULPS * eps * sum|fn(x) * dLdf| / t``). A single wrong
element i with error e is caught with certainty when ``|e| * max(1, |x_i|)`` exceeds that
tolerance (Rademacher signs cannot hide it), and then located. Several wrong elements can
cancel in one direction; they go unnoticed only if they cancel in every one of the K
directions. Errors below the tolerance, which grows with ``sqrt(P)``, are not seen: use the
colored or exhaustive method for per-element values. Cost: O(K + b log2 P) evaluations of fn
for b wrong elements among P.
"""

import numpy as np

from .._tolerances import DIRECTION_NOISE_ULPS
from ..kernels.differences import combine
from ..kernels.directions import direction_norms, perturb_along
from . import Differences, analytic_floor, noise_floor, register
from ._evaluate import WorkBuffer, contracted, element_values

#: Largest number of elements located before the search stops (the gradient is widely wrong).
MAX_LOCATED = 32


class Partial:
    """What a method that does not difference every element found."""

    def __init__(self, numerical, analytic, tolerance, located, values, gaps, note,
                 explained, noise, loadings, capped=False):
        self.numerical = numerical      # directional differences
        self.analytic = analytic        # directional derivatives from grad
        self.tolerance = tolerance      # per direction
        self.located = located          # flat indices differenced exactly
        self.values = values            # their central differences
        self.gaps = gaps
        self.note = note
        self.explained = explained      # per direction: accounted for by the located elements
        self.noise = noise              # rounding-noise floor of each located element
        self.loadings = loadings        # d_k[i] for each direction k and located element i
        self.capped = capped            # the search stopped at MAX_LOCATED elements


class Directional:
    name = "directional"
    priority = 5
    #: Checks directions, not every element: "auto" takes it only when no complete method fits.
    complete = False

    def unavailable(self, problem):
        return None

    def run(self, problem):
        x_flat = problem.x.reshape(-1)
        size = x_flat.size
        grad = problem.grad.reshape(-1)
        scale = np.maximum(1.0, np.abs(x_flat)) if problem.relative else np.ones(size)
        signs = problem.rng.integers(0, 2, size=(problem.n_directions, size), dtype=np.int8)
        signs = (2 * signs - 1).astype(np.int8)
        f0 = np.asarray(problem.f0, dtype=np.float64)
        weights = problem.dLdf.astype(np.float64)
        noise_scale = DIRECTION_NOISE_ULPS * np.finfo(problem.x.dtype).eps * float(
            np.sum(np.abs(f0 * weights)))
        # the analytic gradient's own rounding (see methods.analytic_floor), per unit of |d|
        analytic_scale = float(analytic_floor(np.sqrt(np.sum((f0 * weights) ** 2)),
                                              problem.grad_dtype))
        t = problem.step_scale
        levels = 1 if problem.order == 2 else 2
        # one private copy of x for the whole search: each evaluation perturbs a block of it
        # in one fused pass and restores that block (a 16M-element x is never copied again)
        buffer = WorkBuffer(x_flat)
        work = buffer.work
        base = problem.f0.reshape(-1)
        weights_flat = weights.reshape(-1)

        def change(k, part, step):
            """``(g(x + step d_k) - g(x), (actual step) . grad)`` with d_k zero outside part."""
            analytic = perturb_along(x_flat[part], signs[k, part], scale[part], grad[part],
                                     step, work[part])
            try:
                output = problem.call(work.reshape(problem.x.shape),
                                      f"along random direction {k}")
            finally:
                buffer.restore(part)
            return contracted(problem, output, base, weights_flat,
                              f"along random direction {k}"), analytic

        def measure(k, part, order):
            """Numerical and analytic directional derivative of direction k on ``part``."""
            numerical, analytic = [], []
            for level in range(1 if order == 2 else levels):
                step = t / 2**level
                (up, up_analytic), (down, down_analytic) = (change(k, part, step),
                                                            change(k, part, -step))
                numerical.append((up, -down, step, step))
                analytic.append((up_analytic, -down_analytic, step, step))
            num, _ = combine(numerical[0], numerical[-1], order)
            ana, _ = combine(analytic[0], analytic[-1], order)
            return num, ana, _tolerance(k, part, order)

        def _tolerance(k, part, order=2):
            terms, scales = direction_norms(signs[k, part], scale[part], grad[part])
            finest = t / 2 ** (levels - 1) if order == 4 else t
            return problem.rtol * terms + noise_scale / finest + analytic_scale * scales

        everything = slice(0, size)
        results = [measure(k, everything, problem.order) for k in range(problem.n_directions)]
        buffer.check_unmodified()
        numerical = np.array([r[0] for r in results])
        analytic = np.array([r[1] for r in results])
        tolerance = np.array([r[2] for r in results])
        located = []
        exact = {}  # located element -> (central difference, gap)
        unlocalized = 0
        for k in np.flatnonzero(np.abs(numerical - analytic) > tolerance):
            # the elements located so far, differenced exactly, may explain this direction too
            explained = sum(signs[k, i] * scale[i] * (exact[i][0] - grad[i]) for i in exact)
            if abs(numerical[k] - analytic[k] - explained) <= tolerance[k]:
                continue
            found, blind = self._bisect(k, size, measure, _tolerance,
                                        MAX_LOCATED - len(located))
            unlocalized += blind
            new = [i for i in found if i not in exact]
            if new:
                values, gaps = element_values(problem, new)
                exact.update(zip(new, zip(values, gaps, strict=True), strict=True))
                located += new
            if len(located) >= MAX_LOCATED:
                break
        values = np.array([exact[i][0] for i in located])
        gaps = np.array([exact[i][1] for i in located])
        # a direction whose disagreement the located elements account for is decided by them
        # (failures are reported element by element; kinks are not failures)
        corrections = np.array([sum(signs[k, i] * scale[i] * (exact[i][0] - grad[i])
                                    for i in exact) for k in range(problem.n_directions)])
        explained = np.abs(numerical - analytic - corrections) <= tolerance
        note = (f"{problem.n_directions} random directions, order {problem.order}; "
                f"{len(located)} element(s) located and differenced exactly")
        if unlocalized:
            note += f"; {unlocalized} disagreeing block(s) whose halves each agreed"
        located = np.array(located, dtype=np.intp)
        finest = t / (1 if problem.order == 2 else 2) * scale[located]
        total = float(np.sum(np.abs(f0 * weights)))
        partial = Partial(numerical, analytic, tolerance, located, values, gaps, note, explained,
                          noise_floor(np.full(located.size, total), finest, problem.x.dtype),
                          signs[:, located] * scale[located],
                          capped=located.size >= MAX_LOCATED)
        return Differences(None, None, note, partial=partial)

    @staticmethod
    def _bisect(k, size, measure, tolerance_of, limit):
        """Halve direction k's support down to the single elements that disagree.

        Each level measures the left half and infers the right half from its parent (same
        step, order 2): two evaluations of fn a level.
        """
        located = []
        blind = 0
        pending = [((0, size), measure(k, slice(0, size), 2))]
        while pending and len(located) < limit:
            (start, stop), parent = pending.pop()
            if stop - start == 1:
                located.append(start)
                continue
            middle = (start + stop) // 2
            left = measure(k, slice(start, middle), 2)
            right = (parent[0] - left[0], parent[1] - left[1],
                     tolerance_of(k, slice(middle, stop)))
            wrong = [(bounds, part) for bounds, part in (((start, middle), left),
                                                           ((middle, stop), right))
                     if abs(part[0] - part[1]) > part[2]]
            if not wrong:
                blind += 1
            pending += wrong
        return located, blind


register(Directional())
