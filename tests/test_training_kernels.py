"""The fused training kernels against deliberately naive NumPy, on several shapes."""

import numpy as np
import pytest

from fastgrad import optimizers
from fastgrad.kernels import activations as codes
from fastgrad.kernels import dense
from fastgrad.kernels import losses as loss_codes
from fastgrad.kernels import optimizers as rules

import reference
from conftest import assert_kernel_close

SHAPES = [(1, 1), (1, 5), (7, 1), (6, 70), (33, 130)]
ACTS = ["identity", "sigmoid", "tanh", "relu", "softmax"]
CODE = {"identity": codes.IDENTITY, "sigmoid": codes.SIGMOID, "tanh": codes.TANH,
        "relu": codes.RELU, "softmax": codes.SOFTMAX}


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.nojit
@pytest.mark.parametrize("build", ["serial", "parallel"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_bias_activation_and_its_backward(build, act, shape, rng):
    Z0 = rng.normal(size=shape)
    b = rng.normal(size=shape[1])
    dLdY = rng.normal(size=shape)
    forward = getattr(dense, f"bias_activation_{build}")
    backward = getattr(dense, f"activation_backward_bias_{build}")
    Z, Y = Z0.copy(), np.empty(shape)
    forward(CODE[act], 0.0, Z, b, Y)
    np.testing.assert_allclose(Z, Z0 + b, rtol=1e-14)
    if act == "softmax":
        expected = _softmax(Z0 + b)
        dZ_expected = expected * (dLdY - (dLdY * expected).sum(axis=1, keepdims=True))
    else:
        expected = reference.activation_forward(act, Z0 + b, 0.0)
        dZ_expected = reference.activation_backward(act, Z0 + b, dLdY, 0.0)
    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-15)
    dZ, db = np.empty(shape), np.empty(shape[1])
    backward(CODE[act], 0.0, Z, dLdY, dZ, db)
    np.testing.assert_allclose(dZ, dZ_expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, dZ_expected.sum(axis=0), rtol=1e-10, atol=1e-13)


@pytest.mark.nojit
@pytest.mark.parametrize("build", ["serial", "parallel"])
@pytest.mark.parametrize("act", ["identity", "relu", "tanh"])
def test_epilogues_in_float32_keep_nan_and_inf(build, act, dtype, rng):
    # ReLU and the identity have loops of their own; they must agree with the general rule
    # (tanh here) in either dtype, and 0 * inf in a ReLU's backward stays NaN
    shape = (9, 150)
    Z0 = rng.normal(size=shape).astype(dtype)
    Z0[0, :2] = 0.0
    b = rng.normal(size=shape[1]).astype(dtype)
    b[:2] = 0.0
    dLdY = rng.normal(size=shape).astype(dtype)
    dLdY[0, :3] = [np.inf, np.nan, -np.inf]
    forward = getattr(dense, f"bias_activation_{build}")
    backward = getattr(dense, f"activation_backward_bias_{build}")
    Z, Y = Z0.copy(), np.empty(shape, dtype=dtype)
    forward(CODE[act], 0.0, Z, b, Y)
    pre = Z0.astype(np.float64) + b.astype(np.float64)
    assert_kernel_close(Z, pre, dtype)
    assert_kernel_close(Y, reference.activation_forward(act, Z.astype(np.float64), 0.0), dtype)
    dZ, db = np.empty(shape, dtype=dtype), np.empty(shape[1], dtype=dtype)
    backward(CODE[act], 0.0, Z, dLdY, dZ, db)
    with np.errstate(invalid="ignore"):   # 0 * inf in the reference
        expected = reference.activation_backward(act, Z.astype(np.float64),
                                                 dLdY.astype(np.float64), 0.0)
        sums = expected.sum(axis=0)
    np.testing.assert_array_equal(np.isnan(dZ), np.isnan(expected))
    np.testing.assert_array_equal(np.isnan(db), np.isnan(sums))
    finite = np.isfinite(expected)
    assert_kernel_close(dZ[finite], expected[finite], dtype)
    columns = np.isfinite(expected).all(axis=0)
    assert_kernel_close(db[columns], sums[columns], dtype)


@pytest.mark.nojit
@pytest.mark.parametrize(("cost", "act"), [("cross_entropy", "softmax"),
                                           ("binary_cross_entropy", "sigmoid"),
                                           ("mse", "identity"), ("mse", "tanh"),
                                           ("mse", "softmax"), ("mae", "relu")])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 10)], ids=str)
def test_output_gradient(cost, act, shape, rng):
    n, k = shape
    Z = rng.normal(size=shape)
    A = _softmax(Z) if act == "softmax" else reference.activation_forward(act, Z, 0.0)
    if cost == "cross_entropy":
        Y = np.eye(k)[rng.integers(0, k, n)]
    elif cost == "binary_cross_entropy":
        Y = rng.integers(0, 2, size=shape).astype(float)
    else:
        Y = rng.normal(size=shape)
    dA = reference.loss_backward(cost, Y, A)
    if act == "softmax":
        dZ_expected = A * (dA - (dA * A).sum(axis=1, keepdims=True))
    else:
        dZ_expected = reference.activation_backward(act, Z, dA, 0.0)
    code = {"cross_entropy": loss_codes.CROSS_ENTROPY, "mse": loss_codes.SQUARED_ERROR,
            "binary_cross_entropy": loss_codes.BINARY_CROSS_ENTROPY,
            "mae": loss_codes.ABSOLUTE_ERROR}[cost]
    dZ, db = np.empty(shape), np.empty(k)
    total = dense.output_gradient(code, CODE[act], 0.0, 1.0 / n, Z, A, Y, dZ, db)
    np.testing.assert_allclose(total / n, reference.loss_forward(cost, Y, A), rtol=1e-12)
    np.testing.assert_allclose(dZ, dZ_expected, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(db, dZ_expected.sum(axis=0), rtol=1e-9, atol=1e-13)




class _Layer:
    def __init__(self, W, G):
        self.parameters = {"W": W}
        self.gradients = {"W": G}


@pytest.mark.nojit
@pytest.mark.parametrize("name", ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optimizer_rules(name, dtype, rng):
    W = rng.normal(size=(4, 3))
    layer = _Layer(W.astype(dtype), rng.normal(size=(4, 3)).astype(dtype))
    optimizer = getattr(optimizers, name)(learning_rate=0.1)
    expected = W
    v = s = np.zeros_like(W)
    for _ in range(3):   # state carries over between steps
        g = layer.gradients["W"].astype(np.float64)
        if name == "Momentum":
            v = 0.9 * v + 0.1 * g
            expected = expected - 0.1 * v
        elif name in ("AdaGrad", "RMSProp"):
            s = s + g ** 2 if name == "AdaGrad" else 0.9 * s + 0.1 * g ** 2
            expected = expected - 0.1 * g / (np.sqrt(s) + 1e-8)
        elif name == "Adam":
            v = 0.9 * v + 0.1 * g
            s = 0.999 * s + 0.001 * g ** 2
            expected = expected - 0.1 * v / (np.sqrt(s) + 1e-8)
        else:
            expected = expected - 0.1 * g
        optimizer.step([layer])
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(layer.parameters["W"], expected, rtol=rtol, atol=rtol)
    assert layer.parameters["W"].dtype == dtype


def test_serial_and_parallel_update_agree(rng):
    w = rng.normal(size=1000)
    g = rng.normal(size=1000)
    a, b = w.copy(), w.copy()
    va, sa, vb, sb = (np.zeros(1000) for _ in range(4))
    rules.update(rules.ADAM, 0.01, 0.9, 0.999, 1e-8, 1.0, 1.0, a, g, va, sa)
    rules.update_serial(rules.ADAM, 0.01, 0.9, 0.999, 1e-8, 1.0, 1.0, b, g, vb, sb)
    np.testing.assert_allclose(a, b, rtol=1e-15)
