"""The result of a gradient check, and the comparison that produces it."""

from dataclasses import dataclass

import numpy as np

from . import _verdict as _v


@dataclass(frozen=True)
class WorstElement:
    """One element with a large error: where it is and what both gradients say."""

    index: tuple
    numerical: float
    analytic: float
    abs_error: float
    tolerance: float
    #: What the verdict made of it: "ok", "failed", "kink" (excused: the slope jumps at x),
    #: "unresolved", "unexamined" (outside tolerance, not re-examined) or "nan".
    status: str = "ok"

    @property
    def kink(self):
        """Excused: measured evidence of a kink within its step (see ``fastgrad._verdict``)."""
        return self.status == "kink"

    @property
    def failed(self):
        """Judged wrong (or outside its tolerance and not re-examined)."""
        return self.status in ("failed", "unexamined", "nan")

    def __str__(self):
        flag = "" if self.status == "ok" else f" ({self.status})"
        return (f"{self.index}: numerical {self.numerical:.10g}, analytic {self.analytic:.10g}, "
                f"|error| {self.abs_error:.3g} (tolerance {self.tolerance:.3g}){flag}")


class GradCheckResult(float):
    """Outcome of :func:`fastgrad.check_gradients`; its float value is the relative error.

    The value is ``norm(numerical - analytic) / norm(numerical + analytic)`` (0 when both are
    zero), so code that prints or compares the old checker's number keeps working. Elements
    that could not be differenced meaningfully (kinks, unresolved, NaN) are left out of it.

    The verdict is three-way (``fastgrad._verdict`` holds the one set of rules): ``"passed"``
    when every element was differenced within its tolerance or excused by measured evidence
    of a kink within its step; ``"failed"`` when an element disagrees at two steps;
    ``"inconclusive"`` when fastgrad cannot tell (``verdict_reason`` says why and what to do).

    Attributes
    ----------
    verdict : {"passed", "failed", "inconclusive"}
    verdict_reason : str
        Why, with the counts behind it and, when inconclusive, what to try.
    passed : bool
        ``verdict == "passed"`` (also the result's truth value).
    numerical : numpy.ndarray or None
        Central differences, shaped like ``x`` (None where not every element was differenced);
        elements that got a second look hold the value of the finer step.
    gap : numpy.ndarray or None
        The kink indicator of the first differences: half the gap between the one-sided
        differences (order 2), or the larger of ``|G(h) - 2 G(h/2)|`` of those halves and
        ``|D(h/2) - D(h)|`` of the central differences (order 4).
    noise : numpy.ndarray or None
        Per element, the rounding floor of its difference (``8 eps S / h``, S the magnitude
        of the outputs it moves), part of its tolerance.
    tolerance : numpy.ndarray or None
        Per element, the whole allowance it was judged against (rtol, atol and floors).
    analytic : numpy.ndarray
        The gradient that was checked.
    max_abs_error, max_rel_error : float
        Largest ``|numerical - analytic|`` and largest ratio of it to ``max(|num|, |ana|)``.
    worst : list of WorstElement
        The elements that most exceed their tolerance (error / tolerance), failures first.
    largest_errors : list of WorstElement
        The elements with the largest ``|numerical - analytic|``.
    n_failed : int
        Elements judged wrong, plus elements outside tolerance that were not re-examined.
    kinks : numpy.ndarray
        Indices (rows of ``np.argwhere`` form) of elements excused at a kink: the slope jumps
        within the step and the analytic value is a one-sided derivative or their mean.
    unresolved : numpy.ndarray
        Indices of elements that could not be judged (non-smooth at every usable step, or not
        re-examined); any makes the verdict inconclusive unless something failed.
    nan_elements : numpy.ndarray
        Indices where a perturbed evaluation produced NaN or inf.
    refined : numpy.ndarray
        Indices of elements judged by a second look at a finer step.
    method : str
        The method that ran; ``method_note`` says why it was chosen and how it ran.
    n_evaluations : int
        Calls of ``fn`` (a call on a stack of perturbations counts once).
    elapsed_s : float
        Wall-clock seconds of the check.
    rtol, atol : float
        The tolerance parameters (``atol`` relative to each element's terms unless given).
    """

    def __new__(cls, value, **attributes):
        result = super().__new__(cls, value)
        result.__dict__.update(attributes)
        return result

    __str__ = float.__repr__

    def _listing(self, key):
        if callable(self.__dict__.get(key)):
            self.__dict__[key] = self.__dict__[key]()
        return self.__dict__.get(key, [])

    @property
    def worst(self):
        """The elements that most exceed their tolerance (error / tolerance), worst first."""
        return self._listing("_worst")

    @property
    def largest_errors(self):
        """The elements with the largest ``|numerical - analytic|``, largest first."""
        return self._listing("_largest_errors")

    def __bool__(self):
        return bool(self.passed)

    def __repr__(self):
        status = {"passed": "passed", "failed": "FAILED"}.get(self.verdict, "INCONCLUSIVE")
        lines = [
            f"GradCheckResult({status}: relative error {float(self):.3e}, "
            f"max |error| {self.max_abs_error:.3e}, max relative {self.max_rel_error:.3e})",
            f"  verdict: {self.verdict_reason}",
            f"  method {self.method}: {self.method_note}",
            f"  {self.n_checked} elements {self._coverage()}, {self.n_failed} failed, "
            f"{len(self.kinks)} at kinks, {len(self.unresolved)} unresolved, "
            f"{len(self.refined)} refined, {len(self.nan_elements)} NaN; "
            f"{self.n_evaluations} evaluations of fn in {self.elapsed_s:.3f} s",
            f"  tolerance: |numerical - analytic| <= {self.rtol:.3g} * |analytic| + "
            + (f"{self.atol:.3g} * terms" if self.atol_relative else f"{self.atol:.3g}")
            + f" + rounding floors (dtype {self.dtype}, order-{self.order} differences in "
            f"{self.eval_dtype})",
        ]
        if self.worst and (not self.passed or self.max_abs_error > 0):
            lines.append("  elements most beyond their tolerance:")
            lines += [f"    {element}" for element in self.worst[:5]]
        return "\n".join(lines)

    def _coverage(self):
        directions = self.__dict__.get("directional_numerical")
        if self.numerical is None and directions is not None:
            return f"covered by {len(directions)} random directions"
        return "checked"

    def __reduce__(self):
        _ = self.worst, self.largest_errors  # materialise before pickling
        return (_rebuild, (float(self), dict(self.__dict__)))


def _rebuild(value, attributes):
    return GradCheckResult(value, **attributes)


def relative_error(numerical, analytic):
    """``norm(numerical - analytic) / norm(numerical + analytic)``; 0 when both are zero."""
    difference = (numerical - analytic).ravel()
    total = (numerical + analytic).ravel()
    numerator = np.sqrt(np.dot(difference, difference))
    denominator = np.sqrt(np.dot(total, total))
    if numerator == 0:
        return 0.0
    return float(numerator / denominator) if denominator > 0 else float("inf")


_NO_INDICES = np.zeros((0, 0), dtype=np.intp)


def _rows(flat, shape):
    """Rows of index tuples (``np.argwhere`` form) of flat element numbers."""
    flat = np.asarray(flat, dtype=np.intp)
    if flat.size == 0 or len(shape) == 0:
        return np.zeros((flat.size, len(shape)), dtype=np.intp)
    return np.stack(np.unravel_index(flat, shape), axis=-1)


def summarize(judgement, analytic, shape, *, verdict, verdict_reason, n_worst=10,
              element=None):
    """The comparison fields of a result from a :class:`fastgrad._verdict.Judgement`.

    ``element`` maps a position in the judgement to the index tuple it reports (default:
    ``np.unravel_index`` in ``shape``); a method that judged only some elements passes it.
    """
    status = judgement.status
    numerical = judgement.numerical
    analytic = np.asarray(analytic, dtype=np.float64).reshape(-1)
    finite = np.isfinite(numerical)
    num = np.where(finite, numerical, 0.0)
    error = np.where(finite, np.abs(num - analytic), np.inf)
    magnitude = np.maximum(np.abs(num), np.abs(analytic))
    # the aggregate leaves out kinks (excused with evidence) and NaN; unresolved elements
    # count with their finest value, so that the float of a result that could not decide
    # does not read as a pass (``check_gradients(...) < 1e-6``)
    counted = _v.has_status(status, (_v.OK, _v.FAILED, _v.UNEXAMINED, _v.UNRESOLVED))
    value = relative_error(num[counted], analytic[counted])
    finite_error = error[finite]
    rel = np.divide(finite_error, magnitude[finite], out=np.zeros_like(finite_error),
                    where=magnitude[finite] > 0)
    if element is None:
        def element(position):
            return tuple(int(i) for i in np.unravel_index(position, shape))

    def rows(*codes):
        flat = judgement.indices(*codes)
        if element is None or flat.size == 0 or len(shape) == 0:
            return _rows(flat, shape)
        return np.array([element(i) for i in flat], dtype=np.intp).reshape(-1, len(shape))

    def listing(order_key):
        return lambda: _elements(numerical, analytic, error, judgement.allowed, status,
                                 order_key, n_worst, element)

    return {
        "value": value,
        "max_abs_error": float(finite_error.max()) if finite_error.size else 0.0,
        "max_rel_error": float(rel.max()) if rel.size else 0.0,
        # built on first use: most callers only look at the verdict
        "_worst": listing("ratio"),
        "_largest_errors": listing("error"),
        "passed": verdict == _v.PASSED_VERDICT,
        "verdict": verdict,
        "verdict_reason": verdict_reason,
        "n_failed": judgement.n_failed,
        "kinks": rows(_v.KINK),
        "unresolved": rows(_v.UNRESOLVED, _v.UNEXAMINED),
        "nan_elements": rows(_v.NAN),
        "refined": _rows(judgement.refined, shape) if element is None or
        judgement.refined.size == 0 or len(shape) == 0 else np.array(
            [element(i) for i in judgement.refined], dtype=np.intp).reshape(-1, len(shape)),
    }


def _elements(numerical, analytic, error, allowed, status, order_key, n_worst, element):
    """``n_worst`` elements: by error relative to allowance (failures first) or by error."""
    size = numerical.size
    k = min(n_worst, size)
    if k == 0:
        return []
    if order_key == "ratio":
        ratio = np.divide(error, allowed, out=np.where(error > 0, np.inf, 0.0),
                          where=allowed > 0)
        tier = np.select([_v.has_status(status, (_v.FAILED, _v.UNEXAMINED, _v.NAN)),
                          _v.has_status(status, (_v.UNRESOLVED, _v.KINK))], [3.0, 2.0], 0.0)
        key = tier + 0.999 * np.arctan(np.nan_to_num(ratio, posinf=1e300)) / (np.pi / 2)
    else:
        key = np.nan_to_num(error, posinf=1e300)
    top = np.argpartition(-key, k - 1)[:k] if k < size else np.arange(size)
    top = top[np.argsort(-key[top], kind="stable")]
    return [WorstElement(index=element(int(flat)), numerical=float(numerical[flat]),
                         analytic=float(analytic[flat]), abs_error=float(error[flat]),
                         tolerance=float(allowed[flat]),
                         status=_v.STATUS_NAMES[status[flat]])
            for flat in top]
