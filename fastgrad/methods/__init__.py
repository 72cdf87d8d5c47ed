"""Methods of :func:`fastgrad.check_gradients`, one module each.

A method is an object with ``name``, ``priority``, ``unavailable(problem)`` (None when it can
run, else the reason it cannot) and ``run(problem)`` returning :class:`Differences`. Adding a
method is a new module that calls :func:`register`; ``method="auto"`` tries registered methods
from the highest priority down and records why it chose the one that ran.
"""

from dataclasses import dataclass, field

import numpy as np

from .._tolerances import ANALYTIC_ULPS, NOISE_ULPS


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
    n_directions: int = 4
    time_budget_s: float = 30.0
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
            return self.fn(value)
        except Exception as error:
            _add_note(error, f"fastgrad: raised while evaluating fn {where}")
            raise

    def element(self, flat_index):
        """The index tuple of a flat element number (for messages)."""
        return tuple(int(i) for i in np.unravel_index(flat_index, self.x.shape))


# Rounding-noise allowance of a difference (NOISE_ULPS, in fastgrad._tolerances): an element whose
# perturbation can move outputs of root-sum-square magnitude S (of output * dLdf) cannot be
# differenced more finely than about eps * S / h. Root-sum-square, because the rounding
# errors of many outputs add with random signs (a sum of magnitudes hid a real float32
# accumulation bug over 50,000 samples); "can move", because an output that should move by
# less than its ulp does not move at all, and that is exactly the error (saturated softmax).
def noise_floor(magnitude, steps, dtype):
    """``NOISE_ULPS * eps * magnitude / steps``; magnitude is a root-sum-square (see above)."""
    return NOISE_ULPS * np.finfo(dtype).eps * np.asarray(magnitude, np.float64) / steps


# The analytic gradient is rounded too: computed in a dtype with machine epsilon eps from
# terms of magnitude S, it cannot be closer than about eps * S to the truth (a float32 softmax
# backward at saturated logits loses most digits that way).


def analytic_floor(magnitude, dtype):
    """``ANALYTIC_ULPS * eps * magnitude``: the rounding an analytic gradient may carry."""
    return ANALYTIC_ULPS * np.finfo(dtype).eps * np.asarray(magnitude, np.float64)


def finest_steps(problem):
    """The smallest step each element was differenced with (h, or h/2 for order 4)."""
    scale = problem.step_scale / (1 if problem.order == 2 else 2)
    if problem.relative:
        return scale * np.maximum(1.0, np.abs(problem.x.astype(np.float64)))
    return np.full(problem.x.shape, scale)


#: The error for an fn that writes to its argument (a reused buffer would carry the writes).
MODIFIED_INPUT = ("fn: modified its input array; fastgrad cannot difference a function that "
                  "writes to its argument")


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
    #: Per element (or one value): root-sum-square of output * dLdf it can move.
    magnitude: object = None


_REGISTRY = {}


def register(method):
    """Make ``method`` available under ``method.name`` (and to ``"auto"``)."""
    _REGISTRY[method.name] = method
    return method


def names():
    """Names of the registered methods, highest priority first."""
    return [m.name for m in sorted(_REGISTRY.values(), key=lambda m: -m.priority)]


def select(name, problem):
    """Return ``(method, reason)`` for ``name`` (``"auto"`` or a registered name)."""
    problem.requested = name
    if name != "auto":
        method = _REGISTRY[name]
        reason = method.unavailable(problem)
        if reason is not None:
            raise ValueError(f"method: {name!r} cannot check this function: {reason}")
        return method, "requested"
    # the first method that needs no estimate (structured) wins; otherwise the cheapest
    # complete method within the time budget; otherwise the first incomplete one (directional)
    skipped, fitting = [], []
    for candidate in sorted(_REGISTRY.values(), key=lambda m: -m.priority):
        reason = candidate.unavailable(problem)
        complete = getattr(candidate, "complete", True)
        estimate = None
        if reason is None and complete and hasattr(candidate, "estimate"):
            estimate = candidate.estimate(problem)
            if estimate is not None and estimate > problem.time_budget_s:
                reason = (f"estimated {estimate:.3g} s (one call of fn takes "
                          f"{problem.call_seconds:.3g} s) > time_budget_s "
                          f"{problem.time_budget_s:g}")
        if reason is not None:
            skipped.append(f"{candidate.name}: {reason}")
            continue
        if complete and estimate is None and not fitting:
            return candidate, _auto_reason(skipped)
        if complete:
            fitting.append((estimate, candidate))
            continue
        if fitting:
            break
        return candidate, _auto_reason(skipped)
    if fitting:
        estimate, chosen = min(fitting, key=lambda pair: pair[0])
        others = [f"{m.name}: estimated {e:.3g} s" for e, m in fitting if m is not chosen]
        return chosen, _auto_reason([*skipped, f"chosen: estimated {estimate:.3g} s", *others])
    raise RuntimeError("no registered method can run: " + "; ".join(skipped))


def _auto_reason(parts):
    return "auto" + (f" ({'; '.join(parts)})" if parts else "")


from . import colored, directional, exhaustive, structured  # noqa: E402  (registration)

__all__ = ["Differences", "Problem", "colored", "directional", "exhaustive", "names", "register",
           "select", "structured"]
