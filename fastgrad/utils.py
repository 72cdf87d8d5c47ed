"""Utilities of the Keras-like API: ``gradient_check(model, X, Y)``, ``binary_round``,
``binary_evaluate``."""

import numpy as np

from ._model_check import ModelCheckResult, ParameterCheck, gradient_check
from ._validation import as_float_array

__all__ = ["ModelCheckResult", "ParameterCheck", "binary_evaluate", "binary_round",
           "gradient_check"]


def binary_round(Y):
    """Round probabilities to class labels: 1 where ``Y > 0.5``, else 0.

    Parameters
    ----------
    Y : array_like of float
        Predicted probabilities, any shape.

    Returns
    -------
    numpy.ndarray of int
        Same shape as ``Y``.

    Examples
    --------
    >>> from fastgrad import utils
    >>> utils.binary_round([[0.2], [0.7], [0.5]]).ravel().tolist()
    [0, 1, 0]
    """
    Y = as_float_array(Y, "Y", allow_int=True)
    return (Y > 0.5).astype(np.int64)


def binary_evaluate(Y_pred, Y):
    """Return the accuracy of rounded predictions: the fraction equal to the labels.

    Parameters
    ----------
    Y_pred : array_like of float, shape (n_samples, 1) or (n_samples,)
        Predicted probabilities.
    Y : array_like, same number of elements as ``Y_pred``
        Labels, 0 or 1.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        When the shapes differ in their number of samples (the original broadcast an
        ``(n,)`` against an ``(n, 1)`` into an ``(n, n)`` comparison without a word).

    Examples
    --------
    >>> from fastgrad import utils
    >>> utils.binary_evaluate([[0.9], [0.2], [0.6]], [[1], [0], [0]])
    0.6666666666666666
    """
    rounded = binary_round(Y_pred)
    Y = np.asarray(Y)
    if Y.dtype.kind not in "biuf":
        raise TypeError(f"Y: expected numeric labels, got dtype {Y.dtype}")
    if Y.size != rounded.size or (Y.ndim and rounded.ndim and Y.shape[0] != rounded.shape[0]):
        raise ValueError(f"Y: expected the shape of Y_pred {rounded.shape}, got {Y.shape}")
    if rounded.size == 0:
        raise ValueError("Y_pred: expected at least one prediction")
    return float(np.mean(rounded.reshape(-1) == Y.reshape(-1)))
