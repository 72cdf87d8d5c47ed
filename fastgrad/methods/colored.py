"""The ``"colored"`` method: every element's value in few evaluations for sparse Jacobians.

Many layers have a Jacobian with axis structure: a dense layer's output column j depends only
on column j of W; an elementwise map's output i only on input i; a row softmax's row r only
on row r. Such a structure is a set of *paired axes* (input axis a, output axis b): element x[i]
moves only outputs whose index on b equals i[a]. Elements that differ on every paired axis
touch disjoint outputs, so one group of them can be perturbed in one evaluation and each
element's change read off its own outputs. The groups are the indices of the unpaired axes:
``prod(x.shape[a] for unpaired a)`` groups, e.g. ``n_in`` for a dense layer's W (2 * n_in
evaluations for central differences), one for an elementwise map.

The pairing is detected from fn itself: a few random elements are moved one at a time and the
outputs that change are recorded (bitwise comparison: an output that does not depend on the
element is computed from identical operands). The largest set of pairings consistent with
every probe is used, or the one given as ``sparsity=``. It is never trusted blindly: the
result is verified against independent random directional differences, and when they
disagree (or no pairing is found) the method falls back and says so.
"""

import itertools

import numpy as np

from .._progress import progress_bar
from .._tolerances import DIRECTION_NOISE_ULPS
from .._verdict import Look
from . import (
    Differences,
    ModifiedInput,
    finest_steps,
    reachable_terms,
    reachable_upstream,
    register,
    rounding_squares,
)
from ._evaluate import WorkBuffer, changes
from .exhaustive import combine_arrays

#: Elements probed one by one (two moves each) to find the pairing.
N_PROBES = 8
#: Random directions of the verification.
N_VERIFY = 2
#: Its steps, as divisors of the first step, while a direction crosses kinks.
VERIFY_FACTORS = (1.0, 10.0, 100.0)


def _pairs_consistent(pairs, index, changed):
    """Every changed output sits where the pairs say element ``index`` may reach."""
    return all(np.all(changed[:, b] == index[a]) for a, b in pairs)


def detect_pairs(problem):
    """Return the paired axes of fn (a tuple of (input axis, output axis)), or None."""
    x, f0 = problem.x, problem.f0
    if f0.ndim == 0:
        return None
    candidates = [(a, b) for a in range(x.ndim) for b in range(f0.ndim)
                  if x.shape[a] == f0.shape[b] and x.shape[a] > 1]
    if not candidates:
        return None
    probes = problem.rng.choice(x.size, size=min(N_PROBES, x.size), replace=False)
    x_flat = x.reshape(-1)
    # a small move, and one across the whole range of x: an output that depends on the element
    # only weakly at x (a saturated softmax's other entries, ~1e-30 of it) does not change
    # bitwise under a small move, which would pass for independence
    span = 2.0 * max(1.0, float(np.max(np.abs(x_flat.astype(np.float64)))))
    outputs = []
    for flat in probes:
        changed = np.zeros(f0.shape, dtype=bool)
        for delta in (1e-3 * max(1.0, abs(float(x_flat[flat]))), span):
            work = x.copy()
            work.reshape(-1)[flat] += delta
            try:
                with np.errstate(all="ignore"):
                    out = np.asarray(problem.call(
                        work, f"(probing the Jacobian's pattern) with element "
                              f"{problem.element(flat)} moved from {float(x_flat[flat])!r} by "
                              f"{delta:.3g}"))
            except ModifiedInput:
                raise
            except Exception:
                if delta != span:
                    raise
                continue  # fn refuses values that far out: the small move has to do
            if out.shape != f0.shape:
                raise ValueError(f"fn: returned shape {out.shape} while probing, expected "
                                 f"{f0.shape}")
            changed |= out != f0
        outputs.append(np.argwhere(changed))
    best = None
    for size in range(len(candidates), 0, -1):
        for pairs in itertools.combinations(candidates, size):
            if len({a for a, _ in pairs}) < size or len({b for _, b in pairs}) < size:
                continue
            if all(_pairs_consistent(pairs, np.unravel_index(flat, x.shape), changed)
                   for flat, changed in zip(probes, outputs, strict=True)):
                best = pairs
                break
        if best:
            break
    if best is None:
        return None
    if all(changed.size == 0 for changed in outputs):
        return None  # fn did not react to any probe: nothing to pair
    return best


def _groups(shape, pairs):
    unpaired = [a for a in range(len(shape)) if a not in {a for a, _ in pairs}]
    return unpaired, [shape[a] for a in unpaired]


def _group_values(problem, pairs, unpaired, group_index, levels, scale_flat, buffer,
                  step_scale=None, order=None, subset=None):
    """Differences of the elements of one group (unpaired indices fixed): every member, or
    the flat indices ``subset`` of it; at ``step_scale`` (default: the problem's)."""
    x = problem.x
    step_scale = problem.step_scale if step_scale is None else step_scale
    order = problem.order if order is None else order
    if subset is None:
        select = [slice(None)] * x.ndim
        for axis, value in zip(unpaired, group_index, strict=True):
            select[axis] = value
        members = np.zeros(x.shape, dtype=bool)
        members[tuple(select)] = True
        flat_members = np.flatnonzero(members)
    else:
        flat_members = np.asarray(subset, dtype=np.intp)
    x_flat = x.reshape(-1)
    perturbations, steps = [], []
    for level in range(levels):
        step = step_scale / 2**level * scale_flat[flat_members]
        up = (x_flat[flat_members] + step) - x_flat[flat_members]
        down = x_flat[flat_members] - (x_flat[flat_members] - step)
        perturbations += [lambda up=up: (flat_members, up), lambda down=down: (flat_members,
                                                                               -down)]
        steps.append((up, down))
    members = [problem.element(i) for i in flat_members[:6]]
    where = (f"with the colored group {group_index} perturbed (elements {members}"
             f"{' ...' if flat_members.size > 6 else ''})")
    outputs = _output_changes(problem, perturbations, buffer, where)
    # contract each output change over the unpaired output axes; the paired ones remain, in
    # increasing order, and each member reads its own entry
    by_output = sorted(pairs, key=lambda pair: pair[1])
    paired_out = {b for _, b in pairs}
    weights = problem.dLdf.astype(np.float64)
    member_index = np.unravel_index(flat_members, x.shape)
    key = tuple(member_index[a] for a, _ in by_output)
    sums = []
    terms = 0.0
    other = tuple(axis for axis in range(problem.f0.ndim) if axis not in paired_out)
    for up_steps, down_steps in steps:
        contracted = []
        pair = outputs[2 * len(sums): 2 * len(sums) + 2]
        for change in pair:
            weighted = change * weights
            reduced = weighted.sum(axis=other) if other else weighted
            contracted.append(reduced[key])
        if not sums:  # the magnitude of each member's terms, from the first step (central:
            # curvature does not count)
            magnitude = np.abs((pair[0] - pair[1]) * weights)
            terms = (magnitude.sum(axis=other) if other else magnitude)[key]
        sums.append((contracted[0], -contracted[1], up_steps, down_steps))
    values, gaps = combine_arrays(sums[0], sums[-1], order)
    return flat_members, values, gaps, terms / (steps[0][0] + steps[0][1])


class ColoredLook(Look):
    """Second look through the colored groups: the failing members of a group are
    re-differenced together, two evaluations per group and step, so every failing element
    can get one (x on kinks everywhere makes hundreds fail at the first step)."""

    def __init__(self, problem, pairs, rounding, scale_flat):
        self.problem = problem
        self.pairs = pairs
        self.unpaired = _groups(problem.x.shape, pairs)[0]
        self.rounding = np.broadcast_to(rounding, problem.x.shape).reshape(-1)
        self.scale_flat = scale_flat
        self.cap = problem.x.size

    def noise(self, flat_indices, step_scale):
        steps = step_scale * self.scale_flat[flat_indices]
        return self.rounding[flat_indices] / steps

    def differences(self, flat_indices, step_scale):
        flat_indices = np.asarray(flat_indices, dtype=np.intp)
        index = np.unravel_index(flat_indices, self.problem.x.shape)
        keys = [tuple(int(index[a][n]) for a in self.unpaired)
                for n in range(flat_indices.size)]
        central = np.empty(flat_indices.size)
        gap = np.empty(flat_indices.size)
        buffer = WorkBuffer(self.problem.x.reshape(-1))
        for key in dict.fromkeys(keys):
            positions = np.array([n for n, k in enumerate(keys) if k == key])
            _, values, gaps, _ = _group_values(self.problem, self.pairs, self.unpaired, key, 1,
                                               self.scale_flat, buffer, step_scale=step_scale,
                                               order=2, subset=flat_indices[positions])
            central[positions] = values
            gap[positions] = gaps
        buffer.check_unmodified()
        return central, gap

    def jointly(self, flat_indices, step_scale, coefficients=None):
        from ._looks import joint_changes

        return joint_changes(self.problem, np.asarray(flat_indices, dtype=np.intp),
                             step_scale, coefficients)

    def coupled(self, flat_indices, step_scale):
        from ._looks import moved_outputs

        return moved_outputs(self.problem, np.asarray(flat_indices, dtype=np.intp),
                             step_scale)


def _output_changes(problem, perturbations, buffer, where):
    """``fn(x + p) - fn(x)`` (float64 arrays) for each perturbation."""
    base = np.asarray(problem.f0, dtype=np.float64)
    result = []
    for perturbation in perturbations:
        index, values = perturbation()
        work = buffer.perturbed(index, values)
        out = np.asarray(problem.call(work.reshape(problem.x.shape), where), dtype=np.float64)
        buffer.restore(index)
        if out.shape != base.shape:
            raise ValueError(f"fn: returned shape {out.shape} with a group perturbed, "
                             f"expected {base.shape}")
        result.append(out - base)
    return result


def _run_groups(problem, pairs, group_indices, levels, scale_flat, bar=None):
    """Differences of the given groups (runs in a worker when an executor is used)."""
    buffer = WorkBuffer(problem.x.reshape(-1))
    unpaired = _groups(problem.x.shape, pairs)[0]
    values = []
    for group in group_indices:
        values.append(_group_values(problem, pairs, unpaired, group, levels, scale_flat, buffer))
        if bar is not None:
            bar.update(1)
    buffer.check_unmodified()
    return values


class Colored:
    name = "colored"
    priority = 40
    complete = True

    def unavailable(self, problem):
        if problem.sparsity is not None:
            problem.pairs = tuple(tuple(pair) for pair in problem.sparsity)
            return None
        if getattr(problem, "pairs", None) is None:
            problem.pairs = detect_pairs(problem) or ()
        if not problem.pairs and problem.requested != self.name:
            return "no axis of x pairs with an axis of fn(x) (the Jacobian is not sparse in a " \
                   "way fastgrad detects)"
        return None  # asked for by name: run() falls back and says so

    def evaluations(self, problem):
        """Evaluations of fn: each group once per side and step level, and the verification."""
        if not problem.pairs:
            return problem.x.size * 2 * (1 if problem.order == 2 else 2)  # falls back
        _, sizes = _groups(problem.x.shape, problem.pairs)
        levels = 1 if problem.order == 2 else 2
        return int(np.prod(sizes)) * 2 * levels + 4 * N_VERIFY

    def run(self, problem):
        pairs = problem.pairs
        if not pairs:
            return _fall_back(problem, "no axis of x pairs with an axis of fn(x): the Jacobian "
                                       "is not sparse in a way fastgrad detects")
        _unpaired, sizes = _groups(problem.x.shape, pairs)
        levels = 1 if problem.order == 2 else 2
        x_flat = problem.x.reshape(-1)
        scale_flat = np.maximum(1.0, np.abs(x_flat)) if problem.relative \
            else np.ones(x_flat.size)
        numerical, gap, terms = (np.empty(x_flat.size) for _ in range(3))
        groups = list(np.ndindex(*sizes)) if sizes else [()]
        with progress_bar(len(groups), problem.progress, "colored check", unit="group",
                          small=len(groups) < 2) as bar:
            if problem.executor is not None:
                chunks = np.array_split(np.arange(len(groups)),
                                        min(len(groups), 4 * _workers(problem.executor)))
                calls_before = problem.n_evaluations
                futures = [problem.executor.submit(_run_groups, _portable(problem), pairs,
                                                   [groups[i] for i in chunk], levels, scale_flat)
                           for chunk in chunks if len(chunk)]
                for future in futures:
                    chunk_values = future.result()
                    for members, values, gaps, member_terms in chunk_values:
                        numerical[members] = values
                        gap[members] = gaps
                        terms[members] = member_terms
                    bar.update(len(chunk_values))
                problem.n_evaluations = calls_before + len(groups) * 2 * levels
            else:
                for members, values, gaps, member_terms in _run_groups(
                        problem, pairs, groups, levels, scale_flat, bar):
                    numerical[members] = values
                    gap[members] = gaps
                    terms[members] = member_terms
        rounding = _rounding(problem, pairs)
        noise = rounding / finest_steps(problem)
        verified, detail = _verify(problem, numerical)
        note = (f"pairs (input axis, output axis) {list(pairs)}, {len(groups)} group(s), "
                f"{len(groups) * 2 * levels} evaluations; {detail}")
        if not verified:
            return _fall_back(problem, f"its result was rejected: {detail}")
        return Differences(numerical.reshape(problem.x.shape), gap.reshape(problem.x.shape),
                           note, noise=noise, rounding=rounding,
                           terms=terms.reshape(problem.x.shape),
                           look=ColoredLook(problem, pairs, rounding, scale_flat),
                           upstream=reachable_upstream(problem),
                           reach=reachable_terms(problem, terms))


def _rounding(problem, pairs):
    """Per element: the rounding over the slice of outputs it can move (rss of the outputs'
    rounding, ``rounding_squares``)."""
    by_output = sorted(pairs, key=lambda pair: pair[1])
    paired_out = {b for _, b in pairs}
    weighted = rounding_squares(problem).reshape(problem.f0.shape)
    other = tuple(axis for axis in range(weighted.ndim) if axis not in paired_out)
    reduced = np.sqrt(weighted.sum(axis=other) if other else weighted)
    index = np.indices(problem.x.shape)
    return reduced[tuple(index[a] for a, _ in by_output)]


def _fall_back(problem, why):
    """Run exhaustive (when it fits the work budget) or directional instead, and say so."""
    from . import over_budget
    from .directional import Directional
    from .exhaustive import Exhaustive

    exhaustive = Exhaustive()
    fits = over_budget(problem, exhaustive,
                       problem.work(exhaustive.evaluations(problem))) is None
    fallback = exhaustive if fits else Directional()
    result = fallback.run(problem)
    result.note = f"colored fell back to {fallback.name} because {why}; {result.note}"
    return result


def _workers(executor):
    return getattr(executor, "_max_workers", None) or 2


def _portable(problem):
    """A copy of the problem without what cannot travel to another process."""
    from dataclasses import replace

    return replace(problem, executor=None, progress=False, _rng=None)


def _verify(problem, numerical):
    """Compare ``d . numerical`` with independent directional differences of fn.

    Each direction is differenced at two steps; where fn is not smooth along it within the
    step (kinks crossed: the one-sided gap does not halve), at a finer one. A direction that
    is smooth and disagrees rejects the pairing.
    """
    x_flat = problem.x.reshape(-1)
    weights = problem.dLdf.astype(np.float64)
    noise = max(DIRECTION_NOISE_ULPS * np.finfo(problem.x.dtype).eps * float(
        np.sum(np.abs(np.asarray(problem.f0, dtype=np.float64) * weights))),
        float(np.sqrt(np.sum(rounding_squares(problem)))))
    scale = np.maximum(1.0, np.abs(x_flat)) if problem.relative else np.ones(x_flat.size)
    with np.errstate(invalid="ignore", over="ignore"):  # (fn's inf: NaN, which fails)
        return _verify_directions(problem, x_flat, numerical, noise, scale)


def _verify_directions(problem, x_flat, numerical, noise, scale):
    for _ in range(N_VERIFY):
        d = problem.rng.choice([-1.0, 1.0], size=x_flat.size) * scale
        for factor in VERIFY_FACTORS:
            t = problem.step_scale / factor
            directional, predicted, gap = [], [], []
            for step in (t, t / 2):
                up = (x_flat + step * d) - x_flat
                down = x_flat - (x_flat - step * d)
                found = changes(problem, [lambda up=up: (slice(None), up),
                                          lambda down=down: (slice(None), -down)],
                                "(verifying the colored result)")
                directional.append((found[0] - found[1]) / (2 * step))
                gap.append((found[0] + found[1]) / (2 * step))
                predicted.append(float(np.dot((up + down) / (2 * step), numerical)))
            value = directional[1] + (directional[1] - directional[0]) / 3
            expected = predicted[1] + (predicted[1] - predicted[0]) / 3
            tolerance = problem.rtol * float(np.linalg.norm(d * numerical)) + 4 * noise / t
            if abs(value - expected) <= tolerance:
                break
            if abs(gap[0] - 2 * gap[1]) <= tolerance or 4 * noise / (t / 10) > tolerance:
                return False, (f"a random directional difference {value:.9g} disagrees with "
                               f"the colored values ({expected:.9g})")
        else:
            return False, "random directions cross kinks at every step it could resolve"
    return True, f"verified by {N_VERIFY} random directional differences"


register(Colored())
