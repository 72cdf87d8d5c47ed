"""Loss kernels against the naive references."""

import numpy as np
import pytest

from fastgrad import costs, losses

import reference
from conftest import assert_kernel_close

CASES = {
    "cross_entropy": losses.CrossEntropy("cross_entropy"),
    "binary_cross_entropy": costs.BinaryCrossentropy(),
    "mse": costs.MSE(),
    "mae": costs.MAE(),
}


def _forward(loss, Y, P):
    """The loss of predictions P for labels Y, in each library's own argument order."""
    return loss.forward(P, Y) if isinstance(loss, costs.Cost) else loss.forward(Y, P)


def _backward(loss, Y, P):
    return loss.backward(P, Y) if isinstance(loss, costs.Cost) else loss.backward(Y, P)


def _data(rng, name, shape, dtype):
    P = rng.uniform(0.05, 0.95, size=shape)
    if name == "cross_entropy":
        P = P / P.sum(axis=1, keepdims=True)
        Y = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    elif name == "binary_cross_entropy":
        Y = rng.integers(0, 2, size=shape).astype(float)
    else:
        Y = rng.normal(size=shape)
    return Y.astype(dtype), P.astype(dtype)


@pytest.mark.nojit
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (6, 1), (5, 3)], ids=str)
def test_match_reference(name, shape, dtype, rng):
    Y, P = _data(rng, name, shape, dtype)
    loss = CASES[name]
    value = _forward(loss, Y, P)
    grad = _backward(loss, Y, P)
    assert isinstance(value, float) and grad.dtype == dtype
    assert_kernel_close(value, reference.loss_forward(name, Y, P), dtype)
    assert_kernel_close(grad, reference.loss_backward(name, Y, P), dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_finite_differences(name, rng):
    Y, P = _data(rng, name, (4, 3), np.float64)
    numerical = reference.central_differences(lambda p: _forward(CASES[name], Y, p), P)
    np.testing.assert_allclose(_backward(CASES[name], Y, P), numerical, rtol=1e-6, atol=1e-9)


def test_categorical_cross_entropy_any_number_of_classes(rng):
    for n_classes in (1, 2, 7):
        Y, P = _data(rng, "cross_entropy", (5, n_classes), np.float64)
        assert costs.CategoricalCrossentropy().forward(P, Y) == pytest.approx(
            reference.loss_forward("cross_entropy", Y, P))


def test_integer_labels_and_class_indices(rng):
    P = rng.uniform(0.1, 0.9, size=(6, 3))
    indices = rng.integers(0, 3, size=6)
    one_hot = np.eye(3)[indices]
    ce = costs.CategoricalCrossentropy()
    assert ce.forward(P, indices) == pytest.approx(ce.forward(P, one_hot))
    assert ce.forward(P, one_hot.astype(int)) == pytest.approx(ce.forward(P, one_hot))
    labels = rng.integers(0, 2, size=(6, 1))
    bce = costs.BinaryCrossentropy()
    assert bce.forward(P[:, :1], labels) == pytest.approx(
        reference.loss_forward("binary_cross_entropy", labels, P[:, :1]))
    assert bce.forward(P[:, :1], labels.ravel()) == pytest.approx(bce.forward(P[:, :1], labels))


def test_zero_labels_give_no_nan():
    Y = np.array([[1, 0, 0], [1, 0, 0]])
    P = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    value = losses.CrossEntropy().forward(Y, P)
    assert value == pytest.approx(-np.log(0.5) / 2)
    assert np.all(np.isfinite(losses.CrossEntropy().backward(Y, P)))


def test_errors_name_arguments():
    with pytest.raises(ValueError, match=r"Y: expected shape \(2, 3\) \(the shape of AL\)"):
        costs.MSE().forward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="AL"):
        costs.MSE().forward(np.array(["a", "b", "c"]), np.zeros(3))
    with pytest.raises(ValueError, match="class indices"):
        costs.CategoricalCrossentropy().forward(np.full((2, 3), 1 / 3), np.array([0, 5]))
    with pytest.raises(ValueError, match="unknown name"):
        costs.get("hinge")


@pytest.mark.nojit
@pytest.mark.parametrize("name", sorted(CASES))
def test_per_term_kernels_match_reference(name, rng):
    """loss_terms (per element) and sample_losses (per row) against the reference loss."""
    from fastgrad.kernels import losses as kernels
    from fastgrad.kernels import model as model_kernels

    Y, P = _data(rng, name, (5, 3), np.float64)
    terms = np.empty(P.size)
    kernels.loss_terms(CASES[name].code, Y.reshape(-1), P.reshape(-1), terms)
    rows = np.empty(5)
    model_kernels.sample_losses(CASES[name].code, Y, P, rows)
    expected = reference.loss_forward(name, Y, P) * len(P)  # the sum of all terms
    np.testing.assert_allclose(terms.sum(), expected, rtol=1e-12)
    np.testing.assert_allclose(rows, terms.reshape(5, 3).sum(axis=1), rtol=1e-12)
    for row in range(5):
        np.testing.assert_allclose(
            rows[row], reference.loss_forward(name, Y[row:row + 1], P[row:row + 1]),
            rtol=1e-12)
