"""``check_gradients``: validate, choose a method, difference, compare."""

import time

import numpy as np

from . import _tolerances, methods
from ._refine import refine_failures
from ._result import (
    GradCheckResult,
    WorstElement,
    compare,
    on_kink_note,
    relative_error,
    resolution,
)
from ._threads import threads_for
from ._validation import as_float_array, check_positive
from .methods.structured import find_structure

#: Default memory budget of the exhaustive method's stacks.
DEFAULT_MEMORY_BUDGET = 256 * 2**20
#: Largest x that gets fourth-order differences by default (they cost twice the evaluations).
FOURTH_ORDER_MAX_ELEMENTS = 2**20


def check_gradients(fn, grad, x, dLdf=1.0, h=None, *, method="auto", rtol=None, atol=None,
                    memory_budget=None, progress=None, seed=None, order=None, directions=4,
                    time_budget_s=30.0, executor=None, sparsity=None):
    """Check an analytic gradient against central finite differences, element by element.

    The numerical gradient is that of the scalar ``sum(fn(x) * dLdf)`` with respect to each
    element of ``x``::

        numerical[i] = sum((fn(x + h_i e_i) - fn(x - h_i e_i)) * dLdf) / (2 h_i)

    Parameters
    ----------
    fn : callable
        ``fn(x)`` returns an array (or a scalar). It must compute from its argument.
    grad : array_like of float
        The analytic gradient to check, same shape as ``x``.
    x : array_like of float
        The point at which to check; never modified.
    dLdf : float or array_like
        Weights of ``fn``'s outputs, broadcastable to ``fn(x)`` (the upstream gradient).
    h : float, optional
        A fixed step. By default each element gets ``eps**(1/3) * max(1, |x_i|)`` for the
        dtype the differences are taken in; an explicit ``h`` is used exactly, with the
        classic second-order formula above unless ``order=4`` is asked for.
    method : {"auto", "structured", "exhaustive", "colored", "directional"}
        ``"structured"`` differences fastgrad's own functions with dedicated kernels;
        ``"exhaustive"`` differences a black-box ``fn`` element by element; ``"colored"``
        differences groups of elements that touch disjoint outputs (sparse Jacobians, such as a
        dense layer's weights) and verifies the result; ``"directional"`` compares a few random
        directional derivatives and bisects a disagreeing one down to the wrong elements
        (``numerical`` is then None). ``"auto"`` takes structured when it applies, else the
        cheapest complete method whose estimated time (from the measured cost of one call of
        fn) fits ``time_budget_s``, else directional; the result says what it chose and why.
    rtol, atol : float, optional
        Element ``i`` passes when ``|num_i - ana_i| <= atol + rtol * |ana_i|``. By default
        both come from the per-dtype table in ``fastgrad._tolerances`` (``atol`` there is
        relative to the largest gradient magnitude); a given ``atol`` is absolute.
    memory_budget : int, optional
        Bytes the exhaustive method may use for stacked perturbations (default 256 MiB).
    progress : bool, optional
        Show a progress bar: ``None`` (default) shows one for checks that run longer than
        about two seconds, ``False`` never, ``True`` always.
    seed : int, optional
        Seed of the random choices (structure verification point, stacking probe).
    directions : int
        Random directions of the directional method.
    time_budget_s : float
        Seconds ``"auto"`` allows a complete method before it settles for directional.
    executor : concurrent.futures.Executor, optional
        Receives chunks of the colored method's work (a process pool, or a Dask client's
        ``get_executor()``); fn must then be picklable.
    sparsity : sequence of (int, int), optional
        The colored method's pairs (input axis, output axis), instead of detecting them.
    order : {None, 2, 4}
        2: central differences at step h. 4: Richardson extrapolation
        ``D(h/2) + (D(h/2) - D(h)) / 3``, which cancels the ``h^2`` truncation term at twice
        the evaluations. ``None`` (default): 4 when ``h`` is not given and ``x`` has at most
        2**20 elements, else 2.

    Returns
    -------
    GradCheckResult
        A float equal to ``norm(numerical - grad) / norm(numerical + grad)``, with the
        element-by-element findings as attributes (``passed``, ``worst``, ``numerical``, ...).

    Raises
    ------
    TypeError
        ``fn`` not callable; ``x`` or ``grad`` not a float32/float64 array.
    ValueError
        Shapes that do not match, NaN or inf in ``x``, ``grad``, ``dLdf`` or ``fn(x)``,
        ``fn`` returning another shape when perturbed, an unknown method.
    Exception
        Whatever ``fn`` raises, with a note naming the element being perturbed.

    Notes
    -----
    Central differences have truncation error ``h^2 |g'''| / 6`` and rounding error
    ``eps |g| / h``, balanced near ``h = eps^(1/3)``. Where ``g`` varies on a scale smaller
    than 1 (a cross-entropy at predictions near 0.01) the ``h^2`` term dominates; the default
    fourth-order extrapolation removes it. The steps actually taken are
    ``(x + h) - x`` and ``x - (x - h)`` in floating point. Float32 inputs are differenced in
    float64 when ``fn`` accepts float64 input, so a correct float32 gradient is not reported
    as wrong for the differences' own rounding. Where an element lies within one step of a
    kink (ReLU at 0), the one-sided differences disagree; if the analytic value lies between
    them the element is reported in ``kinks``, not as a failure.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import check_gradients
    >>> from fastgrad.activations import TanH
    >>> X = np.linspace(-2, 2, 6).reshape(2, 3)
    >>> dLdY = np.ones((2, 3))
    >>> result = check_gradients(TanH().forward, TanH().backward(X, dLdY), X, dLdY)
    >>> result.passed, result.method
    (True, 'structured')
    >>> result < 1e-8
    True
    """
    started = time.perf_counter()
    directions = int(check_positive(directions, "directions", integer=True))
    time_budget_s = float(check_positive(time_budget_s, "time_budget_s"))
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError("executor: expected a concurrent.futures.Executor (with submit), got "
                        f"{type(executor).__name__}")
    with threads_for(np.size(x)):
        return _check(started, fn, grad, x, dLdf, h, method, rtol, atol, memory_budget,
                      progress, seed, order,
                      {"n_directions": directions, "time_budget_s": time_budget_s,
                       "executor": executor, "sparsity": _sparsity(sparsity, np.ndim(x))})


def _sparsity(sparsity, ndim):
    if sparsity is None:
        return None
    try:
        pairs = tuple((int(a), int(b)) for a, b in sparsity)
    except (TypeError, ValueError):
        raise TypeError("sparsity: expected pairs (input axis, output axis), got "
                        f"{sparsity!r}") from None
    if not pairs or any(not 0 <= a < ndim for a, _ in pairs):
        raise ValueError(f"sparsity: expected pairs whose input axis is in [0, {ndim - 1}], "
                         f"got {sparsity!r}")
    return pairs


def _check(started, fn, grad, x, dLdf, h, method, rtol, atol, memory_budget, progress, seed,
           order, settings):
    problem, analytic, grad_dtype = _validate(fn, grad, x, dLdf, h, method, rtol, atol,
                                              memory_budget, progress, seed, order)
    eval_dtype = problem.x.dtype
    table = _tolerances.tolerance(grad_dtype, eval_dtype)
    rtol = table.rtol if rtol is None else rtol
    scaled_atol = atol is None
    atol = table.atol if atol is None else atol
    for key, value in settings.items():
        setattr(problem, key, value)
    problem.rtol = rtol
    problem.grad = np.asarray(analytic, dtype=np.float64)
    problem.grad_dtype = np.dtype(grad_dtype)
    common = {"analytic": analytic, "dtype": np.dtype(grad_dtype), "eval_dtype": eval_dtype,
              "step": problem.step_scale, "step_relative": problem.relative,
              "order": problem.order,
              "n_checked": problem.x.size}
    if problem.x.size == 0:
        fields = compare(np.zeros(0), None, np.zeros(0), rtol=rtol, atol=atol,
                         scaled_atol=scaled_atol)
        fields.pop("smooth")
        fields.pop("failing")
        return GradCheckResult(0.0, numerical=np.zeros(problem.x.shape), gap=None, noise=None,
                               refined=np.zeros((0, problem.x.ndim), dtype=np.intp),
                               method="none",
                               method_note="x is empty: nothing to check",
                               n_evaluations=problem.n_evaluations,
                               elapsed_s=time.perf_counter() - started,
                               **{k: v for k, v in fields.items() if k != "value"}, **common)
    chosen, why = methods.select(method, problem)
    differences = chosen.run(problem)
    tolerance_args = {"rtol": rtol, "atol": atol, "scaled_atol": scaled_atol,
                      "noise": _floors(differences, grad_dtype)}
    if differences.partial is not None:
        return _partial_result(problem, differences, analytic, why, chosen, tolerance_args,
                               common, started)
    fields = compare(differences.numerical, differences.gap, analytic, **tolerance_args)
    refined = np.zeros(0, dtype=np.intp)
    if not fields["passed"] and len(fields["nan_elements"]) == 0:
        def failing():
            tolerance_args["noise"] = _floors(differences, grad_dtype)
            return compare(differences.numerical, differences.gap, analytic,
                           **tolerance_args)["failing"]

        refined, at_kink = refine_failures(
            lambda value: problem.call(value, "(refining)"), problem.x, problem.dLdf,
            differences.numerical, differences.gap, failing, problem.step_scale,
            problem.relative, noise=differences.noise,
            resolution=resolution(analytic, rtol=rtol, atol=atol, scaled_atol=scaled_atol),
            structure=problem.structure if chosen.name == "structured" else None,
            order=problem.order)
        if refined.size or at_kink.size:
            tolerance_args["noise"] = _floors(differences, grad_dtype)
            fields = compare(differences.numerical, differences.gap, analytic,
                             at_kink=at_kink, **tolerance_args)
        if at_kink.size:
            problem.notes.append(on_kink_note(at_kink.size))
    value = fields.pop("value")
    fields.pop("smooth")
    fields.pop("failing")
    fields["refined"] = _indices(refined, problem.x.shape)
    notes = "; ".join([why, differences.note, *problem.notes])
    return GradCheckResult(value, numerical=differences.numerical, gap=differences.gap,
                           noise=tolerance_args["noise"],
                           method=chosen.name,
                           method_note=notes, n_evaluations=problem.n_evaluations,
                           elapsed_s=time.perf_counter() - started, **fields, **common)


def _validate(fn, grad, x, dLdf, h, method, rtol, atol, memory_budget, progress, seed, order):
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    x = as_float_array(x, "x", finite=True, copy=True)
    grad = as_float_array(grad, "grad", finite=True)
    if grad.shape != x.shape:
        raise ValueError(f"grad: expected shape {x.shape} (the shape of x), got {grad.shape}")
    if h is not None:
        h = float(check_positive(h, "h"))
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None:
            check_positive(value, name, allow_zero=True)
    if memory_budget is None:
        memory_budget = DEFAULT_MEMORY_BUDGET
    else:
        memory_budget = int(check_positive(memory_budget, "memory_budget", integer=True))
    if order is None:
        order = 4 if h is None and x.size <= FOURTH_ORDER_MAX_ELEMENTS else 2
    elif isinstance(order, bool) or order not in (2, 4):
        raise ValueError(f"order: expected None, 2 or 4, got {order!r}")
    if progress not in (None, True, False):
        raise TypeError(f"progress: expected None, True or False, got {progress!r}")
    if method != "auto" and method not in methods.names():
        raise ValueError(f"method: expected 'auto' or one of {methods.names()}, got {method!r}")
    grad_dtype = min(x.dtype, grad.dtype, key=lambda d: d.itemsize)
    dLdf = as_float_array(dLdf, "dLdf", allow_int=True, finite=True)

    problem = methods.Problem(fn=fn, x=x, f0=np.zeros(0), dLdf=dLdf, step_scale=0.0,
                              relative=h is None, order=int(order),
                              memory_budget=memory_budget,
                              progress=progress, seed=seed)
    if x.size == 0:
        problem.step_scale = h if h is not None else _tolerances.step_scale(x.dtype)
        return problem, grad, grad_dtype

    call_started = time.perf_counter()
    f0 = _output(problem.call(x.copy(), "at the unperturbed x"), "fn(x)")
    problem.call_seconds = time.perf_counter() - call_started
    eval_x, f0 = _promote(problem, x, f0)
    problem.x = eval_x
    problem.f0 = f0
    problem.step_scale = h if h is not None else _tolerances.step_scale(eval_x.dtype)
    if not np.isfinite(f0).all():
        bad = np.argwhere(~np.isfinite(f0))
        where = tuple(int(i) for i in bad[0]) if bad.size else ()
        raise ValueError(f"fn(x): returned {max(len(bad), 1)} NaN or infinite value(s) at the "
                         f"unperturbed x, the first at output index {where}")
    problem.dLdf = _broadcast_dLdf(dLdf, f0, eval_x.dtype)
    return problem, grad, grad_dtype


def _floors(differences, grad_dtype):
    """Per-element tolerance floors: the differences' rounding noise (which refinement
    updates, as it depends on the step) plus the analytic gradient's own rounding (which
    does not)."""
    if differences.noise is None:
        return None
    if differences.magnitude is None:
        return differences.noise
    magnitude = differences.magnitude
    if np.shape(magnitude) != differences.noise.shape:
        magnitude = np.broadcast_to(magnitude, differences.noise.shape)
    return differences.noise + methods.analytic_floor(magnitude, grad_dtype)


def _partial_result(problem, differences, analytic, why, chosen, tolerance_args, common,
                    started):
    """A result for a method that checked directions, not every element."""
    partial = differences.partial
    flat_analytic = np.asarray(analytic, dtype=np.float64).reshape(-1)
    scale = float(np.max(np.abs(flat_analytic), initial=0.0))
    located = partial.located
    atol = tolerance_args["atol"] * (scale if tolerance_args["scaled_atol"] else 1.0)

    def compared(at_kink=None):
        return compare(partial.values, partial.gaps, flat_analytic[located],
                       noise=partial.noise, rtol=tolerance_args["rtol"], atol=atol,
                       scaled_atol=False, at_kink=at_kink)

    fields = compared()
    refined = np.zeros(0, dtype=np.intp)
    note_on_kinks = None
    if not fields["passed"] and len(fields["nan_elements"]) == 0:
        # the same second look as for complete methods; through the element's own kernel
        # when fn has an elementwise structure (a scalar loss over many terms cannot
        # resolve one term at a smaller step)
        structure = problem.structure if find_structure(problem) is None else None
        coarse = partial.values.copy()
        refined, at_kink = refine_failures(
            lambda value: problem.call(value, "(refining)"), problem.x, problem.dLdf,
            partial.values, partial.gaps, lambda: compared()["failing"], problem.step_scale,
            problem.relative, noise=partial.noise,
            resolution=resolution(flat_analytic[located], rtol=tolerance_args["rtol"],
                                  atol=atol, scaled_atol=False),
            structure=structure, elements=located, order=problem.order)
        if refined.size or at_kink.size:
            fields = compared(np.flatnonzero(np.isin(located, at_kink)))
            # the directions' differences crossed the same kinks: report them with the
            # refined element values in place of the coarse ones
            partial.numerical = partial.numerical - partial.loadings @ (coarse - partial.values)
        if at_kink.size:
            note_on_kinks = on_kink_note(at_kink.size)
    worst = [WorstElement(index=problem.element(located[w.index[0]]), numerical=w.numerical,
                          analytic=w.analytic, abs_error=w.abs_error, tolerance=w.tolerance,
                          kink=w.kink) for w in fields["_worst"]()]
    directions_ok = (np.abs(partial.numerical - partial.analytic) <= partial.tolerance) | \
        partial.explained
    n_failed = fields["n_failed"]
    note = "; ".join([why, differences.note, *([note_on_kinks] if note_on_kinks else [])])
    if partial.capped and n_failed == 0 and not directions_ok.all():
        # every element the search reached sits at a kink: the remaining disagreement is not
        # evidence of a bug, and not evidence against one either
        note += (f"; {int((~directions_ok).sum())} direction(s) not resolved: the search "
                 "stopped at its limit of located elements, all within a step of a kink; use "
                 "the colored or exhaustive method to check every element")
        directions_ok[:] = True
    passed = bool(directions_ok.all()) and n_failed == 0
    if not directions_ok.all() and n_failed == 0:
        n_failed = int((~directions_ok).sum())  # wrong, but not pinned to an element
    kinks = np.array([problem.element(located[i[0]]) for i in fields["kinks"]],
                     dtype=np.intp).reshape(-1, problem.x.ndim)
    return GradCheckResult(
        relative_error(partial.numerical, partial.analytic), numerical=None, gap=None, noise=None,
        method=chosen.name, method_note=note,
        n_evaluations=problem.n_evaluations, elapsed_s=time.perf_counter() - started,
        max_abs_error=fields["max_abs_error"], max_rel_error=fields["max_rel_error"],
        _worst=worst, passed=passed, n_failed=n_failed, kinks=kinks,
        nan_elements=np.zeros((0, problem.x.ndim), dtype=np.intp),
        refined=_indices(refined, problem.x.shape),
        rtol=tolerance_args["rtol"],
        atol=fields["atol"], directional_numerical=partial.numerical,
        directional_analytic=partial.analytic, directional_tolerance=partial.tolerance,
        **common)


def _indices(flat, shape):
    """Rows of index tuples (``np.argwhere`` form) of flat element numbers."""
    if flat.size == 0:
        return np.zeros((0, len(shape)), dtype=np.intp)
    return np.stack(np.unravel_index(flat, shape), axis=-1)


def _output(value, what):
    out = np.asarray(value)
    if out.dtype.kind in "iub":
        out = out.astype(np.float64)
    if out.dtype.kind != "f":
        raise TypeError(f"{what}: expected a real float array or scalar, got dtype {out.dtype}")
    return out


def _promote(problem, x, f0):
    """Take differences in float64 when x is float32 and fn accepts float64 input."""
    if x.dtype == np.float64:
        return x, f0
    x64 = x.astype(np.float64)
    try:
        f64 = np.asarray(problem.fn(x64.copy()))
        problem.n_evaluations += 1
    except Exception:  # fn insists on float32: difference in float32
        problem.notes.append("fn rejects float64 input: differences in float32")
        return x, f0
    if f64.dtype != np.float64 or f64.shape != f0.shape:
        problem.notes.append("fn does not compute in float64: differences in float32")
        return x, f0
    tol = _tolerances.tolerance(np.float32, np.float32)
    scale = float(np.max(np.abs(f0), initial=0.0))
    if not np.allclose(f64, f0, rtol=tol.rtol, atol=tol.atol * scale):
        problem.notes.append("fn gives other values in float64: differences in float32")
        return x, f0
    return x64, f64


def _broadcast_dLdf(dLdf, f0, dtype):
    if f0.ndim == 0 and dLdf.size == 1:
        return dLdf.reshape(()).astype(dtype)
    if dLdf.shape == f0.shape:  # a read-only view, as broadcast_to would give
        view = np.ascontiguousarray(dLdf, dtype=dtype).view()
        view.flags.writeable = False
        return view
    try:
        full = np.broadcast_to(dLdf, f0.shape)
    except ValueError:
        raise ValueError(f"dLdf: shape {dLdf.shape} does not broadcast to the shape of fn(x), "
                         f"{f0.shape}") from None
    return np.ascontiguousarray(full, dtype=dtype)


