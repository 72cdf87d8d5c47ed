"""The Keras-like model: configuration, shapes and training."""

import numpy as np
import pytest

from fastgrad import activations, costs, layers, model, optimizers

import reference


def _net(*units_and_activations, input_size, cost, dtype=np.float64, seed=0):
    net = model.Model()
    for units, activation in units_and_activations:
        net.add(layers.Dense(units=units, activation=activation))
    net.configure(input_size=input_size, cost_type=cost, optimizer=optimizers.SGD(),
                  dtype=dtype, seed=seed)
    return net


def test_notebook_shapes_samples_by_features(rng):
    # The seed notebook failed here with "shapes (3,100) and (3,16) not aligned".
    X = rng.normal(size=(100, 3))
    Y = rng.integers(0, 2, (100, 2))
    net = _net((16, activations.ReLU()), (8, activations.ReLU()), (2, activations.Softmax()),
               input_size=3, cost=costs.CategoricalCrossentropy())
    out = net.forward(X)
    assert out.shape == (100, 2)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    net.backward(Y)
    for layer in net.layers:
        assert layer.gradients["W"].shape == layer.parameters["W"].shape


def test_backward_matches_finite_differences(rng):
    X = rng.normal(size=(7, 3))
    Y = rng.normal(size=(7, 2))
    net = _net((5, "tanh"), (2, "identity"), input_size=3, cost=costs.MSE())
    net.forward(X)
    net.backward(Y)
    for layer in net.layers:
        for name, value in layer.parameters.items():
            def loss_of(v, layer=layer, name=name):
                saved = layer.parameters[name]
                layer.parameters[name] = v
                try:
                    return net.loss(X, Y)
                finally:
                    layer.parameters[name] = saved
            numerical = reference.central_differences(loss_of, value)
            np.testing.assert_allclose(layer.gradients[name], numerical, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cost", [costs.BinaryCrossentropy(), costs.MSE()])
def test_training_reduces_loss(cost, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4))
    Y = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    net = _net((16, "tanh"), (1, "sigmoid"), input_size=4, cost=cost, dtype=dtype)
    net.optimizer = optimizers.SGD(learning_rate=0.5, momentum=0.5)
    assert net.train(X, Y, epochs=60, batch_size=32, seed=0) is None  # as the original
    per_epoch = np.reshape(net.costs, (60, 8)).mean(axis=1)  # the cost of every batch
    assert per_epoch[-1] < 0.5 * per_epoch[0]
    assert net.predict(X).dtype == dtype
    assert ((net.predict(X) > 0.5) == Y).mean() > 0.9


def test_model_errors(rng):
    net = model.Model()
    with pytest.raises(ValueError, match="add at least one layer"):
        net.configure(input_size=3, cost_type="mse")
    with pytest.raises(TypeError, match="layer"):
        net.add("dense")
    net.add(layers.Dense(2))
    with pytest.raises(RuntimeError, match="configure"):
        net.forward(np.zeros((1, 3)))
    net.configure(input_size=3, cost_type="mse")
    with pytest.raises(ValueError, match=r"X: expected shape \(n_samples, 3\)"):
        net.forward(np.zeros((3, 100)))
    with pytest.raises(ValueError, match="Y: expected 4 samples"):
        net.train(np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(TypeError, match="dtype"):
        net.configure(input_size=3, cost_type="mse", dtype=np.int64)
