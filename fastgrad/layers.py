"""Layers: :class:`FullyConnected` (also :class:`Dense`) and :class:`Dropout`.

A dense layer computes ``Z = X @ W + b`` and ``Y = act(Z)`` with ``X`` of shape
``(n_samples, n_in)``, ``W`` of shape ``(n_in, n_out)`` and ``b`` of shape ``(1, n_out)``.
The matrix products use NumPy's BLAS; the bias and activation (forward) and the activation
derivative with the bias gradient (backward) run as one fused Numba pass each, on the calling
thread for small layers and in parallel for large ones.
"""

import inspect

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from ._identity import is_fastgrad_function
from ._threads import threads_for
from ._validation import as_float_array, check_positive
from .kernels import dense as _dense

__all__ = ["Dense", "Dropout", "FullyConnected", "Layer", "initialize_layer"]

#: Elements of work from which the fused epilogues run in Numba's thread pool. Below it they
#: run on the calling thread: waking the pool (~35 us) and competing with BLAS's own threads
#: costs more than a pass over a few million numbers. (On the shared 2-core development
#: machine under load, the forward and backward epilogues of a 1024x256 ReLU layer took
#: 1.27 ms in the pool against 0.14 ms on the calling thread, and 12.4 ms against 1.6 ms at
#: 4096x256, best of 20 interleaved: a region waits for its slowest, descheduled, thread.)
PARALLEL_FROM = 2**22


def bias_activation(code, alpha, Z, b, Y):
    """Z += b; Y = act(Z) (fused, serial or parallel by size)."""
    if Z.size < PARALLEL_FROM:
        _dense.bias_activation_serial(code, alpha, Z, b, Y)
    else:
        with threads_for(Z.size):
            _dense.bias_activation_parallel(code, alpha, Z, b, Y)


def activation_backward_bias(code, alpha, Z, dLdY, dZ, db):
    """dZ = f'(Z) * dLdY; db = column sums of dZ (fused, serial or parallel by size)."""
    if Z.size < PARALLEL_FROM:
        _dense.activation_backward_bias_serial(code, alpha, Z, dLdY, dZ, db)
    else:
        with threads_for(Z.size):
            _dense.activation_backward_bias_parallel(code, alpha, Z, dLdY, dZ, db)


def weight_gradient(X, dZ, out=None):
    """``X.T @ dZ``, the weight gradient, through whichever NumPy call is faster for its shape.

    One sample (an outer product): ``np.dot``; ``matmul`` forms outer products without BLAS
    (3.5x slower). More than one, for a gradient of at least ``MATMUL_FROM`` elements:
    ``np.matmul``, the same BLAS product with the same result to the bit, but faster for the
    short inner dimension of a small batch: a 784x256 float64 gradient from 2 and 8 samples
    took 108 and 224 us (median) against np.dot's 150 and 249 us, matmul faster in 95% and 78%
    of 40 interleaved rounds; from 256 samples the two are even. Small gradients keep np.dot,
    whose call costs ~1 us less (16x8 from 32 samples: 1.8 vs 2.9 us).
    """
    if X.shape[0] == 1 or X.shape[1] * dZ.shape[1] < MATMUL_FROM:
        return np.dot(X.T, dZ, out=out)
    return np.matmul(X.T, dZ, out=out)


#: Weight-gradient elements from which ``weight_gradient`` calls ``np.matmul``.
MATMUL_FROM = 2**15


_KERNEL_TYPES = {}


def kernel_activation(activation):
    """True when both passes of ``activation`` are fastgrad's own (the fused kernels apply)."""
    kind = type(activation)   # by name: reload(activations) keeps built-ins built in
    known = _KERNEL_TYPES.get(kind)
    if known is None:          # decided once per class: a layer asks on every pass
        known = _KERNEL_TYPES[kind] = is_fastgrad_function(
            getattr(kind, "forward", None), "Activation.forward", "SoftMax.forward") and \
            is_fastgrad_function(getattr(kind, "backward", None), "Activation.backward",
                                 "SoftMax.backward")
    return known


def _takes_upstream(activation):
    """Whether a user's ``backward`` takes ``(X, dLdY)`` (CS189 style) or ``(Z)`` alone."""
    try:
        params = inspect.signature(activation.backward).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _random01(source, shape):
    if isinstance(source, np.random.Generator):
        return source.random(shape)
    return source.random_sample(shape)


def _source(seed):
    """NumPy's global generator unless a seed or generator is given."""
    if seed is None:
        return None
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    return np.random.RandomState(check_positive(seed, "seed", integer=True, allow_zero=True))


class Layer:
    """Base class: ``forward(X)``, ``backward(dLdY)``, ``parameters``, ``gradients``."""

    #: Whether the layer has parameters to learn (the Keras-like API's flag).
    trainable = False

    def __init__(self):
        self.parameters = {}
        self.gradients = {}
        self.cache = {}
        self.n_in = None
        self.training = False

    def build(self, n_in, *, dtype=np.float64, rng=None):
        """Create the parameters for inputs with ``n_in`` features; return ``n_out``."""
        self.n_in = n_in
        return n_in


class FullyConnected(Layer):
    """Dense layer ``Y = act(X @ W + b)`` (the CS189-style ``FullyConnected``).

    Parameters
    ----------
    n_out : int
        Number of output features.
    activation : str or object
        A lowercase name (``"relu"``), a built-in activation instance, or any object with
        ``forward(X)`` and ``backward(X, dLdY)`` (or ``backward(Z)`` returning f'(Z)).
    weight_init : str or callable
        Initializer of ``W`` and ``b``: a name (``"xavier_uniform"``, ``"xavier_normal"``,
        ``"he_uniform"``, ``"he_normal"``, ``"uniform"``, ``"normal"``, ``"zeros"``,
        ``"ones"``) or a callable ``init(n_in, n_out)`` returning ``{"W", "b"}`` or ``W``.
        fastgrad's Glorot initializers get a gain suited to the activation (sqrt(2) for ReLU,
        5/3 for tanh).
    seed : int or numpy.random.Generator, optional
        Source of the initial weights; by default NumPy's global generator, so
        ``np.random.seed`` makes them reproducible.

    Notes
    -----
    Parameters are created on the first ``forward(X)`` from ``X.shape[1]`` and ``X.dtype``
    (float32 input gives a float32 layer), or by :meth:`build`. ``cache`` holds ``X`` and the
    pre-activation ``Z`` of the last forward pass; ``gradients`` the last backward pass's
    ``W`` and ``b`` gradients.
    """

    trainable = True
    #: Whether fastgrad's Glorot initializers scale by the activation's gain.
    _activation_gain = True

    def __init__(self, n_out, activation="identity", weight_init="xavier_uniform", *,
                 seed=None):
        super().__init__()
        self.n_out = int(check_positive(n_out, "n_out", integer=True))
        self.activation = _activations.get(activation)
        self.weight_init = _initializers.get(weight_init)
        self._rng = _source(seed)

    @property
    def _builtin(self):
        return kernel_activation(self.activation)

    def build(self, n_in, *, dtype=np.float64, rng=None):
        """Create ``W`` (n_in, n_out) and ``b`` (1, n_out); return ``n_out``.

        Parameters
        ----------
        n_in : int
            Number of input features.
        dtype : {numpy.float64, numpy.float32}
        rng : numpy.random.Generator or RandomState, optional
            Overrides the layer's own source (the model passes one when seeded).

        Returns
        -------
        int
            ``n_out``, the next layer's ``n_in``.
        """
        n_in = int(check_positive(n_in, "n_in", integer=True))
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        rng = self._rng if rng is None else rng
        init = self.weight_init
        if is_fastgrad_function(init, *_initializers.__all__):
            options = {"rng": rng, "dtype": dtype}
            if self._activation_gain and init in (_initializers.glorot_uniform,
                                                  _initializers.glorot_normal):
                options["gain"] = _initializers.gain_for(self.activation)
            drawn = init(n_in, self.n_out, **options)
        else:
            drawn = init(n_in, self.n_out)
        W, b = (drawn.get("W"), drawn.get("b")) if isinstance(drawn, dict) else (drawn, None)
        W = np.array(as_float_array(W, "initializer's W", allow_int=True), dtype=dtype,
                     order="C")
        if W.shape != (n_in, self.n_out):
            raise ValueError(f"initializer's W: expected shape {(n_in, self.n_out)}, got "
                             f"{W.shape}")
        b = np.zeros((1, self.n_out), dtype=dtype) if b is None else np.array(
            as_float_array(b, "initializer's b", allow_int=True), dtype=dtype, order="C"
        ).reshape(1, -1)
        if b.shape != (1, self.n_out):
            raise ValueError(f"initializer's b: expected {self.n_out} values, got {b.size}")
        self.n_in = n_in
        self.parameters = {"W": W, "b": b}
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
        Z = np.dot(X, W)
        if not Z.flags.c_contiguous:
            Z = np.ascontiguousarray(Z)
        b = np.ascontiguousarray(b, dtype=Z.dtype).reshape(-1)
        if self._builtin:
            Y = np.empty_like(Z)
            bias_activation(self.activation.code, float(self.activation.alpha), Z, b, Y)
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
        db = np.empty((1, self.n_out), dtype=Z.dtype)
        if self._builtin:
            dZ = np.empty_like(Z)
            activation_backward_bias(self.activation.code, float(self.activation.alpha), Z,
                                     dLdY, dZ, db.reshape(-1))
        else:
            dZ = self._user_backward(Z, dLdY)
            _dense._column_sums_into(dZ, db.reshape(-1))
        W = self.parameters["W"]
        self.gradients = {"W": weight_gradient(X, dZ), "b": db}
        return np.dot(dZ, W.T)

    def _user_backward(self, Z, dLdY):
        """dL/dZ through a user's activation, whichever backward form it has."""
        if _takes_upstream(self.activation):
            dZ = self.activation.backward(Z, dLdY)
        else:  # the Keras-like form: backward(Z) is the derivative f'(Z)
            dZ = dLdY * np.asarray(self.activation.backward(Z))
        dZ = np.ascontiguousarray(dZ, dtype=Z.dtype)
        if dZ.shape != Z.shape:
            raise ValueError(f"activation.backward: expected shape {Z.shape}, got {dZ.shape}")
        return dZ

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
            value = as_float_array(value, name, writeable=True)
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
    """The Keras-like dense layer: ``Dense(units, activation, initializer=glorot_uniform)``.

    Parameters
    ----------
    units : int
        Number of outputs.
    activation : object or str
        As for :class:`FullyConnected`.
    initializer : callable or str
        ``init(n_in, n_out) -> {"W": ..., "b": ...}`` (:mod:`fastgrad.initializers`), used
        with its plain formula (no activation gain), drawing from NumPy's global generator.
    seed : int or numpy.random.Generator, optional
    """

    _activation_gain = False

    def __init__(self, units, activation="linear", initializer=None, *,
                 weight_init=None, seed=None):
        given = initializer if weight_init is None else weight_init
        super().__init__(units, activation,
                         _initializers.glorot_uniform if given is None else given, seed=seed)
        self._init_given = given is not None

    @property
    def units(self):
        """Number of outputs (``n_out``)."""
        return self.n_out

    @property
    def initializer(self):
        """The weight initializer (``weight_init``)."""
        return self.weight_init

    @initializer.setter
    def initializer(self, value):
        self.weight_init = _initializers.get(value)

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
        Source of the masks; by default NumPy's global generator (``np.random.seed`` makes
        training reproducible).

    Notes
    -----
    The Keras-like original zeroed without rescaling, so its outputs in training were on
    average ``1 - rate`` times those at inference; rescaling keeps them equal.
    """

    def __init__(self, rate=0.5, *, seed=None):
        super().__init__()
        rate = check_positive(rate, "rate", allow_zero=True)
        if rate >= 1:
            raise ValueError(f"rate: expected a value in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self._rng = _source(seed)

    def mask(self, shape, dtype):
        """Draw a training mask: 0 with probability ``rate``, else ``1 / (1 - rate)``."""
        source = np.random if self._rng is None else self._rng
        keep = _random01(source, shape) >= self.rate
        return keep.astype(dtype) / np.dtype(dtype).type(1.0 - self.rate)

    def forward(self, X):
        """Return ``X`` at inference; a masked, rescaled ``X`` when ``training`` is True."""
        X = as_float_array(X, "X", allow_int=True)
        if not self.training or self.rate == 0:
            self.cache = {"mask": None}
            return X
        mask = self.mask(X.shape, X.dtype)
        self.cache = {"mask": mask}
        return X * mask

    def backward(self, dLdY):
        """Return ``dL/dX`` (the same mask as the last forward pass)."""
        mask = self.cache.get("mask")
        dLdY = as_float_array(dLdY, "dLdY")
        return dLdY if mask is None else dLdY * mask

    def __repr__(self):
        return f"Dropout(rate={self.rate})"


_BY_NAME = {"fully_connected": FullyConnected, "dense": Dense}


def initialize_layer(name, activation=None, weight_init="xavier_uniform", n_out=None, **_):
    """Build a layer from its name, the CS189-style factory.

    Parameters
    ----------
    name : {"fully_connected", "dense", "dropout"}
    activation : str or object
    weight_init : str or callable
    n_out : int
        Number of outputs (for ``"dropout"``: unused).

    Returns
    -------
    Layer
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name == "dropout":
        return Dropout(_.get("rate", 0.5))
    if name not in _BY_NAME:
        raise NotImplementedError(f"name: layer type {name!r} is not implemented; expected one "
                                  f"of {[*sorted(_BY_NAME), 'dropout']}")
    if n_out is None:
        raise TypeError("n_out: the number of outputs is required")
    return FullyConnected(n_out, "identity" if activation is None else activation, weight_init)
