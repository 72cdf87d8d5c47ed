"""Every public entry point against bad input and faults: a clear error or a correct result,
and the caller's arrays and model left exactly as they were."""

import numpy as np
import pytest

from fastgrad import activations, costs, gradient_check, layers, model

import reference

COMPLEX = np.ones((2, 3), dtype=complex)
STRINGS = np.array([["a", "b", "c"]] * 2)
OBJECTS = np.array([[None, 1.0, 2.0]] * 2, dtype=object)


def _fc():
    layer = layers.FullyConnected(2, activation="tanh", seed=0)
    layer.forward(np.ones((2, 3)))
    return layer


ENTRY_POINTS = {
    "activation.forward": lambda X: activations.TanH().forward(X),
    "activation.backward": lambda X: activations.TanH().backward(X, np.ones((2, 3))),
    "softmax.forward": lambda X: activations.SoftMax().forward(X),
    "loss.forward": lambda X: costs.MSE().forward(X, np.zeros((2, 3))),
    "loss.backward": lambda X: costs.MSE().backward(X, np.zeros((2, 3))),
    "dense.forward": lambda X: _fc().forward(X),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("bad", [COMPLEX, STRINGS, OBJECTS], ids=["complex", "str", "object"])
def test_wrong_dtypes_raise_type_errors_naming_the_argument(entry, bad):
    with pytest.raises(TypeError, match=r"(X|Y_hat|AL): expected"):
        ENTRY_POINTS[entry](bad)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_non_contiguous_and_read_only_inputs_give_the_same_result(entry):
    base = np.linspace(-1, 1, 12).reshape(2, 6)
    strided = base[:, ::2]
    frozen = np.ascontiguousarray(strided)
    frozen.flags.writeable = False
    before = base.copy()
    expected = ENTRY_POINTS[entry](np.ascontiguousarray(strided))
    np.testing.assert_array_equal(ENTRY_POINTS[entry](strided), expected)
    np.testing.assert_array_equal(ENTRY_POINTS[entry](frozen), expected)
    np.testing.assert_array_equal(base, before)


def test_zero_size_inputs():
    assert activations.TanH().forward(np.zeros((0, 3))).shape == (0, 3)
    assert activations.SoftMax().forward(np.zeros((0, 3))).shape == (0, 3)
    assert costs.MSE().forward(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    assert layers.FullyConnected(2).forward(np.zeros((0, 3))).shape == (0, 2)


def test_nan_and_inf_propagate_through_layers():
    X = np.array([[np.nan, 1.0, np.inf]])
    out = activations.TanH().forward(X)
    assert np.isnan(out[0, 0]) and out[0, 2] == 1.0
    assert np.isnan(activations.SoftMax().forward(X)).all()


@pytest.mark.parametrize("entry", ["activation.forward", "dense.forward"])
def test_wrong_shapes(entry):
    with pytest.raises(ValueError, match="X"):
        ENTRY_POINTS[entry](np.ones((2, 4))) if entry == "dense.forward" else \
            activations.TanH().backward(np.ones((2, 3)), np.ones((3, 2)))


class FailingOnCall:
    """A user activation that raises on its k-th forward call (or KeyboardInterrupt)."""

    def __init__(self, k, error):
        self.k = k
        self.calls = 0
        self.error = error

    def forward(self, X):
        self.calls += 1
        if self.calls == self.k:
            raise self.error
        return np.tanh(X)

    def backward(self, X, dLdY):
        return (1 - np.tanh(X) ** 2) * dLdY


def _snapshot(net):
    return [({k: v.copy() for k, v in layer.parameters.items()},
             {k: np.copy(v) for k, v in layer.cache.items() if v is not None},
             {k: v.copy() for k, v in layer.gradients.items()}) for layer in net.layers]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()],
                         ids=["raises", "interrupt"])
def test_fault_mid_model_check_leaves_the_model_as_it_was(error):
    rng = np.random.default_rng(0)
    net = model.Model()
    net.add(layers.Dense(4, activation=FailingOnCall(k=10**9, error=error)))
    net.add(layers.Dense(1, activation="sigmoid"))
    net.configure(input_size=3, cost_type=costs.BinaryCrossentropy(), seed=0)
    X = rng.normal(size=(6, 3))
    Y = rng.integers(0, 2, (6, 1))
    net.forward(X)
    net.backward(Y)
    before = _snapshot(net)
    output = net.output.copy()
    net.layers[0].activation.k = net.layers[0].activation.calls + 7
    with pytest.raises(type(error)):
        gradient_check(net, X, Y)
    after = _snapshot(net)
    np.testing.assert_array_equal(net.output, output)
    for (p0, c0, g0), (p1, c1, g1) in zip(before, after, strict=True):
        for first, second in ((p0, p1), (c0, c1), (g0, g1)):
            assert first.keys() == second.keys()
            for key in first:
                np.testing.assert_array_equal(first[key], second[key])


def test_model_check_with_nan_data_is_a_clear_error():
    net = model.Model()
    net.add(layers.Dense(2))
    net.configure(input_size=3, cost_type="mse", seed=0)
    with pytest.raises(ValueError, match="X: contains 1 NaN"):
        gradient_check(net, np.array([[np.nan, 0.0, 0.0]]), np.zeros((1, 2)))


def test_reference_is_independent_of_fastgrad():
    source = open(reference.__file__).read()
    assert "fastgrad" not in source.split('"""', 2)[2]
