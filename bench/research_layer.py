"""A researcher's own dense layer in plain NumPy: fastgrad sees it only as a black box."""

import numpy as np


class ResearchDense:
    """``Y = tanh(X @ W + b)`` with its own hand-written backward."""

    def __init__(self, n_in, n_out, *, seed=0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.W = (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)

    def forward(self, X, W=None):
        W = self.W if W is None else W
        return np.tanh(X @ W + self.b)

    def backward(self, X, dLdY):
        """Return dL/dW."""
        Y = self.forward(X)
        return X.T @ ((1 - Y**2) * dLdY)


class ForwardOfW:
    """``W -> layer.forward(X, W)``, a module-level callable so process pools can pickle it."""

    def __init__(self, layer, X):
        self.layer = layer
        self.X = X

    def __call__(self, W):
        return self.layer.forward(self.X, W)
