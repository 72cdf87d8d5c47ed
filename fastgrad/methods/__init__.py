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
    ROUNDING_PROBES,
    WORK_BUDGET,
)


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
        try:
            output = self.fn(read_only(value))
        except ValueError as error:
            # NumPy's words when fn writes into its (read-only) argument
            if any(words in str(error) for words in ("destination is read-only",
                                                     "output array is read-only")):
                raise ValueError(MODIFIED_INPUT) from error
            _add_note(error, f"fastgrad: raised while evaluating fn {where}")
            raise
        except Exception as error:
            _add_note(error, f"fastgrad: raised while evaluating fn {where}")
            raise
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


def rounding_squares(problem):
    """Per output (flat), the squared rounding ``fn(x)_k * dLdf_k`` can carry in a difference.

    The larger of the modelled ``NOISE_ULPS * eps * |f_k dLdf_k|`` and the measured
    ``NOISE_SIGMAS * sigma_k``: fn is evaluated at ``x +- delta`` for a few random ``delta``
    of a few ulps (exactly representable both ways), and ``f(x + delta) - 2 f(x) + f(x -
    delta)`` of each output, whose linear part cancels exactly, is its rounding. Measured once
    per check (2 * ROUNDING_PROBES evaluations).
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
        second = (outputs[0].reshape(-1) - 2 * base + outputs[1].reshape(-1)) * weights
        squares += np.nan_to_num(second, nan=0.0, posinf=0.0, neginf=0.0) ** 2
    measured = (NOISE_SIGMAS ** 2) * squares / (6.0 * ROUNDING_PROBES)
    problem._rounding = np.maximum(modelled, measured)
    if problem.declared_noise is not None:  # a deliberately noisy fn: its noise, declared
        problem._rounding = problem._rounding + problem.declared_noise
    return problem._rounding



def finest_steps(problem):
    """The smallest step each element was differenced with (h, or h/2 for order 4)."""
    scale = problem.step_scale / (1 if problem.order == 2 else 2)
    if problem.relative:
        return scale * np.maximum(1.0, np.abs(problem.x.astype(np.float64)))
    return np.full(problem.x.shape, scale)


#: The error for an fn that writes to its argument (a reused buffer would carry the writes).
MODIFIED_INPUT = ("fn: writes into its input array (fastgrad hands fn a read-only array); "
                  "fastgrad cannot difference a function that modifies its argument: copy it "
                  "inside fn first (v = v.copy()) or use out-of-place operations")


def read_only(value):
    """A read-only view of ``value``: fn may read its argument, never write into it."""
    view = np.asarray(value).view()
    view.flags.writeable = False
    return view


def _add_note(error, note):
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # Python 3.10: keep the note where 3.11 would put it
        error.__notes__ = [*getattr(error, "__notes__", []), note]


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
