"""Costs of the Keras-like API (each a :class:`fastgrad.losses.Loss`).

Each cost is averaged over the ``n_samples`` rows and summed over outputs:

* ``BinaryCrossentropy``: term = -(y log y_hat + (1 - y) log(1 - y_hat))
* ``CategoricalCrossentropy``: term = -y log y_hat, for any number of classes
* ``MSE``: term = (y_hat - y)^2
* ``MAE``: term = |y_hat - y|
"""

from .kernels import losses as _kernels
from .losses import CrossEntropy, Loss

__all__ = ["MAE", "MSE", "BinaryCrossentropy", "CategoricalCrossentropy", "Loss", "get"]


class BinaryCrossentropy(Loss):
    """Binary cross-entropy for predictions in (0, 1)."""

    code = _kernels.BINARY_CROSS_ENTROPY


class CategoricalCrossentropy(CrossEntropy):
    """Categorical cross-entropy ``-(1/m) sum(Y log Y_hat)`` for any number of classes."""

    def __init__(self):
        super().__init__("categorical_crossentropy")

    def __repr__(self):
        return "CategoricalCrossentropy()"


class MSE(Loss):
    """Mean (over samples) squared error, summed over outputs."""

    code = _kernels.SQUARED_ERROR


class MAE(Loss):
    """Mean (over samples) absolute error, summed over outputs; not smooth at Y_hat == Y."""

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
    cost : str or Loss
        For example ``"mse"`` or ``costs.MSE()``; any object with ``forward(Y, Y_hat)`` and
        ``backward(Y, Y_hat)`` is used as it is.

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
    raise TypeError("cost_type: expected a name or an object with forward(Y, Y_hat) and "
                    f"backward(Y, Y_hat), got {type(cost).__name__}")
