"""The catalogue of checks that ``fastgrad check`` runs on fastgrad's own objects."""

import time
from dataclasses import dataclass

import numpy as np

from . import activations, costs, losses
from ._checker import check_gradients
from .layers import FullyConnected

ACTIVATIONS = [
    activations.Identity(), activations.Sigmoid(), activations.TanH(), activations.ReLU(),
    activations.LeakyReLU(), activations.ELU(), activations.SELU(), activations.SiLU(),
    activations.Softplus(), activations.Softsign(), activations.Arctan(),
    activations.BentIdentity(), activations.Gaussian(), activations.PiecewiseLinear(),
    activations.SoftMax(),
]
LOSSES = [losses.CrossEntropy(), costs.BinaryCrossentropy(), costs.MSE(), costs.MAE()]


@dataclass
class Row:
    """One line of the report."""

    target: str
    parameter: str
    shape: tuple
    dtype: str
    method: str
    relative_error: float
    worst: str
    seconds: float
    passed: bool

    def as_dict(self):
        return {"object": self.target, "parameter": self.parameter, "shape": list(self.shape),
                "dtype": self.dtype, "method": self.method,
                "relative_error": self.relative_error, "worst": self.worst,
                "seconds": self.seconds, "passed": self.passed}


def row_from(target, parameter, result):
    worst = result.worst[0] if result.worst else None
    return Row(target=target, parameter=parameter, shape=tuple(result.analytic.shape),
               dtype=str(result.dtype), method=result.method, relative_error=float(result),
               worst="" if worst is None else f"{worst.index} |err| {worst.abs_error:.2e}",
               seconds=result.elapsed_s, passed=bool(result.passed))


def _labels(loss, rng, n_samples, n_out, dtype):
    P = rng.uniform(0.05, 0.95, size=(n_samples, n_out))
    if isinstance(loss, losses.CrossEntropy):
        P /= P.sum(axis=1, keepdims=True)
        Y = np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    elif isinstance(loss, costs.BinaryCrossentropy):
        Y = rng.integers(0, 2, size=(n_samples, n_out)).astype(float)
    else:
        Y = rng.normal(size=(n_samples, n_out))
    return Y.astype(dtype), P.astype(dtype)


def builtin_checks(dtypes=("float64", "float32"), *, seed=0, method="auto", wide=None,
                   n_samples=8, wide_activation="tanh", progress=None):
    """Yield a :class:`Row` for every built-in activation, loss and layer in each dtype."""
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        rng = np.random.default_rng(seed)
        for activation in ACTIVATIONS:
            X = rng.normal(size=(n_samples, 6)).astype(dtype)
            dLdY = rng.normal(size=X.shape).astype(dtype)
            result = check_gradients(activation.forward, activation.backward(X, dLdY), X, dLdY,
                                     method=method, seed=seed, progress=progress)
            yield row_from(repr(activation), "X", result)
        for loss in LOSSES:
            Y, P = _labels(loss, rng, n_samples, 4, dtype)
            result = check_gradients(lambda p, loss=loss, Y=Y: loss.forward(Y, p),
                                     loss.backward(Y, P), P, 1.0, method=method, seed=seed,
                                     progress=progress)
            yield row_from(repr(loss), "Y_hat", result)
        layer_specs = [(5, activation) for activation in ("tanh", "relu", "softmax")]
        if wide:
            layer_specs.append((wide, wide_activation))
        for n_out, activation in layer_specs:
            n_in = n_out
            layer = FullyConnected(n_out, activation=activation, seed=seed)
            X = rng.normal(size=(n_samples, n_in)).astype(dtype)
            dLdY = rng.normal(size=(n_samples, n_out)).astype(dtype)
            layer.forward(X)
            layer.backward(dLdY)
            for name in ("W", "b"):
                started = time.perf_counter()
                result = check_gradients(layer.forward_with_param(name, X),
                                         layer.gradients[name], layer.parameters[name], dLdY,
                                         method=method, seed=seed, progress=progress)
                row = row_from(repr(layer), name, result)
                row.seconds = time.perf_counter() - started
                yield row
