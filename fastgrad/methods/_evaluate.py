"""Contracted changes ``g(x + p) - g(x)`` of ``g = sum(fn(.) * dLdf)`` for many perturbations.

A perturbation is a callable returning ``(index, values)``: the flat positions it moves (an
integer array or a slice) and by how much. They are made only when their chunk is evaluated,
so a check of a 16M-element x holds a few perturbed copies at a time, never all of them.

Shared by the colored method and the directional method's located elements. Perturbations
are evaluated as stacks along a new leading axis when ``fn`` handles one (probed once per
check, as in the exhaustive method), in chunks within the memory budget, each chunk with its
own unperturbed base point; otherwise one call per perturbation on a private copy of x.
"""

import numpy as np

from . import MODIFIED_INPUT
from .exhaustive import STACK_TARGET_BYTES, WORKSPACE_FACTOR, _probe_stacking


def stacking(problem):
    """Whether fn evaluates stacks like single calls (probed once, then remembered)."""
    if problem.stacks is None:
        reason = _probe_stacking(problem) if problem.x.size > 1 else "a single element"
        problem.stacks = reason is None
        if reason is not None:
            problem.notes.append(f"one perturbation per call ({reason})")
    return problem.stacks


def _per_item(problem):
    return WORKSPACE_FACTOR * (problem.x.nbytes + max(problem.f0.nbytes, 8))


def _chunk(problem):
    budget = min(problem.memory_budget, STACK_TARGET_BYTES)
    return int(max(2, budget // _per_item(problem) - 1))


def _stacks_fit(problem):
    """Stacks pay when several items fit the cache-sized target (and the memory budget)."""
    return 4 * _per_item(problem) <= min(problem.memory_budget, STACK_TARGET_BYTES)


def _apply(x_flat, perturbation, out):
    index, values = perturbation()
    out[:] = x_flat
    out[index] = x_flat[index] + values


class WorkBuffer:
    """One private copy of x, perturbed in place and restored entry by entry.

    For a wide x (16M elements) this replaces a 128 MB copy per evaluation with writes of the
    perturbed entries only. ``check_unmodified`` afterwards tells whether fn wrote to it.
    """

    def __init__(self, x_flat):
        self.x_flat = x_flat
        self.work = x_flat.copy()

    def perturbed(self, index, values):
        self.work[index] = self.x_flat[index] + values
        return self.work

    def restore(self, index):
        self.work[index] = self.x_flat[index]

    def check_unmodified(self):
        """Raise ``ValueError`` if fn wrote to the buffer (everything was restored since)."""
        if not np.array_equal(self.work, self.x_flat):
            raise ValueError(MODIFIED_INPUT)


def changes(problem, perturbations, where):
    """Return ``g(x + p_k) - g(x)`` (float64) for the perturbations ``p_k`` (callables)."""
    x_flat = problem.x.reshape(-1)
    weights = problem.dLdf.reshape(-1).astype(np.float64)
    out = np.empty(len(perturbations))
    if len(perturbations) == 0:
        return out
    if len(perturbations) > 1 and _stacks_fit(problem) and stacking(problem):
        chunk = _chunk(problem)
        for start in range(0, len(perturbations), chunk):
            block = perturbations[start:start + chunk]
            stack = np.empty((len(block) + 1, x_flat.size), dtype=x_flat.dtype)
            stack[0] = x_flat
            for k, perturbation in enumerate(block, start=1):
                _apply(x_flat, perturbation, stack[k])
            outputs = np.asarray(problem.call(stack.reshape((len(stack), *problem.x.shape)),
                                              where))
            _check_shape(problem, outputs, (len(stack), *problem.f0.shape), where)
            flat = outputs.reshape(len(stack), -1)
            out[start:start + len(block)] = (flat[1:] - flat[0]).astype(np.float64) @ weights
        return out
    base = problem.f0.reshape(-1)
    buffer = WorkBuffer(x_flat)
    for k, perturbation in enumerate(perturbations):
        index, values = perturbation()
        work = buffer.perturbed(index, values)
        output = problem.call(work.reshape(problem.x.shape), where)
        buffer.restore(index)
        out[k] = contracted(problem, output, base, weights, where)
    buffer.check_unmodified()
    return out


def contracted(problem, output, base, weights, where):
    """``sum((fn(x + p) - fn(x)) * dLdf)`` in float64, after checking the output's shape."""
    output = np.asarray(output)
    _check_shape(problem, output, problem.f0.shape, where)
    return float(np.dot((output.reshape(-1) - base).astype(np.float64), weights))


def _check_shape(problem, output, expected, where):
    if output.shape != tuple(expected):
        raise ValueError(f"fn: returned shape {output.shape} {where}, expected "
                         f"{tuple(expected)}")


def element_values(problem, flat_indices):
    """Exact per-element central differences (order 2 or 4) of a few elements."""
    from ..kernels.differences import combine

    x_flat = problem.x.reshape(-1)
    levels = 1 if problem.order == 2 else 2
    values = np.empty(len(flat_indices))
    gaps = np.empty(len(flat_indices))
    for n, index in enumerate(flat_indices):
        value = x_flat[index]
        sums = []
        perturbations = []
        steps = []
        for level in range(levels):
            h = problem.step_scale / 2**level * (max(1.0, abs(value)) if problem.relative
                                                  else 1.0)
            h_plus = (value + h) - value
            h_minus = value - (value - h)
            for signed in (h_plus, -h_minus):
                perturbations.append(
                    lambda index=index, signed=signed: (np.array([index]), np.array([signed])))
            steps.append((h_plus, h_minus))
        found = changes(problem, perturbations,
                        f"with element {problem.element(index)} perturbed")
        for level, (h_plus, h_minus) in enumerate(steps):
            sums.append((found[2 * level], -found[2 * level + 1], h_plus, h_minus))
        values[n], gaps[n] = combine(sums[0], sums[-1], problem.order)
    return values, gaps
