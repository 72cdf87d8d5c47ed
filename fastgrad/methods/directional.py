"""The ``"directional"`` method: a few random directions, then bisection to the wrong elements.

For K random directions ``d = v * max(1, |x|)`` with Rademacher signs v, it compares the
central difference ``(g(x + t d) - g(x - t d)) / 2t`` of ``g = sum(fn(x) * dLdf)`` with
``d . grad`` (computed from the steps actually taken). Each direction is measured at two
steps; where g is not smooth along it within the step (kinks crossed: the one-sided gap does
not halve with the step), it is measured again at a finer step. A direction that disagrees is
split into halves, each half evaluated as its own direction (one fused pass over x per
evaluation, ``fastgrad.kernels.directions``), recursing into the halves that disagree until
single elements remain; those are differenced one by one and judged by ``fastgrad._verdict``
like every other method's elements. Located elements are taken out of every direction, which
is then measured again on what remains: an excused element never excuses a direction. A
direction that still disagrees when the search reaches its limit (``MAX_LOCATED``), or whose
disagreement no single element carries, makes the result inconclusive, never passed.

What it guarantees: a direction's tolerance is ``rtol * ||d * grad||_2 + atol * T_d`` (T_d the
magnitude of the terms of the directional change; ``rtol`` and ``atol`` the caller's, or the
table's capped at ``DIRECTION_RTOL`` and ``DIRECTION_ATOL`` of the evaluation dtype) plus the
rounding of the difference: the measured rounding of ``g`` at x (its second differences at
ulp-sized moves, shared rounding of several outputs included) or the outputs' floors in
quadrature, over the step. A single wrong element i with error e is caught with certainty
when ``|e| * max(1, |x_i|)`` exceeds that tolerance (Rademacher signs cannot hide it), and
then located. That tolerance grows with ``sqrt(P)``; with the table's tolerances the search
therefore also measures contiguous blocks of direction 0, each small enough that one element
off by ``RESOLVED_ERROR`` of the largest gradient element (1% in float32, 0.1% in float64)
exceeds the block's tolerance. A pass rules out one element off by that much; where no
block can show it (the rounding of fn's outputs along a direction is above it at every usable
step, showing it would take more than ``MAX_BLOCKS`` blocks, or a block's own tolerance stays
above it) a pass that still rules out ``PROMISE_SLACK`` times that stands and says so in
its note; otherwise the result is inconclusive and says how large an error a pass would have
let through. Several wrong elements can cancel in one direction; they go unnoticed only if they
cancel in every direction. Smaller errors are not seen: use the colored or exhaustive method
for per-element values. Cost: O(K + B + b log2 P) evaluations of fn for b wrong elements
among P, B blocks.
"""

import numpy as np

from .._tolerances import (
    COARSEST_STEP,
    DIRECTION_ATOL,
    DIRECTION_RTOL,
    NOISE_DOMINANCE,
    NOISE_SIGMAS,
    RESOLVE_FRACTION,
    RESOLVED_ERROR,
    SECOND_LOOK_FACTORS,
)
from .._verdict import COARSE_FACTORS, Judgement, Measured, judge
from ..kernels.directions import direction_norms, perturb_along
from . import (
    Differences,
    direction_rounding,
    finest_steps,
    reachable_rounding,
    reachable_upstream,
    register,
)
from ._evaluate import WorkBuffer, element_values
from ._looks import BlackBoxLook, StructureLook
from .structured import find_structure

#: Largest number of elements located before the search stops (the gradient is widely wrong,
#: or x sits on kinks everywhere): the result is then inconclusive unless something failed.
MAX_LOCATED = 32
#: Largest number of blocks of direction 0 measured so that a one-element error shows (each
#: costs four evaluations of fn); more, and a pass must rest on PROMISE_SLACK (_unresolved).
MAX_BLOCKS = 512
#: Where blocks cannot show a one-element error of RESOLVED_ERROR, a pass that still rules out
#: one of this many times it stands (with a note); beyond, the result is inconclusive.
PROMISE_SLACK = 2.0
#: How the reason starts where blocks cannot show a one-element error (see _unresolved).
UNRESOLVED_REASON = "a pass could not rule out one element off by"


class Partial:
    """What a method that does not difference every element found."""

    def __init__(self, numerical, analytic, tolerance, located, judgement, note, blockers,
                 noise):
        self.numerical = numerical      # directional differences (at each direction's step)
        self.analytic = analytic        # directional derivatives from grad
        self.tolerance = tolerance      # per direction
        self.noise = noise              # per direction: the rounding floor in its tolerance
        self.located = located          # flat indices differenced and judged one by one
        self.judgement = judgement      # fastgrad._verdict.Judgement of the located elements
        self.note = note
        self.blockers = blockers        # why the search could not decide (inconclusive)


class Directional:
    name = "directional"
    priority = 5
    #: Checks directions, not every element: "auto" takes it only when no complete method fits.
    complete = False

    def unavailable(self, problem):
        return None

    def run(self, problem):
        return _Search(problem).run()


class _Search:
    """One directional search: directions, bisection, and the judgement of located elements."""

    def __init__(self, problem):
        self.problem = problem
        x_flat = problem.x.reshape(-1)
        self.x_flat = x_flat
        self.size = x_flat.size
        self.grad = problem.grad.reshape(-1)
        self.scale = np.maximum(1.0, np.abs(x_flat)) if problem.relative else \
            np.ones(self.size)
        signs = problem.rng.integers(0, 2, size=(problem.n_directions, self.size),
                                     dtype=np.int8)
        #: +-1 per element and direction; 0 for elements taken out of every direction
        self.signs = (2 * signs - 1).astype(np.int8)
        f0 = np.asarray(problem.f0, dtype=np.float64)
        self.weights = problem.dLdf.astype(np.float64).reshape(-1)
        # every output moves along a direction: the rounding of g = sum(fn * dLdf) measured
        # at x, or the outputs' floors in quadrature where that is larger
        self.noise_scale = direction_rounding(problem)
        # one private copy of x for the whole search: each evaluation perturbs a block of it
        # in one fused pass and restores that block (a 16M-element x is never copied again)
        self.buffer = WorkBuffer(x_flat)
        self.base = f0.reshape(-1)
        #: True while blocks of a direction are measured (see tolerance and _resolve)
        self.quadrature = False
        #: what a pass rules out where blocks showed only PROMISE_SLACK x RESOLVED_ERROR
        self.resolution_note = None
        self.located = []
        self.status = {}     # located element -> verdict status
        self.blockers = []
        self.judgements = []

    def change(self, k, part, step):
        """``(g(x + step d_k) - g(x), sum |dLdf| |change|, (actual step) . grad)`` on part."""
        problem = self.problem
        work = self.buffer.work
        analytic = perturb_along(self.x_flat[part], self.signs[k, part], self.scale[part],
                                 self.grad[part], step, work[part])
        where = f"along random direction {k}"
        try:
            output = problem.call(work.reshape(problem.x.shape), where)
        finally:
            self.buffer.restore(part)
        output = np.asarray(output)
        if output.shape != problem.f0.shape:
            raise ValueError(f"fn: returned shape {output.shape} {where}, expected "
                             f"{problem.f0.shape}")
        difference = output.reshape(-1).astype(np.float64) - self.base
        return (float(np.dot(difference, self.weights)),
                float(np.dot(np.abs(difference), np.abs(self.weights))), analytic)

    def tolerance(self, k, part, step, terms):
        """A direction's allowance in its own units (see fastgrad._verdict for elements')."""
        criteria = self.problem.criteria
        norm, _ = direction_norms(self.signs[k, part], self.scale[part], self.grad[part])
        moved = np.count_nonzero(self.signs[k, part])
        if not criteria.atol_relative:  # every element's atol, in quadrature
            atol = self.atol * float(np.sqrt(np.sum((self.signs[k, part] != 0)
                                                    * self.scale[part] ** 2)))
        elif self.quadrature and moved > NOISE_SIGMAS ** 2:
            # a block: its elements' allowances under random signs add in quadrature, not
            # in sum; NOISE_SIGMAS times the smallest root-sum-square their sum allows
            atol = NOISE_SIGMAS * self.atol * terms / np.sqrt(moved)
        else:
            atol = self.atol * terms
        return self.rtol * norm + atol + self.noise_scale / step

    @property
    def rtol(self):
        """The rtol of a direction: the caller's, or the table's capped at what a direction's
        difference resolves in its evaluation dtype (DIRECTION_RTOL)."""
        criteria = self.problem.criteria
        if not getattr(self.problem, "rtol_from_table", False):
            return criteria.rtol
        return min(criteria.rtol, DIRECTION_RTOL.get(criteria.eval_dtype, criteria.rtol))

    @property
    def atol(self):
        """The atol of a direction: the caller's, or the table's capped at what a direction's
        analytic side rounds (DIRECTION_ATOL; relative atols only)."""
        criteria = self.problem.criteria
        if not getattr(self.problem, "atol_from_table", False) or not criteria.atol_relative:
            return criteria.atol
        return min(criteria.atol, DIRECTION_ATOL.get(criteria.eval_dtype, criteria.atol))

    def measure(self, k, part, step, levels):
        """``(numerical, analytic, tolerance, kink indicator)`` of direction k on part.

        With two levels (step and step / 2) the values are Richardson-extrapolated and the
        kink indicator ``|G(t) - 2 G(t/2)|`` says whether g is smooth along the direction.
        """
        numerical, analytic, gaps = [], [], []
        terms = 0.0
        for level in range(levels):
            t = step / 2**level
            up, up_terms, up_analytic = self.change(k, part, t)
            down, down_terms, down_analytic = self.change(k, part, -t)
            numerical.append((up - down) / (2 * t))
            analytic.append((up_analytic - down_analytic) / (2 * t))
            gaps.append((up + down) / (2 * t))
            if level == 0:
                terms = (up_terms + down_terms) / (2 * t)
        if levels == 1:
            return numerical[0], analytic[0], self.tolerance(k, part, step, terms), None, terms
        num = numerical[1] + (numerical[1] - numerical[0]) / 3.0
        ana = analytic[1] + (analytic[1] - analytic[0]) / 3.0
        kink = abs(gaps[0] - 2.0 * gaps[1])
        return num, ana, self.tolerance(k, part, step / 2, terms), kink, terms

    def run(self):
        problem = self.problem
        everything = slice(0, self.size)
        rows = []  # per direction measured: (numerical, analytic, tolerance, noise floor)
        for k in range(problem.n_directions):
            num, ana, tol, step = self._settle(k, everything, self._first_step(k),
                                               f"random direction {k}")
            rows.append((num, ana, tol, self.noise_scale / (step / 2)))
        rows += self._resolve(min(row[2] for row in rows))
        numerical, analytic, tolerance, noise = np.array(rows, dtype=np.float64).T
        dominated = 0
        for num, ana, tol, floor in rows:
            # (a direction whose difference and gradient are both within its floor of 0 is
            # consistently zero: what remains once kink elements are taken out, say)
            zero = abs(num) <= floor and abs(ana) <= floor
            if abs(num - ana) <= tol and floor > NOISE_DOMINANCE * (tol - floor) and not zero:
                dominated += 1
        if dominated:
            self.blockers.append(
                f"{dominated} direction(s) agree only within a rounding floor above "
                f"{NOISE_DOMINANCE:g} x their tolerance, also at the coarsest usable step (a "
                "large constant in fn's output? subtract it; or check with colored or "
                "exhaustive, which judge each element at its own floor)")
        self.buffer.check_unmodified()
        judgement = _merged(self.judgements)
        n = problem.n_directions
        blocks = len(rows) - n
        note = (f"{n} random directions (two steps each)"
                + (f", then {blocks} blocks of direction 0 small enough to show a one-element "
                   "error" if blocks else "")
                + f"; {len(self.located)} element(s) located and differenced one by one"
                + (f"; {self.resolution_note}" if self.resolution_note else ""))
        partial = Partial(numerical, analytic, tolerance,
                          np.array(self.located, dtype=np.intp), judgement, note,
                          self.blockers, noise)
        return Differences(None, None, note, partial=partial)

    def _settle(self, k, part, step, label):
        """Measure direction k on ``part`` until it agrees, locating and judging the elements
        that carry a disagreement; return ``(numerical, analytic, tolerance, step)``.

        Where it cannot settle (the search's limit, no single element carrying it), the
        reason goes to ``blockers`` and the last measurement is returned."""
        num, ana, tol, kink, _ = self.measure(k, part, step, 2)
        while True:
            residual = num - ana
            # agreement counts only where g is smooth along d_k: across a kink the central
            # difference is the mean of the one-sided slopes, and a gradient that gives
            # every tied maximum the whole upstream gradient can match that mean along a
            # direction that moves the ties in opposite senses
            if abs(residual) <= tol and not kink > tol:
                break
            finer = self._finer(step, tol) if np.isfinite(residual) and kink > tol else None
            if finer is not None:
                # g is not smooth along d_k within the step: look at a finer one
                step = finer
                num, ana, tol, kink, _ = self.measure(k, part, step, 2)
                continue
            # smooth and wrong, or non-smooth at every usable step (x on kinks): bisect
            if len(self.located) >= MAX_LOCATED:
                self.blockers.append(
                    f"the search stopped at its limit of {MAX_LOCATED} located elements "
                    f"with {label} still disagreeing")
                break
            found = self._bisect(k, step / 2, MAX_LOCATED - len(self.located), part)
            new = [i for i in found if i not in self.status]
            if not new:
                # no single element carries it: a kink crossed at this step that the
                # halves split differently; a finer step settles that, or nothing does
                finer = self._finer(step, tol)
                if finer is not None:
                    step = finer
                    num, ana, tol, kink, _ = self.measure(k, part, step, 2)
                    continue
                self.blockers.append(
                    f"{label} gave a NaN or infinite difference (fn returns NaN or inf within "
                    "a step of x; colored or exhaustive name the elements)"
                    if not np.isfinite(residual) else
                    f"{label} disagrees but no single element does (its halves each agree "
                    "within tolerance)" if abs(residual) > tol else
                    f"{label} crosses a kink at every usable step, where its difference "
                    "cannot confirm the gradient, and no single element shows the kink")
                break
            # located elements are judged one by one and taken out of every direction,
            # which is then measured again on what remains
            self._judge(new)
            num, ana, tol, kink, _ = self.measure(k, part, step, 2)
        return num, ana, tol, step

    def _resolve(self, tolerance):
        """Blocks of direction 0, each small enough that one element off by
        ``RESOLVED_ERROR`` (or the caller's rtol) of the largest gradient element exceeds
        its tolerance; each is settled like a random direction. Returns their rows.

        A random direction's tolerance grows with the norm of the whole gradient: one wrong
        element among many can hide under it. A pass promises that no element is off by
        that much; where no block can show it (rounding of fn's outputs above it at every
        usable step, more blocks than MAX_BLOCKS, a block's tolerance above it), a pass that
        still rules out PROMISE_SLACK times that keeps a note, and otherwise the reason goes to
        ``blockers`` (``_unresolved``)."""
        criteria = self.problem.criteria
        active = self.signs[0] != 0
        largest = float(np.max(np.abs(self.grad[active]), initial=0.0))
        # an error e_i shows in a direction when |e_i| * scale_i exceeds its tolerance
        # (the dtype of the check, x's, as in the tolerance table; the caller's tolerance
        # where it allows more: an error within it is no error)
        allowed = max(RESOLVED_ERROR[criteria.grad_dtype], criteria.rtol) * largest + (
            0.0 if criteria.atol_relative else criteria.atol)
        if not np.any(active):
            return []
        smallest = float(np.min(self.scale[active]))
        target = allowed * smallest
        # (a caller's own rtol or atol defines what an element may be off by; a direction
        # sums their allowances, as documented, and is not split to undo that)
        from_table = getattr(self.problem, "rtol_from_table", False) and getattr(
            self.problem, "atol_from_table", False)
        if not from_table or not target > 0 or tolerance <= target or self.blockers:
            return []
        step = self._block_step(target)
        share = RESOLVE_FRACTION * target - (self.noise_scale / (step / 2) if step else 0.0)
        if step is None or not share > 0:
            self._unresolved(tolerance, largest, allowed, "the rounding of fn's outputs along "
                             "a direction is above that at every usable step")
            return []
        # planned in the units of the smallest scale (|x| where steps are relative): a block
        # whose scales differ is split further if its measured tolerance asks for it
        weights = np.where(active, self.grad ** 2, 0.0)
        cumulative = np.cumsum(weights)
        room = (share / smallest / self.rtol) ** 2  # the rtol part of a block's tolerance
        bounds = []
        start = 0
        while start < self.size:
            before = cumulative[start - 1] if start else 0.0
            stop = max(start + 1, int(np.searchsorted(cumulative, before + room, "right")))
            bounds.append((start, min(stop, self.size)))
            start = stop
        bounds = [(a, b) for a, b in bounds if np.any(active[a:b])]
        if len(bounds) > MAX_BLOCKS:
            self._unresolved(tolerance, largest, allowed, f"showing it would take "
                             f"{len(bounds)} blocks of a direction, more than the search's "
                             f"{MAX_BLOCKS}")
            return []
        rows = []
        pending = bounds[::-1]
        self.quadrature = True
        while pending:
            start, stop = pending.pop()
            if not np.any(self.signs[0, start:stop]):
                continue  # every element located (and judged) meanwhile
            num, ana, tol, used = self._settle(0, slice(start, stop), step,
                                               f"block {start}..{stop - 1} of direction 0")
            in_block = self.scale[start:stop][self.signs[0, start:stop] != 0]
            if tol <= allowed * float(np.min(in_block)) or self.blockers:
                rows.append((num, ana, tol, self.noise_scale / (used / 2)))
                continue
            # its terms' allowance took it above the target: halves, within the budget
            middle = (start + stop) // 2
            if stop - start == 1 or len(rows) + len(pending) + 2 > MAX_BLOCKS:
                self._unresolved(tol, largest, allowed, f"block {start}..{stop - 1}'s "
                                 f"tolerance is {tol:.3g}")
                rows.append((num, ana, tol, self.noise_scale / (used / 2)))
                continue
            pending += [(middle, stop), (start, middle)]
        self.quadrature = False
        return rows

    def _unresolved(self, tolerance, largest, allowed, why):
        """Blocks cannot show a one-element error of ``allowed``; a pass would rule out one
        element off by ``tolerance`` (the block's or the best direction's). Within
        PROMISE_SLACK times ``allowed`` the pass stands and its note says what it rules out;
        beyond, it is not the promise a pass makes: inconclusive, with why (once)."""
        if tolerance <= PROMISE_SLACK * allowed:
            if self.resolution_note is None:
                self.resolution_note = (
                    f"a pass rules out one element off by {tolerance / largest:.1%} of the "
                    f"largest gradient element, not {allowed / largest:.1%}: {why}")
            return
        if not any(reason.startswith(UNRESOLVED_REASON) for reason in self.blockers):
            self.blockers.append(
                f"{UNRESOLVED_REASON} {allowed / largest:.1%} of the largest gradient element "
                f"(it would rule out only {tolerance / largest:.1%}): {why} (colored or "
                "exhaustive judge every element at its own floor)")

    def _block_step(self, target):
        """The finest usable step whose rounding floor resolves ``target`` (None: none)."""
        for chosen in self._usable_steps():
            if self.noise_scale / (chosen / 2) <= RESOLVE_FRACTION * target / 2:
                return chosen
        return None

    def _usable_steps(self):
        """The coarse look's multiples of the step below COARSEST_STEP, then COARSEST_STEP
        itself (a direction's floor sums every output's rounding: it may need the room)."""
        step = self.problem.step_scale
        return [step * factor for factor in (1.0, *COARSE_FACTORS)
                if step * factor < COARSEST_STEP] + [max(step, COARSEST_STEP)]

    def _first_step(self, k):
        """Direction k's first step: the default, or a coarser one (at most COARSEST_STEP)
        where the rounding of fn's outputs would swamp the direction's tolerance (a large
        constant in fn's output). A kink seen there sends the search to finer steps."""
        step = self.problem.step_scale
        norm, _ = direction_norms(self.signs[k], self.scale, self.grad)
        wanted = RESOLVE_FRACTION * self.rtol * float(norm)
        if not wanted > 0:
            return step
        for chosen in self._usable_steps():
            if self.noise_scale / (chosen / 2) <= wanted:
                break
        return chosen

    def _finer(self, step, tolerance):
        """The next second-look step along a direction whose noise resolves its tolerance."""
        for factor in SECOND_LOOK_FACTORS:
            finer = self.problem.step_scale / factor
            if finer < step and self.noise_scale / (finer / 2) <= RESOLVE_FRACTION * tolerance:
                return finer
        return None

    def _judge(self, new):
        """Difference and judge newly located elements, and take them out of every direction
        (an excused element must not excuse a direction, and a judged one is accounted for
        by its own verdict)."""
        problem = self.problem
        new = np.array(new, dtype=np.intp)
        values, gaps, terms, rounding = element_values(problem, new)
        rounding = np.maximum(rounding, reachable_rounding(problem)[new])
        noise = rounding / finest_steps(problem).reshape(-1)[new]
        measured = Measured(central=values, noise=noise, terms=terms, gap=gaps,
                            kink=gaps if problem.order == 4 else None,
                            upstream=reachable_upstream(problem)[new])
        structure = problem.structure if (problem.structure is not None or
                                          find_structure(problem) is None) else None
        if structure is not None and structure.elementwise:
            look = StructureLook(structure, problem.x, problem.dLdf, problem.relative,
                                 elements=new)
        else:
            look = BlackBoxLook(problem, rounding, elements=new)
        judgement = judge(measured, self.grad[new], problem.criteria, self.x_flat[new], look)
        self.judgements.append(judgement)
        for position, index in enumerate(new):
            self.located.append(int(index))
            self.status[int(index)] = int(judgement.status[position])
        self.signs[:, new] = 0

    def _bisect(self, k, step, limit, part):
        """Halve direction k's support within ``part`` down to single elements whose error
        shows.

        Each level measures the left half (order 2) and infers the right half from its
        parent: two evaluations of fn a level. Located elements' known errors are taken out.
        """
        located = []
        whole = self.measure(k, part, step, 1)
        pending = [((part.start, part.stop), whole)]
        while pending and len(located) < limit:
            (start, stop), parent = pending.pop()
            if stop - start == 1:
                located.append(start)
                continue
            middle = (start + stop) // 2
            left = self.measure(k, slice(start, middle), step, 1)
            terms = max(parent[4] - left[4], 0.0)  # an estimate: |.| is not additive
            right = (parent[0] - left[0], parent[1] - left[1],
                     self.tolerance(k, slice(middle, stop), step, terms), None, terms)
            for bounds, part in (((start, middle), left), ((middle, stop), right)):
                if not abs(part[0] - part[1]) <= part[2]:  # NaN disagrees too
                    pending.append((bounds, part))
        return located


def _merged(judgements):
    """One judgement of all located elements, in the order they were located."""
    if not judgements:
        empty = np.zeros(0)
        return Judgement(status=np.zeros(0, dtype=np.int8), numerical=empty, noise=empty,
                         allowed=empty, refined=np.zeros(0, dtype=np.intp))
    offsets = np.cumsum([0] + [j.status.size for j in judgements])
    return Judgement(
        status=np.concatenate([j.status for j in judgements]),
        numerical=np.concatenate([j.numerical for j in judgements]),
        noise=np.concatenate([j.noise for j in judgements]),
        allowed=np.concatenate([j.allowed for j in judgements]),
        refined=np.concatenate([j.refined + offset for j, offset in
                                zip(judgements, offsets, strict=False)]).astype(np.intp),
        notes=[note for j in judgements for note in j.notes])


register(Directional())
