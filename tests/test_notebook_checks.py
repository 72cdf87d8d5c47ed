"""The first seed notebook's cells, with only their imports changed to fastgrad."""

import numpy as np
import pytest

from fastgrad import check_gradients
from fastgrad.activations import Identity, ReLU, Sigmoid, SoftMax, TanH
from fastgrad.layers import FullyConnected
from fastgrad.losses import CrossEntropy

#: The notebook's expectation: "usually less than 1e-8 for 64-bit float matrices".
NOTEBOOK_BOUND = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-5}


@pytest.mark.parametrize("activation_class", [Identity, Sigmoid, TanH, ReLU, SoftMax])
@pytest.mark.parametrize("seed", range(5))
def test_activation_cells(activation_class, seed, dtype):
    np.random.seed(seed)
    X = np.random.randn(2, 3).astype(dtype)
    dLdY = np.random.randn(2, 3).astype(dtype)
    activation = activation_class()
    _ = activation.forward(X)
    grad = activation.backward(X, dLdY)
    result = check_gradients(fn=activation.forward, grad=grad, x=X, dLdf=dLdY)
    assert result < NOTEBOOK_BOUND[dtype]
    assert result.passed
    assert f"{result}" == repr(float(result))  # prints as the old checker's number


@pytest.mark.parametrize("seed", range(5))
def test_fully_connected_cell(seed, dtype):
    np.random.seed(seed)
    X = np.random.randn(2, 3).astype(dtype)
    dLdY = np.random.randn(2, 4).astype(dtype)
    fc_layer = FullyConnected(n_out=4, activation="identity")
    _ = fc_layer.forward(X)
    _ = fc_layer.backward(dLdY)
    for param in fc_layer.parameters:
        result = check_gradients(
            fn=fc_layer.forward_with_param(param, X),
            grad=fc_layer.gradients[param],
            x=fc_layer.parameters[param],
            dLdf=dLdY,
        )
        assert result < NOTEBOOK_BOUND[dtype] and result.passed
        assert result.method == "structured"


@pytest.mark.parametrize("seed", range(5))
def test_cross_entropy_cell(seed, dtype):
    np.random.seed(seed)
    num_pts = 5
    num_classes = 6
    y_idxs = np.random.randint(0, num_classes, (num_pts,))
    y = np.zeros((num_pts, num_classes))
    y[range(num_pts), y_idxs] = 1
    scores = np.random.uniform(0, 1, size=(num_pts, num_classes))
    y_hat = (scores / scores.sum(axis=1, keepdims=True)).astype(dtype)
    cross_entropy_loss = CrossEntropy("cross_entropy")

    def forward_fn(Y, Y_hat):
        def inner_forward(Y_hat):
            return cross_entropy_loss.forward(Y, Y_hat)
        return inner_forward

    grad = cross_entropy_loss.backward(y, y_hat)
    result = check_gradients(fn=forward_fn(y, y_hat), grad=grad, x=y_hat, dLdf=1)
    assert result < NOTEBOOK_BOUND[dtype] and result.passed
    assert result.method == "structured"


def test_cross_entropy_of_identical_one_hot_arrays_is_zero():
    # The notebook's cell computed forward(a, b) for a == b one-hot and got -0.0.
    a = np.array([[1, 0, 0], [1, 0, 0]])
    assert CrossEntropy("cross_entropy").forward(a, a) == 0.0


def test_explicit_step_reproduces_the_seed_formula():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 3))
    dLdY = rng.normal(size=(2, 3))
    sigmoid = Sigmoid()
    result = check_gradients(sigmoid.forward, sigmoid.backward(X, dLdY), X, dLdY, h=1e-6)
    assert result.step == 1e-6 and not result.step_relative
    x = X.copy()
    seed_style = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + 1e-6
        up = np.sum(sigmoid.forward(x) * dLdY)
        x[index] = old - 1e-6
        down = np.sum(sigmoid.forward(x) * dLdY)
        x[index] = old
        seed_style[index] = (up - down) / 2e-6
    np.testing.assert_allclose(result.numerical, seed_style, rtol=1e-8)
