"""Costs of the Keras-like API, called like the original: ``cost.forward(AL, Y)``.

Each cost is averaged over the ``n_samples`` rows and summed over outputs:

* ``BinaryCrossentropy``: term = -(y log a + (1 - y) log(1 - a))
* ``CategoricalCrossentropy``: term = -y log a, for any number of classes
* ``MSE``: term = (a - y)^2
* ``MAE``: term = |a - y|

``forward(AL, Y)`` returns the cost, ``backward(AL, Y)`` returns dcost/dAL (including the
1/n_samples). Predictions come first, labels second, as in the Keras-like sandbox; the
CS189-style :mod:`fastgrad.losses` take ``(Y, Y_hat)``. A call in the other order that would
give inf or NaN (a cross-entropy taking the log of 0/1 labels) raises a ``ValueError`` naming
the right order.
"""

from ._identity import is_fastgrad_function, is_fastgrad_instance
from .kernels import losses as _kernels
from .losses import Loss, loss_for_code

__all__ = ["MAE", "MSE", "BinaryCrossentropy", "CategoricalCrossentropy", "Cost", "get",
           "internal_loss"]


class Cost(Loss):
    """Base class of the Keras-like costs: ``forward(AL, Y)``, ``backward(AL, Y)``."""

    _order = "(AL, Y): predictions first, labels second"
    _names = ("Y", "AL")

    def forward(self, AL, Y):
        """Return the cost, a Python float.

        Parameters
        ----------
        AL : array_like of float, shape (n_samples, n_outputs)
            The model's output.
        Y : array_like, shape (n_samples, n_outputs)
            Targets; integer labels are accepted (and class indices for the categorical
            cross-entropy).

        Returns
        -------
        float

        Raises
        ------
        ValueError
            For mismatched shapes, or when the cost is inf or NaN as given but finite with the
            arguments swapped.
        """
        return self._value(Y, AL)

    def backward(self, AL, Y):
        """Return ``dcost/dAL`` (with the 1/n_samples), an array like ``AL``.

        Parameters
        ----------
        AL : array_like of float, shape (n_samples, n_outputs)
        Y : array_like, shape (n_samples, n_outputs)

        Returns
        -------
        numpy.ndarray
        """
        return self._gradient(Y, AL)

    def __call__(self, AL, Y):
        return self.forward(AL, Y)


class BinaryCrossentropy(Cost):
    """Binary cross-entropy for predictions in (0, 1)."""

    code = _kernels.BINARY_CROSS_ENTROPY


class CategoricalCrossentropy(Cost):
    """Categorical cross-entropy ``-(1/m) sum(Y log AL)`` for any number of classes."""

    code = _kernels.CROSS_ENTROPY
    accepts_class_indices = True


class MSE(Cost):
    """Mean (over samples) squared error, summed over outputs."""

    code = _kernels.SQUARED_ERROR


class MAE(Cost):
    """Mean (over samples) absolute error, summed over outputs; not smooth at AL == Y."""

    code = _kernels.ABSOLUTE_ERROR


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "cross_entropy": CategoricalCrossentropy, "mse": MSE, "mean_squared_error": MSE, "mae": MAE,
    "mean_absolute_error": MAE,
}


def get(cost):
    """Return a cost object from a lowercase name or an instance.

    Parameters
    ----------
    cost : str or object
        For example ``"mse"`` or ``costs.MSE()``; any object with ``forward(AL, Y)`` and
        ``backward(AL, Y)`` is used as it is.

    Returns
    -------
    object
        The cost.
    """
    if isinstance(cost, str):
        key = cost.strip().lower()
        if key not in _BY_NAME:
            raise ValueError(f"cost_type: unknown name {cost!r}; expected one of "
                             f"{', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[key]()
    if isinstance(cost, type):
        raise TypeError(f"cost_type: expected an instance such as {cost.__name__}(), got the "
                        "class itself")
    if callable(getattr(cost, "forward", None)) and callable(getattr(cost, "backward", None)):
        return cost
    raise TypeError("cost_type: expected a name or an object with forward(AL, Y) and "
                    f"backward(AL, Y), got {type(cost).__name__}")


class _LabelsFirst:
    """A user's ``(AL, Y)`` cost seen in fastgrad's ``(Y, Y_hat)`` order."""

    def __init__(self, cost):
        self.cost = cost

    def forward(self, Y, Y_hat):
        return self.cost.forward(Y_hat, Y)

    def backward(self, Y, Y_hat):
        return self.cost.backward(Y_hat, Y)

    def __repr__(self):
        return repr(self.cost)


def internal_loss(cost):
    """The ``(Y, Y_hat)``-ordered view of a cost, kept as ``Model.cost``.

    A built-in cost whose ``forward`` is fastgrad's gives a built-in :class:`Loss` with the
    same kernel code (so the model check recognises it); a CS189-style :class:`Loss` is
    already in that order; any other object is wrapped to swap its arguments.
    """
    # by name, not identity: a notebook's reload(costs) must not turn built-ins into strangers
    if is_fastgrad_instance(cost, "Cost") and is_fastgrad_function(type(cost).forward,
                                                                    "Cost.forward"):
        return loss_for_code(cost.code, accepts_class_indices=cost.accepts_class_indices,
                             name=repr(cost))
    if _labels_first(cost):
        return cost
    return _LabelsFirst(cost)


def _labels_first(cost):
    """A CS189-style loss: fastgrad's ``Loss`` but not a Keras-like ``Cost``."""
    return is_fastgrad_instance(cost, "Loss") and not is_fastgrad_instance(cost, "Cost")


def as_predictions_first(cost):
    """The ``(AL, Y)`` view of a cost (a CS189-style ``Loss`` has its arguments swapped)."""
    if _labels_first(cost):
        return _PredictionsFirst(cost)
    return cost


class _PredictionsFirst:
    def __init__(self, loss):
        self.loss = loss

    def forward(self, AL, Y):
        return self.loss.forward(Y, AL)

    def backward(self, AL, Y):
        return self.loss.backward(Y, AL)

    def __repr__(self):
        return repr(self.loss)
