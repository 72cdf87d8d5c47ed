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

from . import MODIFIED_INPUT, ModifiedInput, rounding_squares
from .exhaustive import (
    STACK_TARGET_BYTES,
    WORKSPACE_FACTOR,
    StackMismatch,
    _probe_stacking,
    check_base_row,
    kink_indicators,
)


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
            raise ModifiedInput(MODIFIED_INPUT)


def changes(problem, perturbations, where, detail=False, paired=False):
    """Return ``g(x + p_k) - g(x)`` (float64) for the perturbations ``p_k`` (callables).

    With ``detail``, return ``(changes, terms, moved)``: also ``sum_j |dLdf_j| |f_j(x + p_k) -
    f_j(x)|`` (the magnitude of the terms the change is made of) and the sum of the outputs'
    squared rounding (``rounding_squares``) over the outputs that moved: what a difference
    can carry. With ``paired`` the perturbations come as (up, down) pairs and each of a
    pair's terms is half of ``sum_j |dLdf_j| |f_j(x + p_up) - f_j(x + p_down)|``: central, so
    that curvature does not count.
    """
    x_flat = problem.x.reshape(-1)
    weights = problem.dLdf.reshape(-1).astype(np.float64)
    out = np.empty(len(perturbations))
    terms = np.empty(len(perturbations))
    moved = np.empty(len(perturbations))
    if len(perturbations) == 0:
        return (out, terms, moved) if detail else out
    base = np.asarray(problem.f0, dtype=np.float64).reshape(-1)
    base_squares = rounding_squares(problem) if detail else None
    if len(perturbations) > 1 and _stacks_fit(problem) and stacking(problem):
        try:
            return _stacked_changes(problem, perturbations, where, detail, paired, out, terms,
                                    moved, base_squares)
        except StackMismatch as mismatch:
            problem.stacks = False
            problem.notes.append(f"one perturbation per call ({mismatch})")
    buffer = WorkBuffer(x_flat)
    previous = None  # the up change of a pair, until its down change comes
    for k, perturbation in enumerate(perturbations):
        index, values = perturbation()
        work = buffer.perturbed(index, values)
        output = problem.call(work.reshape(problem.x.shape), where)
        buffer.restore(index)
        _check_shape(problem, np.asarray(output), problem.f0.shape, where)
        difference = np.asarray(output, dtype=np.float64).reshape(-1) - base
        out[k] = float(np.dot(difference, weights))
        if detail:
            if paired and k % 2:
                terms[k - 1] = terms[k] = float(np.dot(np.abs(previous - difference),
                                                       np.abs(weights))) / 2
            elif not paired:
                terms[k] = float(np.dot(np.abs(difference), np.abs(weights)))
            previous = difference
            moved[k] = float(np.dot(difference != 0, base_squares))
    buffer.check_unmodified()
    return (out, terms, moved) if detail else out


def _stacked_changes(problem, perturbations, where, detail, paired, out, terms, moved,
                     base_squares):
    """:func:`changes` through stacks (raises :class:`StackMismatch` when a stack's base row
    differs from fn(x))."""
    x_flat = problem.x.reshape(-1)
    weights = problem.dLdf.reshape(-1).astype(np.float64)
    chunk = _chunk(problem)
    if paired:
        chunk = max(2, chunk - chunk % 2)
    for start in range(0, len(perturbations), chunk):
        block = perturbations[start:start + chunk]
        stack = np.empty((len(block) + 1, x_flat.size), dtype=x_flat.dtype)
        stack[0] = x_flat
        for k, perturbation in enumerate(block, start=1):
            _apply(x_flat, perturbation, stack[k])
        outputs = problem.call(stack.reshape((len(stack), *problem.x.shape)), where)
        _check_shape(problem, outputs, (len(stack), *problem.f0.shape), where)
        check_base_row(problem, outputs[0])
        flat = outputs.reshape(len(stack), -1)
        difference = (flat[1:] - flat[0]).astype(np.float64)
        rows = slice(start, start + len(block))
        out[rows] = difference @ weights
        if detail:
            if paired:
                central = np.abs(difference[0::2] - difference[1::2]) @ np.abs(weights)
                terms[rows] = np.repeat(central / 2, 2)
            else:
                terms[rows] = np.abs(difference) @ np.abs(weights)
            moved[rows] = (difference != 0).astype(np.float64) @ base_squares
    return (out, terms, moved) if detail else out


def contracted(problem, output, base, weights, where):
    """``sum((fn(x + p) - fn(x)) * dLdf)`` in float64, after checking the output's shape."""
    output = np.asarray(output)
    _check_shape(problem, output, problem.f0.shape, where)
    return float(np.dot((output.reshape(-1) - base).astype(np.float64), weights))


def _check_shape(problem, output, expected, where):
    if output.shape != tuple(expected):
        raise ValueError(f"fn: returned shape {output.shape} {where}, expected "
                         f"{tuple(expected)}")


def taken_steps(problem, flat_indices, step_scale):
    """``(h+, h-)``: the steps up and down that x's dtype actually takes at ``step_scale``."""
    x_flat = problem.x.reshape(-1)
    values = x_flat[flat_indices].astype(np.float64)
    h = step_scale * (np.maximum(1.0, np.abs(values)) if problem.relative else
                      np.ones_like(values))
    plus = (x_flat[flat_indices] + h.astype(x_flat.dtype)).astype(x_flat.dtype)
    minus = (x_flat[flat_indices] - h.astype(x_flat.dtype)).astype(x_flat.dtype)
    return plus.astype(np.float64) - values, values - minus.astype(np.float64)


def element_differences(problem, flat_indices, step_scale, detail=False):
    """Order-2 ``(central, half_gap)`` of single elements at ``step_scale`` through fn.

    With ``detail`` also ``(terms, rounding)`` per element (see :func:`changes`), from both
    sides.
    """
    flat_indices = np.asarray(flat_indices, dtype=np.intp)
    h_plus, h_minus = taken_steps(problem, flat_indices, step_scale)
    perturbations = []
    for n, index in enumerate(flat_indices):
        for signed in (h_plus[n], -h_minus[n]):
            perturbations.append(lambda index=index, signed=signed:
                                 (np.array([index]), np.array([signed])))
    where = (f"with element {problem.element(flat_indices[0])} perturbed"
             if flat_indices.size == 1 else
             f"with one of the elements {[problem.element(i) for i in flat_indices[:8]]}"
             f"{' ...' if flat_indices.size > 8 else ''} perturbed")
    found = changes(problem, perturbations, where, detail=detail, paired=True)
    sums = found[0] if detail else found
    up, down = sums[0::2], -sums[1::2]
    central = (up + down) / (h_plus + h_minus)
    half_gap = (up / h_plus - down / h_minus) / 2.0
    if not detail:
        return central, half_gap
    terms = (found[1][0::2] + found[1][1::2]) / (h_plus + h_minus)
    moved = np.sqrt(np.maximum(found[2][0::2], found[2][1::2]))
    return central, half_gap, terms, moved


def element_values(problem, flat_indices):
    """Per-element differences of the problem's order: ``(values, gaps, terms, rounding)``.

    ``gaps`` is the kink indicator of ``fastgrad.kernels.differences.combine``; ``terms`` and
    ``rounding`` as in :func:`element_differences`, at the first step.
    """
    coarse = element_differences(problem, flat_indices, problem.step_scale, detail=True)
    if problem.order == 2:
        return coarse
    fine = element_differences(problem, flat_indices, problem.step_scale / 2)
    correction = fine[0] - coarse[0]
    values = fine[0] + correction / 3.0
    ratio = (np.add(*taken_steps(problem, flat_indices, problem.step_scale))
             / np.add(*taken_steps(problem, flat_indices, problem.step_scale / 2)))
    gaps = kink_indicators(coarse[1], fine[1], ratio, correction, fine[0])
    return values, gaps, coarse[2], coarse[3]
