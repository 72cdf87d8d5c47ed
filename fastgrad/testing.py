"""Assertions for test suites (pytest or unittest)."""

from ._checker import check_gradients

__all__ = ["assert_gradients"]


def assert_gradients(fn, grad, x, dLdf=1.0, **options):
    """Raise ``AssertionError`` unless ``grad`` passes :func:`fastgrad.check_gradients`.

    Parameters
    ----------
    fn, grad, x, dLdf
        As for :func:`fastgrad.check_gradients`.
    **options
        Keyword options of :func:`fastgrad.check_gradients` (``h``, ``method``, ``rtol``, ...).

    Returns
    -------
    GradCheckResult
        The result, when it passed.

    Raises
    ------
    AssertionError
        With the worst elements by index, their numerical and analytic values and tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.testing import assert_gradients
    >>> x = np.array([0.5, -1.0, 2.0])
    >>> _ = assert_gradients(np.sin, np.cos(x), x)
    """
    result = check_gradients(fn, grad, x, dLdf, **options)
    if not result.passed:
        lines = [f"gradient check failed: {result.n_failed} of {result.n_checked} element(s) "
                 f"outside tolerance, relative error {float(result):.3e} "
                 f"(method {result.method})"]
        lines += [f"  {element}" for element in result.worst if element.failed]
        if len(result.nan_elements):
            lines.append(f"  NaN/inf differences at {len(result.nan_elements)} element(s), "
                         f"the first at {tuple(result.nan_elements[0])}")
        raise AssertionError("\n".join(lines))
    return result
