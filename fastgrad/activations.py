"""Activation functions with forward and backward passes computed by Numba kernels.

Each activation has ``forward(X)`` returning ``f(X)`` and ``backward(X, dLdY)`` returning
``dL/dX``. All act elementwise except :class:`SoftMax`, which acts on each row (sample) along
the last axis. A layer's ``activation=`` accepts an instance or a lowercase name
(see :func:`get`).
"""

import numbers

import numpy as np

from . import kernels
from ._threads import SERIAL_BELOW, threads_for
from ._validation import as_float_array, check_positive, check_same_shape
from .kernels import activations as _codes
from .kernels import softmax as _softmax

__all__ = [
    "ELU",
    "SELU",
    "SLU",
    "Activation",
    "Arctan",
    "BentIdentity",
    "Gaussian",
    "Identity",
    "LeakyReLU",
    "Linear",
    "PiecewiseLinear",
    "ReLU",
    "ScaledActivation",
    "SiLU",
    "Sigmoid",
    "SoftMax",
    "Softmax",
    "Softplus",
    "Softsign",
    "TanH",
    "Tanh",
    "get",
]


class Activation:
    """Base class of the built-in activations.

    Subclasses set ``code`` (the kernel's activation code) and, where they have one, ``alpha``.
    Inputs of any shape are accepted; integer inputs are converted to float64; float32 stays
    float32.
    """

    code = _codes.IDENTITY
    alpha = 0.0

    def forward(self, X):
        """Return ``f(X)``, an array of the same shape and dtype as ``X``.

        Parameters
        ----------
        X : array_like of float
            Pre-activations.

        Returns
        -------
        numpy.ndarray
            The activations.
        """
        X = as_float_array(X, "X", allow_int=True, writeable=True)
        out = np.empty_like(X)
        with threads_for(X.size):
            kernels.activations.activation_forward(self.code, float(self.alpha),
                                                   X.reshape(-1), out.reshape(-1))
        return out

    def backward(self, X, dLdY=None):
        """Return ``dL/dX = f'(X) * dLdY``, or the derivative ``f'(X)`` when ``dLdY`` is omitted.

        Parameters
        ----------
        X : array_like of float
            The input that was given to ``forward``.
        dLdY : array_like of float, optional
            Gradient of the loss with respect to the output, same shape as ``X``. Omitted, the
            elementwise derivative ``f'(X)`` itself is returned (the Keras-like form
            ``backward(Z)``, which a layer multiplies by ``dA``).

        Returns
        -------
        numpy.ndarray
            Gradient of the loss with respect to ``X`` (or ``f'(X)``), same shape and dtype.
        """
        X = as_float_array(X, "X", allow_int=True, writeable=True)
        if dLdY is None:
            dLdY = np.ones_like(X)
        dLdY = as_float_array(dLdY, "dLdY", allow_int=True, dtype=X.dtype, writeable=True)
        check_same_shape(X, "X", dLdY, "dLdY")
        out = np.empty_like(X)
        with threads_for(X.size):
            kernels.activations.activation_backward(self.code, float(self.alpha),
                                                    X.reshape(-1), dLdY.reshape(-1),
                                                    out.reshape(-1))
        return out

    def __call__(self, X):
        return self.forward(X)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and self.alpha == other.alpha

    def __hash__(self):
        return hash((type(self), self.alpha))


class Identity(Activation):
    """f(x) = k * x (k = 1 unless given: ``Linear(k=2.0)``).

    Parameters
    ----------
    k : float
        Slope. With k != 1 the activation is computed in NumPy around the kernel (see
        :class:`ScaledActivation`).
    """

    code = _codes.IDENTITY

    def __new__(cls, k=1.0):
        k = _real(k, "k")
        if k == 1.0:
            return super().__new__(cls)
        return ScaledActivation(Identity(), inner_scale=1.0, outer_scale=k,
                                label=f"Linear(k={k!r})")

    def __init__(self, k=1.0):
        pass


class Sigmoid(Activation):
    """f(x) = 1 / (1 + exp(-c x)), evaluated without overflow (c = 1 unless given).

    Parameters
    ----------
    c : float
        Steepness; ``Sigmoid(c)`` has derivative ``c * s * (1 - s)``.
    """

    code = _codes.SIGMOID

    def __new__(cls, c=1.0):
        c = _real(c, "c")
        if c == 1.0:
            return super().__new__(cls)
        return ScaledActivation(Sigmoid(), inner_scale=c, outer_scale=1.0,
                                label=f"Sigmoid(c={c!r})")

    def __init__(self, c=1.0):
        pass


class TanH(Activation):
    """f(x) = tanh(x)."""

    code = _codes.TANH


class ReLU(Activation):
    """f(x) = max(x, 0); f'(0) is taken as 0."""

    code = _codes.RELU


class _WithAlpha(Activation):
    def __init__(self, alpha):
        self.alpha = float(check_positive(alpha, "alpha"))

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha!r})"


class LeakyReLU(_WithAlpha):
    """f(x) = x for x > 0, alpha * x otherwise."""

    code = _codes.LEAKY_RELU

    def __init__(self, alpha=0.01):
        super().__init__(alpha)


class ELU(_WithAlpha):
    """f(x) = x for x > 0, alpha * (exp(x) - 1) otherwise."""

    code = _codes.ELU

    def __init__(self, alpha=1.0):
        super().__init__(alpha)


class SELU(Activation):
    """Scaled ELU ``scale * (x if x > 0 else alpha * (exp(x) - 1))``.

    Parameters
    ----------
    alpha, scale : float, optional
        Default to the self-normalising constants alpha = 1.6733..., scale = 1.0507...
        (the Keras-like original defaulted to 1 and 1, which is plain ELU; pass them to get
        that). Other values are computed around the ELU kernel (:class:`ScaledActivation`).
    """

    code = _codes.SELU

    def __new__(cls, alpha=None, scale=None):
        alpha = _codes.SELU_ALPHA if alpha is None else _real(alpha, "alpha")
        scale = _codes.SELU_LAMBDA if scale is None else _real(scale, "scale")
        if alpha == _codes.SELU_ALPHA and scale == _codes.SELU_LAMBDA:
            return super().__new__(cls)
        return ScaledActivation(ELU(alpha), inner_scale=1.0, outer_scale=scale,
                                label=f"SELU(alpha={alpha!r}, scale={scale!r})")

    def __init__(self, alpha=None, scale=None):
        pass


class SiLU(Activation):
    """f(x) = x * sigmoid(x) (also called swish)."""

    code = _codes.SILU


class Softplus(Activation):
    """f(x) = log(1 + exp(x)), as max(x, 0) + log1p(exp(-|x|)) so large |x| cannot overflow."""

    code = _codes.SOFTPLUS


class Softsign(Activation):
    """f(x) = x / (1 + |x|)."""

    code = _codes.SOFTSIGN


class Arctan(Activation):
    """f(x) = arctan(x)."""

    code = _codes.ARCTAN


class BentIdentity(Activation):
    """f(x) = (sqrt(x^2 + 1) - 1) / 2 + x."""

    code = _codes.BENT_IDENTITY


class Gaussian(Activation):
    """f(x) = exp(-x^2)."""

    code = _codes.GAUSSIAN


class PiecewiseLinear(_WithAlpha):
    """f(x) = clip(x / alpha, -1, 1)."""

    code = _codes.PIECEWISE_LINEAR

    def __init__(self, alpha=1.0):
        super().__init__(alpha)


class SoftMax(Activation):
    """Softmax over the last axis: each row (sample) sums to one.

    Stable for large inputs (the row maximum is subtracted first). ``backward`` applies the
    full Jacobian of each row, ``dX = s * (dLdY - sum(dLdY * s))``.
    """

    code = _codes.SOFTMAX

    @staticmethod
    def _as_rows(X, name):
        if X.ndim == 0:
            raise ValueError(f"{name}: expected at least 1 dimension (the classes), got a scalar")
        return X.reshape(-1, X.shape[-1])

    def forward(self, X):
        """Return softmax of each row of ``X`` (last axis), same shape and dtype."""
        X = as_float_array(X, "X", allow_int=True, min_ndim=1, writeable=True)
        out = np.empty_like(X)
        if X.size:
            _softmax_into(self._as_rows(X, "X"), self._as_rows(out, "X"))
        return out

    def backward(self, X, dLdY=None):
        """Return ``dL/dX`` given the input ``X`` of ``forward`` and ``dL/dY``.

        Raises
        ------
        TypeError
            When ``dLdY`` is omitted: softmax couples the outputs of a row, so it has no
            elementwise derivative ``f'(X)`` to return (the Keras-like original returned 1,
            which is wrong unless the cost's gradient already folds the softmax in).
        """
        if dLdY is None:
            raise TypeError("dLdY: SoftMax.backward needs dL/dY (backward(X, dLdY)): softmax "
                            "has a full Jacobian per row, not an elementwise derivative f'(X)")
        X = as_float_array(X, "X", allow_int=True, min_ndim=1, writeable=True)
        dLdY = as_float_array(dLdY, "dLdY", allow_int=True, dtype=X.dtype, writeable=True)
        check_same_shape(X, "X", dLdY, "dLdY")
        out = np.empty_like(X)
        if X.size:
            rows = self._as_rows(out, "X")
            _softmax_into(self._as_rows(X, "X"), rows)   # s, then overwritten by dL/dX
            dLdY = self._as_rows(dLdY, "dLdY")
            if X.size < SERIAL_BELOW:
                _softmax.softmax_rows_backward_serial(rows, dLdY, rows)
            else:
                with threads_for(X.size):
                    _softmax.softmax_rows_backward(rows, dLdY, rows)
        return out


def _softmax_into(X, out):
    """out = softmax of each row of the 2-D ``X``, with NumPy's SIMD exp (kernels.softmax).

    Small arrays take the kernels' serial builds: no thread count to set, no pool to wake.
    """
    if X.size < SERIAL_BELOW:
        _softmax.shift_rows_serial(X, out)
        np.exp(out, out=out)
        _softmax.normalize_rows_serial(out)
    else:
        with threads_for(X.size):
            _softmax.shift_rows(X, out)
            np.exp(out, out=out)
            _softmax.normalize_rows(out)


def _real(value, name):
    """A finite real constructor parameter, as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not np.isfinite(value):
        raise TypeError(f"{name}: expected a finite real number, got {value!r} "
                        f"({type(value).__name__})")
    return float(value)


class ScaledActivation:
    """``outer_scale * g(inner_scale * x)`` for a built-in elementwise activation ``g``.

    What ``Linear(k)``, ``Sigmoid(c)`` and ``SELU(alpha, scale)`` return for non-default
    parameters. It is a user-style activation (``forward(X)``, ``backward(X, dLdY=None)``),
    so layers call it instead of their fused kernels and ``gradient_check`` differences it
    as a black box.

    Parameters
    ----------
    inner : Activation
        The built-in elementwise activation ``g``.
    inner_scale, outer_scale : float
        The scales of its input and of its output.
    label : str, optional
        The ``repr``.
    """

    def __init__(self, inner, *, inner_scale=1.0, outer_scale=1.0, label=None):
        if not isinstance(inner, Activation) or isinstance(inner, SoftMax):
            raise TypeError(f"inner: expected a built-in elementwise activation, got {inner!r}")
        self.inner = inner
        self.inner_scale = _real(inner_scale, "inner_scale")
        self.outer_scale = _real(outer_scale, "outer_scale")
        self.label = label

    def forward(self, X):
        """Return ``outer_scale * g(inner_scale * X)``."""
        X = as_float_array(X, "X", allow_int=True)
        return self.inner.forward(X * X.dtype.type(self.inner_scale)) * \
            X.dtype.type(self.outer_scale)

    def backward(self, X, dLdY=None):
        """Return ``f'(X) * dLdY``, or ``f'(X)`` when ``dLdY`` is omitted."""
        X = as_float_array(X, "X", allow_int=True)
        scale = X.dtype.type(self.inner_scale * self.outer_scale)
        derivative = self.inner.backward(X * X.dtype.type(self.inner_scale)) * scale
        if dLdY is None:
            return derivative
        dLdY = as_float_array(dLdY, "dLdY", allow_int=True, dtype=X.dtype)
        check_same_shape(X, "X", dLdY, "dLdY")
        return derivative * dLdY

    def __call__(self, X):
        return self.forward(X)

    def __repr__(self):
        return self.label or (f"ScaledActivation({self.inner!r}, inner_scale="
                              f"{self.inner_scale!r}, outer_scale={self.outer_scale!r})")


# Names used by the Keras-like API.
Linear = Identity
Tanh = TanH
SLU = SiLU
Softmax = SoftMax

_BY_NAME = {
    "identity": Identity, "linear": Identity, "sigmoid": Sigmoid, "tanh": TanH, "relu": ReLU,
    "leaky_relu": LeakyReLU, "leakyrelu": LeakyReLU, "elu": ELU, "selu": SELU, "silu": SiLU,
    "slu": SiLU, "swish": SiLU, "softplus": Softplus, "softsign": Softsign, "arctan": Arctan,
    "bent_identity": BentIdentity, "bentidentity": BentIdentity, "gaussian": Gaussian,
    "piecewise_linear": PiecewiseLinear, "piecewiselinear": PiecewiseLinear,
    "softmax": SoftMax,
}


def get(activation):
    """Return an activation object from a name, an instance, or a user's own object.

    Parameters
    ----------
    activation : str or object
        A lowercase name such as ``"relu"`` or ``"leaky_relu"``, a built-in instance, or any
        object with ``forward(X)`` and ``backward(X, dLdY)`` methods (used as it is).

    Returns
    -------
    object
        The activation.

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For an object without ``forward`` and ``backward``.
    """
    if isinstance(activation, str):
        key = activation.strip().lower()
        if key not in _BY_NAME:
            known = ", ".join(sorted(_BY_NAME))
            raise ValueError(f"activation: unknown name {activation!r}; expected one of {known}")
        return _BY_NAME[key]()
    if isinstance(activation, type):
        raise TypeError(f"activation: expected an instance such as {activation.__name__}(), "
                        f"got the class {activation.__name__}")
    if callable(getattr(activation, "forward", None)) and callable(
            getattr(activation, "backward", None)):
        return activation
    raise TypeError("activation: expected a name or an object with forward(X) and "
                    f"backward(X, dLdY), got {type(activation).__name__}")
