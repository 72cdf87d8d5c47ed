"""Optimizers of the Keras-like API: SGD, Momentum, AdaGrad, RMSProp, Adam.

Constructors and defaults follow the Keras-like original (``learning_rate=0.001`` everywhere;
``Model.train(..., learning_rate=...)`` sets it). Each optimizer keeps its state (velocities,
squared-gradient averages) per layer and parameter, in the parameter's dtype, and updates a
parameter in one fused pass (``fastgrad.kernels.optimizers``). The update rules:

* SGD: ``w -= lr g`` (with ``momentum > 0``: ``v = momentum v - lr g; w += v``)
* Momentum: ``v = beta v + (1 - beta) g; w -= lr v``
* AdaGrad: ``s += g^2; w -= lr g / (sqrt(s) + epsilon)``
* RMSProp: ``s = beta s + (1 - beta) g^2; w -= lr g / (sqrt(s) + epsilon)``
* Adam: ``v = beta1 v + (1 - beta1) g; s = beta2 s + (1 - beta2) g^2;
  w -= lr v / (sqrt(s) + epsilon)`` (``bias_correction=True`` divides v and s by
  ``1 - beta^t`` first; the original did not)
"""

import numpy as np

from ._threads import threads_for
from ._validation import check_positive
from .kernels import optimizers as _kernels

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Optimizer", "RMSProp", "get"]


def _fraction(value, name):
    check_positive(value, name, allow_zero=True)
    if value >= 1:
        raise ValueError(f"{name}: expected a value in [0, 1), got {value!r}")
    return float(value)


#: Parameters from which an update runs in Numba's thread pool; below, the serial build runs
#: on the calling thread (no thread count to set, no pool to wake).
PARALLEL_FROM = 2**18


def apply_update(rule, lr, beta1, beta2, eps, v_scale, s_scale, w, g, v, s):
    """One fused update of the flat parameter ``w``, the serial or parallel build by size.

    ``Optimizer.step`` and the model's fused training step both update through here, so both
    run the same build on a parameter and compute the same numbers (the two builds may round
    a fused multiply-add differently).
    """
    if w.size < PARALLEL_FROM:
        _kernels.update_serial(rule, lr, beta1, beta2, eps, v_scale, s_scale, w, g, v, s)
    else:
        with threads_for(w.size):
            _kernels.update(rule, lr, beta1, beta2, eps, v_scale, s_scale, w, g, v, s)


class Optimizer:
    """Base class: ``step(layers)`` updates every layer's ``parameters`` from ``gradients``."""

    rule = _kernels.SGD
    _moments = (False, False)   # whether the rule keeps (v, s)

    def __init__(self, learning_rate=0.001):
        self.learning_rate = learning_rate
        self._state = {}
        self.iterations = 0

    @property
    def learning_rate(self):
        """The step size (``Model.train(learning_rate=...)`` sets it)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = float(check_positive(value, "learning_rate"))

    def _hyper(self):
        return 0.0, 0.0, 0.0, 1.0, 1.0   # beta1, beta2, eps, v_scale, s_scale

    def step(self, layers):
        """Update every layer's parameters in place from its ``gradients``.

        Parameters
        ----------
        layers : sequence of layers
            Each with ``parameters`` and ``gradients`` dictionaries of equal shapes.
        """
        self.iterations += 1
        beta1, beta2, eps, v_scale, s_scale = self._hyper()
        lr = self.learning_rate
        for index, layer in enumerate(layers):
            parameters = getattr(layer, "parameters", None)
            if not parameters:
                continue
            for name, value in parameters.items():
                grad = layer.gradients.get(name) if layer.gradients else None
                if grad is None:
                    continue
                if grad.shape != value.shape:
                    raise ValueError(f"gradients[{name!r}] of layer {index}: expected shape "
                                     f"{value.shape} (the parameter's), got {grad.shape}")
                v, s = self._slots(index, name, value)
                if not value.flags.c_contiguous:
                    raise ValueError(f"parameters[{name!r}] of layer {index}: expected a "
                                     "C-contiguous array (it is updated in place)")
                flat = value.reshape(-1)
                g = np.ascontiguousarray(grad, dtype=value.dtype).reshape(-1)
                apply_update(self.rule, lr, beta1, beta2, eps, v_scale, s_scale, flat, g, v, s)

    def _slots(self, index, name, value):
        key = (index, name)
        slots = self._state.get(key)
        if slots is None or slots[0].dtype != value.dtype or \
                max(slots[0].size, slots[1].size) not in (0, value.size):
            use_v, use_s = self._moments
            empty = np.zeros(0, dtype=value.dtype)
            slots = (np.zeros(value.size, dtype=value.dtype) if use_v else empty,
                     np.zeros(value.size, dtype=value.dtype) if use_s else empty)
            self._state[key] = slots
        return slots

    def reset(self):
        """Forget the state (called when a model is configured again)."""
        self._state = {}
        self.iterations = 0

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({fields})"

    def _fields(self):
        return {"learning_rate": self.learning_rate}


class SGD(Optimizer):
    """Plain (stochastic, mini-batch or full-batch) gradient descent.

    Parameters
    ----------
    learning_rate : float
        Step size, > 0 (default 0.001 as in the original).
    momentum : float
        Heavy-ball momentum in [0, 1) (``v = momentum v - lr g; w += v``); 0 is plain SGD.
    """

    def __init__(self, learning_rate=0.001, momentum=0.0):
        super().__init__(learning_rate)
        self.momentum = _fraction(momentum, "momentum")
        if self.momentum:
            self.rule = _kernels.HEAVY_BALL
            self._moments = (True, False)

    def _hyper(self):
        return self.momentum, 0.0, 0.0, 1.0, 1.0

    def _fields(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum}


class Momentum(Optimizer):
    """Gradient descent on an exponential average of the gradients.

    Parameters
    ----------
    learning_rate : float
    beta : float
        Decay of the average, in [0, 1).
    """

    rule = _kernels.MOMENTUM
    _moments = (True, False)

    def __init__(self, learning_rate=0.001, beta=0.9):
        super().__init__(learning_rate)
        self.beta = _fraction(beta, "beta")

    def _hyper(self):
        return self.beta, 0.0, 0.0, 1.0, 1.0

    def _fields(self):
        return {"learning_rate": self.learning_rate, "beta": self.beta}


class AdaGrad(Optimizer):
    """Per-parameter steps scaled by the root of the summed squared gradients.

    Parameters
    ----------
    learning_rate : float
    epsilon : float
        Added to the root so the step never divides by zero, > 0.
    """

    rule = _kernels.ADAGRAD
    _moments = (False, True)

    def __init__(self, learning_rate=0.001, epsilon=1e-8):
        super().__init__(learning_rate)
        self.epsilon = float(check_positive(epsilon, "epsilon"))

    def _hyper(self):
        return 0.0, 0.0, self.epsilon, 1.0, 1.0

    def _fields(self):
        return {"learning_rate": self.learning_rate, "epsilon": self.epsilon}


class RMSProp(Optimizer):
    """Per-parameter steps scaled by the root of an average of squared gradients.

    Parameters
    ----------
    learning_rate : float
    beta : float
        Decay of the average, in [0, 1).
    epsilon : float
    """

    rule = _kernels.RMSPROP
    _moments = (False, True)

    def __init__(self, learning_rate=0.001, beta=0.9, epsilon=1e-8):
        super().__init__(learning_rate)
        self.beta = _fraction(beta, "beta")
        self.epsilon = float(check_positive(epsilon, "epsilon"))

    def _hyper(self):
        return 0.0, self.beta, self.epsilon, 1.0, 1.0

    def _fields(self):
        return {"learning_rate": self.learning_rate, "beta": self.beta, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Momentum and RMSProp combined.

    Parameters
    ----------
    learning_rate : float
    beta1, beta2 : float
        Decays of the gradient and squared-gradient averages, in [0, 1).
    epsilon : float
    bias_correction : bool
        Divide the averages by ``1 - beta**t`` (the published Adam). False by default: the
        Keras-like original did not, and a drop-in follows the same trajectory.
    """

    rule = _kernels.ADAM
    _moments = (True, True)

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, *,
                 bias_correction=False):
        super().__init__(learning_rate)
        self.beta1 = _fraction(beta1, "beta1")
        self.beta2 = _fraction(beta2, "beta2")
        self.epsilon = float(check_positive(epsilon, "epsilon"))
        self.bias_correction = bool(bias_correction)

    def _hyper(self):
        if self.bias_correction:
            t = self.iterations
            return (self.beta1, self.beta2, self.epsilon, 1.0 - self.beta1 ** t,
                    1.0 - self.beta2 ** t)
        return self.beta1, self.beta2, self.epsilon, 1.0, 1.0

    def _fields(self):
        return {"learning_rate": self.learning_rate, "beta1": self.beta1, "beta2": self.beta2,
                "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "momentum": Momentum, "adagrad": AdaGrad, "rmsprop": RMSProp,
            "adam": Adam}


def get(optimizer, **options):
    """Return an optimizer from a name (``"adam"``; ``options`` go to its constructor) or an
    instance as it is.

    Parameters
    ----------
    optimizer : str or Optimizer
    **options
        Constructor arguments when ``optimizer`` is a name.

    Returns
    -------
    Optimizer
    """
    if isinstance(optimizer, str):
        key = optimizer.strip().lower()
        if key not in _BY_NAME:
            raise ValueError(f"optimizer: unknown name {optimizer!r}; expected one of "
                             f"{', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[key](**options)
    if callable(getattr(optimizer, "step", None)):
        return optimizer
    raise TypeError(f"optimizer: expected a name or an object with step(layers), got "
                    f"{type(optimizer).__name__}")
