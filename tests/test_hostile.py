"""Functions that fight back: reused buffers, views, randomness, NaN, odd shapes.

Every case runs through every method it applies to; x and grad must come back bitwise equal.
"""

import warnings

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

    def fn(v):
        # every element moved by a step of the colored method's size (its one group), not by
        # a probe's ulps or float32 fractions
        moved = np.abs(np.asarray(v) - x) / np.maximum(1.0, np.abs(x))
        if np.all((moved > 1e-6) & (moved < 1e-5)):
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


@pytest.mark.parametrize(("noise", "words"), [(float("nan"), "noise: expected a finite number"),
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


@pytest.mark.parametrize("method", ["exhaustive", "colored", "directional"])
def test_an_error_in_a_probe_that_moves_every_element_names_the_element(method):
    # a variance at its bound: any move below 0 raises; the probes that move every element
    # at once (the rounding probes, a colored group) must still say which element it was
    x = np.abs(np.random.default_rng(0).normal(size=(5, 4))) + 0.1
    x[3, 2] = 0.0

    def fn(v):
        if np.any(v < 0):
            raise ValueError("variance must be >= 0")
        return v ** 2

    with pytest.raises(ValueError, match="variance") as info:
        check_gradients(fn, 2 * x, x, method=method)
    assert any("element (3, 2) alone" in note for note in info.value.__notes__), \
        info.value.__notes__


@pytest.mark.parametrize("method", ["exhaustive", "colored", "directional"])
def test_fn_cannot_make_its_argument_writeable_again(method):
    def sneaky(v):
        v.flags.writeable = True
        np.tanh(v, out=v)
        return v

    x = np.random.default_rng(0).normal(size=(5, 4))
    before = x.copy()
    with pytest.raises(ValueError, match="writes into its input"):
        check_gradients(sneaky, 1 - np.tanh(x) ** 2, x, method=method)
    assert np.array_equal(x, before)


def test_a_write_made_only_on_a_far_probe_is_reported():
    # fn clips in place only when out of range, which only the colored pattern probe's move
    # across x's whole range reaches: that probe may not swallow the write
    def fn(v):
        if np.abs(v).max() > 3:
            np.clip(v, -3, 3, out=v)
        return np.tanh(v)

    x = np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(ValueError, match="writes into its input"):
        check_gradients(fn, 1 - np.tanh(x) ** 2, x, method="colored")


def test_a_layer_without_build_is_refused_when_added():
    class Square:
        def __init__(self):
            self.parameters = {}

        def forward(self, X):
            self.X = X
            return X ** 2

        def backward(self, dY):
            return 2 * self.X * dY

    net = model.Model()
    with pytest.raises(TypeError, match=r"Square has no build\(n_in"):
        net.add(Square())


class _Scale:
    """A user's layer that reads its parameter through an alias (self.s)."""

    trainable = True

    def __init__(self, clip=None):
        self.parameters, self.gradients, self.cache = {}, {}, {}
        self.clip = clip

    def build(self, n_in, *, dtype=np.float64, rng=None):
        self.s = np.linspace(0.5, 1.5, n_in).reshape(1, -1).astype(dtype)
        self.parameters = {"s": self.s}
        return n_in

    def forward(self, X):
        if self.clip is not None:  # a max-norm style constraint, applied in place
            np.clip(self.s, -self.clip, self.clip, out=self.s)
        self.X = X
        return X * self.s

    def backward(self, dY):
        self.gradients = {"s": (dY * self.X).sum(0, keepdims=True)}
        return dY * self.s


def _scaled_net(layer):
    net = model.Model()
    net.add(layers.Dense(4, activation="tanh"))
    net.add(layer)
    net.add(layers.Dense(2))
    net.configure(input_size=3, cost_type=costs.MSE(), seed=0)
    rng = np.random.default_rng(0)
    return net, rng.normal(size=(8, 3)), rng.normal(size=(8, 2))


def test_a_layer_reading_its_parameter_through_an_alias_is_checked():
    # the check used to swap the parameters dictionary, which an alias does not see: every
    # difference was 0 and a correct layer failed
    net, X, Y = _scaled_net(_Scale())
    result = utils.gradient_check(net, X, Y)
    assert result.verdict == "passed", repr(result)


def test_a_layer_writing_into_its_parameter_is_named_and_the_model_restored():
    net, X, Y = _scaled_net(_Scale(clip=1.2))
    before = net.layers[1].s.copy()
    with pytest.raises(ValueError, match=r"layer 1 \(_Scale\): its forward writes into"):
        utils.gradient_check(net, X, Y)
    assert np.array_equal(net.layers[1].s, before)
    assert net.layers[1].parameters["s"] is net.layers[1].s


def test_a_numba_function_assigning_into_its_argument_gets_the_same_message():
    numba = pytest.importorskip("numba")

    @numba.njit
    def fn(v):
        for i in range(v.shape[0]):
            v[i] = np.tanh(v[i])
        return v.copy()

    x = np.random.default_rng(0).normal(size=5)
    before = x.copy()
    with pytest.raises(ValueError, match=r"writes into its input.*Numba"):
        check_gradients(fn, 1 - np.tanh(x) ** 2, x, method="exhaustive")
    assert np.array_equal(x, before)


@pytest.mark.parametrize("method", ["auto", "exhaustive", "colored", "directional"])
@pytest.mark.parametrize("write", ["add.at", "sort", "shuffle"])
def test_every_way_of_writing_into_the_argument_gets_the_same_error(method, write):
    # np.add.at writes through NumPy's read-only flag; sort and shuffle word the refusal
    # their own way: each is the same clear error, before any verdict
    def fn(v):
        if write == "add.at":
            np.add.at(v, (0, 0), 1.0)
        elif write == "sort":
            v.sort(axis=-1)
        else:
            np.random.default_rng(0).shuffle(v)
        return np.tanh(v)

    x = np.random.default_rng(0).normal(size=(5, 4))
    before = x.copy()
    with pytest.raises(ValueError, match="writes into its input"):
        check_gradients(fn, 1 - np.tanh(x) ** 2, x, method=method)
    assert np.array_equal(x, before)


@pytest.mark.parametrize("output, words", [
    (lambda v: np.ma.masked_less(np.tanh(v), 0.0), "masked array"),
    (lambda v: np.tanh(v).astype(np.float16), "float16"),
    (lambda v: np.tanh(v.astype(np.float16)), "float16"),
])
def test_outputs_a_difference_cannot_use_are_refused_by_name(output, words):
    x = np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(TypeError, match=words):
        check_gradients(output, 1 - np.tanh(x) ** 2, x)


@pytest.mark.parametrize("scale", ["outputs", "dLdf"])
def test_magnitudes_whose_floors_would_overflow_are_refused(scale):
    # squares of 1e200 overflow: every tolerance became inf and a 3x error passed
    rng = np.random.default_rng(0)
    x, dLdY = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    big = 1e200
    if scale == "outputs":
        fn, weights = (lambda v: big * np.tanh(v)), dLdY
    else:
        fn, weights = np.tanh, big * dLdY
    wrong = big * (1 - np.tanh(x) ** 2) * dLdY
    wrong[1, 3] *= 3
    with pytest.raises(ValueError, match=r"fn\(x\) \* dLdf: reaches .*rescale"):
        check_gradients(fn, wrong, x, weights, method="exhaustive")


class _Gain:
    trainable = True

    def __init__(self, kind="right"):
        self.kind = kind
        self.gradients, self.cache = {}, {}

    def build(self, n_in, *, dtype=np.float64, rng=None):
        self._s = np.linspace(0.5, 1.5, n_in).reshape(1, -1)
        self.running_mean = np.zeros((1, n_in))
        return n_in

    @property
    def parameters(self):
        if not hasattr(self, "_s"):  # before build
            return {}
        if self.kind == "copies":
            return {"s": self._s.copy()}
        if self.kind == "float":
            return {"s": self._s, "bias": 1.3}
        return {"s": self._s}

    def forward(self, X):
        self.running_mean = 0.9 * self.running_mean + 0.1 * X.mean(axis=-2, keepdims=True)
        self.X = X
        return X * self._s

    def backward(self, dY):
        grad = (dY * self.X).sum(0, keepdims=True)
        self.gradients = {"s": grad.reshape(-1) if self.kind == "flat" else grad}
        return dY * self._s


@pytest.mark.parametrize("kind, error, words", [
    ("copies", ValueError, r"layer 1 \(_Gain\): parameters returns new arrays"),
    ("float", TypeError, r"layer 1 \(_Gain\): parameter 'bias' must be a float array"),
    ("flat", ValueError, r"layer 1 \(_Gain\): gradients\['s'\] has shape \(4,\)"),
])
def test_a_layer_whose_parameters_fastgrad_cannot_use_is_named(kind, error, words):
    net, X, Y = _scaled_net(_Gain(kind))
    with pytest.raises(error, match=words):
        utils.gradient_check(net, X, Y)


def test_a_layer_updating_running_statistics_is_restored():
    net, X, Y = _scaled_net(_Gain())
    before = net.layers[1].running_mean.copy()
    assert utils.gradient_check(net, X, Y).verdict == "passed"
    assert net.layers[1].running_mean.shape == before.shape
    assert np.array_equal(net.layers[1].running_mean, before)


def test_an_infinite_loss_at_X_is_refused_by_name():
    net = model.Model()
    net.add(layers.Dense(3, activation="softmax"))
    net.configure(input_size=2, cost_type=costs.CategoricalCrossentropy(), seed=0)
    net.layers[0].parameters["W"][...] = 1e4  # saturates: a log of 0
    X = np.array([[1.0, -1.0], [2.0, 0.5]])
    Y = np.array([[0, 1, 0], [0, 0, 1]])
    net.layers[0].parameters["W"][:, 0] = 2e4
    with pytest.raises(ValueError, match="loss at X is inf"):
        utils.gradient_check(net, X, Y, method="exhaustive")


def test_a_layer_drawing_a_new_mask_at_every_forward_is_named():
    class Noisy(_Gain):
        def forward(self, X):
            self.X = X
            return X * self._s * np.random.default_rng().uniform(0.5, 1.5, X.shape[-1])

    net, X, Y = _scaled_net(Noisy())
    with pytest.raises(ValueError, match=r"loss is not deterministic \(checking layer"):
        utils.gradient_check(net, X, Y)


def _batch_normalised(v):
    """A per-sample loss divided by the batch size: ``len(v)``, where a stack of inputs makes
    it the stack's length (``v.shape[-2]`` was meant)."""
    return np.sum(np.tanh(v) ** 2, axis=-1) / len(v)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_rows, options", [(13, {}), (7, {"order": 2}), (7, {"h": 1e-4})])
def test_a_function_reading_the_stacks_length_is_not_stacked(method, n_rows, options):
    # the stacking probe's stack had 2 levels x 2 sides x 3 elements + 1 = 13 slices: with
    # 13 rows, len(v) was the same there and in single calls; the real stacks' was not
    x = np.random.default_rng(7).normal(size=(n_rows, 2))
    right = 2 * np.tanh(x) * (1 - np.tanh(x) ** 2) / n_rows
    assert _check(_batch_normalised, right, x, method=method, seed=0, **options).verdict == \
        "passed"
    wrong = right * n_rows / 105  # what a stack of 105 slices made of it
    assert _check(_batch_normalised, wrong, x, method=method, seed=0, **options).verdict == \
        "failed"


class ZeroGrad:
    """A layer whose forward zeroes its gradient buffer, zero_grad() style."""

    def __init__(self, X, W, dLdY):
        self.X = X
        self.dW = X.T @ ((1 - np.tanh(X @ W) ** 2) * dLdY)

    def __call__(self, W):
        self.dW.fill(0.0)
        return np.tanh(self.X @ W)


@pytest.mark.parametrize("method", METHODS)
def test_grad_and_dLdf_are_read_before_fn_can_change_them(method):
    rng = np.random.default_rng(7)
    X, W, dLdY = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)) / 2, rng.normal(size=(5, 3))
    layer = ZeroGrad(X, W, dLdY)
    result = check_gradients(layer, layer.dW, W, dLdY, method=method, seed=0)
    assert result.verdict == "passed", repr(result)
    # fn writing into the dLdf it was handed by the caller: the check keeps the caller's
    upstream = dLdY.copy()

    def scaling(w):
        upstream[...] = 0.0
        return np.tanh(X @ w)

    right = X.T @ ((1 - np.tanh(X @ W) ** 2) * dLdY)
    result = check_gradients(scaling, right, W, upstream, method=method, seed=0)
    assert result.verdict == "passed", repr(result)


@pytest.mark.parametrize("x, words", [
    (np.matrix([[0.1, 0.2], [0.3, 0.4]]), "np.matrix"),
    (np.ma.masked_less(np.array([0.1, -0.2, 0.3]), 0.0), "masked array"),
    ([[0.1, 0.2], [0.3]], "x: expected a real float array, got list"),
])
def test_an_x_whose_meaning_np_asarray_would_change_is_refused_by_name(x, words):
    with pytest.raises(TypeError, match=words):
        check_gradients(np.tanh, np.ones((2, 2)), x)


@pytest.mark.parametrize("method", METHODS)
def test_a_boolean_output_is_refused_by_name(method):
    x = np.linspace(-1, 1, 6)
    with pytest.raises(TypeError, match="fn\\(x\\): returned a boolean array"):
        check_gradients(lambda v: v > 0, np.zeros(6), x, method=method)


def test_a_flaky_error_that_mentions_read_only_is_not_taken_for_a_write():
    x = np.linspace(-1, 1, 6)
    calls = []

    def fn(v):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("cache file is read-only, try again")
        return np.tanh(v)

    with pytest.raises(ValueError, match="cache file is read-only"):
        check_gradients(fn, 1 - np.tanh(x) ** 2, x)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_a_float32_model_returning_a_python_float_is_differenced_in_float32(method, x_dtype):
    # float(np.sum(tanh(v.astype(float32)) * w)): float64 output, float32 inside; float64
    # steps below a float32 ulp left the output unchanged and every difference 0 (failed)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 7)).astype(x_dtype)
    w = rng.normal(size=(16, 7)).astype(np.float32)

    def loss(v):
        return float(np.sum(np.tanh(np.asarray(v, dtype=np.float32)) * w))

    right = (w * (1 - np.tanh(x.astype(np.float64)) ** 2)).astype(x_dtype)
    result = _check(loss, right, x, method=method, seed=0)
    assert result.verdict == "passed" and "rounds its argument to float32" in \
        result.method_note, repr(result)
    wrong = right.copy()
    wrong[3, 2] *= 1.5
    assert _check(loss, wrong, x, method=method, seed=0).verdict == "failed"


def test_a_float64_function_is_not_taken_for_a_float32_one():
    x = np.random.default_rng(1).normal(size=(6, 5))
    result = check_gradients(lambda v: float(np.sum(np.tanh(v))), 1 - np.tanh(x) ** 2, x)
    assert result.verdict == "passed" and "float32" not in result.method_note
    assert result.eval_dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_an_infinite_output_near_x_is_named_as_such_without_warnings(method):
    x = np.random.default_rng(0).normal(size=(4, 5))
    corner = x[0, 0]

    def fn(v):
        out = np.tanh(v)
        if v[0, 0] > corner:
            out[0, 0] = np.inf
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # fastgrad's own arithmetic is quiet
        result = _check(fn, 1 - np.tanh(x) ** 2, x, method=method, seed=0)
    assert result.verdict == "inconclusive", repr(result)
    assert "NaN or inf" in result.verdict_reason, result.verdict_reason


@pytest.mark.parametrize("method", METHODS)
def test_zero_tolerances_raise_no_warnings(method):
    x = np.random.default_rng(0).normal(size=(4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = check_gradients(np.tanh, 1 - np.tanh(x) ** 2, x, rtol=0, atol=0,
                                 method=method, seed=0)
    # (a correct gradient: nothing to fail; the floors still count, so it need not pass)
    assert result.verdict != "failed", repr(result)


def test_an_intermittent_error_is_called_intermittent():
    x = np.random.default_rng(0).normal(size=(4, 5))
    calls = []

    def fn(v):
        calls.append(1)
        if len(calls) == 9:
            raise ArithmeticError("flaky backend")
        return np.tanh(v)

    with pytest.raises(ArithmeticError, match="flaky backend") as caught:
        check_gradients(fn, 1 - np.tanh(x) ** 2, x, method="exhaustive", seed=0)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "raises intermittently" in notes and "combination" not in notes, notes


def test_a_cross_entropy_is_not_taken_for_a_float32_function():
    # equal relative moves change every log(p) by the same amount: three up and three down
    # cancelled exactly, and the float32 probe saw "no change" (the loss went to float32
    # differences and rtol 1e-2)
    from fastgrad import losses
    loss = losses.CrossEntropy()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        P = rng.uniform(0.05, 0.95, size=(6, 4))
        P /= P.sum(axis=1, keepdims=True)
        Y = np.eye(4)[rng.integers(0, 4, 6)]
        result = check_gradients(lambda p, Y=Y: loss.forward(Y, p), loss.backward(Y, P), P,
                                 method="exhaustive", seed=seed)
        assert result.eval_dtype == np.float64 and result.verdict == "passed", repr(result)


def test_a_float64_loss_under_a_large_constant_is_not_taken_for_a_float32_function():
    # 1e10 + a loss: a move below half a float32 ulp changes the loss by less than an ulp of
    # 1e10 and leaves the output unchanged, as a float32 function would; that is no evidence
    # (the small move was not expected to show), and the note must not say float32
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X, y, w = rng.normal(size=(32, 8)), rng.normal(size=32), rng.normal(size=8)
        good = X.T @ (X @ w - y) / 32
        for constant in (1e8, 1e9, 1e10, 1e12):
            result = check_gradients(
                lambda v, c=constant, X=X, y=y: c + 0.5 * ((X @ v - y) ** 2).mean(), good, w,
                method="exhaustive", seed=0)
            assert result.eval_dtype == np.float64 and \
                "rounds its argument to float32" not in result.method_note, \
                (seed, constant, result.method_note)


def test_an_error_while_probing_the_jacobians_pattern_names_the_element():
    # (x small enough that the pattern probe moves every element: it is the first to raise)
    x = np.random.default_rng(0).normal(size=(2, 2))
    corner = x[0, 0]

    def fn(v):
        if v[0, 0] > corner:  # a barrier: any move of this element up raises
            raise RuntimeError("barrier: step outside the feasible set")
        return np.tanh(v)

    for method in ("auto", "colored"):
        with pytest.raises(RuntimeError, match="barrier") as caught:
            check_gradients(fn, 1 - np.tanh(x) ** 2, x, method=method, seed=0)
        notes = " ".join(getattr(caught.value, "__notes__", []))
        assert "(0, 0)" in notes, notes


@pytest.mark.parametrize("method", METHODS)
def test_a_large_tolerance_of_the_callers_is_not_taken_for_rounding(method):
    # rtol=atol=0.5: directional said the rounding of fn's outputs made every direction's
    # tolerance comparable to its derivative (inconclusive, blaming a constant in fn): the
    # tolerance was the caller's, and the floors are ~1e-10 of it
    x = np.random.default_rng(0).normal(size=(8, 8))
    right = 1 - np.tanh(x) ** 2
    result = _check(np.tanh, right, x, np.ones_like(x), rtol=0.5, atol=0.5, method=method,
                    seed=0)
    assert result.verdict == "passed", repr(result)
    assert _check(np.tanh, -right, x, np.ones_like(x), rtol=0.5, atol=0.5, method=method,
                  seed=0).verdict == "failed"


@pytest.mark.parametrize("method", METHODS)
def test_a_wrapper_that_writes_x_into_a_layer_leaves_x_as_it_was_after_a_failure(method):
    # fn sets layer.W[...] = v and x is layer.W itself: after a failed check (the second look
    # calls fn at perturbed points last) x kept the last perturbation
    rng = np.random.default_rng(8)
    X, dY = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    W = rng.normal(size=(4, 3))
    before = W.copy()

    def fn(v):
        W[...] = v
        return np.tanh(X @ W)

    wrong = X.T @ ((1 - np.tanh(X @ W) ** 2) * dY)
    wrong[0, 0] += 0.1
    assert check_gradients(fn, wrong, W, dY, method=method, seed=0).verdict == "failed"
    assert np.array_equal(W, before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_input_check_at_its_boundary_names_the_element_in_either_dtype(dtype):
    # fn refuses values outside [0, 1] and x has one element at 1.0: float32 x said fn
    # "raises intermittently" (the halving rounded the float64 probe's move back to x's dtype)
    def probabilities_squared(v):
        if np.any(v > 1.0) or np.any(v < 0.0):
            raise ValueError("probabilities must lie in [0, 1]")
        return v ** 2

    p = np.random.default_rng(0).uniform(0.1, 0.9, size=(4, 5)).astype(dtype)
    p[1, 2] = 1.0
    with pytest.raises(ValueError, match="probabilities") as caught:
        check_gradients(probabilities_squared, 2 * p, p)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "element (1, 2) alone" in notes and "intermittently" not in notes, notes


@pytest.mark.parametrize("method", METHODS)
def test_an_inconclusive_check_of_a_declared_noisy_fn_names_the_noise(method):
    # tanh + 1e-8 noise with noise=1e-8 declared: inconclusive at the default rtol (noise / h
    # is ~1e-3), and the reason hinted at a constant or a float32 computation, not the noise
    x = np.random.default_rng(4).normal(size=(5, 6))
    noisy = np.random.default_rng(0)

    def fn(v):
        return np.tanh(v) + 1e-8 * noisy.normal(size=v.shape)

    result = _check(fn, 1 - np.tanh(x) ** 2, x, noise=1e-8, method=method, seed=0)
    assert result.verdict == "inconclusive", repr(result)
    assert "declared noise (noise=1e-08)" in result.verdict_reason, result.verdict_reason


@pytest.mark.parametrize("method", METHODS)
def test_an_exactly_zero_gradient_within_rounding_is_explained_as_such(method):
    # a bias right before a batch norm: its gradient is exactly 0, the differences ~1e-13;
    # inconclusive (a zero cannot be told from a tiny one), but the reason blamed a large
    # constant in fn's output or declared noise
    rng = np.random.default_rng(12)
    X, W, D, b = (rng.normal(size=(8, 3)), rng.normal(size=(3, 4)), rng.normal(size=(8, 4)),
                  rng.normal(size=4))

    def batch_norm_of_bias(bias):
        Z = X @ W + bias[..., None, :]
        return (Z - Z.mean(-2, keepdims=True)) / np.sqrt(Z.var(-2, keepdims=True) + 1e-5)

    result = _check(batch_norm_of_bias, np.zeros(4), b, D, method=method, seed=0)
    assert result.verdict != "failed", repr(result)
    if result.verdict == "inconclusive":
        text = result.verdict_reason + result.method_note
        assert "the gradient is exactly 0" in text and "large constant" not in text, text
    wrong = np.full(4, 1e-3)
    assert _check(batch_norm_of_bias, wrong, b, D, method=method, seed=0).verdict == "failed"
