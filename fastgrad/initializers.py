"""Weight initializers of the Keras-like API: ``init(n_in, n_out) -> {"W": ..., "b": ...}``.

Each initializer returns a dictionary with the weights ``W`` of shape ``(n_in, n_out)`` and
the biases ``b`` of shape ``(1, n_out)`` (zeros, except for :func:`ones`), and draws from
NumPy's global generator unless given ``rng=``, so ``np.random.seed(0)`` makes a model's
initial weights reproducible (the same draws as the plain-NumPy original it replaces). A layer
accepts any callable of this form, or one that returns the weight array alone.

:func:`gain_for` picks the gain that suits an activation (sqrt(2) for the ReLU family, 5/3 for
tanh, 3/4 for SELU); ``FullyConnected`` uses it, ``Dense`` keeps the plain formulas.
"""

import numbers

import numpy as np

from ._validation import check_positive
from .kernels import activations as _codes

SQRT2 = float(np.sqrt(2.0))

__all__ = ["gain_for", "get", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
           "normal", "ones", "uniform", "xavier_normal", "xavier_uniform", "zeros"]

_GAINS = {
    _codes.RELU: SQRT2, _codes.LEAKY_RELU: SQRT2, _codes.ELU: SQRT2,
    _codes.SILU: SQRT2, _codes.SOFTPLUS: SQRT2, _codes.TANH: 5.0 / 3.0,
    _codes.SELU: 0.75,
}


def gain_for(activation):
    """Return the initialization gain for an activation object (1.0 when unknown)."""
    return float(_GAINS.get(getattr(activation, "code", None), 1.0))


def _source(rng):
    """NumPy's global generator (None), a seeded RandomState (int), or the generator given."""
    if rng is None:
        return np.random
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.RandomState(int(rng))
    raise TypeError(f"rng: expected None, an int seed, a numpy.random.Generator or "
                    f"RandomState, got {type(rng).__name__}")


def _validate(n_in, n_out, gain, dtype):
    check_positive(n_in, "n_in", integer=True)
    check_positive(n_out, "n_out", integer=True)
    check_positive(gain, "gain")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {np.dtype(dtype)}")


def _pack(W, n_out, dtype, bias=0.0):
    return {"W": np.ascontiguousarray(W, dtype=dtype),
            "b": np.full((1, n_out), bias, dtype=dtype)}


def zeros(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """All-zero weights and biases (every unit then learns the same thing).

    Parameters
    ----------
    n_in, n_out : int
        Inputs and outputs of the layer.
    gain : float
        Unused; accepted so every initializer has one signature.
    rng : None, int, numpy.random.Generator or RandomState
        Unused here.
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    dict
        ``{"W": (n_in, n_out) array, "b": (1, n_out) array}``.
    """
    _validate(n_in, n_out, gain, dtype)
    return _pack(np.zeros((n_in, n_out)), n_out, dtype)


def ones(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """All-one weights and biases (parameters as in :func:`zeros`)."""
    _validate(n_in, n_out, gain, dtype)
    return _pack(np.ones((n_in, n_out)), n_out, dtype, bias=1.0)


def normal(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """Weights ``gain * N(0, 1)``, zero biases (parameters as in :func:`zeros`)."""
    _validate(n_in, n_out, gain, dtype)
    return _pack(_source(rng).standard_normal((n_in, n_out)) * gain, n_out, dtype)


def uniform(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """Weights uniform on ``[-gain, gain]``, zero biases (parameters as in :func:`zeros`)."""
    _validate(n_in, n_out, gain, dtype)
    return _pack(_source(rng).uniform(-gain, gain, (n_in, n_out)), n_out, dtype)


def glorot_normal(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """Weights ``N(0, 1) * gain * sqrt(2 / (n_in + n_out))`` (Glorot/Xavier), zero biases."""
    _validate(n_in, n_out, gain, dtype)
    std = np.sqrt(2.0 / (n_out + n_in))
    return _pack(_source(rng).standard_normal((n_in, n_out)) * std * gain, n_out, dtype)


def glorot_uniform(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """Weights uniform on ``±gain * sqrt(6 / (n_in + n_out))`` (Glorot/Xavier), zero biases.

    Parameters
    ----------
    n_in, n_out : int
        Inputs and outputs of the layer.
    gain : float
        Multiplies the limit (1 is the plain formula).
    rng : None, int, numpy.random.Generator or RandomState
        None draws from NumPy's global generator (``np.random.seed`` makes it reproducible).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    dict
        ``{"W": (n_in, n_out) array, "b": (1, n_out) zeros}``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import initializers
    >>> np.random.seed(0)
    >>> params = initializers.glorot_uniform(3, 2)
    >>> params["W"].shape, params["b"].shape
    ((3, 2), (1, 2))
    """
    _validate(n_in, n_out, gain, dtype)
    limit = np.sqrt(6.0 / (n_out + n_in)) * gain
    return _pack(_source(rng).uniform(-limit, limit, (n_in, n_out)), n_out, dtype)


def he_normal(n_in, n_out, *, gain=SQRT2, rng=None, dtype=np.float64):
    """Weights ``N(0, 1) * gain / sqrt(n_in)`` (He; gain sqrt(2) by default), zero biases."""
    _validate(n_in, n_out, gain, dtype)
    std = np.sqrt(2.0 / n_in) * (gain / SQRT2)
    return _pack(_source(rng).standard_normal((n_in, n_out)) * std, n_out, dtype)


def he_uniform(n_in, n_out, *, gain=SQRT2, rng=None, dtype=np.float64):
    """Weights uniform on ``±gain * sqrt(3 / n_in)`` (He; gain sqrt(2)), zero biases."""
    _validate(n_in, n_out, gain, dtype)
    limit = np.sqrt(6.0 / n_in) * (gain / SQRT2)
    return _pack(_source(rng).uniform(-limit, limit, (n_in, n_out)), n_out, dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal

_BY_NAME = {"glorot_uniform": glorot_uniform, "xavier_uniform": glorot_uniform,
            "glorot_normal": glorot_normal, "xavier_normal": glorot_normal,
            "he_uniform": he_uniform, "he_normal": he_normal, "kaiming_uniform": he_uniform,
            "kaiming_normal": he_normal, "normal": normal, "uniform": uniform,
            "zeros": zeros, "ones": ones}


def get(initializer):
    """Return an initializer from its name (``"he_normal"``), or a callable as it is.

    Parameters
    ----------
    initializer : str or callable
        A name listed in ``initializers._BY_NAME`` or a function ``init(n_in, n_out)``
        returning ``{"W": ..., "b": ...}`` or the weight array.

    Returns
    -------
    callable
    """
    if callable(initializer):
        return initializer
    if isinstance(initializer, str) and initializer.strip().lower() in _BY_NAME:
        return _BY_NAME[initializer.strip().lower()]
    raise ValueError(f"initializer: expected a callable or one of {', '.join(sorted(_BY_NAME))},"
                     f" got {initializer!r}")
