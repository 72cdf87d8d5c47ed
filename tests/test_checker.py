"""check_gradients: agreement between methods, located bugs, no false failures."""

import pickle

import numpy as np
import pytest

from fastgrad import activations, check_gradients, costs, losses
from fastgrad.layers import FullyConnected
from fastgrad.testing import assert_gradients

import reference

ELEMENTWISE = [activations.Identity(), activations.Sigmoid(), activations.TanH(),
               activations.ReLU(), activations.LeakyReLU(0.1), activations.ELU(0.5),
               activations.SELU(), activations.SiLU(), activations.Softplus(),
               activations.Softsign(), activations.Arctan(), activations.BentIdentity(),
               activations.Gaussian(), activations.PiecewiseLinear(2.0)]
ALL_ACTIVATIONS = [*ELEMENTWISE, activations.SoftMax()]
# the Keras-like costs take (AL, Y); checked here in fastgrad.losses' (Y, Y_hat) order
LOSSES = [losses.CrossEntropy(), *(costs.internal_loss(cost) for cost in (
    costs.BinaryCrossentropy(), costs.MSE(), costs.MAE()))]
LAYER_ACTIVATIONS = ["identity", "tanh", "relu", "sigmoid", "selu", "softmax"]


def _loss_data(loss, rng, shape=(6, 4), dtype=np.float64):
    P = rng.uniform(0.05, 0.95, size=shape)
    if isinstance(loss, losses.CrossEntropy):
        P /= P.sum(axis=1, keepdims=True)
        Y = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    elif loss.code == costs.BinaryCrossentropy.code:
        Y = rng.integers(0, 2, size=shape).astype(float)
    else:
        Y = rng.normal(size=shape)
    return Y, P.astype(dtype)


def _layer(activation, rng, n_samples=5, n_in=4, n_out=3, dtype=np.float64):
    layer = FullyConnected(n_out, activation=activation, seed=int(rng.integers(1 << 30)))
    X = rng.normal(size=(n_samples, n_in)).astype(dtype)
    dLdY = rng.normal(size=(n_samples, n_out)).astype(dtype)
    layer.forward(X)
    layer.parameters["b"][:] = rng.normal(size=(1, n_out))
    layer.forward(X)
    layer.backward(dLdY)
    return layer, X, dLdY


def _close_to(a, b, rtol=1e-8):
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


# ---------------------------------------------------------------- agreement of methods


@pytest.mark.nojit
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_structured_equals_exhaustive_activations(activation, rng):
    X = rng.normal(scale=2, size=(4, 5))
    dLdY = rng.normal(size=X.shape)
    grad = activation.backward(X, dLdY)
    structured = check_gradients(activation.forward, grad, X, dLdY, method="structured")
    exhaustive = check_gradients(activation.forward, grad, X, dLdY, method="exhaustive")
    assert structured.method == "structured" and exhaustive.method == "exhaustive"
    _close_to(structured.numerical, exhaustive.numerical)
    _close_to(structured.numerical, reference.central_differences(activation.forward, X, dLdY,
                                                                  h=1e-5), rtol=1e-6)


@pytest.mark.nojit
@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_structured_equals_exhaustive_losses(loss, rng):
    Y, P = _loss_data(loss, rng)
    grad = loss.backward(Y, P)
    structured = check_gradients(lambda p: loss.forward(Y, p), grad, P, method="structured")
    exhaustive = check_gradients(lambda p: loss.forward(Y, p), grad, P, method="exhaustive")
    _close_to(structured.numerical, exhaustive.numerical)
    assert structured.passed and exhaustive.passed


@pytest.mark.nojit
@pytest.mark.parametrize("activation", LAYER_ACTIVATIONS)
@pytest.mark.parametrize("name", ["W", "b"])
def test_structured_equals_exhaustive_dense(activation, name, rng):
    layer, X, dLdY = _layer(activation, rng)
    fn = layer.forward_with_param(name, X)
    grad = layer.gradients[name]
    structured = check_gradients(fn, grad, layer.parameters[name], dLdY, method="structured")
    exhaustive = check_gradients(fn, grad, layer.parameters[name], dLdY, method="exhaustive")
    _close_to(structured.numerical, exhaustive.numerical)
    assert structured.passed and exhaustive.passed


def test_loss_recognised_through_partial_and_global_lambda(rng):
    import functools

    loss = costs.internal_loss(costs.MSE())
    Y, P = _loss_data(loss, rng)
    result = check_gradients(functools.partial(loss.forward, Y), loss.backward(Y, P), P)
    assert result.method == "structured" and result.passed


def test_structure_not_trusted_when_fn_differs(rng):
    tanh = activations.TanH()
    X = rng.normal(size=(3, 3))
    dLdY = np.ones_like(X)

    def doubled(x):  # sees a TanH, but computes something else
        return 2 * tanh.forward(x)

    result = check_gradients(doubled, 2 * tanh.backward(X, dLdY), X, dLdY)
    assert result.method in ("exhaustive", "colored") and result.passed
    assert "did not reproduce" in result.method_note
    with pytest.raises(ValueError, match=r"structured.*cannot check"):
        check_gradients(doubled, 2 * tanh.backward(X, dLdY), X, dLdY, method="structured")


# ---------------------------------------------------------------- injected bugs


def test_one_element_off_in_a_million_is_located(rng):
    X = rng.normal(size=(1000, 1000))
    dLdY = rng.normal(size=X.shape)
    tanh = activations.TanH()
    grad = tanh.backward(X, dLdY)
    bad = (123, 456)
    grad[bad] *= 1 + 1e-4
    result = check_gradients(tanh.forward, grad, X, dLdY)
    assert not result.passed and result.n_failed == 1
    assert result.worst[0].index == bad
    assert result.method == "structured"


@pytest.mark.parametrize("method", ["structured", "exhaustive"])
def test_one_element_off_located_by_each_method(method, rng):
    X = rng.normal(size=(16, 16))
    dLdY = rng.normal(size=X.shape)
    sigmoid = activations.Sigmoid()
    grad = sigmoid.backward(X, dLdY)
    grad[3, 7] *= 1 + 1e-4
    result = check_gradients(sigmoid.forward, grad, X, dLdY, method=method)
    assert not result.passed and result.worst[0].index == (3, 7) and result.n_failed == 1


@pytest.mark.parametrize("method", ["structured", "exhaustive"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_transposed_dW_is_caught(method, activation, rng):
    layer, X, dLdY = _layer(activation, rng, n_in=4, n_out=4)
    wrong = layer.gradients["W"].T.copy()
    result = check_gradients(layer.forward_with_param("W", X), wrong, layer.parameters["W"],
                             dLdY, method=method)
    assert not result.passed
    off_diagonal = [e.index for e in result.worst if not e.kink][:3]
    assert all(i != j for i, j in off_diagonal)


@pytest.mark.parametrize("method", ["structured", "exhaustive"])
@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_missing_one_over_m_is_caught(method, loss, rng):
    Y, P = _loss_data(loss, rng)
    wrong = loss.backward(Y, P) * P.shape[0]
    result = check_gradients(lambda p: loss.forward(Y, p), wrong, P, method=method)
    assert not result.passed and result.n_failed == np.count_nonzero(wrong)


@pytest.mark.parametrize("method", ["structured", "exhaustive"])
def test_sign_error_is_caught(method, rng):
    X = rng.normal(size=(5, 6))
    dLdY = rng.normal(size=X.shape)
    softplus = activations.Softplus()
    result = check_gradients(softplus.forward, -softplus.backward(X, dLdY), X, dLdY,
                             method=method)
    assert not result.passed and result.n_failed == X.size
    assert float(result) == pytest.approx(np.inf) or float(result) > 1


@pytest.mark.parametrize("method", ["structured", "exhaustive"])
def test_softmax_diagonal_only_is_caught(method, rng):
    X = rng.normal(size=(4, 5))
    dLdY = rng.normal(size=X.shape)
    s = reference.softmax_forward(X)
    diagonal_only = s * (1 - s) * dLdY
    result = check_gradients(activations.SoftMax().forward, diagonal_only, X, dLdY,
                             method=method)
    assert not result.passed and result.n_failed > X.size // 2


@pytest.mark.parametrize("method", ["structured", "exhaustive"])
def test_relu_wrong_for_negative_inputs_is_caught(method, rng):
    X = rng.normal(size=(6, 6))
    dLdY = rng.normal(size=X.shape)
    wrong = np.where(X > 0, 1.0, 0.01) * dLdY  # a leaky slope where ReLU has none
    result = check_gradients(activations.ReLU().forward, wrong, X, dLdY, method=method)
    assert not result.passed
    failed = {e.index for e in result.worst}
    negatives = {tuple(int(i) for i in idx) for idx in np.argwhere(X < 0)}
    assert failed <= negatives
    assert result.n_failed == len(negatives)


# ---------------------------------------------------------------- no false failures


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_correct_activations_pass_over_many_seeds(activation, dtype):
    for seed in range(25):
        rng = np.random.default_rng(seed)
        X = rng.normal(scale=3, size=(7, 9)).astype(dtype)
        dLdY = rng.normal(size=X.shape).astype(dtype)
        result = check_gradients(activation.forward, activation.backward(X, dLdY), X, dLdY,
                                 seed=seed)
        assert result.passed, (seed, repr(result))


@pytest.mark.parametrize("activation", LAYER_ACTIVATIONS)
def test_correct_dense_layers_pass_over_many_seeds(activation, dtype):
    for seed in range(20):
        rng = np.random.default_rng(seed)
        layer, X, dLdY = _layer(activation, rng, n_samples=8, n_in=6, n_out=5, dtype=dtype)
        for name in ("W", "b"):
            result = check_gradients(layer.forward_with_param(name, X), layer.gradients[name],
                                     layer.parameters[name], dLdY, seed=seed)
            assert result.passed, (seed, name, repr(result))


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_correct_losses_pass_over_many_seeds(loss, dtype):
    for seed in range(25):
        rng = np.random.default_rng(seed)
        Y, P = _loss_data(loss, rng, dtype=dtype)
        for method in ("structured", "exhaustive"):
            result = check_gradients(lambda p, Y=Y: loss.forward(Y, p), loss.backward(Y, P), P,
                                     method=method, seed=seed)
            assert result.passed, (seed, method, repr(result))


def test_relu_at_the_kink_is_reported_not_failed():
    # x = 0 sits on the kink (excused: the analytic 0 is the left derivative); +-1e-9 are
    # crossed by the first step only, and judged at a finer one
    X = np.array([[0.0, 1e-9, -1e-9, 0.5]])
    dLdY = np.ones_like(X)
    relu = activations.ReLU()
    for method in ("structured", "exhaustive"):
        result = check_gradients(relu.forward, relu.backward(X, dLdY), X, dLdY, method=method)
        assert result.verdict == "passed", repr(result)
        assert [tuple(k) for k in result.kinks] == [(0, 0)], repr(result)
        assert {(0, 1), (0, 2)} <= {tuple(r) for r in result.refined}, repr(result)


def test_wrong_gradient_near_a_kink_still_fails():
    # x within the coarse step of ReLU's kink, not on it: a finer step no longer crosses
    X = np.array([[1e-7, 0.5]])
    dLdY = np.ones_like(X)
    result = check_gradients(activations.ReLU().forward, np.array([[3.0, 1.0]]), X, dLdY)
    assert result.verdict == "failed" and result.worst[0].index == (0, 0), repr(result)
    assert result.numerical[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("convention", [0.0, 1.0, 0.5])
def test_a_value_exactly_on_a_kink_is_excused_when_it_is_a_one_sided_slope(convention):
    # relu'(0) = 0 or 1, or the mean: the conventions in use; the slope jumps at x itself
    X = np.array([[0.0, 0.5]])
    dLdY = np.ones_like(X)
    result = check_gradients(activations.ReLU().forward, np.array([[convention, 1.0]]), X,
                             dLdY)
    assert result.verdict == "passed", repr(result)
    if convention != 0.5:  # the mean is what the central difference measures: no kink needed
        assert [tuple(k) for k in result.kinks] == [(0, 0)], repr(result)
        assert "kink" in result.method_note and result.worst[0].status == "kink"


def test_a_value_exactly_on_a_kink_that_is_no_one_sided_slope_is_inconclusive():
    # relu'(0) = 3 is neither side's slope: no difference can call it right (nor wrong)
    X = np.array([[0.0, 0.5]])
    dLdY = np.ones_like(X)
    result = check_gradients(activations.ReLU().forward, np.array([[3.0, 1.0]]), X, dLdY)
    assert result.verdict == "inconclusive" and not result.passed, repr(result)
    assert [tuple(k) for k in result.unresolved] == [(0, 0)]
    assert "neither one-sided derivative" in result.method_note
    wrong_elsewhere = check_gradients(activations.ReLU().forward, np.array([[0.0, 3.0]]), X,
                                      dLdY)
    assert wrong_elsewhere.verdict == "failed" and wrong_elsewhere.worst[0].index == (0, 1)


def test_a_kink_under_a_large_constant_is_judged_at_its_own_noise():
    # |v| + 1000 at v = 0: the jump in slope at x stands far above the rounding of 1000
    x = np.array([0.0, 0.5])
    result = check_gradients(lambda v: 1000.0 + np.abs(v), np.array([-1.0, 1.0]), x,
                             method="exhaustive")
    assert result.verdict == "passed" and [tuple(k) for k in result.kinks] == [(0,)], \
        repr(result)
    wrong = check_gradients(lambda v: 1000.0 + np.abs(v), np.array([2.0, 1.0]), x,
                            method="exhaustive")
    assert wrong.verdict == "inconclusive", repr(wrong)


def test_several_units_on_their_kinks_at_once_are_not_failures(rng):
    # a zero input row with zero biases puts every ReLU unit of that sample exactly on its kink;
    # a bias below them moves them all at once, and the backprop convention (slope 0 at 0) can
    # then lie outside the one-sided slopes: never a failure (it may be inconclusive)
    W1 = rng.normal(size=(3, 4))
    W2 = rng.normal(size=(4, 4))
    b1 = np.zeros((1, 4))
    dLdY = rng.normal(size=(6, 4))

    def check(X, scale=1.0):
        def fn(b):
            return np.maximum(np.tanh(X @ W1 + b) @ W2, 0.0)

        dZ2 = (np.tanh(X @ W1 + b1) @ W2 > 0) * dLdY
        grad = ((dZ2 @ W2.T) * (1 - np.tanh(X @ W1 + b1) ** 2)).sum(axis=0, keepdims=True)
        return check_gradients(fn, grad * scale, b1, dLdY, method="exhaustive")

    X = rng.normal(size=(6, 3))
    padded = X.copy()
    padded[0] = 0.0
    result = check(padded)
    assert result.verdict != "failed" and len(result.kinks) + len(result.unresolved) > 0, \
        repr(result)
    # away from the kinks the same network and the same wrong gradient are judged
    assert check(X).passed and not check(X, scale=1.5).passed


# ---------------------------------------------------------------- float32


def test_float32_differenced_in_float64_when_fn_accepts_it(rng):
    layer, X, dLdY = _layer("tanh", rng, n_samples=32, n_in=64, n_out=64, dtype=np.float32)
    result = check_gradients(layer.forward_with_param("W", X), layer.gradients["W"],
                             layer.parameters["W"], dLdY)
    assert result.eval_dtype == np.float64 and result.dtype == np.float32 and result.passed


def test_float32_only_function_is_differenced_in_float32(rng):
    X = rng.normal(size=(4, 5)).astype(np.float32)

    def strict(x):
        if x.dtype != np.float32:
            raise TypeError("float32 only")
        return np.sin(x)

    result = check_gradients(strict, np.cos(X), X)
    assert result.eval_dtype == np.float32 and result.passed
    assert "float32" in result.method_note
    wrong = np.cos(X)
    wrong[1, 2] *= 1.1
    bad = check_gradients(strict, wrong, X)
    assert not bad.passed and bad.worst[0].index == (1, 2)


# ---------------------------------------------------------------- exhaustive details


def test_black_box_stacking_is_probed_and_used(rng):
    A = rng.normal(size=(8, 8)) / 3
    x = rng.normal(size=(8, 8))
    dLdf = rng.normal(size=(8, 8))

    def fn(v):
        return np.tanh(v @ A)

    grad = ((1 - fn(x) ** 2) * dLdf) @ A.T
    result = check_gradients(fn, grad, x, dLdf, method="exhaustive")
    assert result.passed and "stacked" in result.method_note
    # fixed calls: x twice (determinism), 2 of the float32-rounding probe (x rounded to
    # float32, and a move below half a float32 ulp, which changes this fn's output), 6
    # rounding probes and 16 plateau probes, the stacking probe (1 stack and 3 single calls),
    # the 64 elements in one stacked call (not 256 single ones), 16 calls that find which
    # outputs each element reaches (for the rounding floors), and x once more at the end (fn
    # must still answer as it did)
    assert result.n_evaluations <= 48
    small = check_gradients(fn, grad, x, dLdf, method="exhaustive", memory_budget=8 * 2**10)
    assert small.passed and small.n_evaluations > result.n_evaluations
    _close_to(small.numerical, result.numerical)


def test_function_that_mixes_the_leading_axis_is_not_stacked(rng):
    x = rng.normal(size=(6, 3))

    def mean_over_samples(v):  # on a stack, v.shape[0] is the stack size: other values
        return np.sum(v**2) / v.shape[0]

    result = check_gradients(mean_over_samples, 2 * x / 6, x)
    assert result.passed and "one element per call" in result.method_note


def test_nan_at_perturbed_points_is_reported_by_index():
    x = np.array([1.0, 2.0, 3.0])

    def fn(v):
        out = v**2
        out[v > 3.0] = np.nan  # only x[2] + h crosses the line
        return out

    result = check_gradients(fn, 2 * x, x, method="exhaustive")
    assert not result.passed
    assert [tuple(i) for i in result.nan_elements] == [(2,)]


# ---------------------------------------------------------------- result object


def test_result_is_a_float_with_a_readable_repr(rng):
    X = rng.normal(size=(3, 4))
    tanh = activations.TanH()
    result = check_gradients(tanh.forward, tanh.backward(X, np.ones_like(X)), X, np.ones_like(X))
    assert isinstance(result, float) and result < 1e-8
    text = repr(result)
    assert "passed" in text and "structured" in text and "tolerance" in text
    assert str(result) == repr(float(result))
    clone = pickle.loads(pickle.dumps(result))
    assert float(clone) == float(result) and clone.passed and clone.method == result.method
    assert result.numerical.shape == X.shape and result.analytic is not None
    assert result.n_checked == X.size and result.elapsed_s >= 0


def test_assert_gradients_message_lists_worst_elements(rng):
    X = rng.normal(size=(3, 4))
    tanh = activations.TanH()
    grad = tanh.backward(X, np.ones_like(X))
    assert_gradients(tanh.forward, grad, X, np.ones_like(X))
    grad[2, 1] += 0.5
    with pytest.raises(AssertionError) as info:
        assert_gradients(tanh.forward, grad, X, np.ones_like(X))
    message = str(info.value)
    assert "(2, 1)" in message and "numerical" in message and "tolerance" in message


def test_user_tolerances(rng):
    x = rng.normal(size=5)
    grad = np.cos(x) * (1 + 1e-5)
    assert not check_gradients(np.sin, grad, x).passed
    result = check_gradients(np.sin, grad, x, rtol=1e-4, atol=0)
    assert result.passed and result.rtol == 1e-4 and result.atol == 0
