"""Optimizers of the Keras-like API."""

import numpy as np

from ._validation import check_positive

__all__ = ["SGD"]


class SGD:
    """Stochastic gradient descent with optional momentum.

    Parameters
    ----------
    learning_rate : float
        Step size, > 0.
    momentum : float
        Momentum coefficient in [0, 1).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0):
        self.learning_rate = float(check_positive(learning_rate, "learning_rate"))
        momentum = check_positive(momentum, "momentum", allow_zero=True)
        if momentum >= 1:
            raise ValueError(f"momentum: expected a value in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self._velocity = {}

    def step(self, layers):
        """Update every layer's parameters in place from its ``gradients``."""
        for index, layer in enumerate(layers):
            for name, value in layer.parameters.items():
                grad = layer.gradients[name]
                if self.momentum:
                    key = (index, name)
                    velocity = self._velocity.get(key)
                    if velocity is None or velocity.shape != grad.shape:
                        velocity = np.zeros_like(grad)
                    velocity = self.momentum * velocity - self.learning_rate * grad
                    self._velocity[key] = velocity
                    value += velocity
                else:
                    value -= self.learning_rate * grad

    def reset(self):
        """Forget the momentum state (called when a model is configured again)."""
        self._velocity = {}

    def __repr__(self):
        return f"SGD(learning_rate={self.learning_rate}, momentum={self.momentum})"
