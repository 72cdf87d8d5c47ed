"""gradient_check on models: methods agree, bugs are pinned to the right layer, state kept."""

import numpy as np
import pytest

from fastgrad import _model_stacked, costs, gradient_check, layers, model, optimizers, utils
from fastgrad._model_check import _engine, _ModelKernel
from fastgrad.layers import FullyConnected

ACTIVATION_NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
                    "silu", "softplus", "softsign", "arctan", "bent_identity", "gaussian",
                    "piecewise_linear", "softmax"]
COSTS = [costs.BinaryCrossentropy, costs.CategoricalCrossentropy, costs.MSE, costs.MAE]


@pytest.fixture(params=["stacked", "kernel"])
def engine(request, monkeypatch):
    """The model method's two engines: plain NumPy (small models) and the compiled kernel."""
    if request.param == "kernel":  # every model counts as large
        monkeypatch.setattr(_model_stacked, "STACKED_MODEL_WORK", -1)
    return request.param


def _data(cost, rng, n_samples, n_out):
    X = rng.normal(size=(n_samples, 3))
    if isinstance(cost, (costs.BinaryCrossentropy, costs.CategoricalCrossentropy)):
        Y = rng.integers(0, 2, size=(n_samples, n_out))
    else:
        Y = rng.normal(size=(n_samples, n_out))
    return X, Y


def _net(activation_names, cost, n_out, dtype=np.float64, seed=0):
    net = model.Model()
    for name in activation_names:
        net.add(layers.Dense(units=5, activation=name))
    # probabilities out for the cross-entropies, anything for the others
    last = "sigmoid" if isinstance(cost, (costs.BinaryCrossentropy,
                                          costs.CategoricalCrossentropy)) else "tanh"
    net.add(layers.Dense(units=n_out, activation=last))
    net.configure(input_size=3, cost_type=cost, optimizer=optimizers.SGD(), dtype=dtype,
                  seed=seed)
    return net


@pytest.mark.parametrize("cost_class", COSTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_all_costs_all_depths(cost_class, depth, dtype, rng, engine):
    cost = cost_class()
    names = ["tanh", "relu", "selu"][:depth]
    net = _net(names, cost, n_out=2, dtype=dtype)
    X, Y = _data(cost, rng, 12, 2)
    result = gradient_check(net, X, Y)
    assert result.passed and result.method == "model", repr(result)
    assert len(result.layers) == 2 * (depth + 1)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_activation_in_a_model(name, dtype, rng):
    net = _net([name, "tanh"], costs.MSE(), n_out=2, dtype=dtype)
    X, Y = _data(costs.MSE(), rng, 10, 2)
    result = gradient_check(net, X, Y)
    assert result.passed, repr(result)


@pytest.mark.nojit
@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("chain", [
    ["tanh", "softmax", "relu"],
    # piecewise-linear layers after elementwise ones: the kernel's linear shortcut
    ["relu", "relu", "leaky_relu"],
    ["tanh", "piecewise_linear", "identity", "relu"],
], ids="-".join)
def test_model_and_exhaustive_methods_agree(order, chain, rng, engine):
    net = _net(chain, costs.CategoricalCrossentropy(), n_out=3)
    X, Y = _data(costs.CategoricalCrossentropy(), rng, 9, 3)
    fast = gradient_check(net, X, Y, order=order)
    slow = gradient_check(net, X, Y, method="exhaustive", order=order)
    assert fast.method == "model" and slow.method == "exhaustive"
    for a, b in zip(fast.layers, slow.layers, strict=True):
        np.testing.assert_allclose(a.numerical, b.numerical, rtol=1e-7, atol=1e-10)
    assert fast.passed and slow.passed


def test_model_state_is_unchanged(rng):
    net = _net(["relu"], costs.MSE(), n_out=2)
    net.add(layers.Dropout(0.3))
    net.configure(input_size=3, cost_type=costs.MSE(), seed=1)
    X, Y = _data(costs.MSE(), rng, 8, 2)
    net.forward(X[:3], training=True)
    net.backward(Y[:3])
    before = [({k: v.copy() for k, v in layer.parameters.items()},
               {k: None if v is None else np.copy(v) for k, v in layer.cache.items()},
               {k: v.copy() for k, v in layer.gradients.items()}) for layer in net.layers]
    output = net.output.copy()
    for method in ("model", "exhaustive"):
        gradient_check(net, X, Y, method=method)
        np.testing.assert_array_equal(net.output, output)
        for layer, (params, cache, grads) in zip(net.layers, before, strict=True):
            for k, v in params.items():
                np.testing.assert_array_equal(layer.parameters[k], v)
            for k, v in cache.items():
                if v is None:
                    assert layer.cache[k] is None
                else:
                    np.testing.assert_array_equal(layer.cache[k], v)
            for k, v in grads.items():
                np.testing.assert_array_equal(layer.gradients[k], v)


# ---------------------------------------------------------------- bugs pinned to layers


class LeakyWithWrongNegativeSlope:
    """A user's own activation whose derivative is wrong for negative inputs."""

    def forward(self, X):
        return np.where(X > 0, X, 0.1 * X)

    def backward(self, X, dLdY):
        return np.where(X > 0, 1.0, 0.2) * dLdY  # should be 0.1


class Cube:
    def forward(self, X):
        return X**3 / 3

    def backward(self, X, dLdY):
        return X**2 * dLdY


def _failing(result):
    return {(entry.layer, entry.parameter) for entry in result.layers if not entry.passed}


def test_user_activation_bug_pinned_to_the_middle_layer(rng):
    net = model.Model()
    net.add(layers.Dense(units=6, activation="tanh"))
    net.add(layers.Dense(units=6, activation=LeakyWithWrongNegativeSlope()))
    net.add(layers.Dense(units=2, activation="identity"))
    net.configure(input_size=3, cost_type=costs.MSE(), seed=3)
    X, Y = _data(costs.MSE(), rng, 20, 2)
    result = gradient_check(net, X, Y)
    assert result.method == "exhaustive" and "user activation" in result.method_note
    assert not result.passed
    # the wrong derivative reaches layer 1's own parameters and everything upstream of it
    assert (1, "W") in _failing(result) and (1, "b") in _failing(result)
    assert (2, "W") not in _failing(result) and (2, "b") not in _failing(result)


def test_correct_user_activation_passes(rng):
    net = model.Model()
    net.add(layers.Dense(units=4, activation=Cube()))
    net.add(layers.Dense(units=1, activation="sigmoid"))
    net.configure(input_size=3, cost_type=costs.BinaryCrossentropy(), seed=0)
    X, Y = _data(costs.BinaryCrossentropy(), rng, 10, 1)
    result = gradient_check(net, X, Y)
    assert result.passed, repr(result)


def test_cost_missing_one_over_m_is_caught(rng):
    class SloppyMSE(costs.MSE):
        def backward(self, Y, Y_hat):
            return super().backward(Y, Y_hat) * np.shape(Y_hat)[0]

    net = _net(["tanh"], SloppyMSE(), n_out=2)
    X, Y = _data(costs.MSE(), rng, 16, 2)
    result = gradient_check(net, X, Y)
    assert result.method == "model"  # its forward is fastgrad's own
    assert not result.passed and len(_failing(result)) == 4


def test_bias_gradient_summed_over_the_wrong_axis_is_pinned(monkeypatch, rng):
    original = FullyConnected.backward
    target = {}

    def wrong_bias(self, dLdY):
        dX = original(self, dLdY)
        if self is target["layer"]:
            dZ = dX @ np.linalg.pinv(self.parameters["W"].T)  # recover dL/dZ
            wrong = dZ.sum(axis=1)[: self.n_out]  # over features, not samples
            wrong = np.resize(wrong, self.n_out).reshape(1, -1)
            self.gradients["b"] = wrong
        return dX

    net = _net(["tanh", "tanh"], costs.MSE(), n_out=2)
    target["layer"] = net.layers[1]
    monkeypatch.setattr(FullyConnected, "backward", wrong_bias)
    X, Y = _data(costs.MSE(), rng, 8, 2)
    result = gradient_check(net, X, Y)
    assert _failing(result) == {(1, "b")}, repr(result)


def test_report_names_layers_and_worst_elements(rng):
    net = _net(["relu"], costs.MSE(), n_out=2)
    X, Y = _data(costs.MSE(), rng, 8, 2)
    result = utils.gradient_check(net, X, Y)
    text = repr(result)
    assert "Dense(units=5" in text and "distance" in text and "ok" in text
    assert isinstance(result, float) and str(result) == repr(float(result))
    assert result.n_parameters == sum(p.size for layer in net.layers
                                      for p in layer.parameters.values())


def test_errors(rng):
    net = model.Model()
    net.add(layers.Dense(units=2))
    X = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="configure"):
        gradient_check(net, X, np.zeros((4, 2)))
    net.configure(input_size=3, cost_type="mse")
    with pytest.raises(ValueError, match=r"X: expected shape \(n_samples, 3\)"):
        gradient_check(net, X.T, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="Y: expected 4 samples"):
        gradient_check(net, X, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="epsilon"):
        gradient_check(net, X, np.zeros((4, 2)), epsilon=0)
    with pytest.raises(ValueError, match="method"):
        gradient_check(net, X, np.zeros((4, 2)), method="fast")
    with pytest.raises(TypeError, match="model"):
        gradient_check("net", X, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="Y: contains NaN"):
        gradient_check(net, X, np.full((4, 2), np.nan))


def test_wide_relu_network_refines_its_many_kink_crossings_through_the_kernel():
    # 64-wide ReLU layers on 256 samples: hundreds of coarse steps cross some unit's kink,
    # more than a black box may re-difference; the model kernel gives them all a second look
    from fastgrad.methods._looks import BLACK_BOX_CAP

    most_refined = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        net = model.Model()
        # FullyConnected scales its Glorot weights for ReLU (Dense keeps the Keras-like
        # original's plain formula, whose smaller weights cross fewer kinks)
        net.add(layers.FullyConnected(64, activation="relu"))
        net.add(layers.FullyConnected(64, activation="relu"))
        net.add(layers.FullyConnected(3, activation="softmax"))
        net.configure(input_size=8, cost_type=costs.CategoricalCrossentropy(), seed=seed)
        X = rng.normal(size=(256, 8))
        Y = np.eye(3)[rng.integers(0, 3, 256)]
        result = gradient_check(net, X, Y, method="model")
        assert result.passed, repr(result)
        most_refined = max(most_refined, *(entry.n_refined for entry in result.layers))
    assert most_refined > BLACK_BOX_CAP


def test_small_models_are_differenced_in_numpy_and_large_ones_by_the_kernel(rng):
    """The notebook's 3-16-8-2 model on 100 samples needs no compiler; the choice is a count."""
    small = model.Model()
    for units, name in ((16, "relu"), (8, "relu"), (2, "softmax")):
        small.add(layers.Dense(units=units, activation=name))
    small.configure(input_size=3, cost_type=costs.CategoricalCrossentropy(), seed=0)
    X = rng.normal(size=(100, 3))
    Y = np.eye(2)[rng.integers(0, 2, 100)]
    assert isinstance(_engine(small, X, Y), _model_stacked.StackedModel)
    large = model.Model()
    large.add(layers.Dense(units=256, activation="relu"))
    large.add(layers.Dense(units=10, activation="softmax"))
    large.configure(input_size=64, cost_type=costs.CategoricalCrossentropy(), seed=0)
    X = rng.normal(size=(64, 64))
    Y = np.eye(10)[rng.integers(0, 10, 64)]
    assert isinstance(_engine(large, X, Y), _ModelKernel)
    result = gradient_check(large, X, Y)
    assert result.passed and result.method == "model", repr(result)
