"""Activation kernels against the naive references, in float32 and float64."""

import warnings

import numpy as np
import pytest

from fastgrad import activations

import reference
from conftest import assert_kernel_close

CASES = {
    "identity": activations.Identity(), "sigmoid": activations.Sigmoid(),
    "tanh": activations.TanH(), "relu": activations.ReLU(),
    "leaky_relu": activations.LeakyReLU(alpha=0.05), "elu": activations.ELU(alpha=0.7),
    "selu": activations.SELU(), "silu": activations.SiLU(), "softplus": activations.Softplus(),
    "softsign": activations.Softsign(), "arctan": activations.Arctan(),
    "bent_identity": activations.BentIdentity(), "gaussian": activations.Gaussian(),
    "piecewise_linear": activations.PiecewiseLinear(alpha=1.5),
}
SHAPES = [(1, 1), (1, 7), (5, 1), (4, 6), (2, 3, 4)]


def _input(rng, shape, dtype, scale=2.0):
    x = rng.normal(scale=scale, size=shape)
    # keep away from the kinks at 0 and +-alpha so the derivative is well defined
    x = np.where(np.abs(x) < 1e-3, 0.5, x)
    x = np.where(np.abs(np.abs(x) - 1.5) < 1e-3, 0.5, x)
    return x.astype(dtype)


@pytest.mark.nojit
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_backward_match_reference(name, shape, dtype, rng):
    activation = CASES[name]
    alpha = activation.alpha
    X = _input(rng, shape, dtype)
    dLdY = rng.normal(size=shape).astype(dtype)
    Y = activation.forward(X)
    dX = activation.backward(X, dLdY)
    assert Y.dtype == dtype and dX.dtype == dtype and Y.shape == shape
    assert_kernel_close(Y, reference.activation_forward(name, X.astype(np.float64), alpha), dtype)
    assert_kernel_close(dX, reference.activation_backward(name, X.astype(np.float64),
                                                          dLdY.astype(np.float64), alpha), dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_finite_differences(name, rng):
    activation = CASES[name]
    X = _input(rng, (3, 4), np.float64)
    dLdY = rng.normal(size=(3, 4))
    numerical = reference.central_differences(activation.forward, X, dLdY)
    np.testing.assert_allclose(activation.backward(X, dLdY), numerical, rtol=1e-6, atol=1e-8)


@pytest.mark.nojit
@pytest.mark.parametrize("shape", [*SHAPES, (1,), (9,)], ids=str)
def test_softmax_matches_reference(shape, dtype, rng):
    X = rng.normal(scale=3, size=shape).astype(dtype)
    dLdY = rng.normal(size=shape).astype(dtype)
    softmax = activations.SoftMax()
    assert_kernel_close(softmax.forward(X), reference.softmax_forward(X), dtype)
    assert_kernel_close(softmax.backward(X, dLdY),
                        reference.softmax_backward(X.astype(np.float64), dLdY), dtype)


@pytest.mark.nojit
def test_softmax_matches_reference_on_the_parallel_path(dtype, rng):
    # from SERIAL_BELOW elements the softmax takes the kernels' parallel builds
    X = rng.normal(scale=3, size=(2100, 9)).astype(dtype)
    dLdY = rng.normal(size=X.shape).astype(dtype)
    softmax = activations.SoftMax()
    assert_kernel_close(softmax.forward(X), reference.softmax_forward(X), dtype)
    assert_kernel_close(softmax.backward(X, dLdY),
                        reference.softmax_backward(X.astype(np.float64), dLdY), dtype)


def test_softmax_backward_is_full_jacobian_not_diagonal(rng):
    X = rng.normal(size=(4, 5))
    dLdY = rng.normal(size=(4, 5))
    s = reference.softmax_forward(X)
    diagonal_only = s * (1 - s) * dLdY
    got = activations.SoftMax().backward(X, dLdY)
    assert not np.allclose(got, diagonal_only)
    numerical = reference.central_differences(activations.SoftMax().forward, X, dLdY)
    np.testing.assert_allclose(got, numerical, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "tanh", "silu", "elu", "selu",
                                  "softsign", "gaussian", "bent_identity"])
def test_extreme_inputs_do_not_overflow(name, dtype):
    X = np.array([[-1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Y = CASES[name].forward(X)
        dX = CASES[name].backward(X, np.ones_like(X))
    expected = reference.activation_forward(name, X.astype(np.float64), CASES[name].alpha)
    assert np.all(np.isfinite(Y)) and np.all(np.isfinite(dX))
    assert_kernel_close(Y, expected, dtype)


def test_softmax_extreme_inputs(dtype):
    X = np.array([[-1e3, 0.0, 1e3], [1e3, 1e3, 1e3], [-1e3, -1e3, -999.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Y = activations.SoftMax().forward(X)
        dX = activations.SoftMax().backward(X, np.ones_like(X))
    assert np.all(np.isfinite(Y)) and np.all(np.isfinite(dX))
    assert_kernel_close(Y, reference.softmax_forward(X.astype(np.float64)), dtype)


def test_integer_input_is_converted():
    Y = activations.ReLU().forward(np.array([[-2, 3]]))
    assert Y.dtype == np.float64 and Y.tolist() == [[0.0, 3.0]]


@pytest.mark.parametrize("bad, error, words", [
    (np.array([1 + 2j]), TypeError, "X: expected a real"),
    (np.array(["a", "b"]), TypeError, "X: expected a real"),
    (np.array([1.0], dtype=np.float16), TypeError, "float16"),
    (np.array([None, 1.0], dtype=object), TypeError, "object"),
])
def test_bad_input_types(bad, error, words):
    with pytest.raises(error, match=words):
        activations.Sigmoid().forward(bad)


def test_backward_shape_mismatch_names_argument():
    with pytest.raises(ValueError, match=r"dLdY: expected shape \(2, 3\).*got \(3, 2\)"):
        activations.TanH().backward(np.zeros((2, 3)), np.zeros((3, 2)))


def test_softmax_needs_an_axis():
    with pytest.raises(ValueError, match="X: expected at least 1"):
        activations.SoftMax().forward(np.float64(1.0))


@pytest.mark.parametrize("name, cls", [("identity", activations.Identity),
                                       ("linear", activations.Identity),
                                       ("tanh", activations.TanH), ("slu", activations.SiLU),
                                       ("softmax", activations.SoftMax),
                                       ("leaky_relu", activations.LeakyReLU)])
def test_get_by_name(name, cls):
    assert isinstance(activations.get(name), cls)


def test_get_errors():
    with pytest.raises(ValueError, match="unknown name 'swishy'"):
        activations.get("swishy")
    with pytest.raises(TypeError, match=r"ReLU\(\)"):
        activations.get(activations.ReLU)
    with pytest.raises(TypeError, match="forward"):
        activations.get(42)


def test_alpha_validation():
    with pytest.raises(ValueError, match="alpha"):
        activations.LeakyReLU(alpha=-1)
    assert repr(activations.ELU(alpha=0.5)) == "ELU(alpha=0.5)"


def test_selu_constants():
    out = activations.SELU().forward(np.array([1.0, -1.0]))
    np.testing.assert_allclose(out, [1.0507009873554805,
                                     1.0507009873554805 * 1.6732632423543772 * np.expm1(-1.0)])
