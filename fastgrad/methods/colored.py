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
from ..kernels.differences import combine
from . import Differences, finest_steps, noise_floor, register
from ._evaluate import WorkBuffer, changes

#: Elements probed one by one to find the pairing.
N_PROBES = 8
#: Random directions of the verification.
N_VERIFY = 2


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
    outputs = []
    for flat in probes:
        work = x.copy()
        delta = 1e-3 * max(1.0, abs(float(x_flat[flat])))
        work.reshape(-1)[flat] += delta
        out = np.asarray(problem.call(work, "(probing the Jacobian's pattern)"))
        if out.shape != f0.shape:
            raise ValueError(f"fn: returned shape {out.shape} while probing, expected "
                             f"{f0.shape}")
        outputs.append(np.argwhere(out != f0))
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


def _group_values(problem, pairs, unpaired, group_index, levels, scale_flat, buffer):
    """Central differences of every element of one group (unpaired indices fixed)."""
    x = problem.x
    select = [slice(None)] * x.ndim
    for axis, value in zip(unpaired, group_index, strict=True):
        select[axis] = value
    members = np.zeros(x.shape, dtype=bool)
    members[tuple(select)] = True
    flat_members = np.flatnonzero(members)
    x_flat = x.reshape(-1)
    perturbations, steps = [], []
    for level in range(levels):
        step = problem.step_scale / 2**level * scale_flat[flat_members]
        up = (x_flat[flat_members] + step) - x_flat[flat_members]
        down = x_flat[flat_members] - (x_flat[flat_members] - step)
        perturbations += [lambda up=up: (flat_members, up), lambda down=down: (flat_members,
                                                                               -down)]
        steps.append((up, down))
    outputs = _output_changes(problem, perturbations, buffer)
    # contract each output change over the unpaired output axes; the paired ones remain, in
    # increasing order, and each member reads its own entry
    by_output = sorted(pairs, key=lambda pair: pair[1])
    paired_out = {b for _, b in pairs}
    weights = problem.dLdf.astype(np.float64)
    member_index = np.unravel_index(flat_members, x.shape)
    key = tuple(member_index[a] for a, _ in by_output)
    sums = []
    for up_steps, down_steps in steps:
        contracted = []
        for change in outputs[2 * len(sums): 2 * len(sums) + 2]:
            weighted = change * weights
            other = tuple(axis for axis in range(weighted.ndim) if axis not in paired_out)
            reduced = weighted.sum(axis=other) if other else weighted
            contracted.append(reduced[key])
        sums.append((contracted[0], -contracted[1], up_steps, down_steps))
    values, gaps = combine(sums[0], sums[-1], problem.order)
    return flat_members, values, gaps


def _output_changes(problem, perturbations, buffer):
    """``fn(x + p) - fn(x)`` (float64 arrays) for each perturbation."""
    base = np.asarray(problem.f0, dtype=np.float64)
    result = []
    for perturbation in perturbations:
        index, values = perturbation()
        work = buffer.perturbed(index, values)
        out = np.asarray(problem.call(work.reshape(problem.x.shape),
                                      "(colored group perturbed)"), dtype=np.float64)
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

    def estimate(self, problem):
        if not problem.pairs:
            return None
        _, sizes = _groups(problem.x.shape, problem.pairs)
        levels = 1 if problem.order == 2 else 2
        return (int(np.prod(sizes)) * 2 * levels + 2 * N_VERIFY) * problem.call_seconds

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
        numerical = np.empty(x_flat.size)
        gap = np.empty(x_flat.size)
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
                    for members, values, gaps in chunk_values:
                        numerical[members] = values
                        gap[members] = gaps
                    bar.update(len(chunk_values))
                problem.n_evaluations = calls_before + len(groups) * 2 * levels
            else:
                for members, values, gaps in _run_groups(problem, pairs, groups, levels,
                                                         scale_flat, bar):
                    numerical[members] = values
                    gap[members] = gaps
        magnitude = _magnitude(problem, pairs)
        noise = noise_floor(magnitude, finest_steps(problem), problem.x.dtype)
        verified, detail = _verify(problem, numerical)
        note = (f"pairs (input axis, output axis) {list(pairs)}, {len(groups)} group(s), "
                f"{len(groups) * 2 * levels} evaluations; {detail}")
        if not verified:
            return _fall_back(problem, f"its result was rejected: {detail}")
        return Differences(numerical.reshape(problem.x.shape), gap.reshape(problem.x.shape),
                           note, noise=noise, magnitude=magnitude)


def _magnitude(problem, pairs):
    """Per element: root-sum-square of fn(x) * dLdf over the slice of outputs it can move."""
    by_output = sorted(pairs, key=lambda pair: pair[1])
    paired_out = {b for _, b in pairs}
    weighted = (np.asarray(problem.f0, dtype=np.float64) * problem.dLdf) ** 2
    other = tuple(axis for axis in range(weighted.ndim) if axis not in paired_out)
    reduced = np.sqrt(weighted.sum(axis=other) if other else weighted)
    index = np.indices(problem.x.shape)
    return reduced[tuple(index[a] for a, _ in by_output)]


def _fall_back(problem, why):
    """Run exhaustive (when it fits the time budget) or directional instead, and say so."""
    from .directional import Directional
    from .exhaustive import Exhaustive

    exhaustive = Exhaustive()
    fits = exhaustive.estimate(problem) <= problem.time_budget_s
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
    """Compare ``d . numerical`` with independent directional differences of fn."""
    x_flat = problem.x.reshape(-1)
    weights = problem.dLdf.astype(np.float64)
    noise = DIRECTION_NOISE_ULPS * np.finfo(problem.x.dtype).eps * float(
        np.sum(np.abs(np.asarray(problem.f0, dtype=np.float64) * weights)))
    t = problem.step_scale
    scale = np.maximum(1.0, np.abs(x_flat)) if problem.relative else np.ones(x_flat.size)
    worst = 0.0
    for _ in range(N_VERIFY):
        d = problem.rng.choice([-1.0, 1.0], size=x_flat.size) * scale
        up = (x_flat + t * d) - x_flat
        down = x_flat - (x_flat - t * d)
        found = changes(problem, [lambda up=up: (slice(None), up),
                                  lambda down=down: (slice(None), -down)],
                        "(verifying the colored result)")
        directional = (found[0] - found[1]) / (2 * t)
        predicted = float(np.dot((up + down) / (2 * t), numerical))
        tolerance = problem.rtol * float(np.linalg.norm(d * numerical)) + 4 * noise / t
        worst = max(worst, abs(directional - predicted) / tolerance)
        if abs(directional - predicted) > tolerance:
            return False, (f"a random directional difference {directional:.6g} disagrees with "
                           f"the colored values ({predicted:.6g})")
    return True, f"verified by {N_VERIFY} random directional differences"


register(Colored())
