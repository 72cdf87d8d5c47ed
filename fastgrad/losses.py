"""Losses: ``forward(Y, Y_hat)`` returns a float, ``backward(Y, Y_hat)`` returns dL/dY_hat.

Every loss is the mean over the ``n_samples`` rows of a sum of elementwise terms, computed by
the kernels in ``fastgrad.kernels.losses``:

    L = (1 / n_samples) * sum_ij term(Y[i, j], Y_hat[i, j])

Labels ``Y`` may be integer arrays; a 1-D integer ``Y`` of class indices is one-hot encoded
for the categorical cross-entropy.
"""

import numpy as np

from ._threads import threads_for
from ._validation import as_float_array
from .kernels import losses as _kernels

__all__ = ["CrossEntropy", "Loss", "initialize_loss", "loss_for_code"]


class Loss:
    """Base class of the built-in losses (see the module docstring for the formula)."""

    code = _kernels.CROSS_ENTROPY
    #: Whether a 1-D integer Y holds class indices to be one-hot encoded.
    accepts_class_indices = False

    #: The names of the labels and predictions in messages.
    _names = ("Y", "Y_hat")

    def _arrays(self, Y, Y_hat):
        y_name, p_name = self._names
        Y_hat = as_float_array(Y_hat, p_name, min_ndim=1, allow_int=True, writeable=True)
        Y = as_float_array(Y, y_name, allow_int=True, min_ndim=1, writeable=True) if not (
            self.accepts_class_indices and _is_class_indices(Y, Y_hat)) else _one_hot(Y, Y_hat)
        Y = Y.astype(Y_hat.dtype, copy=False)
        if Y.shape != Y_hat.shape:
            if Y.size == Y_hat.size and Y.shape[0] == Y_hat.shape[0]:
                Y = Y.reshape(Y_hat.shape)  # e.g. labels (m,) against predictions (m, 1)
            else:
                raise ValueError(f"{y_name}: expected shape {Y_hat.shape} (the shape of "
                                 f"{p_name}), got {Y.shape}")
        return np.ascontiguousarray(Y), Y_hat

    #: How ``forward``/``backward`` take their arguments, for the wrong-order message.
    _order = "(Y, Y_hat): labels first, predictions second"

    def _value(self, Y, Y_hat):
        Y, Y_hat = self._arrays(Y, Y_hat)
        if Y_hat.size == 0:
            return 0.0
        total = self._sum(Y, Y_hat)
        if not np.isfinite(total) and np.isfinite(self._sum(Y_hat, Y)):
            raise self._swapped("forward", "the loss is inf or NaN")
        return total / Y_hat.shape[0]

    def _sum(self, Y, Y_hat):
        with threads_for(Y_hat.size):
            return _kernels.loss_sum(self.code, Y.reshape(-1), Y_hat.reshape(-1))

    def _gradient(self, Y, Y_hat):
        Y, Y_hat = self._arrays(Y, Y_hat)
        out = self._gradient_of(Y, Y_hat)
        if Y_hat.size and not np.all(np.isfinite(out)) and \
                np.all(np.isfinite(self._gradient_of(Y_hat, Y))):
            raise self._swapped("backward", "the gradient has inf or NaN elements")
        return out

    def _gradient_of(self, Y, Y_hat):
        out = np.empty_like(Y_hat)
        if Y_hat.size:
            with threads_for(Y_hat.size):
                _kernels.loss_gradient(self.code, 1.0 / Y_hat.shape[0], Y.reshape(-1),
                                       Y_hat.reshape(-1), out.reshape(-1))
        return out

    def _swapped(self, method, symptom):
        """The error for arguments given in the other library's order (one place decides)."""
        return ValueError(
            f"{type(self).__name__}.{method} takes {self._order}; {symptom} as given but "
            "finite with the two arguments swapped, so they look swapped (fastgrad.losses "
            "take (Y, Y_hat) like the CS189-style library; fastgrad.costs take (AL, Y) like "
            "the Keras-like sandbox)")

    def forward(self, Y, Y_hat):
        """Return the loss, a Python float.

        Parameters
        ----------
        Y : array_like
            Targets, shape ``(n_samples, ...)``; integer labels are accepted.
        Y_hat : array_like of float
            Predictions, same shape as ``Y``.

        Returns
        -------
        float
            The mean over samples of the summed elementwise terms.

        Raises
        ------
        ValueError
            When the loss is inf or NaN as given but finite with ``Y`` and ``Y_hat`` swapped
            (the arguments are in the wrong order).
        """
        return self._value(Y, Y_hat)

    def backward(self, Y, Y_hat):
        """Return ``dL/dY_hat``, an array like ``Y_hat``.

        Parameters
        ----------
        Y : array_like
            Targets, shape ``(n_samples, ...)``.
        Y_hat : array_like of float
            Predictions, same shape as ``Y``.

        Returns
        -------
        numpy.ndarray
            Gradient of the loss with respect to the predictions.

        Raises
        ------
        ValueError
            When the arguments look swapped (see :meth:`forward`).
        """
        return self._gradient(Y, Y_hat)

    def __call__(self, Y, Y_hat):
        return self.forward(Y, Y_hat)

    def __repr__(self):
        return f"{type(self).__name__}()"


def _is_class_indices(Y, Y_hat):
    Y = np.asarray(Y)
    Y_hat = np.asarray(Y_hat)
    return (Y.dtype.kind in "iu" and Y.ndim == 1 and Y_hat.ndim == 2 and Y_hat.shape[1] > 1
            and Y.shape[0] == Y_hat.shape[0])


def _one_hot(Y, Y_hat):
    Y = np.asarray(Y)
    n_classes = Y_hat.shape[1]
    if Y.size and (Y.min() < 0 or Y.max() >= n_classes):
        raise ValueError(f"Y: class indices must lie in [0, {n_classes - 1}] for Y_hat of "
                         f"shape {Y_hat.shape}, got values in [{Y.min()}, {Y.max()}]")
    one_hot = np.zeros(Y_hat.shape, dtype=Y_hat.dtype)
    one_hot[np.arange(Y.shape[0]), Y] = 1
    return one_hot


class CrossEntropy(Loss):
    """Cross-entropy ``-(1/m) * sum(Y * log(Y_hat))`` for probability predictions.

    Parameters
    ----------
    name : str
        Kept for compatibility with code that writes ``CrossEntropy("cross_entropy")``.
    """

    code = _kernels.CROSS_ENTROPY
    accepts_class_indices = True

    def __init__(self, name="cross_entropy"):
        if not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {type(name).__name__}")
        self.name = name

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


_BY_NAME = {"cross_entropy": CrossEntropy}


def initialize_loss(name):
    """Return the loss called ``name`` (the CS189-style factory), e.g. ``"cross_entropy"``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Loss
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name not in _BY_NAME:
        raise NotImplementedError(f"name: {name!r} loss is not implemented; expected one of "
                                  f"{sorted(_BY_NAME)}")
    return _BY_NAME[name](name)


def loss_for_code(code, *, accepts_class_indices=False, name=None):
    """A built-in :class:`Loss` (order ``(Y, Y_hat)``) computing the kernel loss ``code``.

    The Keras-like model keeps one next to its ``cost_type`` (whose order is ``(AL, Y)``) so
    that code written against fastgrad's ``(Y, Y_hat)`` order, such as the model check, sees
    the same cost. ``name`` is its ``repr``.
    """
    loss = _CodeLoss(name)
    loss.code = int(code)
    loss.accepts_class_indices = bool(accepts_class_indices)
    return loss


class _CodeLoss(Loss):
    """A built-in loss chosen by kernel code at run time (see :func:`loss_for_code`)."""

    def __init__(self, name=None):
        self.name = name

    def __repr__(self):
        return self.name or f"Loss(code={self.code})"
