"""The second notebook's natural next cells, in the Keras-like ``sandbox`` API.

Beyond the seed cells: train with every optimizer and see the cost fall, ``verbose``,
``summary``, ``save``/``load``, ``predict`` + ``binary_evaluate``, reproducibility under
``np.random.seed``, and the same trajectory as a plain-NumPy re-implementation of the original
(``bench/originals.py``).
"""

import importlib.util
import pathlib
import re

import numpy as np
import pytest

from fastgrad import activations, costs, initializers, layers, model, optimizers, utils

ORIGINALS = pathlib.Path(__file__).resolve().parents[1] / "bench" / "originals.py"
OPTIMIZERS = [optimizers.SGD, optimizers.Momentum, optimizers.AdaGrad, optimizers.RMSProp,
              optimizers.Adam]


def _originals():
    spec = importlib.util.spec_from_file_location("bench_originals", ORIGINALS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _xor_data(n=100):
    X = np.random.randn(n, 3)
    Y = (X[:, :1] * X[:, 1:2] > 0).astype(int)
    return X, Y


def _binary_model(optimizer=None, dropout=False):
    net = model.Model()
    net.add(layers.Dense(units=16, activation=activations.ReLU()))
    if dropout:
        net.add(layers.Dropout(0.2))
    net.add(layers.Dense(units=8, activation=activations.ReLU()))
    net.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    net.configure(costs.BinaryCrossentropy(), 3, optimizer or optimizers.SGD())
    return net


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: o.__name__)
def test_every_optimizer_lowers_the_cost(optimizer):
    np.random.seed(0)
    X, Y = _xor_data()
    net = _binary_model(optimizer())
    assert net.train(X, Y, epochs=40, learning_rate=0.05, batch_size=32) is None
    per_epoch = np.reshape(net.costs, (40, 3)).mean(axis=1)   # 100 // 32 = 3 batches
    assert per_epoch[-5:].mean() < 0.85 * per_epoch[:5].mean(), per_epoch
    assert net._trainer is not None                             # the fused path ran


def test_optimizer_defaults_follow_the_original():
    assert optimizers.SGD().learning_rate == 0.001
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta1, adam.beta2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-8)
    assert optimizers.Momentum().beta == optimizers.RMSProp().beta == 0.9
    assert optimizers.AdaGrad().epsilon == 1e-8
    with pytest.raises(ValueError, match="beta1: expected a value in"):
        optimizers.Adam(beta1=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(learning_rate=-1)
    with pytest.raises(ValueError, match="unknown name"):
        optimizers.get("lbfgs")


def test_training_learns_xor_and_predicts():
    np.random.seed(1)
    X, Y = _xor_data(200)
    net = _binary_model(optimizers.Adam())
    net.train(X, Y, epochs=150, learning_rate=0.01, batch_size=32)
    predictions = net.predict(X)
    assert predictions.shape == (200, 1)
    assert utils.binary_evaluate(predictions, Y) > 0.9
    assert set(np.unique(utils.binary_round(predictions))) <= {0, 1}


def test_full_batch_by_default_and_learning_rate_sets_the_optimizer():
    np.random.seed(0)
    X, Y = _xor_data()
    net = _binary_model(optimizers.SGD(learning_rate=0.5))
    net.train(X, Y, epochs=7)                      # batch_size=None: one batch per epoch
    assert len(net.costs) == 7
    assert net.optimizer.learning_rate == 0.5      # kept when not given
    net.train(X, Y, epochs=2, learning_rate=0.1, batch_size=25)
    assert len(net.costs) == 7 + 2 * 4 and net.optimizer.learning_rate == 0.1


def test_verbose_prints_ten_times(capsys):
    np.random.seed(0)
    X, Y = _xor_data()
    net = _binary_model()
    net.train(X, Y, epochs=20, learning_rate=0.1, batch_size=50, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [int(re.match(r"Cost on epoch (\d+): [0-9.]+$", line).group(1)) for line in lines] \
        == list(range(2, 21, 2))
    assert float(lines[-1].split(": ")[1]) == pytest.approx(net.costs[-1], abs=1e-5)
    net.train(X, Y, epochs=3, verbose=False)
    assert capsys.readouterr().out == ""


def test_summary_prints_a_table_and_returns_the_count(capsys):
    np.random.seed(0)
    net = _binary_model(dropout=True)
    assert net.summary() == (3 * 16 + 16) + (16 * 8 + 8) + (8 + 1)
    out = capsys.readouterr().out
    assert "| Layer type | Parameters |" in out and "Dropout" in out
    assert out.rstrip().endswith("Total parameters: 209")
    assert net.summary(print_table=False) == 209
    assert capsys.readouterr().out == ""


def test_save_load_round_trip(tmp_path):
    np.random.seed(0)
    X, Y = _xor_data()
    net = _binary_model(dropout=True)
    net.train(X, Y, epochs=5, learning_rate=0.05, batch_size=32)
    net.save(dir=str(tmp_path) + "/")
    assert (tmp_path / "parameters.json").exists()
    other = model.Model()
    other.add(layers.Dense(units=16, activation=activations.ReLU()))
    other.add(layers.Dropout(0.2))
    other.add(layers.Dense(units=8, activation=activations.ReLU()))
    other.add(layers.Dense(units=1, activation=activations.Sigmoid()))
    other.load(dir=str(tmp_path) + "/")                 # before configure, as the original
    np.testing.assert_array_equal(other.predict(X), net.predict(X))
    other.configure(costs.BinaryCrossentropy(), 3)
    other.load("parameters.json", str(tmp_path) + "/")
    for mine, theirs in zip(other.parameters, net.parameters, strict=True):
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key])
    small = model.Model()
    small.add(layers.Dense(units=4, activation="relu"))
    with pytest.raises(ValueError, match="parameters: expected 1 layers with weights, got 3"):
        small.load(dir=str(tmp_path) + "/")


def test_np_random_seed_makes_runs_reproducible():
    runs = []
    for _ in range(2):
        np.random.seed(42)
        X, Y = _xor_data()
        net = _binary_model(optimizers.Adam(), dropout=True)
        net.train(X, Y, epochs=5, learning_rate=0.01, batch_size=16)
        runs.append((net.costs, [dict(p) for p in net.parameters]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_same_weights_and_trajectory_as_the_original(name):
    originals = _originals()
    np.random.seed(3)
    X = np.random.randn(100, 3)
    Y = np.eye(2)[np.random.randint(0, 2, 100)]
    np.random.seed(0)
    original = originals.SandboxModel()
    for units, act in ((16, originals.ReLU()), (8, originals.ReLU()), (2, originals.Softmax())):
        original.add(originals.Dense(units, act))
    original.configure(originals.CategoricalCrossentropy(), 3, getattr(originals, name)())
    np.random.seed(0)
    net = model.Model()
    for units, act in ((16, activations.ReLU()), (8, activations.ReLU()),
                       (2, activations.Softmax())):
        net.add(layers.Dense(units, act))
    net.configure(costs.CategoricalCrossentropy(), 3, getattr(optimizers, name)())
    for mine, theirs in zip(net.parameters, original.parameters, strict=True):
        np.testing.assert_array_equal(mine["W"], theirs["W"])  # the same draws
    np.random.seed(5)
    original.train(X, Y, 4, 0.01, 32)
    np.random.seed(5)
    net.train(X, Y, 4, 0.01, 32)
    np.testing.assert_allclose(net.costs, np.array(original.costs, dtype=float), rtol=1e-12)
    for mine, theirs in zip(net.parameters, original.parameters, strict=True):
        np.testing.assert_allclose(mine["W"], theirs["W"], rtol=1e-10, atol=1e-13)


def test_fused_and_general_paths_agree():
    class StepByStep(optimizers.Adam):
        def step(self, layers):          # a user's optimizer: the general path runs
            super().step(layers)

    results = []
    for optimizer in (optimizers.Adam(), StepByStep()):
        np.random.seed(0)
        X, Y = _xor_data()
        net = _binary_model(optimizer)
        net.train(X, Y, epochs=3, learning_rate=0.01, batch_size=32)
        results.append((net, net.costs))
    assert results[0][0]._trainer is not None and results[1][0]._trainer is None
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
    for a, b in zip(results[0][0].parameters, results[1][0].parameters, strict=True):
        np.testing.assert_allclose(a["W"], b["W"], rtol=1e-12, atol=1e-15)


def test_float32_stays_float32():
    np.random.seed(0)
    X, Y = _xor_data()
    net = model.Model()
    net.add(layers.Dense(8, activations.Tanh()))
    net.add(layers.Dense(1, activations.Sigmoid()))
    net.configure(costs.BinaryCrossentropy(), 3, optimizers.Adam(), dtype=np.float32)
    net.train(X.astype(np.float32), Y, epochs=3, learning_rate=0.01, batch_size=32)
    assert all(p[k].dtype == np.float32 for p in net.parameters for k in p)
    assert net.predict(X).dtype == np.float32


def test_configure_in_the_original_order_with_an_initializer():
    np.random.seed(0)
    net = model.Model(cuda=False)
    net.add(layers.Dense(4, activations.ReLU()))
    net.add(layers.Dense(2, activations.Linear(), initializer=initializers.zeros))
    net.configure(costs.MSE(), 3, optimizers.Momentum(), initializers.ones)
    np.testing.assert_array_equal(net.parameters[0]["W"], 1.0)   # configure's initializer
    np.testing.assert_array_equal(net.parameters[1]["W"], 0.0)   # the layer's own wins
    net.configure(3, costs.MSE())                                  # fastgrad's old order
    assert net.input_size == 3 and isinstance(net.optimizer, optimizers.SGD)
    with pytest.raises(TypeError, match="input_size: required"):
        net.configure(costs.MSE())


def test_a_students_own_initializer_and_activation():
    def halves(prev_layer_size, layer_size):
        return {"W": np.full((prev_layer_size, layer_size), 0.5), "b": np.ones((1, layer_size))}

    class Cube:                          # the original's activation form: backward(Z) = f'(Z)
        def forward(self, Z):
            return Z ** 3

        def backward(self, Z):
            return 3 * Z ** 2

    np.random.seed(0)
    X = np.random.randn(20, 3) * 0.3
    Y = np.random.randn(20, 2)
    net = model.Model()
    net.add(layers.Dense(units=4, activation=Cube(), initializer=halves))
    net.add(layers.Dense(units=2, activation=activations.Linear()))
    net.configure(costs.MSE(), 3)
    np.testing.assert_array_equal(net.parameters[0]["b"], 1.0)
    assert utils.gradient_check(net, X, Y).passed
    with pytest.raises(ValueError, match=r"initializer's W: expected shape \(3, 4\)"):
        bad = model.Model()
        bad.add(layers.Dense(4, "relu", initializer=lambda n_in, n_out: np.zeros((n_out, n_in))))
        bad.configure(costs.MSE(), 3)


def test_activation_parameters_and_the_derivative_form():
    Z = np.linspace(-2, 2, 9).reshape(3, 3)
    np.testing.assert_allclose(activations.Linear(k=2.5).forward(Z), 2.5 * Z)
    np.testing.assert_allclose(activations.Linear(k=2.5).backward(Z), 2.5)
    s = 1 / (1 + np.exp(-3 * Z))
    np.testing.assert_allclose(activations.Sigmoid(c=3).forward(Z), s)
    np.testing.assert_allclose(activations.Sigmoid(c=3).backward(Z), 3 * s * (1 - s))
    selu = activations.SELU(alpha=1.5, scale=2.0)
    np.testing.assert_allclose(selu.forward(Z), 2.0 * np.where(Z > 0, Z, 1.5 * np.expm1(Z)))
    np.testing.assert_allclose(selu.backward(Z), 2.0 * np.where(Z > 0, 1.0, 1.5 * np.exp(Z)))
    np.testing.assert_allclose(activations.ReLU().backward(Z), (Z > 0).astype(float))
    np.testing.assert_allclose(activations.LeakyReLU(alpha=0.05).backward(Z),
                               np.where(Z > 0, 1.0, 0.05))
    np.testing.assert_allclose(activations.Tanh().backward(Z, np.full_like(Z, 2.0)),
                               2 * (1 - np.tanh(Z) ** 2))
    assert type(activations.Sigmoid()) is activations.Sigmoid   # the default stays a kernel
    with pytest.raises(TypeError, match=r"dLdY: SoftMax\.backward needs dL/dY"):
        activations.Softmax().backward(Z)
    with pytest.raises(TypeError, match="c: expected a finite real number"):
        activations.Sigmoid(c="steep")


def test_parameterised_activations_train_and_check_in_a_model():
    np.random.seed(0)
    X = np.random.randn(30, 3)
    Y = np.random.randint(0, 2, (30, 1))
    net = model.Model()
    net.add(layers.Dense(5, activations.SELU(alpha=1, scale=1)))
    net.add(layers.Dense(1, activations.Sigmoid(c=2)))
    net.configure(costs.BinaryCrossentropy(), 3)
    assert utils.gradient_check(net, X, Y).passed
    net.train(X, Y, epochs=3, learning_rate=0.1)
    assert net._trainer is None and len(net.costs) == 3    # scaled activations: general path


def test_cost_order_is_the_originals_and_a_swapped_call_raises():
    AL = np.array([[0.9], [0.2], [0.6]])
    Y = np.array([[1], [0], [0]])
    bce = costs.BinaryCrossentropy()
    expected = -np.mean(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))
    assert bce.forward(AL, Y) == pytest.approx(expected)
    np.testing.assert_allclose(bce.backward(AL, Y), (-Y / AL + (1 - Y) / (1 - AL)) / 3)
    with pytest.raises(ValueError, match=r"forward takes \(AL, Y\): predictions first"):
        bce.forward(Y, AL)
    with pytest.raises(ValueError, match=r"backward takes \(AL, Y\)"):
        bce.backward(Y, AL)
    cce = costs.CategoricalCrossentropy()
    P = np.array([[0.7, 0.3], [0.4, 0.6]])
    onehot = np.array([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"\(AL, Y\)"):
        cce.forward(onehot, P)
    # where both orders give a finite number (the squared error is symmetric) nothing is said
    assert costs.MSE().forward(P, onehot) == costs.MSE().forward(onehot, P)


def test_backward_in_the_originals_form_and_parameters():
    np.random.seed(0)
    X, Y = _xor_data(10)
    net = _binary_model(dropout=True)
    AL = net.forward(X)
    grads = net.backward(AL, Y)
    assert [g["dW"] is None for g in grads] == [False, True, False, False]
    assert grads[0]["dW"].shape == (3, 16) and grads[3]["db"].shape == (1, 1)
    assert len(net.parameters) == 4 and net.parameters[1] == {}
    net.parameters[0]["W"][0, 0] += 1.0            # live: the original's gradient_check did this
    assert net.layers[0].parameters["W"][0, 0] == net.parameters[0]["W"][0, 0]
    with pytest.raises(ValueError, match=r"AL: expected the output of the last forward"):
        net.backward(AL[:5], Y)


def test_cuda_is_accepted_and_says_what_is_missing():
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="CuPy is not installed"):
            model.Model(cuda=True)
    else:
        with pytest.raises(NotImplementedError, match="CPU"):
            model.Model(cuda=True)
    assert model.Model(cuda=False).xp is np
    with pytest.raises(TypeError, match="cuda: expected True or False"):
        model.Model(cuda="gpu")


def test_train_validates_its_arguments():
    np.random.seed(0)
    X, Y = _xor_data(10)
    net = _binary_model()
    with pytest.raises(ValueError, match=r"X: expected shape \(n_samples, 3\), got \(10, 4\)"):
        net.train(np.zeros((10, 4)), Y, 1)
    with pytest.raises(ValueError, match="Y: expected 10 samples"):
        net.train(X, Y[:9], 1)
    with pytest.raises(ValueError, match="batch_size: expected a finite value > 0"):
        net.train(X, Y, 1, batch_size=0)
    with pytest.raises(TypeError, match="epochs: expected an integer"):
        net.train(X, Y, 1.5)
    with pytest.raises(TypeError, match="verbose: expected True or False"):
        net.train(X, Y, 1, verbose="yes")
    with pytest.raises(ValueError, match="learning_rate"):
        net.train(X, Y, 1, learning_rate=0)
    with pytest.raises(TypeError, match="Y: expected a numeric array"):
        net.train(X, np.array(["a"] * 10), 1)


def test_binary_helpers_validate():
    assert utils.binary_round(np.array([0.5, 0.51])).tolist() == [0, 1]
    assert utils.binary_evaluate(np.array([[0.9], [0.1]]), np.array([1, 0])) == 1.0
    with pytest.raises(ValueError, match=r"Y: expected the shape of Y_pred \(2, 1\)"):
        utils.binary_evaluate(np.array([[0.9], [0.1]]), np.array([1, 0, 1]))
    with pytest.raises(TypeError, match="Y: expected a real float32 or float64 array"):
        utils.binary_round(np.array(["x"]))


def test_small_products_train_on_one_blas_thread():
    from fastgrad import _blas

    with _blas.one_blas_thread(True):
        if _blas._controls:
            assert _blas._controls[0]() == 1
    np.random.seed(0)
    net = _binary_model()
    assert net._small_products(32) and not net._small_products(10**6)
