"""Methods of :func:`fastgrad.check_gradients`, one module each.

A method is an object with ``name``, ``priority``, ``unavailable(problem)`` (None when it can
run, else the reason it cannot) and ``run(problem)`` returning :class:`Differences`. Adding a
method is a new module that calls :func:`register`; ``method="auto"`` tries registered methods
from the highest priority down and records why it chose the one that ran.
"""

from dataclasses import dataclass, field

import numpy as np

from .. import _verdict
from .._tolerances import (
    FALLBACK_WORK_FACTOR,
    NOISE_SIGMAS,
    NOISE_ULPS,
    PLATEAU_FRACTION,
    PLATEAU_PROBES,
    ROUNDING_PROBES,
    WORK_BUDGET,
)
from .._validation import add_note as _add_note


@dataclass
class Problem:
    """Everything a method needs, validated: the base point is a private copy of ``x``."""

    fn: object
    x: np.ndarray
    f0: np.ndarray
    dLdf: np.ndarray
    step_scale: float
    relative: bool
    #: 2: central differences at h; 4: Richardson extrapolation from h and h/2.
    order: int
    memory_budget: int
    progress: object
    seed: object
    #: The analytic gradient (float64, like x): methods that search use it.
    grad: np.ndarray = None
    #: The dtype the analytic gradient was computed in.
    grad_dtype: object = np.dtype(np.float64)
    #: Default relative tolerance of the check (from the per-dtype table or the caller).
    rtol: float = 1e-6
    #: How elements are judged (set by the checker; methods that judge elements use it).
    criteria: object = None
    n_directions: int = 4
    #: An explicit wall-clock budget of "auto" (None: the count-based work budget decides).
    time_budget_s: float = None
    work_budget: float = WORK_BUDGET
    #: Seconds of one call of fn (measured at the base point).
    call_seconds: float = 0.0
    executor: object = None
    sparsity: object = None
    #: Whether fn evaluates stacks like single calls (None: not probed yet).
    stacks: object = None
    #: The colored method's (input axis, output axis) pairs, once detected.
    pairs: object = None
    #: The method the caller asked for ("auto" or a name).
    requested: str = "auto"
    n_evaluations: int = 0
    notes: list = field(default_factory=list)
    #: Set by the structured method once a structure is verified (or known: trusted).
    structure: object = None
    structure_trusted: bool = False
    _rng: np.random.Generator = None
    #: Per output: the squared rounding a difference can carry (see rounding_squares).
    _rounding: np.ndarray = None
    #: The squared rounding of the contracted sum(fn * dLdf) itself (see direction_rounding).
    _contracted: float = None
    #: Per output: squared noise of a deliberately noisy fn (check_gradients' noise=).
    declared_noise: np.ndarray = None

    @property
    def rng(self):
        """The random generator of the check's probes (made on first use: it costs ~20 us)."""
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def call(self, value, where):
        """Call ``fn(value)``; on an exception add a note saying where, and re-raise."""
        self.n_evaluations += 1
        # (a small argument is also compared after the call: a write through NumPy's read-only
        # flag, as ufunc.at makes, would otherwise pass unseen)
        before = np.array(value, copy=True) if np.size(value) <= VERIFY_WRITES_MAX else None
        try:
            output = self.fn(read_only(value))
        except Exception as error:
            if self._write_refused(value, error):
                raise ModifiedInput(MODIFIED_INPUT + (
                    " (Numba: a compiled fn that assigns into its argument does not compile "
                    "for a read-only array)" if type(error).__name__ == "TypingError" else
                    "")) from error
            _add_note(error, f"fastgrad: raised while evaluating fn {where}")
            blame = self._blame(value, error)
            if blame:
                _add_note(error, f"fastgrad: {blame}")
            raise
        if before is not None and not np.array_equal(before, value, equal_nan=True):
            if np.asarray(value).flags.writeable:  # fastgrad's buffer, restored at once
                value[...] = before
            raise ModifiedInput(MODIFIED_INPUT)
        if isinstance(output, np.ma.MaskedArray) and np.ma.is_masked(output):
            raise TypeError(f"fn: returned a masked array with masked entries {where}; "
                            "fastgrad differences sum(fn(x) * dLdf) over every output: return "
                            "np.ma.filled(out, 0) (masked entries count as 0) or the values "
                            "you mean")
        if isinstance(output, np.ndarray) and output.dtype == np.float16:
            raise TypeError(f"fn: returned float16 outputs {where}; their rounding (eps "
                            "~1e-3) is too coarse for finite differences: compute in float32 "
                            "or float64")
        if output is None or isinstance(output, tuple):
            what = "None" if output is None else f"a tuple of {len(output)}"
            raise TypeError(f"fn: returned {what} {where}; expected an array of outputs (a "
                            "function that returns (out, cache) must be wrapped: "
                            "lambda v: f(v)[0])")
        # fastgrad owns what it reasons about: fn may hand out one buffer at every call, or a
        # view of its argument, which fastgrad restores or perturbs again before reading it
        try:
            return np.array(output, copy=True)
        except (ValueError, TypeError) as error:
            raise TypeError(f"fn: returned a {type(output).__name__} that is not an array of "
                            f"numbers {where} ({error})") from None

    def _write_refused(self, value, error):
        """Whether fn raised because its argument is read-only (it writes into it): NumPy's
        and Numba's words for it, or, for any other ValueError or TypeError, the same call on
        a writeable copy succeeding (``sort``, ``shuffle`` and friends word it their own way)."""
        words = str(error)
        if isinstance(error, ValueError) and any(
                phrase in words for phrase in ("destination is read-only",
                                               "output array is read-only", "WRITEABLE flag")):
            return True
        if type(error).__name__ == "TypingError":
            return "readonly array" in words
        if not isinstance(error, (ValueError, TypeError)) or "read-only" not in words:
            return False
        trial = np.array(value, copy=True)
        self.n_evaluations += 1
        try:
            with np.errstate(all="ignore"):
                self.fn(trial)
        except Exception:
            return False
        # (a write shows in the copy; an error that only mentions "read-only" and does not
        # come back, a flaky cache, is fn's own and propagates)
        return not np.array_equal(trial, np.asarray(value), equal_nan=True)

    def _blame(self, value, error):
        """The single element whose move alone makes fn raise as it did at ``value`` (a
        probe that moves every element at once), found by halving; or None."""
        x = self.x
        value = np.asarray(value)
        if value.shape != x.shape:
            return None
        moved = np.flatnonzero(value.reshape(-1) != x.reshape(-1))
        if moved.size < 2:
            return None

        def raises(subset):
            # (in the probe's dtype: a float64 probe of float32 x moves elements by less than
            # a float32 ulp, which x's dtype would round away)
            trial = x.astype(np.result_type(x.dtype, value.dtype)).reshape(-1)
            trial[subset] = value.reshape(-1)[subset]
            self.n_evaluations += 1
            try:
                with np.errstate(all="ignore"):
                    self.fn(read_only(trial.reshape(x.shape)))
            except type(error):
                return True
            except Exception:
                return False
            return False

        suspects = moved
        for _ in range(2 * int(np.ceil(np.log2(moved.size))) + 2):
            if suspects.size == 1:
                break
            half = suspects[:suspects.size // 2]
            if raises(half):
                suspects = half
            elif raises(suspects[suspects.size // 2:]):
                suspects = suspects[suspects.size // 2:]
            elif not raises(moved):
                return ("fn did not raise again at the same point: it raises intermittently, "
                        "not as a function of its argument alone")
            else:
                return (f"no single half of the {moved.size} elements moved here makes fn "
                        "raise alone: it raises on their combination")
        if suspects.size != 1 or not raises(suspects):
            return None
        flat = int(suspects[0])
        return (f"fn raises when element {self.element(flat)} alone moves from "
                f"{float(x.reshape(-1)[flat])!r} to {float(value.reshape(-1)[flat])!r}")

    def work(self, n_evaluations):
        """Element-evaluations of ``n_evaluations`` calls: the count "auto" budgets."""
        return float(n_evaluations) * (self.x.size + max(self.f0.size, 1))

    def element(self, flat_index):
        """The index tuple of a flat element number (for messages)."""
        return tuple(int(i) for i in np.unravel_index(flat_index, self.x.shape))


noise_floor = _verdict.noise_floor


def exhaustive_magnitude(problem):
    """The rounding a perturbation of a black box may carry when it moves every output."""
    return float(np.sqrt(np.sum(rounding_squares(problem))))


def reachable_rounding(problem):
    """Per element (flat): the rounding over the outputs its perturbation *can* move.

    An output that should move by less than its ulp does not move at all, and that is exactly
    the error a difference makes there (a saturated softmax's dominant output): so the floor
    is taken over the outputs an element can reach, not over those that moved. Which outputs
    those are comes from the colored method's probe of the Jacobian's axis pattern (16 calls,
    once per check); without a pattern, every output.
    """
    if problem.pairs is None:
        from .colored import detect_pairs

        problem.pairs = detect_pairs(problem) or ()
    if problem.pairs:
        from .colored import _rounding

        return np.asarray(_rounding(problem, problem.pairs), np.float64).reshape(-1)
    return np.full(problem.x.size, exhaustive_magnitude(problem))


def reachable_upstream(problem):
    """Per element (flat): the largest ``|dLdf_k|`` over the outputs it can reach."""
    weights = np.abs(np.asarray(problem.dLdf, np.float64))
    if problem.pairs is None:
        reachable_rounding(problem)
    if problem.pairs:
        by_output = sorted(problem.pairs, key=lambda pair: pair[1])
        paired_out = {b for _, b in problem.pairs}
        other = tuple(axis for axis in range(weights.ndim) if axis not in paired_out)
        reduced = weights.max(axis=other) if other else weights
        index = np.indices(problem.x.shape)
        return np.asarray(reduced[tuple(index[a] for a, _ in by_output)],
                          np.float64).reshape(-1)
    return np.full(problem.x.size, float(weights.max(initial=0.0)))


def reachable_terms(problem, terms):
    """Per element (flat): the largest terms among the elements that share an output with it,
    and for an elementwise map also its upstream gradient (the rounding of ``f'(x_i)``
    times it); None for a single output, or where fn's axis structure is unknown (then every
    element's).

    The analytic value of an element is computed from quantities of the outputs it moves; a
    backward pass cannot leave a residue from terms of elements that share no output with it.
    """
    terms = np.abs(np.asarray(terms, np.float64)).reshape(problem.x.shape)
    terms = np.where(np.isfinite(terms), terms, 0.0)
    if np.size(problem.f0) == 1:
        # one output (a loss): every element shares it, and a backward pass through layers
        # rounds each element at the size of the terms it sums over, which differences of
        # one output cannot see: the largest element's
        return None
    if problem.pairs is None:
        reachable_rounding(problem)
    if not problem.pairs:
        return None
    paired_in = {a for a, _ in problem.pairs}
    other = tuple(axis for axis in range(terms.ndim) if axis not in paired_in)
    reach = np.broadcast_to(terms.max(axis=other, keepdims=True) if other else terms,
                            terms.shape).reshape(-1)
    if not other and len(problem.pairs) == np.ndim(problem.f0):
        reach = np.maximum(reach, reachable_upstream(problem))
    return np.asarray(reach, np.float64)


def rounding_squares(problem):
    """Per output (flat), the squared rounding ``fn(x)_k * dLdf_k`` can carry in a difference.

    The larger of the modelled ``NOISE_ULPS * eps * |f_k dLdf_k|`` and the measured
    ``NOISE_SIGMAS * sigma_k``: fn is evaluated at ``x +- delta`` for a few random ``delta``
    of a few ulps (exactly representable both ways), and ``f(x + delta) - 2 f(x) + f(x -
    delta)`` of each output, whose linear part cancels exactly, is its rounding. Measured once
    per check (2 * ROUNDING_PROBES evaluations), and at moves closer to the step (see
    :func:`_plateau_rounding`, 8 * PLATEAU_PROBES evaluations).
    """
    if problem._rounding is not None:
        return problem._rounding
    x = problem.x.reshape(-1)
    eps = float(np.finfo(x.dtype).eps)
    weights = problem.dLdf.reshape(-1).astype(np.float64)
    base = np.asarray(problem.f0, dtype=np.float64).reshape(-1)
    modelled = (NOISE_ULPS * eps * base * weights) ** 2
    magnitude = np.maximum(np.abs(x.astype(np.float64)), 1.0)
    size = (4 * eps * 2.0 ** np.ceil(np.log2(magnitude))).astype(x.dtype)
    squares = np.zeros(base.size)
    contracted = 0.0
    for _ in range(ROUNDING_PROBES):
        delta = np.where(problem.rng.random(x.size) < 0.5, -size, size).astype(x.dtype)
        plus, minus = x + delta, x - delta
        exact = ((plus - x) == delta) & ((x - minus) == delta)
        plus, minus = np.where(exact, plus, x), np.where(exact, minus, x)
        outputs = [np.asarray(problem.call(value.reshape(problem.x.shape),
                                           "(measuring its rounding at x)"), np.float64)
                   for value in (plus, minus)]
        wrong = [out.shape for out in outputs if out.shape != problem.f0.shape]
        if wrong:
            raise ValueError(f"fn: returned shape {wrong[0]} near x, expected "
                             f"{problem.f0.shape}")
        second = np.nan_to_num((outputs[0].reshape(-1) - 2 * base + outputs[1].reshape(-1))
                               * weights, nan=0.0, posinf=0.0, neginf=0.0)
        squares += second ** 2
        contracted += float(np.sum(second)) ** 2
    measured = (NOISE_SIGMAS ** 2) * squares / (6.0 * ROUNDING_PROBES)
    plateau = (NOISE_SIGMAS ** 2) * _plateau_rounding(problem, base, weights)
    problem._rounding = np.maximum(np.maximum(modelled, measured), plateau)
    problem._contracted = (NOISE_SIGMAS ** 2) * contracted / (6.0 * ROUNDING_PROBES)
    if problem.declared_noise is not None:  # a deliberately noisy fn: its noise, declared
        problem._rounding = problem._rounding + problem.declared_noise
        problem._contracted += float(np.sum(problem.declared_noise))
    return problem._rounding


def direction_rounding(problem):
    """The rounding of ``g = sum(fn(x) * dLdf)`` when every output moves (a direction).

    The larger of the outputs' floors added in quadrature (independent rounding errors) and
    the measured rounding of g itself: the sums of the same ulp-sized second differences
    that :func:`rounding_squares` takes per output, so rounding errors that several outputs
    share (a normalisation's mean, one rounded intermediate read by every output) add up as
    they do in g. Evidence, not a bound: the sum of every output's worst case would excuse
    errors a thousand times the rounding of a float32 layer's directions.
    """
    squares = rounding_squares(problem)
    return float(np.sqrt(max(float(np.sum(squares)), problem._contracted)))


def _plateau_rounding(problem, base, weights):
    """Per output, the variance of its rounding where intermediates larger than it round.

    An ulp-sized move of x leaves a saturated intermediate unchanged (``1 + tanh(u)`` at u =
    -8, ``log(1 + exp(v))`` at v = -25): its rounding shows only at moves closer to the step.
    Fourth differences ``f(x+2d) - 4 f(x+d) + 6 f(x) - 4 f(x-d) + f(x-2d)`` at ``d`` a
    fraction of the step and at ``d / 8`` cancel the linear to cubic parts; what remains is
    rounding (variance 70 sigma**2, the same at both sizes), a kink within ``2 d`` (8 times
    smaller at ``d / 8``) or the quartic part (4096 times smaller). Only outputs whose two
    sizes agree within sqrt(8) count: a plateau is rounding, a slope is not.
    """
    x = problem.x.reshape(-1)
    scale = np.maximum(1.0, np.abs(x.astype(np.float64))) if problem.relative else 1.0
    step = problem.step_scale * np.broadcast_to(scale, x.shape)
    sums = []
    # the same directions at both sizes (a kink crossed at one size is crossed at the other),
    # with random magnitudes of three bits (exact moves; an even difference of an output of
    # one element does not change with the sign alone)
    signs = np.where(problem.rng.random((PLATEAU_PROBES, x.size)) < 0.5, -1.0, 1.0) * (
        1 + problem.rng.integers(0, 8, size=(PLATEAU_PROBES, x.size)) / 8)
    for fraction in (PLATEAU_FRACTION, PLATEAU_FRACTION / 8):
        size = 2.0 ** np.floor(np.log2(step * fraction))
        total = np.zeros(base.size)
        for sign in signs:
            delta = (sign * size).astype(x.dtype)
            points = [x + k * delta for k in (2, 1, -1, -2)]
            exact = np.logical_and.reduce([
                (point - x) == k * delta for point, k in zip(points, (2, 1, -1, -2),
                                                              strict=True)])
            outputs = []
            for point in points:
                point = np.where(exact, point, x)
                out = np.asarray(problem.call(point.reshape(problem.x.shape),
                                              "(measuring its rounding at x)"), np.float64)
                if out.shape != problem.f0.shape:
                    raise ValueError(f"fn: returned shape {out.shape} near x, expected "
                                     f"{problem.f0.shape}")
                outputs.append(out.reshape(-1))
            with np.errstate(invalid="ignore", over="ignore"):  # (fn's inf: zeroed below)
                fourth = (outputs[0] - 4 * outputs[1] + 6 * base - 4 * outputs[2]
                          + outputs[3]) * weights
            total += np.nan_to_num(fourth, nan=0.0, posinf=0.0, neginf=0.0) ** 2
        sums.append(total)
    coarse, fine = sums
    plateau = (fine > 0) & (coarse <= 8.0 * fine)   # rms ratio within sqrt(8)
    return np.where(plateau, (coarse + fine) / (2 * 70.0 * PLATEAU_PROBES), 0.0)


def finest_steps(problem):
    """The smallest step each element was differenced with (h, or h/2 for order 4)."""
    scale = problem.step_scale / (1 if problem.order == 2 else 2)
    if problem.relative:
        return scale * np.maximum(1.0, np.abs(problem.x.astype(np.float64)))
    return np.full(problem.x.shape, scale)


#: Arguments up to this many elements are also compared after every call of fn (a copy and a
#: comparison: cheap next to any fn that reads them).
VERIFY_WRITES_MAX = 2**20


class ModifiedInput(ValueError):
    """fn wrote into the array fastgrad handed it (never swallowed by a probe)."""


#: The error for an fn that writes to its argument (a reused buffer would carry the writes).
MODIFIED_INPUT = ("fn: writes into its input array (fastgrad hands fn a read-only array); "
                  "fastgrad cannot difference a function that modifies its argument: copy it "
                  "inside fn first (v = v.copy()) or use out-of-place operations")


def read_only(value):
    """A read-only view of ``value``: fn may read its argument, never write into it.

    Where ``value`` is contiguous the view is built on a read-only buffer, so that fn cannot
    even set ``flags.writeable = True`` on it (a view of a writeable array could).
    """
    value = np.asarray(value)
    if value.flags.c_contiguous and value.size:
        return np.frombuffer(memoryview(value.reshape(-1)).toreadonly(),
                             dtype=value.dtype).reshape(value.shape)
    view = value.view()
    view.flags.writeable = False
    return view


@dataclass
class Differences:
    """What a method computed: central differences and the one-sided gap, shaped like x.

    Methods that do not difference every element leave ``numerical`` None and describe what
    they found in ``partial`` (see ``directional.Partial``).
    """

    numerical: np.ndarray
    gap: np.ndarray
    note: str
    partial: object = None
    #: Per element: the rounding-noise floor of its difference (added to its tolerance).
    noise: np.ndarray = None
    #: Per element (or one value), in units of g: the rounding its differences can carry; the
    #: noise floor at step h is rounding / h (black boxes: rss of rounding_squares over the
    #: outputs it moves).
    rounding: object = None
    #: Per element: magnitude of the terms that form it, sum_k |dLdf_k df_k/dx_i| (or None).
    terms: np.ndarray = None
    #: Per element: the largest |dLdf_k| it reaches (black boxes), for the rule that an
    #: analytic value computed in a narrower dtype cannot be faulted below its rounding of it.
    upstream: np.ndarray = None
    #: Per element: the largest terms its analytic computation may combine (see
    #: fastgrad._verdict.Measured.reach), or None (the largest of all).
    reach: np.ndarray = None
    #: Per element: how many terms its analytic value sums, where the method knows it (see
    #: fastgrad._verdict.Measured.count), or None.
    count: object = None
    #: The method's own second look (a fastgrad._verdict.Look), or None for the default.
    look: object = None


_REGISTRY = {}


def register(method):
    """Make ``method`` available under ``method.name`` (and to ``"auto"``)."""
    _REGISTRY[method.name] = method
    return method


def names():
    """Names of the registered methods, highest priority first."""
    return [m.name for m in sorted(_REGISTRY.values(), key=lambda m: -m.priority)]


def select(name, problem):
    """Return ``(method, reason)`` for ``name`` (``"auto"`` or a registered name).

    ``"auto"`` takes the first method that needs no estimate (structured) when it applies;
    otherwise the complete method with the least work (evaluations of fn times the elements
    of x and fn(x): counts, never seconds, so the choice is the same on a busy machine) within
    ``work_budget`` (or within ``time_budget_s`` when the caller gave one, from the measured
    cost of one call); otherwise the first incomplete method (directional).
    """
    problem.requested = name
    if name != "auto":
        method = _REGISTRY[name]
        reason = method.unavailable(problem)
        if reason is not None:
            raise ValueError(f"method: {name!r} cannot check this function: {reason}")
        return method, "requested"
    skipped, fitting = [], []
    for candidate in sorted(_REGISTRY.values(), key=lambda m: -m.priority):
        reason = candidate.unavailable(problem)
        complete = getattr(candidate, "complete", True)
        work = None
        if reason is None and complete and hasattr(candidate, "evaluations"):
            work = problem.work(candidate.evaluations(problem))
            reason = over_budget(problem, candidate, work)
        if reason is not None:
            skipped.append(f"{candidate.name}: {reason}")
            continue
        if complete and work is None and not fitting:
            return candidate, _auto_reason(skipped)
        if complete:
            fitting.append((work, candidate))
            continue
        if fitting:
            break
        return candidate, _auto_reason(skipped)
    if fitting:
        work, chosen = min(fitting, key=lambda pair: pair[0])
        others = [f"{m.name}: {w:.3g} element-evaluations" for w, m in fitting
                  if m is not chosen]
        return chosen, _auto_reason([*skipped, f"chosen: {work:.3g} element-evaluations",
                                     *others])
    raise RuntimeError("no registered method can run: " + "; ".join(skipped))


def over_budget(problem, method, work, factor=1.0):
    """None when ``method``'s work fits the budget (times ``factor``), else why not."""
    if problem.time_budget_s is not None:
        seconds = method.evaluations(problem) * problem.call_seconds
        if seconds > factor * problem.time_budget_s:
            return (f"estimated {seconds:.3g} s (one call of fn takes "
                    f"{problem.call_seconds:.3g} s) > time_budget_s "
                    f"{factor * problem.time_budget_s:g}")
        return None
    if work > factor * problem.work_budget:
        return (f"{work:.3g} element-evaluations > work budget "
                f"{factor * problem.work_budget:.3g}")
    return None


def complete_fallback(problem, exclude=()):
    """The complete method with the least work within FALLBACK_WORK_FACTOR x the budget, as
    ``(method, None)``, or ``(None, why not)``."""
    best, reasons = None, []
    for candidate in _REGISTRY.values():
        if not getattr(candidate, "complete", True) or candidate.name in exclude or \
                not hasattr(candidate, "evaluations") or candidate.unavailable(problem):
            continue
        work = problem.work(candidate.evaluations(problem))
        reason = over_budget(problem, candidate, work, FALLBACK_WORK_FACTOR)
        if reason is not None:
            reasons.append(f"{candidate.name}: {reason}")
        elif best is None or work < best[0]:
            best = (work, candidate)
    if best is None:
        return None, "; ".join(reasons) or "no complete method applies"
    return best[1], None


def _auto_reason(parts):
    return "auto" + (f" ({'; '.join(parts)})" if parts else "")


from . import colored, directional, exhaustive, structured  # noqa: E402  (registration)

__all__ = ["Differences", "Problem", "colored", "complete_fallback", "directional", "exhaustive",
           "names", "noise_floor", "register", "rounding_squares", "select", "structured"]
