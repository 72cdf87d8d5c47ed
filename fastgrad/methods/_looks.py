"""Second looks (``fastgrad._verdict.Look``): re-differencing chosen elements at a finer step.

A black box is re-differenced through fn itself (stacked where fn takes stacks); an
elementwise structure (a built-in activation or loss, a model parameter) through its own
kernel, which costs a few rows per element and so may re-difference many more elements.
"""

import numpy as np

from .._verdict import Look, noise_floor
from ._evaluate import changes, element_differences

#: Elements a judgement may re-difference through fn (each costs 4 evaluations per step).
BLACK_BOX_CAP = 64
#: At most this many elements of a black box get a coarse look (about 20 evaluations each).
COARSE_BLACK_BOX_CAP = 1024
#: The same through an elementwise structure's own kernel, which costs a few vectorised rows
#: per element: every element may get its second look (x near kinks everywhere crosses one
#: in half its elements at the first step).
STRUCTURE_CAP = 2**62


class BlackBoxLook(Look):
    """Re-differences elements of ``problem.x`` through ``problem.fn``.

    ``rounding`` is, per element (flat) or for all, the rounding its differences can carry (in
    units of g): the noise floor at step s is ``rounding / s``.
    """

    cap = BLACK_BOX_CAP

    def __init__(self, problem, rounding, elements=None, cap=None):
        self.problem = problem
        if cap is not None:
            self.cap = cap
            # (a coarse look costs about 20 evaluations an element: a bounded number of them)
            self.coarse_cap = min(max(self.coarse_cap, cap), COARSE_BLACK_BOX_CAP)
        self.rounding = np.broadcast_to(np.asarray(rounding, dtype=np.float64),
                                     (problem.x.size,) if elements is None else
                                     (len(elements),))
        #: flat indices into x of the judged entries (None: the judged entries are x's own)
        self.elements = None if elements is None else np.asarray(elements, dtype=np.intp)

    def _x_index(self, flat_indices):
        return flat_indices if self.elements is None else self.elements[flat_indices]

    def noise(self, flat_indices, step_scale):
        problem = self.problem
        index = self._x_index(flat_indices)
        values = np.abs(problem.x.reshape(-1)[index].astype(np.float64))
        steps = step_scale * (np.maximum(1.0, values) if problem.relative else 1.0)
        return self.rounding[flat_indices] / steps

    def differences(self, flat_indices, step_scale):
        return element_differences(self.problem, self._x_index(flat_indices), step_scale)

    def jointly(self, flat_indices, step_scale, coefficients=None):
        return joint_changes(self.problem, self._x_index(flat_indices), step_scale,
                             coefficients)

    def coupled(self, flat_indices, step_scale):
        return moved_outputs(self.problem, self._x_index(flat_indices), step_scale)


def moved_outputs(problem, x_indices, step_scale):
    """Per element, which outputs of fn move when it alone moves up by its step (bool rows)."""
    x_flat = problem.x.reshape(-1)
    values = x_flat[x_indices]
    h = step_scale * (np.maximum(1.0, np.abs(values.astype(np.float64))) if problem.relative
                      else np.ones(values.size))
    steps = (values + h.astype(x_flat.dtype)).astype(x_flat.dtype).astype(np.float64) - values
    base = np.asarray(problem.f0).reshape(-1)
    rows = np.zeros((len(x_indices), base.size), dtype=bool)
    buffer_x = x_flat.copy()
    for n, (index, step) in enumerate(zip(x_indices, steps, strict=True)):
        buffer_x[index] = x_flat[index] + step
        out = problem.call(buffer_x.reshape(problem.x.shape), "(finding which outputs a kink "
                                                               "element moves)")
        buffer_x[index] = x_flat[index]
        rows[n] = np.asarray(out).reshape(-1) != base
    return rows


def joint_changes(problem, x_indices, step_scale, coefficients=None):
    """One-sided changes of g when the given elements move together by their steps.

    Returns ``(up, down, steps)``: ``g(x + s) - g(x)``, ``g(x) - g(x - s)`` and the steps
    actually taken (``s`` is each element's step, the same sign for all; with
    ``coefficients``, one step for all, scaled by the largest |x| when steps are relative,
    times each element's coefficient: a direction of its own).
    """
    x_flat = problem.x.reshape(-1)
    values = x_flat[x_indices]
    magnitudes = np.abs(values.astype(np.float64))
    if coefficients is None:
        h = step_scale * (np.maximum(1.0, magnitudes) if problem.relative
                          else np.ones(values.size))
    else:
        scale = max(1.0, float(magnitudes.max(initial=0.0))) if problem.relative else 1.0
        h = step_scale * scale * np.asarray(coefficients, np.float64)
    plus = (values + h.astype(x_flat.dtype)).astype(x_flat.dtype)
    minus = (values - h.astype(x_flat.dtype)).astype(x_flat.dtype)
    up_steps = plus.astype(np.float64) - values
    down_steps = values - minus.astype(np.float64)
    found = changes(problem, [lambda: (x_indices, up_steps), lambda: (x_indices, -down_steps)],
                    f"with {len(x_indices)} kink element(s) moved together")
    return found[0], -found[1], (up_steps + down_steps) / 2


class StructureLook(Look):
    """Re-differences elements through an elementwise structure's own kernel."""

    cap = STRUCTURE_CAP
    coarse_cap = STRUCTURE_CAP

    def __init__(self, structure, x, dLdf, relative, elements=None):
        self.structure = structure
        self.x = x
        self.dLdf = dLdf
        self.relative = relative
        magnitude = structure.magnitude(x, dLdf, structure.evaluate(x))
        self.magnitude = np.broadcast_to(magnitude, x.shape).reshape(-1)
        self.elements = None if elements is None else np.asarray(elements, dtype=np.intp)

    def _x_index(self, flat_indices):
        return flat_indices if self.elements is None else self.elements[flat_indices]

    def noise(self, flat_indices, step_scale):
        index = self._x_index(flat_indices)
        values = np.abs(self.x.reshape(-1)[index].astype(np.float64))
        steps = step_scale * (np.maximum(1.0, values) if self.relative else 1.0)
        return noise_floor(self.magnitude[index], steps, self.x.dtype)

    def differences(self, flat_indices, step_scale):
        central, gap = self.structure.subset_differences(
            self.x, self.dLdf, self._x_index(flat_indices), step_scale, self.relative)
        return np.asarray(central, np.float64), np.asarray(gap, np.float64)
