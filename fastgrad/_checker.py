"""``check_gradients``: validate, choose a method, difference, compare."""

import time

import numpy as np

from . import _tolerances, _verdict, methods
from ._result import GradCheckResult, relative_error, summarize
from ._threads import threads_for
from ._tolerances import NOISE_SIGMAS, NONDETERMINISM_ULPS, SWAMPED_FRACTION
from ._validation import as_float_array, check_positive, check_step
from ._verdict import Criteria, Measured, decide, judge
from .methods import Differences
from .methods._looks import BlackBoxLook, StructureLook

#: Default memory budget of the exhaustive method's stacks.
DEFAULT_MEMORY_BUDGET = 256 * 2**20
#: Largest x that gets fourth-order differences by default (they cost twice the evaluations).
FOURTH_ORDER_MAX_ELEMENTS = 2**20


def check_gradients(fn, grad, x, dLdf=1.0, h=None, *, method="auto", rtol=None, atol=None,
                    memory_budget=None, progress=None, seed=None, order=None, directions=4,
                    time_budget_s=None, work_budget=None, executor=None, sparsity=None,
                    noise=None):
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
        complete method with the least work within ``work_budget``, else directional (and
        when directional is inconclusive, a complete method within 16x the budget); the
        result says what it chose and why. The choice depends on counts only, never on how
        busy the machine is.
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
    time_budget_s : float, optional
        An explicit wall-clock budget for ``"auto"``: complete methods are then estimated from
        the measured time of one call of fn (so the choice may depend on machine load).
    work_budget : float, optional
        ``"auto"``'s default budget in element-evaluations (evaluations of fn times the
        elements of x and fn(x)); default ``fastgrad._tolerances.WORK_BUDGET`` (2**34, about
        15-20 s of NumPy work on a 2-core machine).
    executor : concurrent.futures.Executor, optional
        Receives chunks of the colored method's work (a process pool, or a Dask client's
        ``get_executor()``); fn must then be picklable.
    sparsity : sequence of (int, int), optional
        The colored method's pairs (input axis, output axis), instead of detecting them.
    noise : float or array_like, optional
        For a deliberately noisy fn: the standard deviation of its outputs (a scalar or
        broadcastable to fn(x)). fastgrad then accepts that two calls at x differ, and every
        element's tolerance includes the noise that carries into its differences. Without it,
        a function whose two calls at x differ (dropout drawing a new mask) is refused.
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
        ``fn`` returning another shape when perturbed, an unknown method, ``fn`` writing into
        its argument, ``fn`` answering differently in two calls at x, an ``h`` below what
        the dtype can resolve.
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
    as wrong for the differences' own rounding.

    The verdict follows one set of rules (``fastgrad._verdict``): each element is allowed
    ``rtol |a_i| + atol T_i`` plus the rounding floor of its difference, with ``T_i`` the
    magnitude of the terms that form it. An element outside that gets a second look at
    steps 10, 100 and 10**4 times smaller (always two steps, also with an explicit ``h``):
    where the function is smooth within the step it is judged there; where the slope jumps
    within the step (a ReLU at 0) it is excused only if its analytic value is a one-sided
    derivative or their mean; otherwise the result is inconclusive.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import check_gradients
    >>> from fastgrad.activations import TanH
    >>> X = np.linspace(-2, 2, 6).reshape(2, 3)
    >>> dLdY = np.ones((2, 3))
    >>> result = check_gradients(TanH().forward, TanH().backward(X, dLdY), X, dLdY)
    >>> result.verdict, result.method
    ('passed', 'structured')
    >>> result < 1e-8
    True
    """
    started = time.perf_counter()
    directions = int(check_positive(directions, "directions", integer=True))
    if time_budget_s is not None:
        time_budget_s = float(check_positive(time_budget_s, "time_budget_s"))
    work_budget = _tolerances.WORK_BUDGET if work_budget is None else float(
        check_positive(work_budget, "work_budget"))
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError("executor: expected a concurrent.futures.Executor (with submit), got "
                        f"{type(executor).__name__}")
    # fastgrad never writes into x, but fn may (a wrapper that sets layer.W[...] = v, with x
    # that very layer.W): x is put back as it was, whatever the verdict or error
    entry = x.copy() if isinstance(x, np.ndarray) and x.dtype.kind == "f" and \
        x.flags.writeable else None
    try:
        with threads_for(_size(x)):
            return _check(started, fn, grad, x, dLdf, h, method, rtol, atol, memory_budget,
                          progress, seed, order,
                          {"n_directions": directions, "time_budget_s": time_budget_s,
                           "work_budget": work_budget, "noise": noise,
                           "executor": executor, "sparsity": _sparsity(sparsity, x)})
    finally:
        if entry is not None and not np.array_equal(x, entry, equal_nan=True):
            np.copyto(x, entry)


def _size(x):
    """x's size for the thread choice, 0 for what NumPy cannot convert (a ragged list: the
    validation of x then says so)."""
    try:
        return int(np.size(x))
    except (TypeError, ValueError):
        return 0


def _sparsity(sparsity, x):
    if sparsity is None:
        return None
    try:
        ndim = np.ndim(x)
    except (TypeError, ValueError):  # the validation of x says why
        ndim = 64
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
    declared = settings.get("noise")
    result = _checked(started, fn, grad, x, dLdf, h, method, rtol, atol, memory_budget,
                      progress, seed, order, settings)
    if declared is not None and result.verdict == _verdict.INCONCLUSIVE_VERDICT:
        # (the floors that left elements unresolved hold the caller's own noise: say so,
        # rather than leave the generic hints -- a constant, a float32 computation -- alone)
        level = np.asarray(declared, dtype=np.float64)
        level = f"{float(level):.3g}" if level.ndim == 0 else \
            f"an array, at most {float(level.max(initial=0.0)):.3g}"
        result.__dict__["verdict_reason"] += (
            f"; the declared noise (noise={level}) is in every floor: a "
            "difference resolves the gradient through it only where noise / h is well below "
            "rtol |gradient| (give a larger h or rtol, or lower the noise)")
    return result


def _checked(started, fn, grad, x, dLdf, h, method, rtol, atol, memory_budget, progress, seed,
             order, settings):
    noise = settings.pop("noise")
    problem, analytic, grad_dtype = _validate(fn, grad, x, dLdf, h, method, rtol, atol,
                                              memory_budget, progress, seed, order, noise)
    eval_dtype = problem.x.dtype
    table = _tolerances.tolerance(grad_dtype, eval_dtype)
    problem.rtol_from_table = rtol is None
    problem.atol_from_table = atol is None
    rtol = table.rtol if rtol is None else rtol
    atol_relative = atol is None
    atol = table.atol if atol is None else atol
    for key, value in settings.items():
        setattr(problem, key, value)
    problem.rtol = rtol
    problem.grad = np.asarray(analytic, dtype=np.float64)
    problem.grad_dtype = np.dtype(grad_dtype)
    problem.criteria = Criteria(rtol=float(rtol), atol=float(atol), atol_relative=atol_relative,
                                grad_dtype=np.dtype(grad_dtype), eval_dtype=eval_dtype,
                                step_scale=problem.step_scale, relative=problem.relative)
    common = {"analytic": analytic, "dtype": np.dtype(grad_dtype), "eval_dtype": eval_dtype,
              "step": problem.step_scale, "step_relative": problem.relative,
              "order": problem.order, "n_checked": problem.x.size, "rtol": float(rtol),
              "atol": float(atol), "atol_relative": atol_relative}
    if problem.x.size == 0:
        return _judged_result(problem, Differences(np.zeros(problem.x.shape), None,
                                                   "x is empty: nothing to check",
                                                   noise=np.zeros(problem.x.shape)),
                              "none", "x is empty", common, started, look=None)
    chosen, why = methods.select(method, problem)
    differences = chosen.run(problem)
    _answers_as_before(problem, noise)
    if differences.partial is None:
        return _judged_result(problem, differences, chosen.name, why, common, started,
                              look=_look(problem, chosen, differences))
    result = _partial_result(problem, differences, why, chosen, common, started)
    if method == "auto" and result.verdict == _verdict.INCONCLUSIVE_VERDICT:
        fallback, why_not = methods.complete_fallback(problem, exclude=(chosen.name,))
        if fallback is None:
            result.__dict__["verdict_reason"] += f"; no complete method within 16x the " \
                                                 f"work budget ({why_not})"
            return result
        note = (f"auto: {chosen.name} was inconclusive ({result.verdict_reason}); fell back "
                f"to {fallback.name}, which differences every element")
        differences = fallback.run(problem)
        _answers_as_before(problem, noise)
        return _judged_result(problem, differences, fallback.name, note, common, started,
                              look=_look(problem, fallback, differences))
    return result


#: The largest |fn(x) * dLdf| (and |x|) fastgrad differences: its rounding floors square
#: these values, which must not overflow (2**500 ~ 3e150).
LARGEST_MAGNITUDE = 2.0**500


def _check_magnitudes(problem):
    """Refuse outputs (times dLdf) and points whose squares would overflow the floors."""
    weighted = float(np.max(np.abs(np.asarray(problem.f0, np.float64)
                                   * np.asarray(problem.dLdf, np.float64)), initial=0.0))
    largest_x = float(np.max(np.abs(problem.x.astype(np.float64)), initial=0.0))
    for name, value in (("fn(x) * dLdf", weighted), ("x", largest_x)):
        if value > LARGEST_MAGNITUDE:
            raise ValueError(
                f"{name}: reaches {value:.3g}, beyond the {LARGEST_MAGNITUDE:.3g} fastgrad can "
                "difference (its rounding floors square these values): rescale fn's outputs, "
                "dLdf or x by a constant and the gradient with them")


def _answers_as_before(problem, noise):
    """fn at x after the differences must still answer as it did at first: a function whose
    state changes during the check (a mask redrawn for a new input shape, a call counter)
    would otherwise pass its changes off as rounding or as the gradient."""
    _check_deterministic(problem, noise, where=f"a call after {problem.n_evaluations} evaluations",
                         first_call=False)


def _look(problem, chosen, differences):
    """How failing elements get their second look: through an elementwise structure's own
    kernel, else through fn."""
    if differences.look is not None:
        return differences.look
    structure = problem.structure if chosen.name == "structured" else None
    if structure is not None and structure.elementwise:
        return StructureLook(structure, problem.x, problem.dLdf, problem.relative)
    if differences.rounding is None:
        return BlackBoxLook(problem, methods.exhaustive_magnitude(problem))
    return BlackBoxLook(problem, np.asarray(differences.rounding, np.float64).reshape(-1)
                        if np.ndim(differences.rounding) else differences.rounding)


def _judged_result(problem, differences, method_name, why, common, started, look):
    """Judge every element of a complete method's differences; build the result."""
    shape = problem.x.shape
    measured = Measured(central=np.asarray(differences.numerical, np.float64).reshape(-1),
                        noise=np.asarray(differences.noise, np.float64).reshape(-1),
                        terms=None if differences.terms is None else
                        np.asarray(differences.terms, np.float64).reshape(-1),
                        kink=None if problem.order == 2 or differences.gap is None else
                        np.asarray(differences.gap, np.float64).reshape(-1),
                        upstream=differences.upstream, reach=differences.reach,
                        count=differences.count)
    judgement = judge(measured, problem.grad.reshape(-1), problem.criteria,
                      problem.x.reshape(-1), look)
    if method_name != "structured":  # (fastgrad's own functions carry no hidden constant)
        _verdict.swamped(judgement, problem.grad.reshape(-1))
    verdict, reason = decide(judgement)
    fields = summarize(judgement, problem.grad, shape, verdict=verdict, verdict_reason=reason)
    value = fields.pop("value")
    notes = "; ".join([why, differences.note, *problem.notes, *judgement.notes])
    return GradCheckResult(value, numerical=judgement.numerical.reshape(shape),
                           gap=differences.gap, noise=judgement.noise.reshape(shape),
                           tolerance=judgement.allowed.reshape(shape), method=method_name,
                           method_note=notes, n_evaluations=problem.n_evaluations,
                           elapsed_s=time.perf_counter() - started, **fields, **common)


def _validate(fn, grad, x, dLdf, h, method, rtol, atol, memory_budget, progress, seed, order,
              noise):
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    x = as_float_array(x, "x", finite=True, copy=True)
    # (copies: fn may write into a buffer the caller passed as grad or dLdf, zero_grad()
    # style, and the check would then judge what fn left there)
    grad = as_float_array(grad, "grad", finite=True, copy=True)
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
    dLdf = as_float_array(dLdf, "dLdf", allow_int=True, finite=True, copy=True)

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
    if eval_x.itemsize < grad_dtype.itemsize:  # fn computes in a narrower dtype
        grad_dtype = eval_x.dtype
    problem.x = eval_x
    problem.f0 = f0
    problem.step_scale = h if h is not None else _tolerances.step_scale(eval_x.dtype)
    if not np.isfinite(f0).all():
        bad = np.argwhere(~np.isfinite(f0))
        where = tuple(int(i) for i in bad[0]) if bad.size else ()
        raise ValueError(f"fn(x): returned {max(len(bad), 1)} NaN or infinite value(s) at the "
                         f"unperturbed x, the first at output index {where}")
    problem.dLdf = _broadcast_dLdf(dLdf, f0, eval_x.dtype)
    _check_magnitudes(problem)
    _check_deterministic(problem, noise)
    if h is not None:
        _check_step(h, eval_x)
    return problem, grad, grad_dtype


def _declared_noise(noise, f0):
    """The caller's ``noise=``: finite, non-negative, broadcastable to fn(x)."""
    level = as_float_array(noise, "noise", allow_int=True, finite=True)
    if np.any(level < 0):
        raise ValueError(f"noise: expected standard deviations >= 0, got a minimum of "
                         f"{float(level.min()):g}")
    try:
        return np.broadcast_to(level.astype(np.float64), f0.shape)
    except ValueError:
        raise ValueError(f"noise: expected a float or an array broadcastable to fn(x)'s shape "
                         f"{f0.shape}, got shape {level.shape}") from None


def _check_deterministic(problem, noise, where="a second call", first_call=True):
    """Call fn once more at x: a function that answers differently cannot be differenced
    (unless the caller declares its noise, which then joins every tolerance)."""
    f0 = np.asarray(problem.f0, dtype=np.float64)
    if noise is not None:
        if first_call:
            level = _declared_noise(noise, f0)
            weights = np.asarray(problem.dLdf, np.float64)
            problem.declared_noise = ((NOISE_SIGMAS * level * weights) ** 2).reshape(-1)
        return
    again = _output(problem.call(problem.x.copy(), f"at the unperturbed x ({where})"),
                    "fn(x)")
    if again.shape != f0.shape:
        raise ValueError(f"fn: returned shape {again.shape} {where}, {f0.shape} in the first")
    difference = np.abs(again.astype(np.float64) - f0)
    scale = float(np.max(np.abs(f0), initial=0.0))
    allowed = NONDETERMINISM_ULPS * np.finfo(problem.x.dtype).eps * max(scale, 1e-300)
    if not np.all(difference <= allowed):
        worst = float(np.max(difference))
        raise ValueError(
            f"fn: is not deterministic: at the same x, {where} differs from the first call by "
            f"up to {worst:.3g} "
            f"(relative to max |fn(x)| = {scale:.3g}: {worst / max(scale, 1e-300):.3g}); "
            "fastgrad cannot difference a function that draws new random numbers at every "
            "call. Fix the random state or the mask inside fn (for dropout, draw the mask "
            "once, outside fn), or pass noise=<standard deviation of fn's outputs> to check a "
            "deliberately noisy function with that noise in every tolerance")


def _check_step(h, x):
    """An explicit step must be one that differences x (see ``check_step``)."""
    check_step(h, "h", x.dtype, max(1.0, float(np.max(np.abs(x)))),
               "use h=None for the default step")


def _partial_result(problem, differences, why, chosen, common, started):
    """A result for a method that checked directions and judged the elements it located."""
    partial = differences.partial
    located = partial.located
    judgement = partial.judgement
    blockers = list(partial.blockers)
    scale = max(float(np.max(np.abs(partial.analytic), initial=0.0)),
                float(np.max(np.abs(partial.numerical[np.isfinite(partial.numerical)]),
                             initial=0.0)))
    # (the rounding floor alone: a large rtol or atol of the caller's makes the tolerance
    # large, not the differences unable to confirm anything)
    swamped = scale > 0 and np.min(partial.noise, initial=np.inf) > SWAMPED_FRACTION * scale
    if swamped and not np.any(problem.grad):
        blockers.append(_verdict.zero_gradient_note(scale, "direction's difference"))
    elif swamped:
        blockers.append("the rounding (or declared noise) of fn's outputs makes every "
                        "direction's tolerance comparable to its directional derivative: the "
                        "differences cannot confirm the gradient (a large constant in fn's "
                        "output? subtract it; or give a larger h)")
    verdict, reason = decide(judgement, blockers)
    fields = summarize(judgement, problem.grad.reshape(-1)[located], problem.x.shape,
                       verdict=verdict, verdict_reason=reason,
                       element=lambda position: problem.element(located[position]))
    located_value = fields.pop("value")
    notes = "; ".join([why, differences.note, *problem.notes, *judgement.notes])
    # the directions agree once located elements are taken out of them: the float also
    # counts the located elements' own disagreement (a failed check must not read 1e-12)
    value = max(relative_error(partial.numerical, partial.analytic),
                located_value if np.isfinite(located_value) else 0.0)
    return GradCheckResult(
        value, numerical=None, gap=None,
        noise=None, tolerance=None, method=chosen.name, method_note=notes,
        n_evaluations=problem.n_evaluations, elapsed_s=time.perf_counter() - started,
        directional_numerical=partial.numerical, directional_analytic=partial.analytic,
        directional_tolerance=partial.tolerance, **fields, **common)


def _indices(flat, shape):
    """Rows of index tuples (``np.argwhere`` form) of flat element numbers."""
    if flat.size == 0:
        return np.zeros((0, len(shape)), dtype=np.intp)
    return np.stack(np.unravel_index(flat, shape), axis=-1)


def _output(value, what):
    out = np.asarray(value)
    if out.dtype.kind == "b":  # (bool - bool does not subtract: differences need numbers)
        raise TypeError(f"{what}: returned a boolean array; a gradient check needs real-valued "
                        "outputs (a comparison such as v > 0 is piecewise constant: return "
                        "the float quantity it thresholds, or cast with .astype(float))")
    if out.dtype.kind in "iu":
        out = out.astype(np.float64)
    if out.dtype.kind != "f":
        raise TypeError(f"{what}: expected a real float array or scalar, got dtype {out.dtype}")
    return out


def _promote(problem, x, f0):
    """Take differences in float64 when x is float32 and fn accepts float64 input; in float32
    when x is float64 but fn computes in float32 (its outputs carry float32 rounding, and
    float64 steps below it would round away)."""
    if x.dtype == np.float64:
        if f0.dtype != np.float32:
            return _unless_float32_inside(problem, x, f0)
        x32 = x.astype(np.float32)
        if not np.all(np.isfinite(x32)):
            return x, f0
        f32 = problem.call(x32.copy(), "at x in float32")
        if f32.dtype != np.float32 or f32.shape != f0.shape:
            return x, f0
        problem.notes.append("fn computes in float32: differences in float32, and the "
                             "gradient is judged at float32's tolerances")
        return x32, f32
    x64 = x.astype(np.float64)
    try:
        f64 = problem.call(x64.copy(), "at x in float64")
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
    return _unless_float32_inside(problem, x64, f64, x32=x, f32=f0)


#: Moves (relative to |x|) below half a float32 ulp (at least 2**-25 |x|), and of many float32
#: ulps: the probe of a function that rounds its argument to float32 inside. (Moving every
#: element at once, the small move changes a float64 function's output unless a constant
#: beyond ~1e8 times its terms swamps it, and then every difference is swamped anyway.)
BELOW_FLOAT32 = 2.0**-26
ABOVE_FLOAT32 = 2.0**-16
PROBE_SEED = 20261203
#: How many of an output's ulps the small move must be expected to change it by (from the
#: large move's change, scaled down) for an unchanged output to count as evidence
SEEN_ULPS = 4.0


def _unless_float32_inside(problem, x64, f64, x32=None, f32=None):
    """``(x64, f64)``, or float32 ones when fn rounds its float64 argument to float32 inside
    and returns float64 (``float(model(v.astype(np.float32)))``, ``.item()``): float64 steps
    below a float32 ulp would leave its output exactly unchanged and every difference 0.

    Evidence, not the output's dtype: at x rounded to float32, a move below half a float32
    ulp leaves every output bitwise unchanged while a move of many ulps changes some.
    fastgrad's own functions compute in their input's dtype and are not probed.
    """
    module = getattr(problem.fn, "__module__", "") or ""
    if module.startswith("fastgrad.") or x64.size == 0:
        return x64, f64
    rounded = x64.astype(np.float32)
    if not np.all(np.isfinite(rounded)):
        return x64, f64
    at = rounded.astype(np.float64)
    # (nonzero elements only: at 0 float32 resolves any move, subnormals included)
    scale = np.abs(at)
    if not np.any(scale > 0):
        return x64, f64
    # (random signs and sizes: a move of every element by the same amount can be one fn
    # ignores, a constant added to every logit of a softmax; equal relative moves change
    # every log(p) by the same amount, and three up with three down cancel exactly)
    # (a generator of its own: the probe leaves the check's random stream, and with it the
    # directions and probes a seed gives, as they were)
    own = np.random.default_rng(PROBE_SEED)
    signs = np.where(own.random(at.shape) < 0.5, -1.0, 1.0) * (scale > 0) * \
        own.uniform(0.5, 1.0, at.shape)
    # (fn raising here is reported as at any probe that moves every element: with the one
    # element whose move alone makes it raise)
    base = f64 if np.array_equal(at, x64) else problem.call(at.copy(), "at x in float32 values")
    below = problem.call(at + signs * BELOW_FLOAT32 * scale, "probing float32 rounding in fn")
    if np.shape(below) != np.shape(base) or not np.array_equal(below, base):
        return x64, f64
    above = problem.call(at + signs * ABOVE_FLOAT32 * scale, "probing float32 rounding in fn")
    if np.shape(above) != np.shape(base) or np.array_equal(above, base):
        return x64, f64  # (flat at x: no evidence either way)
    # An unchanged output is evidence only where the small move, scaled down from the large
    # one's change, should have changed it by several of the output's ulps: a float64 fn
    # whose terms a large constant swamps (1e9 + a loss) leaves it unchanged too
    with np.errstate(invalid="ignore", over="ignore"):
        expected = np.abs(np.asarray(above) - base) * (BELOW_FLOAT32 / ABOVE_FLOAT32)
        if not np.any(expected > SEEN_ULPS * np.spacing(np.abs(base))):
            return x64, f64
    problem.notes.append("fn rounds its argument to float32 (a move below half a float32 ulp "
                         "leaves every output unchanged): differences in float32, and the "
                         "gradient is judged at float32's tolerances")
    if x32 is None:
        x32, f32 = rounded, _output(problem.call(rounded.copy(), "at x in float32"), "fn(x)")
    return x32, f32


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


