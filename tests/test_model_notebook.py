"""The second seed notebook's cells, with only their import line changed to fastgrad."""

from importlib import reload

import numpy as np
import pytest

from fastgrad import activations, costs, initializers, layers, model, optimizers, utils

BOUND = 1e-7  # every distance the notebook prints


@pytest.mark.parametrize("seed", range(5))
def test_activation_cell_that_failed_with_shapes_not_aligned(seed):
    np.random.seed(seed)
    reload(activations)
    reload(costs)
    reload(layers)
    assert initializers is not None
    # Create dummy data
    X = np.random.randn(100, 3)
    Y = np.random.randint(0, 2, (100, 2))
    # Create model
    activation = model.Model()
    activation.add(layers.Dense(units=16, activation=activations.ReLU()))
    activation.add(layers.Dense(units=8, activation=activations.ReLU()))
    activation.add(layers.Dense(units=2, activation=activations.Softmax()))
    activation.configure(
        input_size=3,
        cost_type=costs.CategoricalCrossentropy(),
        optimizer=optimizers.SGD(),
    )
    # Check gradient
    diff = utils.gradient_check(activation, X, Y)
    print(diff)
    assert diff < BOUND and diff.passed


@pytest.mark.parametrize("name", ["ReLU", "Linear", "Arctan", "BentIdentity", "LeakyReLU",
                                  "Tanh", "ELU", "SELU", "SLU", "Softplus", "Softsign",
                                  "Gaussian", "PiecewiseLinear", "Softmax", "Sigmoid"])
def test_each_commented_out_activation_of_the_cell(name):
    np.random.seed(1)
    X = np.random.randn(100, 3)
    Y = np.random.randint(0, 2, (100, 2))
    activation = model.Model()
    kwargs = {"alpha": 0.05} if name == "LeakyReLU" else {}
    activation.add(layers.Dense(units=10, activation=getattr(activations, name)(**kwargs)))
    activation.add(layers.Dense(units=2, activation=activations.Softmax()))
    activation.configure(input_size=3, cost_type=costs.CategoricalCrossentropy(),
                         optimizer=optimizers.SGD())
    diff = utils.gradient_check(activation, X, Y)
    assert diff < BOUND and diff.passed, repr(diff)


@pytest.mark.parametrize("seed", range(5))
def test_cost_cell(seed):
    np.random.seed(seed)
    reload(costs)
    X = np.random.randn(100, 1)
    Y = np.random.randint(0, 2, (100, 1))
    cost = model.Model()
    cost.add(layers.Dense(units=4, activation=activations.ReLU()))
    cost.add(layers.Dense(units=2, activation=activations.ReLU()))
    cost.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    for cost_type in (costs.BinaryCrossentropy(), costs.CategoricalCrossentropy(), costs.MSE(),
                      costs.MAE()):
        cost.configure(input_size=1, cost_type=cost_type, optimizer=optimizers.SGD())
        diff = utils.gradient_check(cost, X, Y)
        print(diff)
        assert diff < BOUND and diff.passed, repr(diff)


@pytest.mark.parametrize("seed", range(5))
def test_layer_cell(seed):
    np.random.seed(seed)
    reload(layers)
    X = np.random.randn(100, 1)
    Y = np.random.randint(0, 2, (100, 1))
    layer = model.Model()
    layer.add(layers.Dense(units=4, activation=activations.ReLU()))
    layer.add(layers.Dense(units=2, activation=activations.ReLU()))
    layer.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    layer.configure(input_size=1, cost_type=costs.BinaryCrossentropy(),
                    optimizer=optimizers.SGD())
    diff = utils.gradient_check(layer, X, Y)
    print(diff)
    assert diff < BOUND and diff.passed


def test_dropout_is_checked_in_inference_behaviour():
    np.random.seed(0)
    X = np.random.randn(50, 3)
    Y = np.random.randint(0, 2, (50, 1))
    net = model.Model()
    net.add(layers.Dense(units=6, activation=activations.Tanh()))
    net.add(layers.Dropout(rate=0.5))
    net.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    net.configure(input_size=3, cost_type=costs.BinaryCrossentropy(), optimizer=optimizers.SGD())
    diff = utils.gradient_check(net, X, Y)
    assert diff < BOUND and diff.passed
    assert "dropout" in diff.method_note and "inference" in diff.method_note
