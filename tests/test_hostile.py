"""Functions that fight back: reused buffers, views, randomness, NaN, odd shapes.

Every case runs through every method it applies to; x and grad must come back bitwise equal.
"""

import numpy as np
import pytest

from fastgrad import activations, check_gradients, costs, layers, model, utils

METHODS = ["auto", "exhaustive", "colored", "directional"]


def _check(fn, grad, x, dLdf=1.0, **options):
    x_before, grad_before = x.copy(), np.array(grad, copy=True)
    result = check_gradients(fn, grad, x, dLdf, **options)
    assert np.array_equal(x, x_before) and np.array_equal(grad, grad_before)
    return result


class ReusedTanh:
    """``np.tanh(v, out=self.out); return self.out``: one output buffer for every call."""

    def __init__(self, shape):
        self.out = np.empty(shape)

    def __call__(self, v):
        if v.shape != self.out.shape:  # a stack: a buffer of that shape
            self.out = np.empty(v.shape)
        np.tanh(v, out=self.out)
        return self.out


@pytest.mark.parametrize("method", METHODS)
def test_a_reused_output_buffer_is_owned_by_fastgrad(method):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    fn = ReusedTanh(x.shape)
    correct = 1 - np.tanh(x) ** 2
    assert _check(fn, correct, x, method=method, seed=0).verdict == "passed"
    result = _check(fn, 7.0 * np.ones_like(x), x, method=method, seed=0)
    assert result.verdict == "failed" and len(result.kinks) == 0, repr(result)


@pytest.mark.parametrize("method", METHODS)
def test_a_buffered_dense_layer_passes(method):
    rng = np.random.default_rng(1)
    X, W, dY = rng.normal(size=(8, 6)), rng.normal(size=(6, 3)), rng.normal(size=(8, 3))
    buffer = np.empty((8, 3))

    def fn(w):
        if w.ndim == 2:
            np.dot(X, w, out=buffer)
            return buffer
        return X @ w

    result = _check(fn, X.T @ dY, W, dY, method=method, seed=0)
    assert result.verdict == "passed", repr(result)


VIEWS = {
    "identity": (lambda v: v, lambda x, g: g),
    "crop": (lambda v: v[..., 1:], lambda x, g: np.concatenate([np.zeros_like(x[..., :1]), g],
                                                                axis=-1)),
    "swapaxes": (lambda v: np.swapaxes(v, -1, -2), lambda x, g: np.swapaxes(g, -1, -2)),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_fn_returning_a_view_of_its_argument(view, method):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 5))
    fn, grad_of = VIEWS[view]
    dLdf = rng.normal(size=np.shape(fn(x)))
    correct = grad_of(x, dLdf)
    result = _check(fn, correct, x, dLdf, method=method, seed=0)
    assert result.verdict == "passed", repr(result)
    assert _check(fn, 2 * correct + 1, x, dLdf, method=method, seed=0).verdict == "failed"


@pytest.mark.parametrize("method", METHODS)
def test_a_function_drawing_a_new_dropout_mask_at_every_call_is_refused(method):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 5))
    draw = np.random.default_rng(4)

    def dropout(v):
        return v * (draw.random(v.shape) > 0.5) * 2.0

    with pytest.raises(ValueError, match=r"not deterministic.*noise="):
        _check(dropout, np.ones_like(x), x, method=method)


def test_a_declared_noise_level_lets_a_noisy_function_be_checked():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 5))
    jitter = np.random.default_rng(6)

    def noisy(v):
        return np.tanh(v) + 1e-13 * jitter.normal(size=v.shape)

    with pytest.raises(ValueError, match="not deterministic"):
        _check(noisy, 1 - np.tanh(x) ** 2, x)
    result = _check(noisy, 1 - np.tanh(x) ** 2, x, noise=1e-13, method="exhaustive")
    assert result.verdict == "passed", repr(result)
    wrong = _check(noisy, 1.01 * (1 - np.tanh(x) ** 2), x, noise=1e-13, method="exhaustive")
    assert wrong.verdict == "failed"


@pytest.mark.parametrize("method", ["auto", "structured", "exhaustive", "directional"])
def test_a_scalar_parameter(method):
    x = np.array(0.3)
    fn = activations.TanH().forward if method == "structured" else np.tanh
    result = _check(fn, np.array(1 - np.tanh(0.3) ** 2), x, method=method)
    assert result.verdict == "passed" and result.n_checked == 1, repr(result)
    assert _check(fn, np.array(2.0), x, method=method).verdict == "failed"


@pytest.mark.parametrize("h", [1e-300, 1e-20])
def test_a_step_below_what_the_dtype_resolves_is_refused(h):
    x = np.linspace(0.5, 1.5, 4)
    with pytest.raises(ValueError, match=r"h: .* smallest usable step is"):
        _check(np.tanh, 1 - np.tanh(x) ** 2, x, h=h)


@pytest.mark.parametrize("method", METHODS)
def test_nan_from_fn_is_reported_as_nan_with_the_elements(method):
    x = np.linspace(0.5, 1.5, 6)

    def fn(v):
        out = np.tanh(v)
        return np.where(v > 1.5, np.nan, out)  # NaN once element 5 (1.5) moves up

    result = _check(fn, 1 - np.tanh(x) ** 2, x, method=method, seed=0)
    assert result.verdict == "inconclusive" and not result.passed, repr(result)
    assert (5,) in [tuple(i) for i in result.nan_elements], repr(result)
    assert "NaN" in result.verdict_reason


def test_an_error_inside_fn_names_the_colored_group():
    x = np.linspace(0.5, 1.5, 12).reshape(3, 4)
    calls = {"n": 0}

    def fn(v):
        calls["n"] += 1
        if calls["n"] == 4:  # x twice, then the (one) group of the colored method
            raise RuntimeError("boom")
        return np.tanh(v)

    with pytest.raises(RuntimeError, match="boom") as caught:
        _check(fn, 1 - np.tanh(x) ** 2, x, method="colored", sparsity=[(0, 0), (1, 1)])
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "colored group" in notes and "elements [" in notes


def test_the_model_check_owns_outputs_and_restores_the_model():
    rng = np.random.default_rng(7)
    net = model.Model()
    net.add(layers.Dense(units=4, activation=activations.Tanh()))
    net.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    net.configure(input_size=3, cost_type=costs.BinaryCrossentropy(), seed=0)
    X, Y = rng.normal(size=(12, 3)), rng.integers(0, 2, (12, 1))
    before = [{k: v.copy() for k, v in layer.parameters.items()} for layer in net.layers]
    for method in ("model", "exhaustive"):
        result = utils.gradient_check(net, X, Y, method=method)
        assert result.verdict == "passed", repr(result)
    after = [layer.parameters for layer in net.layers]
    assert all(np.array_equal(b[k], a[k]) for b, a in zip(before, after, strict=True)
               for k in b)


# --------------------------------------------- found by an independent set of hostile functions


class LazyMaskDropout:
    """A dropout mask drawn once per input shape: a stack of another shape redraws it."""

    def __init__(self):
        self.rng, self.mask = np.random.default_rng(0), None

    def __call__(self, v):
        if self.mask is None or self.mask.shape != v.shape:
            self.mask = (self.rng.random(v.shape) > 0.3) / 0.7
        return np.tanh(v) * self.mask


class ChangesOnTheThirdCall:
    """Answers the same twice, then scales its output: a call counter in fn's state."""

    def __init__(self):
        self.calls = 0

    def __call__(self, v):
        self.calls += 1
        return np.tanh(v) * (1.5 if self.calls >= 3 else 1.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("make", [LazyMaskDropout, ChangesOnTheThirdCall])
def test_a_function_whose_state_changes_during_the_check_is_refused(method, make):
    rng = np.random.default_rng(0)
    x, dLdf = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    fn = make()
    wrong = 3 * np.ones_like(x)
    with pytest.raises(ValueError, match="not deterministic"):
        _check(fn, wrong, x, dLdf, method=method, seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_a_declared_noise_that_swamps_the_differences_is_not_a_pass(method):
    rng = np.random.default_rng(0)
    x, dLdf = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    correct = (1 - np.tanh(x) ** 2) * dLdf
    for noise in (1e-4, 1e-3):
        assert _check(np.tanh, 3 * correct, x, dLdf, method=method, noise=noise,
                      seed=0).verdict != "passed"
    # a noise level the differences resolve: the wrong gradient still fails, the right passes
    assert _check(np.tanh, 3 * correct, x, dLdf, method=method, noise=1e-12,
                  seed=0).verdict == "failed"
    assert _check(np.tanh, correct, x, dLdf, method=method, noise=1e-12,
                  seed=0).verdict == "passed"


@pytest.mark.parametrize(("noise", "words"), [(float("nan"), "noise: contains"),
                                              (-1e-6, "noise: expected standard deviations"),
                                              (np.ones(7), "noise: expected a float or")])
def test_a_bad_noise_is_refused_by_name(noise, words):
    x = np.linspace(-1, 1, 20).reshape(5, 4)
    with pytest.raises(ValueError, match=words):
        check_gradients(np.tanh, 1 - np.tanh(x) ** 2, x, noise=noise)


@pytest.mark.parametrize("method", METHODS)
def test_a_nan_element_does_not_hide_a_wrong_one(method):
    rng = np.random.default_rng(0)
    x, dLdf = np.abs(rng.normal(size=(5, 4))) + 0.5, rng.normal(size=(5, 4))
    x[1, 2] = 1e-9  # log(x - h) is NaN here only
    wrong = dLdf / x
    wrong[3, 3] += 0.3
    with np.errstate(invalid="ignore"):
        result = _check(np.log, wrong, x, dLdf, method=method, seed=0)
    assert result.verdict == "failed"
    if result.numerical is not None:
        assert np.isfinite(result.tolerance[3, 3])


@pytest.mark.parametrize("method", METHODS)
def test_a_float64_x_into_a_float32_function_is_differenced_in_float32(method):
    rng = np.random.default_rng(0)
    X, W, dY = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=(6, 3))

    def fn(w):
        return np.tanh(X.astype(np.float32) @ w.astype(np.float32))

    correct = X.T @ ((1 - np.tanh(X @ W) ** 2) * dY)
    result = _check(fn, correct, W, dY, method=method, seed=0)
    assert result.verdict == "passed" and "float32" in result.method_note
    wrong = correct.copy()
    wrong[1, 1] *= 1.2
    assert _check(fn, wrong, W, dY, method=method, seed=0).verdict == "failed"


def test_a_step_too_large_to_difference_x_is_refused():
    x = np.linspace(-1, 1, 6)
    with pytest.raises(ValueError, match="h: 1e\\+10 is too large"):
        check_gradients(np.tanh, 1 - np.tanh(x) ** 2, x, h=1e10)
    assert check_gradients(np.tanh, 1 - np.tanh(x) ** 2, x, h=1.0).verdict == "passed"


def test_the_model_check_refuses_an_epsilon_it_cannot_use_by_name():
    net = model.Model()
    net.add(layers.Dense(3, activation="tanh"))
    net.add(layers.Dense(1, activation="sigmoid"))
    net.configure(input_size=2, cost_type=costs.BinaryCrossentropy(), seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.integers(0, 2, (6, 1))
    for method in ("model", "exhaustive"):
        for epsilon, words in ((1e-20, "epsilon: 1e-20 is below"), (1e9, "epsilon: 1e\\+09 is")):
            with pytest.raises(ValueError, match=words):
                utils.gradient_check(net, X, Y, epsilon=epsilon, method=method)


def test_the_model_check_never_hands_the_callers_X_to_a_layer():
    class Doubling(layers.Dense):
        def forward(self, X, *args, **kwargs):
            X *= 2  # writes into its input
            return super().forward(X, *args, **kwargs)

    net = model.Model()
    net.add(Doubling(3, activation="tanh"))
    net.add(layers.Dense(1, activation="sigmoid"))
    net.configure(input_size=2, cost_type=costs.BinaryCrossentropy(), seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.integers(0, 2, (6, 1))
    before = X.copy()
    with pytest.raises(ValueError, match="read-only"):
        utils.gradient_check(net, X, Y)
    assert np.array_equal(X, before)


@pytest.mark.parametrize(("fn", "words"), [
    (lambda w: (np.ones((2, 3)) @ w, None), "fn: returned a tuple of 2"),
    (lambda w: None, "fn: returned None"),
    (lambda w: [np.ones(2), np.ones(3)], "fn: returned a list that is not an array")])
def test_an_output_that_is_no_array_is_named(fn, words):
    with pytest.raises(TypeError, match=words):
        check_gradients(fn, np.ones((3, 2)), np.zeros((3, 2)))


def test_an_error_of_fn_that_mentions_read_only_is_its_own():
    x = np.linspace(-1, 1, 6)

    def fn(v):
        raise ValueError("cannot change 'mode': the config is read-only")

    with pytest.raises(ValueError, match="the config is read-only"):
        check_gradients(fn, x, x)
