"""Weight initializers used by the layers.

Each initializer is a function ``init(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64)``
returning an ``(n_in, n_out)`` array. :func:`gain_for` picks the gain that suits an
activation (the usual values: sqrt(2) for the ReLU family, 5/3 for tanh, 3/4 for SELU).
"""

import numpy as np

from ._validation import check_positive
from .kernels import activations as _codes

SQRT2 = float(np.sqrt(2.0))

__all__ = ["gain_for", "get", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
           "zeros"]

_GAINS = {
    _codes.RELU: np.sqrt(2.0), _codes.LEAKY_RELU: np.sqrt(2.0), _codes.ELU: np.sqrt(2.0),
    _codes.SILU: np.sqrt(2.0), _codes.SOFTPLUS: np.sqrt(2.0), _codes.TANH: 5.0 / 3.0,
    _codes.SELU: 0.75,
}


def gain_for(activation):
    """Return the initialization gain for an activation object (1.0 when unknown)."""
    return float(_GAINS.get(getattr(activation, "code", None), 1.0))


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _sizes(n_in, n_out, dtype):
    check_positive(n_in, "n_in", integer=True)
    check_positive(n_out, "n_out", integer=True)
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {np.dtype(dtype)}")


def glorot_uniform(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """Uniform on [-limit, limit] with limit = gain * sqrt(6 / (n_in + n_out))."""
    _sizes(n_in, n_out, dtype)
    limit = gain * np.sqrt(6.0 / (n_in + n_out))
    return _rng(rng).uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)


def glorot_normal(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """Normal with std = gain * sqrt(2 / (n_in + n_out))."""
    _sizes(n_in, n_out, dtype)
    std = gain * np.sqrt(2.0 / (n_in + n_out))
    return (_rng(rng).standard_normal((n_in, n_out)) * std).astype(dtype)


def he_uniform(n_in, n_out, *, gain=SQRT2, rng=None, dtype=np.float64):
    """Uniform on [-limit, limit] with limit = gain * sqrt(3 / n_in)."""
    _sizes(n_in, n_out, dtype)
    limit = gain * np.sqrt(3.0 / n_in)
    return _rng(rng).uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)


def he_normal(n_in, n_out, *, gain=SQRT2, rng=None, dtype=np.float64):
    """Normal with std = gain / sqrt(n_in)."""
    _sizes(n_in, n_out, dtype)
    return (_rng(rng).standard_normal((n_in, n_out)) * (gain / np.sqrt(n_in))).astype(dtype)


def zeros(n_in, n_out, *, gain=1.0, rng=None, dtype=np.float64):
    """All zeros (used for biases)."""
    _sizes(n_in, n_out, dtype)
    return np.zeros((n_in, n_out), dtype=dtype)


_BY_NAME = {"glorot_uniform": glorot_uniform, "xavier_uniform": glorot_uniform,
            "glorot_normal": glorot_normal, "xavier_normal": glorot_normal,
            "he_uniform": he_uniform, "he_normal": he_normal, "zeros": zeros}


def get(initializer):
    """Return an initializer function from its name, or a callable as it is."""
    if callable(initializer):
        return initializer
    if isinstance(initializer, str) and initializer.lower() in _BY_NAME:
        return _BY_NAME[initializer.lower()]
    raise ValueError(f"weight_init: expected a callable or one of {', '.join(sorted(_BY_NAME))},"
                     f" got {initializer!r}")
