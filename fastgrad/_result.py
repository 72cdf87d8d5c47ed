"""The result of a gradient check, and the comparison that produces it."""

from dataclasses import dataclass

import numpy as np

from ._tolerances import KINK_SLACK


@dataclass(frozen=True)
class WorstElement:
    """One element with a large error: where it is and what both gradients say."""

    index: tuple
    numerical: float
    analytic: float
    abs_error: float
    tolerance: float
    #: True when the element sits within one step of a kink (see ``GradCheckResult.kinks``).
    kink: bool = False

    @property
    def failed(self):
        """Outside its tolerance (and not explained by a kink)."""
        return (not self.kink) and not (self.abs_error <= self.tolerance)

    def __str__(self):
        flag = " (kink)" if self.kink else ""
        return (f"{self.index}: numerical {self.numerical:.10g}, analytic {self.analytic:.10g}, "
                f"|error| {self.abs_error:.3g} (tolerance {self.tolerance:.3g}){flag}")


class GradCheckResult(float):
    """Outcome of :func:`fastgrad.check_gradients`; its float value is the relative error.

    The value is ``norm(numerical - analytic) / norm(numerical + analytic)`` (0 when both are
    zero), so code that prints or compares the old checker's number keeps working. Elements
    within one step of a kink (listed in ``kinks``) are left out of it: a central difference
    across a kink measures nothing about the gradient.

    Attributes
    ----------
    numerical : numpy.ndarray or None
        Central differences, shaped like ``x`` (None where not every element was differenced).
    gap : numpy.ndarray or None
        Half the difference between the forward and backward one-sided differences: about
        ``h * g''`` where the function is smooth, about half the jump in slope at a kink.
    noise : numpy.ndarray or None
        Per element, the rounding-noise floor of its difference (``8 eps S / h`` with S the
        magnitude of the outputs it moves), included in its tolerance.
    analytic : numpy.ndarray
        The gradient that was checked.
    max_abs_error, max_rel_error : float
        Largest ``|numerical - analytic|`` and largest ratio of it to ``max(|num|, |ana|)``.
    worst : list of WorstElement
        The elements with the largest error relative to their tolerance, worst first.
    passed : bool
        Whether every element is within tolerance (kinks aside) and no difference is NaN.
    n_failed : int
        Elements outside tolerance.
    kinks : numpy.ndarray
        Indices (rows of ``np.argwhere`` form) of elements within one step of a kink where the
        central difference is not meaningful; the analytic value lies between the one-sided
        differences there, so they are not counted as failures.
    nan_elements : numpy.ndarray
        Indices where a perturbed evaluation produced NaN or inf.
    refined : numpy.ndarray
        Indices of elements that failed at the first step and were differenced again with a
        step 100 times smaller (see ``fastgrad._refine``); ``numerical`` holds the new values.
    method : str
        The method that ran; ``method_note`` says why it was chosen and how it ran.
    n_evaluations : int
        Calls of ``fn`` (a call on a stack of perturbations counts once).
    elapsed_s : float
        Wall-clock seconds of the check.
    rtol, atol : float
        The tolerance used (``atol`` absolute, after scaling).
    """

    def __new__(cls, value, **attributes):
        result = super().__new__(cls, value)
        result.__dict__.update(attributes)
        return result

    __str__ = float.__repr__

    @property
    def worst(self):
        """The elements with the largest error relative to their tolerance, worst first."""
        if callable(self.__dict__.get("_worst")):
            self.__dict__["_worst"] = self.__dict__["_worst"]()
        return self.__dict__["_worst"]

    def __bool__(self):
        return bool(self.passed)

    def __repr__(self):
        status = "passed" if self.passed else "FAILED"
        lines = [
            f"GradCheckResult({status}: relative error {float(self):.3e}, "
            f"max |error| {self.max_abs_error:.3e}, max relative {self.max_rel_error:.3e})",
            f"  method {self.method}: {self.method_note}",
            f"  {self.n_checked} elements {self._coverage()}, {self.n_failed} failed, "
            f"{len(self.kinks)} at kinks, {len(self.refined)} refined, "
            f"{len(self.nan_elements)} NaN; "
            f"{self.n_evaluations} evaluations of fn in {self.elapsed_s:.3f} s",
            f"  tolerance: |numerical - analytic| <= {self.atol:.3g} + {self.rtol:.3g} * "
            f"|analytic| (dtype {self.dtype}, order-{self.order} differences in "
            f"{self.eval_dtype})",
        ]
        if self.worst and (not self.passed or self.max_abs_error > 0):
            lines.append("  worst elements:")
            lines += [f"    {element}" for element in self.worst[:5]]
        return "\n".join(lines)

    def _coverage(self):
        directions = self.__dict__.get("directional_numerical")
        if self.numerical is None and directions is not None:
            return f"covered by {len(directions)} random directions"
        return "checked"

    def __reduce__(self):
        _ = self.worst  # materialise before pickling
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
# Only elements whose one-sided differences disagree by more than the tolerance are judged by
# the kink rule (KINK_SLACK, in fastgrad._tolerances); at smooth points the full tolerance
# applies.


def on_kink_note(n_elements):
    """What a result says of elements where the slope jumps at x itself."""
    return (f"{n_elements} element(s) sit exactly on a kink (the one-sided differences keep "
            "disagreeing at every step): the analytic value is a convention there, listed "
            "in kinks and not checked")


def resolution(analytic, *, rtol, atol, scaled_atol):
    """Per element, the tolerance without noise: ``atol' + rtol * |analytic|``."""
    magnitude = np.abs(np.asarray(analytic, dtype=np.float64))
    return rtol * magnitude + (atol * float(magnitude.max(initial=0.0)) if scaled_atol
                               else atol)


def compare(numerical, gap, analytic, *, rtol, atol, scaled_atol, n_worst=10, noise=None,
            at_kink=None):
    """Compare differences with the analytic gradient element by element.

    Parameters
    ----------
    numerical, gap : numpy.ndarray
        Central differences and half the gap between the one-sided differences (or None).
    analytic : numpy.ndarray
        The gradient being checked, same shape.
    rtol, atol : float
        Element ``i`` passes when ``|num_i - ana_i| <= atol' + rtol * |ana_i|``.
    scaled_atol : bool
        Whether ``atol`` is relative to the largest gradient magnitude (the default table) or
        absolute (given by the caller).
    n_worst : int
        How many of the worst elements to report.
    noise : numpy.ndarray, optional
        Per-element rounding-noise floor of the differences, added to each tolerance.
    at_kink : numpy.ndarray, optional
        Flat indices of elements where the slope was found to jump at x itself (see
        ``fastgrad._refine``): outside their tolerance, they are kinks whatever the gap says.

    Returns
    -------
    dict
        The comparison fields of :class:`GradCheckResult`.
    """
    numerical = np.asarray(numerical, dtype=np.float64)
    analytic64 = np.asarray(analytic, dtype=np.float64)
    finite = np.isfinite(numerical)
    all_finite = bool(finite.all())
    nan_elements = _NO_INDICES if all_finite else np.argwhere(~finite)
    num = numerical if all_finite else np.where(finite, numerical, 0.0)
    error = np.abs(num - analytic64)
    abs_analytic = np.abs(analytic64)
    magnitude = np.maximum(np.abs(num), abs_analytic)
    scale = float(magnitude.max()) if magnitude.size else 0.0
    atol_abs = atol * scale if scaled_atol else atol
    allowed = atol_abs + rtol * abs_analytic
    if noise is not None:
        allowed = allowed + np.asarray(noise, dtype=np.float64).reshape(allowed.shape)
    outside = error > allowed
    if not all_finite:
        outside &= finite
    any_outside = bool(outside.any())
    kink = None
    if gap is not None and any_outside:
        gap = np.abs(np.asarray(gap, dtype=np.float64))
        kink = outside & (gap > allowed) & (error <= (1 + KINK_SLACK) * gap + allowed)
    if at_kink is not None and len(at_kink) and any_outside:
        if kink is None:
            kink = np.zeros(outside.shape, dtype=bool)
        kink.reshape(-1)[at_kink] |= outside.reshape(-1)[at_kink]
    any_kink = kink is not None and bool(kink.any())
    if kink is None:
        kink = np.zeros(outside.shape, dtype=bool)
    failing = outside & ~kink if any_kink else outside
    n_failed = (int(np.count_nonzero(failing)) if any_outside else 0) + len(nan_elements)
    rel = np.divide(error, magnitude, out=np.zeros_like(error), where=magnitude > 0)
    smooth = ~kink
    value = relative_error(num[smooth], analytic64[smooth]) if any_kink else \
        relative_error(num, analytic64)
    return {
        "failing": failing,
        "value": value,
        "smooth": smooth,
        "max_abs_error": float(error.max()) if error.size else 0.0,
        "max_rel_error": float(rel.max()) if rel.size else 0.0,
        # built on first use: most callers only look at the verdict
        "_worst": lambda: _worst(numerical, analytic64, error, allowed, kink, finite, n_worst),
        "passed": n_failed == 0,
        "n_failed": n_failed,
        "kinks": np.argwhere(kink) if any_kink else _NO_INDICES,
        "nan_elements": nan_elements,
        "rtol": float(rtol),
        "atol": float(atol_abs),
    }


def _worst(numerical, analytic, error, allowed, kink, finite, n_worst):
    """The ``n_worst`` elements with the largest error relative to their tolerance."""
    ratio = np.divide(error, allowed, out=np.where(error > 0, np.inf, 0.0), where=allowed > 0)
    ratio[~finite] = np.inf
    flat_ratio = ratio.reshape(-1)
    k = min(n_worst, flat_ratio.size)
    if k == 0:
        return []
    # failures first, then kinks, then the rest, each by error relative to tolerance
    tier = np.where(kink.reshape(-1), 1.0, np.where(flat_ratio > 1.0, 2.0, 0.0))
    flat_ratio = tier + 0.999 * np.arctan(flat_ratio) / (np.pi / 2)
    top = np.argpartition(-flat_ratio, k - 1)[:k] if k < flat_ratio.size \
        else np.arange(flat_ratio.size)
    top = top[np.argsort(-flat_ratio[top], kind="stable")]
    indices = np.unravel_index(top, numerical.shape)
    worst = []
    for n, flat in enumerate(top):
        worst.append(WorstElement(index=tuple(int(axis[n]) for axis in indices),
                                  numerical=float(numerical.flat[flat]),
                                  analytic=float(analytic.flat[flat]),
                                  abs_error=float(error.flat[flat]),
                                  tolerance=float(allowed.flat[flat]),
                                  kink=bool(kink.flat[flat])))
    return worst
