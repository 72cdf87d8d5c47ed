"""The first notebook's natural next cells, in the CS189-style ``neural_networks`` API.

Beyond the seed cells: weight initialisation options, the layer's ``parameters``,
``gradients`` and ``cache`` dictionaries, checking a layer after training, and a network that
stacks layers from argument dictionaries, trained step by step (``forward``,
``backward(target, out)``, ``update``) and evaluated with ``predict(X, Y)``.
"""

import numpy as np
import pytest

from fastgrad import check_gradients
from fastgrad.activations import Identity, ReLU, Sigmoid, SoftMax, TanH
from fastgrad.layers import FullyConnected, initialize_layer
from fastgrad.losses import CrossEntropy, initialize_loss
from fastgrad.model import NeuralNetwork, initialize_model

INITS = ["xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "uniform", "normal",
         "zeros", "ones"]


@pytest.mark.parametrize("weight_init", INITS)
def test_weight_init_options(weight_init):
    np.random.seed(0)
    layer = FullyConnected(n_out=300, activation="relu", weight_init=weight_init)
    layer.forward(np.random.randn(4, 200))
    W, b = layer.parameters["W"], layer.parameters["b"]
    assert W.shape == (200, 300) and b.shape == (1, 300)
    if weight_init == "zeros":
        assert not W.any() and not b.any()
    elif weight_init == "ones":
        assert (W == 1).all()
    elif weight_init == "he_normal":
        assert W.std() == pytest.approx(np.sqrt(2 / 200), rel=0.05)
    elif weight_init == "xavier_uniform":    # with the ReLU gain sqrt(2)
        assert np.abs(W).max() <= np.sqrt(2) * np.sqrt(6 / 500)
        assert np.abs(W).max() > 0.95 * np.sqrt(2) * np.sqrt(6 / 500)
    with pytest.raises(ValueError, match="initializer: expected a callable or one of"):
        FullyConnected(n_out=3, weight_init="orthogonal")


def test_layer_dictionaries_after_a_pass():
    np.random.seed(0)
    X = np.random.randn(5, 3)
    fc = FullyConnected(n_out=4, activation="tanh")
    out = fc.forward(X)
    assert set(fc.parameters) == {"W", "b"} and set(fc.cache) == {"X", "Z"}
    np.testing.assert_allclose(fc.cache["Z"], X @ fc.parameters["W"] + fc.parameters["b"])
    np.testing.assert_allclose(out, np.tanh(fc.cache["Z"]))
    dLdY = np.random.randn(5, 4)
    dX = fc.backward(dLdY)
    dZ = dLdY * (1 - out ** 2)
    np.testing.assert_allclose(fc.gradients["W"], X.T @ dZ)
    np.testing.assert_allclose(fc.gradients["b"], dZ.sum(axis=0, keepdims=True))
    np.testing.assert_allclose(dX, dZ @ fc.parameters["W"].T)


@pytest.mark.parametrize("activation", [Identity(), Sigmoid(), TanH(), ReLU(), SoftMax()],
                         ids=repr)
def test_every_activation_in_a_layer_checks(activation):
    np.random.seed(1)
    X = np.random.randn(6, 5)
    dLdY = np.random.randn(6, 4)
    fc = FullyConnected(n_out=4, activation=activation)
    fc.forward(X)
    fc.backward(dLdY)
    for param in fc.parameters:
        result = check_gradients(fn=fc.forward_with_param(param, X),
                                 grad=fc.gradients[param], x=fc.parameters[param], dLdf=dLdY)
        assert result < 1e-8, (param, repr(result))


def _network(seed=0):
    layer_args = [
        {"name": "fully_connected", "activation": "relu", "weight_init": "xavier_uniform",
         "n_out": 16},
        {"name": "fully_connected", "activation": "softmax", "weight_init": "xavier_uniform",
         "n_out": 3},
    ]
    return initialize_model("two_layer_NN", "cross_entropy", layer_args,
                            {"name": "SGD", "lr": 0.5, "lr_scheduler": "constant",
                             "momentum": 0.5}, seed=seed)


def _blobs(n=150):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 2)) * 0.5 + np.array([[0, 2], [2, -1], [-2, -1]])[labels]
    return X, np.eye(3)[labels]


def test_network_trains_step_by_step():
    X, Y = _blobs()
    net = _network()
    losses = []
    for _ in range(60):
        out = net.forward(X)
        losses.append(net.backward(Y, out))
        net.update()
    assert losses[-1] < 0.3 * losses[0]
    prediction, loss = net.predict(X, Y)
    assert prediction.shape == (150, 3) and loss == pytest.approx(
        CrossEntropy().forward(Y, prediction))
    assert (prediction.argmax(axis=1) == Y.argmax(axis=1)).mean() > 0.95
    for layer in net.layers:
        assert layer.gradients["W"].shape == layer.parameters["W"].shape


def test_network_seed_reproduces_and_layer_after_training_checks():
    X, Y = _blobs(30)
    runs = []
    for _ in range(2):
        net = _network(seed=7)
        for _ in range(5):
            net.backward(Y, net.forward(X))
            net.update()
        runs.append(net)
    np.testing.assert_array_equal(runs[0].layers[0].parameters["W"],
                                  runs[1].layers[0].parameters["W"])
    hidden = runs[0].layers[0]
    dLdY = np.random.default_rng(0).normal(size=(30, 16))
    hidden.forward(X)
    hidden.backward(dLdY)
    assert check_gradients(hidden.forward_with_param("W", X), hidden.gradients["W"],
                           hidden.parameters["W"], dLdY) < 1e-8


def test_factories_validate():
    assert isinstance(initialize_loss("cross_entropy"), CrossEntropy)
    with pytest.raises(NotImplementedError, match="'l2' loss is not implemented"):
        initialize_loss("l2")
    assert initialize_layer("fully_connected", "tanh", n_out=3).n_out == 3
    with pytest.raises(NotImplementedError, match="layer type 'conv2d'"):
        initialize_layer("conv2d", "relu", n_out=3)
    with pytest.raises(TypeError, match="n_out: the number of outputs is required"):
        initialize_layer("fully_connected", "relu")
    with pytest.raises(TypeError, match=r"layer_args\[0\]: expected a dict"):
        NeuralNetwork("cross_entropy", ["relu"])


def test_loss_order_is_cs189s_and_a_swapped_call_raises():
    loss = CrossEntropy("cross_entropy")
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    P = np.array([[0.8, 0.2], [0.3, 0.7]])
    assert loss.forward(Y, P) == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2)
    with pytest.raises(ValueError, match=r"forward takes \(Y, Y_hat\): labels first"):
        loss.forward(P, Y)
    assert loss.forward(Y, Y) == 0.0       # the seed's forward(a, b) with two label arrays
