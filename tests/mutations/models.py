"""Backprop bugs inside whole models, each next to its correct twin.

A user writes a dense layer's backward by hand (``HandWrittenDense``: fastgrad's forward, the
user's backward in plain NumPy) or a cost's backward. Each ``ModelCase`` builds a three-layer
model ``n -> hidden (act) -> hidden (act, square: the layer under test) -> classes`` for a seed,
dtype and size, with either the correct backward or the mutated one. The forward passes stay
fastgrad's own, so both the ``model`` and the ``exhaustive`` methods of ``gradient_check``
apply. ``culprits`` are the (layer, parameter) pairs the bug must be pinned to.
"""

from dataclasses import dataclass

import numpy as np

from fastgrad import costs, layers, model

import reference

#: Hidden width and samples per size name (the layer under test is hidden x hidden).
SIZES = {"small": (4, 8), "medium": (16, 64), "large": (32, 128)}
BUG_LAYER = 1


@dataclass
class ModelCase:
    name: str
    build: object                 # build(rng, dtype, size, wrong, near_kinks) -> (net, X, Y)
    culprits: frozenset           # (layer, parameter) pairs that must fail
    dtypes: tuple = ("float64", "float32")


class HandWrittenDense(layers.Dense):
    """A dense layer whose backward the user wrote; ``mutation`` breaks one step of it."""

    def __init__(self, units, activation, mutation=None):
        super().__init__(units, activation)
        self.mutation = mutation
        self.activation_name = activation

    def backward(self, dLdY):
        X, Z = self.cache["X"], self.cache["Z"]
        dtype = Z.dtype
        X64, Z64 = X.astype(np.float64), Z.astype(np.float64)
        dLdY = np.asarray(dLdY, dtype=np.float64)
        W = self.parameters["W"].astype(np.float64)
        alpha = float(self.activation.alpha)
        parts = {"dZ": reference.activation_backward(self.activation_name, Z64, dLdY, alpha)}
        parts["dW"] = X64.T @ parts["dZ"]
        parts["db"] = parts["dZ"].sum(axis=0, keepdims=True)
        parts["dX"] = parts["dZ"] @ W.T
        if self.mutation is not None:
            self.mutation(parts, X=X64, Z=Z64, dLdY=dLdY, W=W,
                          activation=self.activation_name, alpha=alpha)
        self.gradients = {"W": parts["dW"].astype(dtype), "b": parts["db"].astype(dtype)}
        return parts["dX"].astype(dtype)


def _derivative_at_output(parts, Z, dLdY, activation, alpha, **rest):
    Y = reference.activation_forward(activation, Z, alpha)
    parts["dZ"] = reference.activation_backward(activation, Y, dLdY, alpha)  # f'(y), not f'(z)
    _recompute(parts, **rest)


def _relu_slope_one_on_both_sides(parts, dLdY, **rest):
    parts["dZ"] = dLdY.copy()  # the negative side should pass nothing
    _recompute(parts, **rest)


def _recompute(parts, X, W, **_):
    parts["dW"] = X.T @ parts["dZ"]
    parts["db"] = parts["dZ"].sum(axis=0, keepdims=True)
    parts["dX"] = parts["dZ"] @ W.T


def _dW_transposed(parts, **_):
    parts["dW"] = parts["dW"].T


def _dW_from_activated_output(parts, Z, activation, alpha, **_):
    parts["dW"] = reference.activation_forward(activation, Z, alpha).T @ parts["dZ"]


def _db_over_features(parts, **_):
    n_out = parts["db"].size
    parts["db"] = np.resize(parts["dZ"].sum(axis=1), n_out).reshape(1, -1)


def _db_missing(parts, **_):
    parts["db"] = np.zeros_like(parts["db"])


def _dX_without_activation_derivative(parts, dLdY, W, **_):
    parts["dX"] = dLdY @ W.T


def _dX_through_W_not_W_transposed(parts, W, **_):
    parts["dX"] = parts["dZ"] @ W


class MSEMissingOneOverM(costs.MSE):
    def backward(self, Y, Y_hat):
        return super().backward(Y, Y_hat) * np.shape(Y_hat)[0]


class CrossEntropyOneOverMTwice(costs.CategoricalCrossentropy):
    def backward(self, Y, Y_hat):
        return super().backward(Y, Y_hat) / np.shape(Y_hat)[0]


class MSEWithOwnBackward(costs.MSE):
    """The correct twin of the cost bugs: a user's cost subclass that gets it right."""

    def backward(self, Y, Y_hat):
        return super().backward(Y, Y_hat)


class CrossEntropyWithOwnBackward(costs.CategoricalCrossentropy):
    def backward(self, Y, Y_hat):
        return super().backward(Y, Y_hat)


def _model_case(activation, mutation=None, *, cost="mse", wrong_cost=None):
    """A three-layer model whose middle layer is hand-written (and mutated when wrong)."""
    def build(rng, dtype, size, wrong, near_kinks=False):
        width, n_samples = SIZES[size]
        n_classes = 3
        net = model.Model()
        net.add(layers.Dense(width, activation="tanh"))
        net.add(HandWrittenDense(width, activation, mutation if wrong else None))
        net.add(layers.Dense(n_classes, activation="identity" if cost == "mse" else "softmax"))
        twin = MSEWithOwnBackward if cost == "mse" else CrossEntropyWithOwnBackward
        cost_object = wrong_cost() if wrong and wrong_cost else twin()
        net.configure(input_size=width, cost_type=cost_object, dtype=dtype,
                      seed=int(rng.integers(1 << 30)))
        X = rng.normal(size=(n_samples, width))
        if near_kinks:
            # samples at exact kinks of the layer under test: zero input and zero bias give
            # Z = 0 in layer 1 for the first sample; large logits saturate the softmax
            X[0] = 0.0
            net.layers[0].parameters["b"][...] = 0.0
            net.layers[2].parameters["W"] *= 10.0
        if cost == "mse":
            Y = rng.normal(size=(n_samples, n_classes))
        else:
            Y = np.eye(n_classes)[rng.integers(0, n_classes, n_samples)]
        return net, X.astype(dtype), Y
    return build


_LAYER = frozenset({(BUG_LAYER, "W"), (BUG_LAYER, "b")})
_W = frozenset({(BUG_LAYER, "W")})
_B = frozenset({(BUG_LAYER, "b")})
_UPSTREAM = frozenset({(0, "W"), (0, "b")})
_EVERY = frozenset((index, name) for index in range(3) for name in ("W", "b"))

MODEL_CASES = [
    ModelCase("model: hidden sigmoid derivative at the output",
              _model_case("sigmoid", _derivative_at_output), _LAYER | _UPSTREAM),
    ModelCase("model: hidden tanh derivative at the output",
              _model_case("tanh", _derivative_at_output), _LAYER | _UPSTREAM),
    ModelCase("model: hidden ReLU passes gradient on the negative side",
              _model_case("relu", _relu_slope_one_on_both_sides), _LAYER | _UPSTREAM),
    ModelCase("model: dW transposed in a square hidden layer",
              _model_case("tanh", _dW_transposed), _W),
    ModelCase("model: dW from the activated output instead of the input",
              _model_case("tanh", _dW_from_activated_output), _W),
    ModelCase("model: db summed over features instead of samples",
              _model_case("tanh", _db_over_features), _B),
    ModelCase("model: bias gradient missing", _model_case("elu", _db_missing), _B),
    ModelCase("model: dX passed down without the activation derivative",
              _model_case("tanh", _dX_without_activation_derivative), _UPSTREAM),
    ModelCase("model: dX passed down through W instead of W.T",
              _model_case("leaky_relu", _dX_through_W_not_W_transposed), _UPSTREAM),
    ModelCase("model: MSE backward missing 1/m",
              _model_case("tanh", cost="mse", wrong_cost=MSEMissingOneOverM), _EVERY),
    ModelCase("model: cross-entropy backward with 1/m applied twice",
              _model_case("relu", cost="cce", wrong_cost=CrossEntropyOneOverMTwice), _EVERY),
]
