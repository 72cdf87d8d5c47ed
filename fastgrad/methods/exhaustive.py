"""The ``"exhaustive"`` method: every element differenced through the black-box ``fn``.

Perturbations are stacked along a new leading axis and evaluated in as few calls as the
memory budget allows, when ``fn`` handles a leading stack axis. That is probed on a few
elements and compared with single calls, never assumed (a function that averages over
``x.shape[0]`` or sums over all axes would give other values on a stack). Otherwise a tight
loop perturbs a private copy of ``x`` in place, one element at a time.

Each chunk of a stack carries its own unperturbed base point, so ``f(x + h e_i) - f(x)`` is
taken between outputs of one call (a BLAS may round a stacked product differently from a
single one).
"""

import numpy as np

from .._progress import progress_bar
from .._tolerances import KINK_ROUNDING, STACK_ULPS
from . import (
    MODIFIED_INPUT,
    Differences,
    ModifiedInput,
    finest_steps,
    reachable_rounding,
    reachable_terms,
    reachable_upstream,
    read_only,
    register,
    rounding_squares,
)

#: How many elements the stacking probe compares with single calls.
N_PROBE = 3
#: Factor for the memory a call may use beyond its input and output stacks.
WORKSPACE_FACTOR = 2
#: Bytes a stack aims at: measured on tanh(x @ A) with x 64x64, stacks of 4-16 MiB ran
#: 5x faster than 256 MiB ones, which stream from memory instead of staying in cache.
STACK_TARGET_BYTES = 8 * 2**20
#: Elements between progress updates in the loop.
LOOP_UPDATE = 256
#: Below this many elements no progress bar is made (unless asked for).
SMALL_WORK = 64


def _levels(problem):
    return 1 if problem.order == 2 else 2


def _steps(values, problem, level):
    """(x + h, x - h, h+, h-) at step level ``level`` (step h / 2**level)."""
    scale = problem.step_scale / 2**level
    h = scale * np.maximum(1.0, np.abs(values)) if problem.relative \
        else np.full(values.shape, scale)
    plus = values + h
    minus = values - h
    return plus, minus, plus - values, values - minus


def _stack(problem, flat_indices):
    """The base point, then for each step level +h and -h at each index.

    Shape ``(2 * levels * n + 1, *x.shape)``; also returns the steps taken per level.
    """
    x_flat = problem.x.reshape(-1)
    n = len(flat_indices)
    levels = _levels(problem)
    stack = np.empty((2 * levels * n + 1, x_flat.size), dtype=x_flat.dtype)
    stack[:] = x_flat
    rows = np.arange(n)
    taken = []
    for level in range(levels):
        plus, minus, h_plus, h_minus = _steps(x_flat[flat_indices], problem, level)
        first = 1 + 2 * level * n
        stack[first + rows, flat_indices] = plus
        stack[first + n + rows, flat_indices] = minus
        taken.append((h_plus, h_minus))
    return stack.reshape((len(stack), *problem.x.shape)), taken


def _differences(outputs, n, taken, dLdf_flat, order, squares):
    """Central differences, gaps, terms and moved magnitudes from the outputs of one stack.

    ``terms`` (``sum_k |dLdf_k| |f_k(x + h) - f_k(x - h)| / (h+ + h-)``, the magnitude of the
    terms that form each element: central, so that curvature does not count) and ``moved``
    (the root-sum of ``squares``, the outputs' squared rounding, over the outputs the element
    moves) come from the first step.
    """
    flat = outputs.reshape(len(outputs), -1)
    base = flat[0]
    sums = []
    terms = moved = None
    for level, (h_plus, h_minus) in enumerate(taken):
        first = 1 + 2 * level * n
        up_change = (flat[first:first + n] - base).astype(np.float64)
        down_change = (base - flat[first + n:first + 2 * n]).astype(np.float64)
        sums.append((up_change @ dLdf_flat, down_change @ dLdf_flat, h_plus, h_minus))
        if level == 0:
            weights = np.abs(dLdf_flat)
            terms = np.abs(up_change + down_change) @ weights / (h_plus + h_minus)
            # (float masks: a bool @ float product takes NumPy's slow generic loop, 100x BLAS)
            moved = np.sqrt(np.maximum((up_change != 0).astype(np.float64) @ squares,
                                       (down_change != 0).astype(np.float64) @ squares))
    central, gap = combine_arrays(sums[0], sums[-1], order)
    return central, gap, terms, moved


def combine_arrays(coarse, fine, order):
    """NumPy twin of ``kernels.differences.combine`` for arrays (no compiler needed)."""
    with np.errstate(invalid="ignore", over="ignore"):  # (fn's inf: reported as NaN)
        return _combine_arrays(coarse, fine, order)


def _combine_arrays(coarse, fine, order):
    up, down, h_plus, h_minus = fine if order == 4 else coarse
    central = (up + down) / (h_plus + h_minus)
    gap = (up / h_plus - down / h_minus) / 2.0
    if order == 2:
        return central, gap
    fine_span = h_plus + h_minus
    up, down, h_plus, h_minus = coarse
    coarse_gap = (up / h_plus - down / h_minus) / 2.0
    correction = central - (up + down) / (h_plus + h_minus)
    return central + correction / 3.0, kink_indicators(
        coarse_gap, gap, (h_plus + h_minus) / fine_span, correction, central)


def kink_indicators(coarse_gap, fine_gap, ratio, correction, central):
    """NumPy twin of ``kernels.differences.kink_indicator`` for arrays."""
    rounding = KINK_ROUNDING * np.finfo(np.float64).eps * (np.abs(central)
                                                           + np.abs(coarse_gap))
    return np.maximum(np.maximum(np.abs(coarse_gap - ratio * fine_gap), np.abs(correction))
                      - rounding, 0.0)


#: Why a stack is abandoned when its unperturbed row disagrees with fn(x).
STACK_LENGTH_REASON = "fn gives other values at x on a stack of another length (it reads " \
    "the stack's length: len(v) or v.shape[0] where v.shape[-2] is meant?)"


class StackMismatch(Exception):
    """A stack's unperturbed row differs from fn(x): fn depends on the stack's length."""


def check_base_row(problem, base_output):
    """Raise :class:`StackMismatch` unless a stack's unperturbed output equals fn(x).

    The probe stack's length can coincide with an axis of x (13 rows, and 13 slices), so a
    function that divides by ``len(v)`` passes it; every stack carries its base row, and
    that row must reproduce fn(x) whatever the stack's length.
    """
    eps = np.finfo(problem.x.dtype).eps
    scale = float(np.max(np.abs(problem.f0), initial=0.0))
    if not np.allclose(base_output, problem.f0, rtol=STACK_ULPS * eps,
                       atol=STACK_ULPS * eps * scale):
        raise StackMismatch(STACK_LENGTH_REASON)


def _probe_size(problem):
    """How many elements the probe perturbs: N_PROBE or more, so that the stack's length is
    none of x's axis lengths (a function that reads ``len(v)`` shows it)."""
    size, levels = problem.x.size, _levels(problem)
    n = min(N_PROBE, size)
    while n < size and 1 + 2 * levels * n in problem.x.shape:
        n += 1
    return n


def _probe_stacking(problem):
    """Return None when fn evaluates stacks like single calls, else the reason it does not."""
    size = problem.x.size
    indices = problem.rng.choice(size, size=_probe_size(problem), replace=False)
    stack, _ = _stack(problem, indices)
    problem.n_evaluations += 1
    try:
        outputs = np.array(problem.fn(read_only(stack)), copy=True)
    except Exception as error:  # fn does not take a stack: fall back to the loop
        return f"fn raised {type(error).__name__} on a stack of inputs"
    expected = (len(stack), *problem.f0.shape)
    if outputs.shape != expected:
        return f"fn returned shape {outputs.shape} for a stack of shape {stack.shape}, " \
               f"not {expected}"
    singles = [problem.f0] + [np.asarray(problem.call(stack[1 + k].copy(), "(probing stacks)"))
                              for k in range(len(indices))]
    eps = np.finfo(problem.x.dtype).eps
    scale = float(np.max(np.abs(problem.f0), initial=0.0))
    for stacked, single in zip(outputs, singles, strict=False):
        if single.shape != stacked.shape or not np.allclose(
                stacked, single, rtol=STACK_ULPS * eps, atol=STACK_ULPS * eps * scale):
            return "fn gives other values on a stack than in single calls"
    return None


class Exhaustive:
    name = "exhaustive"
    priority = 50
    complete = True

    def unavailable(self, problem):
        return None

    def evaluations(self, problem):
        """Perturbed evaluations of fn (each element once per side and step level)."""
        return problem.x.size * 2 * _levels(problem)

    def run(self, problem):
        reason = _probe_stacking(problem) if problem.x.size > 1 else "a single element"
        if reason is None:
            try:
                return self._stacked(problem)
            except StackMismatch as mismatch:
                reason = str(mismatch)
        return self._loop(problem, reason)

    def _chunk_size(self, problem):
        per_item = WORKSPACE_FACTOR * (problem.x.nbytes + max(problem.f0.nbytes, 8))
        per_element = 2 * _levels(problem)
        budget = min(problem.memory_budget, STACK_TARGET_BYTES)
        return int(max(1, min(problem.x.size, (budget // per_item - 1) // per_element)))

    def _stacked(self, problem):
        size = problem.x.size
        dLdf_flat = problem.dLdf.reshape(-1).astype(np.float64)
        central, gap, terms, moved = (np.empty(size) for _ in range(4))
        squares = rounding_squares(problem)
        chunk = self._chunk_size(problem)
        n_calls = 0
        with progress_bar(size, problem.progress, "exhaustive check (stacked)",
                          small=size < SMALL_WORK) as bar:
            for start in range(0, size, chunk):
                indices = np.arange(start, min(start + chunk, size))
                stack, taken = _stack(problem, indices)
                where = f"on a stack perturbing elements {problem.element(indices[0])} to " \
                        f"{problem.element(indices[-1])}"
                outputs = np.asarray(problem.call(stack, where))
                if outputs.shape != (len(stack), *problem.f0.shape):
                    raise ValueError(f"fn: returned shape {outputs.shape} {where}, expected "
                                     f"{(len(stack), *problem.f0.shape)}")
                check_base_row(problem, outputs[0])
                central[indices], gap[indices], terms[indices], moved[indices] = \
                    _differences(outputs, len(indices), taken, dLdf_flat, problem.order,
                                 squares)
                n_calls += 1
                bar.update(len(indices))
        note = f"stacked, {chunk} element(s) per call, {n_calls} call(s)"
        return _result(problem, central, gap, terms, moved, note)

    def _loop(self, problem, reason):
        size = problem.x.size
        work = problem.x.copy()
        work_flat = work.reshape(-1)
        f0 = problem.f0
        dLdf_flat = problem.dLdf.reshape(-1).astype(np.float64)
        central, gap, terms, moved = (np.empty(size) for _ in range(4))
        weights = np.abs(dLdf_flat)
        squares = rounding_squares(problem)
        x_flat = problem.x.reshape(-1)
        steps = [_steps(x_flat, problem, level) for level in range(_levels(problem))]
        with progress_bar(size, problem.progress, "exhaustive check (loop)",
                          small=size < SMALL_WORK) as bar:
            for i in range(size):
                where = f"with element {problem.element(i)} perturbed"
                sums = []
                for level, (plus, minus, h_plus, h_minus) in enumerate(steps):
                    changes = []
                    first_change = None
                    for value in (plus[i], minus[i]):
                        work_flat[i] = value
                        out = problem.call(work, where)
                        if out.shape != f0.shape:
                            raise ValueError(f"fn: returned shape {out.shape} {where}, "
                                             f"expected {f0.shape} as at the unperturbed x")
                        change = (out - f0).reshape(-1).astype(np.float64)
                        changes.append(float(np.dot(change, dLdf_flat)))
                        if level == 0:
                            if first_change is None:
                                first_change = change
                            else:  # central: curvature does not count
                                terms[i] = float(np.dot(np.abs(first_change - change),
                                                        weights))
                            moved[i] = max(moved[i] if value != plus[i] else 0.0,
                                           float(np.dot(change != 0, squares)))
                    sums.append((changes[0], -changes[1], h_plus[i], h_minus[i]))
                    if level == 0:
                        terms[i] /= h_plus[i] + h_minus[i]
                work_flat[i] = x_flat[i]
                central[i], gap[i] = combine_arrays(sums[0], sums[-1], problem.order)
                if i % LOOP_UPDATE == LOOP_UPDATE - 1:
                    bar.update(LOOP_UPDATE)
            bar.update(size % LOOP_UPDATE)
        if not np.array_equal(work, problem.x):
            raise ModifiedInput(MODIFIED_INPUT)
        return _result(problem, central, gap, terms, np.sqrt(moved),
                       f"one element per call ({reason})")


def _result(problem, central, gap, terms, moved, note):
    """Differences with per-element floors: each element's noise from the outputs it can
    move (see ``reachable_rounding``; at least those it moved)."""
    shape = problem.x.shape
    moved = np.maximum(moved, reachable_rounding(problem))
    noise = moved / finest_steps(problem).reshape(-1)
    # every failing element may get its second look: at most 12 more evaluations each, the
    # cost of three first passes, and only where they fail
    from ._looks import BlackBoxLook  # (imports this module's stacking helpers)

    look = BlackBoxLook(problem, moved, cap=problem.x.size)
    return Differences(central.reshape(shape), gap.reshape(shape), note,
                       noise=noise.reshape(shape), rounding=moved.reshape(shape),
                       terms=terms.reshape(shape), look=look,
                       upstream=reachable_upstream(problem),
                       reach=reachable_terms(problem, terms))


register(Exhaustive())
