"""Dense and dropout layers against the naive references."""

import numpy as np
import pytest

from fastgrad import activations, layers
from fastgrad.layers import FullyConnected

import reference
from conftest import assert_kernel_close

NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "silu",
         "softplus", "softsign", "arctan", "bent_identity", "gaussian", "piecewise_linear",
         "softmax"]


@pytest.mark.nojit
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_samples, n_in, n_out", [(1, 1, 1), (1, 3, 2), (5, 1, 4), (6, 4, 3)])
def test_dense_matches_reference(name, n_samples, n_in, n_out, dtype, rng):
    layer = FullyConnected(n_out, activation=name, seed=1)
    X = rng.normal(size=(n_samples, n_in)).astype(dtype)
    layer.build(n_in, dtype=dtype)
    layer.parameters["b"][:] = rng.normal(size=(1, n_out))
    W, b = layer.parameters["W"], layer.parameters["b"]
    alpha = layer.activation.alpha
    dLdY = rng.normal(size=(n_samples, n_out)).astype(dtype)
    Y = layer.forward(X)
    dX = layer.backward(dLdY)
    assert Y.dtype == dtype and dX.dtype == dtype and layer.gradients["W"].dtype == dtype
    assert_kernel_close(Y, reference.dense_forward(X, W, b, name, alpha), dtype)
    ref_dX, ref_dW, ref_db = reference.dense_backward(X, W, b, dLdY, name, alpha)
    assert_kernel_close(dX, ref_dX, dtype)
    assert_kernel_close(layer.gradients["W"], ref_dW, dtype)
    assert_kernel_close(layer.gradients["b"], ref_db, dtype)
    assert layer.gradients["b"].shape == (1, n_out)


@pytest.mark.parametrize("name", ["tanh", "softmax", "sigmoid", "elu"])
def test_dense_backward_matches_finite_differences(name, rng):
    layer = FullyConnected(3, activation=name, seed=2)
    X = rng.normal(size=(4, 5))
    dLdY = rng.normal(size=(4, 3))
    layer.forward(X)
    dX = layer.backward(dLdY)
    for param in ("W", "b"):
        f = layer.forward_with_param(param, X)
        numerical = reference.central_differences(f, layer.parameters[param], dLdY)
        np.testing.assert_allclose(layer.gradients[param], numerical, rtol=1e-6, atol=1e-9)
    W, b = layer.parameters["W"], layer.parameters["b"]
    numerical = reference.central_differences(
        lambda x: reference.dense_forward(x, W, b, name), X, dLdY)
    np.testing.assert_allclose(dX, numerical, rtol=1e-6, atol=1e-9)


def test_forward_with_param_leaves_layer_untouched(rng):
    layer = FullyConnected(4, activation="relu", seed=3)
    X = rng.normal(size=(3, 2))
    layer.forward(X)
    W_before = layer.parameters["W"].copy()
    cache_Z = layer.cache["Z"].copy()
    f = layer.forward_with_param("W", X)
    other = f(np.ones_like(W_before))
    np.testing.assert_array_equal(layer.parameters["W"], W_before)
    np.testing.assert_array_equal(layer.cache["Z"], cache_Z)
    np.testing.assert_allclose(other, reference.dense_forward(X, np.ones((2, 4)),
                                                              layer.parameters["b"], "relu"))
    with pytest.raises(ValueError, match=r"W: expected shape \(2, 4\)"):
        f(np.ones((4, 2)))
    with pytest.raises(ValueError, match="name: expected one of"):
        layer.forward_with_param("gamma", X)


def test_glorot_init_and_gain():
    layer = FullyConnected(200, activation="relu", seed=0)
    layer.build(300)
    limit = np.sqrt(2) * np.sqrt(6 / 500)
    W = layer.parameters["W"]
    assert W.shape == (300, 200) and np.abs(W).max() <= limit and np.abs(W).max() > 0.9 * limit
    assert not layer.parameters["b"].any()


def test_float32_in_float32_out(rng):
    layer = FullyConnected(3, activation="tanh")
    Y = layer.forward(rng.normal(size=(2, 4)).astype(np.float32))
    assert Y.dtype == np.float32 and layer.parameters["W"].dtype == np.float32


def test_user_activation_object(rng):
    class Cube:
        def forward(self, X):
            return X**3

        def backward(self, X, dLdY):
            return 3 * X**2 * dLdY

    layer = FullyConnected(2, activation=Cube(), seed=0)
    X = rng.normal(size=(3, 4))
    dLdY = rng.normal(size=(3, 2))
    layer.forward(X)
    layer.backward(dLdY)
    f = layer.forward_with_param("W", X)
    numerical = reference.central_differences(f, layer.parameters["W"], dLdY)
    np.testing.assert_allclose(layer.gradients["W"], numerical, rtol=1e-6)


def test_layer_errors(rng):
    layer = FullyConnected(2)
    with pytest.raises(RuntimeError, match="before backward"):
        layer.backward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"X: expected a 2-D array"):
        layer.forward(np.zeros(3))
    layer.forward(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"X: expected shape \(n_samples, 3\)"):
        layer.forward(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"dLdY: expected shape \(1, 2\)"):
        layer.backward(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_out"):
        FullyConnected(0)
    with pytest.raises(TypeError, match="n_out"):
        FullyConnected(2.5)


def test_dense_alias_and_dropout(rng):
    dense = layers.Dense(units=3, activation=activations.ReLU())
    assert dense.n_out == dense.units == 3 and isinstance(dense, FullyConnected)
    dropout = layers.Dropout(rate=0.5, seed=0)
    X = rng.normal(size=(50, 40))
    np.testing.assert_array_equal(dropout.forward(X), X)
    np.testing.assert_array_equal(dropout.backward(X), X)
    dropout.training = True
    out = dropout.forward(X)
    kept = out != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(out[kept], 2 * X[kept])
    np.testing.assert_allclose(dropout.backward(np.ones_like(X)), np.where(kept, 2.0, 0.0))
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(rate=1.0)


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                                  "zeros"])
def test_initializers_validate_and_draw_the_right_shape(name):
    from fastgrad import initializers

    init = initializers.get(name)
    params = init(5, 3, rng=0, dtype=np.float32)  # the Keras-like form: {"W", "b"}
    W = params["W"]
    assert W.shape == (5, 3) and W.dtype == np.float32
    assert params["b"].shape == (1, 3) and params["b"].dtype == np.float32
    with pytest.raises(ValueError, match="n_in"):
        init(0, 3)
    with pytest.raises(TypeError, match="n_out"):
        init(5, 2.5)
    with pytest.raises(TypeError, match="dtype"):
        init(5, 3, dtype=np.int32)
