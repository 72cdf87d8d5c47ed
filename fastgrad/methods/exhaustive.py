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
from . import Differences, register

#: How many elements the stacking probe compares with single calls.
N_PROBE = 3
#: Allowed disagreement between a stacked and a single call, in eps of the evaluation dtype.
STACK_ULPS = 1e4
#: Factor for the memory a call may use beyond its input and output stacks.
WORKSPACE_FACTOR = 2
#: Elements between progress updates in the loop.
LOOP_UPDATE = 256


def _steps(values, problem):
    h = problem.step_scale * np.maximum(1.0, np.abs(values)) if problem.relative \
        else np.full(values.shape, problem.step_scale)
    plus = values + h
    minus = values - h
    return plus, minus, plus - values, values - minus


def _stack(problem, flat_indices):
    """Base point, then +h at each index, then -h at each index: shape (2n + 1, *x.shape)."""
    x_flat = problem.x.reshape(-1)
    n = len(flat_indices)
    stack = np.empty((2 * n + 1, x_flat.size), dtype=x_flat.dtype)
    stack[:] = x_flat
    plus, minus, h_plus, h_minus = _steps(x_flat[flat_indices], problem)
    rows = np.arange(n)
    stack[1 + rows, flat_indices] = plus
    stack[1 + n + rows, flat_indices] = minus
    return stack.reshape((2 * n + 1, *problem.x.shape)), h_plus, h_minus


def _contract(outputs, n, dLdf_flat):
    """(up, down) sums of (f(x+h) - f(x)) * dLdf and (f(x) - f(x-h)) * dLdf per element."""
    flat = outputs.reshape(2 * n + 1, -1)
    base = flat[0]
    up = (flat[1:n + 1] - base).astype(np.float64) @ dLdf_flat
    down = (base - flat[n + 1:]).astype(np.float64) @ dLdf_flat
    return up, down


def _probe_stacking(problem):
    """Return None when fn evaluates stacks like single calls, else the reason it does not."""
    size = problem.x.size
    indices = problem.rng.choice(size, size=min(N_PROBE, size), replace=False)
    stack, _, _ = _stack(problem, indices)
    problem.n_evaluations += 1
    try:
        outputs = np.asarray(problem.fn(stack))
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
    priority = 0

    def unavailable(self, problem):
        return None

    def run(self, problem):
        reason = _probe_stacking(problem) if problem.x.size > 1 else "a single element"
        if reason is None:
            return self._stacked(problem)
        return self._loop(problem, reason)

    def _chunk_size(self, problem):
        per_item = WORKSPACE_FACTOR * (problem.x.nbytes + max(problem.f0.nbytes, 8))
        return int(max(1, min(problem.x.size, (problem.memory_budget // per_item - 1) // 2)))

    def _stacked(self, problem):
        size = problem.x.size
        dLdf_flat = problem.dLdf.reshape(-1).astype(np.float64)
        central = np.empty(size)
        gap = np.empty(size)
        chunk = self._chunk_size(problem)
        n_calls = 0
        with progress_bar(size, problem.progress, "exhaustive check (stacked)") as bar:
            for start in range(0, size, chunk):
                indices = np.arange(start, min(start + chunk, size))
                stack, h_plus, h_minus = _stack(problem, indices)
                where = f"on a stack perturbing elements {problem.element(indices[0])} to " \
                        f"{problem.element(indices[-1])}"
                outputs = np.asarray(problem.call(stack, where))
                if outputs.shape != (len(stack), *problem.f0.shape):
                    raise ValueError(f"fn: returned shape {outputs.shape} {where}, expected "
                                     f"{(len(stack), *problem.f0.shape)}")
                up, down = _contract(outputs, len(indices), dLdf_flat)
                central[indices] = (up + down) / (h_plus + h_minus)
                gap[indices] = (up / h_plus - down / h_minus) / 2.0
                n_calls += 1
                bar.update(len(indices))
        note = f"stacked, {chunk} element(s) per call, {n_calls} call(s)"
        return Differences(central.reshape(problem.x.shape), gap.reshape(problem.x.shape), note)

    def _loop(self, problem, reason):
        size = problem.x.size
        work = problem.x.copy()
        work_flat = work.reshape(-1)
        f0 = problem.f0
        dLdf_flat = problem.dLdf.reshape(-1).astype(np.float64)
        central = np.empty(size)
        gap = np.empty(size)
        plus, minus, h_plus, h_minus = _steps(problem.x.reshape(-1), problem)
        with progress_bar(size, problem.progress, "exhaustive check (loop)") as bar:
            for i in range(size):
                sums = []
                for value in (plus[i], minus[i]):
                    work_flat[i] = value
                    where = f"with element {problem.element(i)} perturbed"
                    out = np.asarray(problem.call(work, where))
                    if out.shape != f0.shape:
                        raise ValueError(f"fn: returned shape {out.shape} {where}, expected "
                                         f"{f0.shape} as at the unperturbed x")
                    sums.append(float(np.dot((out - f0).reshape(-1).astype(np.float64),
                                             dLdf_flat)))
                work_flat[i] = problem.x.flat[i]
                up, down = sums[0], -sums[1]
                central[i] = (up + down) / (h_plus[i] + h_minus[i])
                gap[i] = (up / h_plus[i] - down / h_minus[i]) / 2.0
                if i % LOOP_UPDATE == LOOP_UPDATE - 1:
                    bar.update(LOOP_UPDATE)
            bar.update(size % LOOP_UPDATE)
        if not np.array_equal(work, problem.x):
            raise ValueError("fn: modified its input array; fastgrad cannot difference a "
                             "function that writes to its argument")
        return Differences(central.reshape(problem.x.shape), gap.reshape(problem.x.shape),
                           f"one element per call ({reason})")


register(Exhaustive())
