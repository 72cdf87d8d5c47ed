"""A Keras-like sequential model: ``Model().add(layers.Dense(...))``, ``configure``, ``train``.

Data is laid out as ``(n_samples, n_features)``.
"""

import numpy as np

from . import costs as _costs
from ._validation import as_float_array, check_positive
from .layers import Dropout

__all__ = ["Model"]


class Model:
    """A stack of layers trained on one cost.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import activations, costs, layers, model, optimizers
    >>> net = model.Model()
    >>> net.add(layers.Dense(units=4, activation=activations.ReLU()))
    >>> net.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    >>> net.configure(input_size=3, cost_type=costs.BinaryCrossentropy(),
    ...               optimizer=optimizers.SGD(), seed=0)
    >>> net.predict(np.zeros((5, 3))).shape
    (5, 1)
    """

    def __init__(self):
        self.layers = []
        self.cost = None
        self.optimizer = None
        self.input_size = None
        self.dtype = np.dtype(np.float64)
        self.output = None

    def add(self, layer):
        """Append a layer (anything with ``forward``, ``backward``, ``parameters``)."""
        if not all(hasattr(layer, attr) for attr in ("forward", "backward", "parameters")):
            raise TypeError("layer: expected a layer with forward, backward and parameters, "
                            f"got {type(layer).__name__}")
        self.layers.append(layer)
        return self

    def configure(self, input_size, cost_type, optimizer=None, *, dtype=np.float64, seed=None):
        """Create every layer's parameters and set the cost and optimizer.

        Parameters
        ----------
        input_size : int
            Number of input features.
        cost_type : str or Loss
            The cost (e.g. ``costs.MSE()`` or ``"mse"``).
        optimizer : SGD, optional
            Defaults to ``optimizers.SGD()``.
        dtype : {numpy.float64, numpy.float32}
            Dtype of the parameters and of the computation.
        seed : int, optional
            Seed of the initial weights (each call draws new weights).
        """
        from .optimizers import SGD

        if not self.layers:
            raise ValueError("configure: add at least one layer first")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {self.dtype}")
        self.input_size = int(check_positive(input_size, "input_size", integer=True))
        self.cost = _costs.get(cost_type)
        self.optimizer = SGD() if optimizer is None else optimizer
        if hasattr(self.optimizer, "reset"):
            self.optimizer.reset()
        rng = np.random.default_rng(seed)
        n_in = self.input_size
        for layer in self.layers:
            n_in = layer.build(n_in, dtype=self.dtype, rng=rng)
        return self

    def _check_configured(self):
        if self.cost is None:
            raise RuntimeError("model: call configure(input_size, cost_type, optimizer) first")

    def _input(self, X):
        X = as_float_array(X, "X", ndim=2, allow_int=True, dtype=self.dtype)
        if X.shape[1] != self.input_size:
            raise ValueError(f"X: expected shape (n_samples, {self.input_size}), got {X.shape}")
        return X

    def forward(self, X, *, training=False):
        """Run every layer; keep the output for ``backward``.

        Parameters
        ----------
        X : array_like, shape (n_samples, input_size)
        training : bool
            Whether dropout layers drop (False: inference behaviour).
        """
        self._check_configured()
        out = self._input(X)
        for layer in self.layers:
            if isinstance(layer, Dropout):
                layer.training = training
            out = layer.forward(out)
        self.output = out
        return out

    def backward(self, Y):
        """Fill every layer's ``gradients`` for the cost at the last ``forward``; return dL/dX."""
        if self.output is None:
            raise RuntimeError("backward: call forward(X) before backward(Y)")
        grad = self.cost.backward(Y, self.output)
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def predict(self, X):
        """Return the model's output for ``X`` (inference behaviour)."""
        return self.forward(X, training=False)

    def loss(self, X, Y):
        """Return the cost of the predictions for ``X`` against ``Y``."""
        return float(self.cost.forward(Y, self.forward(X)))

    def train(self, X, Y, epochs=1, batch_size=32, *, shuffle=True, seed=None):
        """Train with mini-batches; return the list of the mean cost of each epoch.

        Parameters
        ----------
        X : array_like, shape (n_samples, input_size)
        Y : array_like, shape (n_samples, n_outputs)
        epochs : int
        batch_size : int
        shuffle : bool
            Shuffle the samples each epoch.
        seed : int, optional
            Seed of the shuffling.
        """
        self._check_configured()
        X = self._input(X)
        Y = np.asarray(Y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"Y: expected {X.shape[0]} samples (rows of X), got shape {Y.shape}")
        epochs = check_positive(epochs, "epochs", integer=True)
        batch_size = check_positive(batch_size, "batch_size", integer=True)
        rng = np.random.default_rng(seed)
        history = []
        for _ in range(epochs):
            order = rng.permutation(X.shape[0]) if shuffle else np.arange(X.shape[0])
            total = 0.0
            for start in range(0, X.shape[0], batch_size):
                batch = order[start:start + batch_size]
                out = self.forward(X[batch], training=True)
                total += self.cost.forward(Y[batch], out) * len(batch)
                self.backward(Y[batch])
                self.optimizer.step(self.layers)
            history.append(total / X.shape[0])
        return history

    @property
    def trainable_layers(self):
        """The layers that have parameters."""
        return [layer for layer in self.layers if getattr(layer, "parameters", None)]

    def __repr__(self):
        lines = [f"Model(input_size={self.input_size}, cost={self.cost!r})"]
        lines += [f"  {layer!r}" for layer in self.layers]
        return "\n".join(lines)


