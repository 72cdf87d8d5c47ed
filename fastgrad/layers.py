"""Layers: :class:`FullyConnected` (also :class:`Dense`) and :class:`Dropout`.

A dense layer computes ``Z = X @ W + b`` and ``Y = act(Z)`` with ``X`` of shape
``(n_samples, n_in)``, ``W`` of shape ``(n_in, n_out)`` and ``b`` of shape ``(1, n_out)``.
The matrix products use NumPy's BLAS; bias, activation and their gradients run in the Numba
kernels of ``fastgrad.kernels.dense``.
"""

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from ._threads import threads_for
from ._validation import as_float_array, check_positive
from .kernels import dense as _dense

__all__ = ["Dense", "Dropout", "FullyConnected", "Layer"]


class Layer:
    """Base class: ``forward(X)``, ``backward(dLdY)``, ``parameters``, ``gradients``."""

    def __init__(self):
        self.parameters = {}
        self.gradients = {}
        self.cache = {}
        self.n_in = None

    def build(self, n_in, *, dtype=np.float64, rng=None):
        """Create the parameters for inputs with ``n_in`` features; return ``n_out``."""
        self.n_in = n_in
        return n_in


class FullyConnected(Layer):
    """Dense layer ``Y = act(X @ W + b)``.

    Parameters
    ----------
    n_out : int
        Number of output features.
    activation : str or object
        A lowercase name (``"relu"``), a built-in activation instance, or any object with
        ``forward(X)`` and ``backward(X, dLdY)``.
    weight_init : str or callable
        Initializer of ``W`` (default Glorot/Xavier uniform with a gain suited to the
        activation); ``b`` starts at zero.
    seed : int or numpy.random.Generator, optional
        Source of randomness for the initial weights.

    Notes
    -----
    Parameters are created on the first ``forward(X)`` from ``X.shape[1]`` and ``X.dtype``
    (float32 input gives a float32 layer), or by :meth:`build`.
    """

    def __init__(self, n_out, activation="identity", *, weight_init="glorot_uniform", seed=None):
        super().__init__()
        self.n_out = int(check_positive(n_out, "n_out", integer=True))
        self.activation = _activations.get(activation)
        self.weight_init = _initializers.get(weight_init)
        self._rng = np.random.default_rng(seed)

    @property
    def _builtin(self):
        return isinstance(self.activation, _activations.Activation)

    def build(self, n_in, *, dtype=np.float64, rng=None):
        """Create ``W`` (n_in, n_out) and ``b`` (1, n_out); return ``n_out``."""
        n_in = int(check_positive(n_in, "n_in", integer=True))
        rng = self._rng if rng is None else rng
        gain = _initializers.gain_for(self.activation)
        self.n_in = n_in
        self.parameters = {
            "W": np.ascontiguousarray(
                self.weight_init(n_in, self.n_out, gain=gain, rng=rng, dtype=dtype)),
            "b": np.zeros((1, self.n_out), dtype=dtype),
        }
        self.gradients = {name: np.zeros_like(value) for name, value in self.parameters.items()}
        self.cache = {}
        return self.n_out

    def _input(self, X):
        X = as_float_array(X, "X", ndim=2, allow_int=True)
        if not self.parameters:
            self.build(X.shape[1], dtype=X.dtype)
        if X.shape[1] != self.n_in:
            raise ValueError(f"X: expected shape (n_samples, {self.n_in}) for this layer, "
                             f"got {X.shape}")
        return np.ascontiguousarray(X, dtype=self.parameters["W"].dtype)

    def _forward(self, X, W, b):
        """Pure forward pass: return ``(Y, Z)`` for given parameters, touching no state."""
        Z = np.ascontiguousarray(X @ W)
        b = np.ascontiguousarray(b, dtype=Z.dtype).reshape(-1)
        if self._builtin:
            Y = np.empty_like(Z)
            with threads_for(Z.size):
                _dense.bias_activation_forward(self.activation.code,
                                               float(self.activation.alpha), Z, b, Y)
        else:
            Z += b
            Y = np.asarray(self.activation.forward(Z))
        return Y, Z

    def forward(self, X):
        """Return ``act(X @ W + b)`` and keep what ``backward`` needs.

        Parameters
        ----------
        X : array_like of float, shape (n_samples, n_in)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_out)
        """
        X = self._input(X)
        Y, Z = self._forward(X, self.parameters["W"], self.parameters["b"])
        self.cache = {"X": X, "Z": Z}
        return Y

    def backward(self, dLdY):
        """Fill ``gradients["W"]`` and ``gradients["b"]``; return ``dL/dX``.

        Parameters
        ----------
        dLdY : array_like of float, shape (n_samples, n_out)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_in)
        """
        if "Z" not in self.cache:
            raise RuntimeError("backward: call forward(X) before backward(dLdY)")
        X, Z = self.cache["X"], self.cache["Z"]
        dLdY = as_float_array(dLdY, "dLdY", ndim=2, dtype=Z.dtype)
        if dLdY.shape != Z.shape:
            raise ValueError(f"dLdY: expected shape {Z.shape} (the layer's output), "
                             f"got {dLdY.shape}")
        if self._builtin:
            dZ = np.empty_like(Z)
            with threads_for(Z.size):
                _dense.activation_backward_rows(self.activation.code,
                                                float(self.activation.alpha), Z, dLdY, dZ)
        else:
            dZ = np.ascontiguousarray(self.activation.backward(Z, dLdY), dtype=Z.dtype)
        db = np.empty(self.n_out, dtype=Z.dtype)
        with threads_for(dZ.size):
            _dense.column_sums(dZ, db)
        W = self.parameters["W"]
        self.gradients = {"W": X.T @ dZ, "b": db.reshape(1, -1)}
        return dZ @ W.T

    def forward_with_param(self, name, X):
        """Return a function of one parameter's value that runs the forward pass on ``X``.

        The function leaves the layer's own parameters and cache untouched, so it can be
        handed to :func:`fastgrad.check_gradients`. The other parameters are taken as they are
        now (copied).

        Parameters
        ----------
        name : {"W", "b"}
            The parameter the function takes.
        X : array_like of float, shape (n_samples, n_in)
            The fixed input.

        Returns
        -------
        callable
            ``f(value) -> act(X @ W + b)`` with the named parameter replaced by ``value``.
        """
        X = self._input(X)
        if name not in self.parameters:
            raise ValueError(f"name: expected one of {sorted(self.parameters)}, got {name!r}")
        fixed = {key: value.copy() for key, value in self.parameters.items()}
        shape = fixed[name].shape

        def forward_param(value):
            value = as_float_array(value, name)
            if value.shape != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {value.shape}")
            params = dict(fixed)
            params[name] = value
            dtype = np.result_type(value.dtype, X.dtype)
            Y, _ = self._forward(X.astype(dtype, copy=False), params["W"].astype(dtype, copy=False),
                                 params["b"].astype(dtype, copy=False))
            return Y

        if self._builtin:
            from ._structure import DenseParameter

            forward_param._fastgrad_structure = DenseParameter(
                name=name, X=X, W=fixed["W"], b=fixed["b"], activation=self.activation)
        return forward_param

    def __repr__(self):
        return f"{type(self).__name__}(n_out={self.n_out}, activation={self.activation!r})"


class Dense(FullyConnected):
    """Keras-like name of :class:`FullyConnected`: ``Dense(units, activation)``."""

    def __init__(self, units, activation="linear", *, weight_init="glorot_uniform", seed=None):
        super().__init__(units, activation, weight_init=weight_init, seed=seed)

    @property
    def units(self):
        return self.n_out

    def __repr__(self):
        return f"Dense(units={self.n_out}, activation={self.activation!r})"


class Dropout(Layer):
    """Inverted dropout: identity at inference; in training, zero a fraction ``rate`` of inputs
    and scale the rest by ``1 / (1 - rate)``.

    Parameters
    ----------
    rate : float
        Fraction of inputs dropped in training, in [0, 1).
    seed : int or numpy.random.Generator, optional
    """

    def __init__(self, rate=0.5, *, seed=None):
        super().__init__()
        rate = check_positive(rate, "rate", allow_zero=True)
        if rate >= 1:
            raise ValueError(f"rate: expected a value in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.training = False
        self._rng = np.random.default_rng(seed)

    def forward(self, X):
        """Return ``X`` at inference; a masked, rescaled ``X`` when ``training`` is True."""
        X = as_float_array(X, "X", allow_int=True)
        if not self.training or self.rate == 0:
            self.cache = {"mask": None}
            return X
        keep = self._rng.random(X.shape) >= self.rate
        mask = keep.astype(X.dtype) / X.dtype.type(1.0 - self.rate)
        self.cache = {"mask": mask}
        return X * mask

    def backward(self, dLdY):
        """Return ``dL/dX`` (the same mask as the last forward pass)."""
        mask = self.cache.get("mask")
        dLdY = as_float_array(dLdY, "dLdY")
        return dLdY if mask is None else dLdY * mask

    def __repr__(self):
        return f"Dropout(rate={self.rate})"


