"""The model kernel against the loss re-evaluated naively in NumPy, element by element.

The kernel recomputes only what a step changes, batches the points of a column, crosses runs
of piecewise-linear layers with a slope table and uses a closed form for softmax with
cross-entropy; each of those is compared here with the plain definition: perturb one
parameter, run the whole network forward, evaluate the loss.
"""

import numpy as np
import pytest

from fastgrad import costs, layers, model
from fastgrad._model_check import _ModelKernel
from fastgrad._model_stacked import StackedModel
from fastgrad.kernels import activations as codes
from fastgrad.kernels import model as kernels

import reference

COST_NAMES = {costs.CategoricalCrossentropy: "cross_entropy",
              costs.BinaryCrossentropy: "binary_cross_entropy", costs.MSE: "mse",
              costs.MAE: "mae"}
ACTIVATION_NAMES = {getattr(codes, name.upper()): name
                    for name in [*reference.ACTIVATIONS, "softmax"]}


def _net(widths, activation_names, cost, seed):
    net = model.Model()
    for units, name in zip(widths[1:], activation_names, strict=True):
        net.add(layers.Dense(units=units, activation=name))
    net.configure(input_size=widths[0], cost_type=cost, seed=seed)
    return net


def _labels(cost, rng, n_samples, n_out, one_hot):
    if isinstance(cost, costs.CategoricalCrossentropy) and one_hot:
        return np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    if isinstance(cost, (costs.CategoricalCrossentropy, costs.BinaryCrossentropy)):
        return rng.integers(0, 2, size=(n_samples, n_out)).astype(np.float64)
    return rng.normal(size=(n_samples, n_out))


def _naive_loss(net, X, Y, cost_name, params):
    A = X
    for layer, p in zip(net.layers, params, strict=True):
        A = reference.dense_forward(A, p["W"], p["b"], ACTIVATION_NAMES[layer.activation.code],
                                    float(layer.activation.alpha))
    return reference.loss_forward(cost_name, Y, A)


def _naive_differences(net, X, Y, cost_name, index, name, step, order):
    """(central, gap) of every element, with the kernel's definitions (kernels.differences)."""
    params = [{k: np.array(v, dtype=np.float64) for k, v in layer.parameters.items()}
              for layer in net.layers]
    value = params[index][name]
    base = _naive_loss(net, X, Y, cost_name, params)
    central = np.empty_like(value)
    gap = np.empty_like(value)
    for element in np.ndindex(value.shape):
        x = value[element]
        levels = []
        for h in (step, step / 2)[:order // 2]:
            value[element] = x + h
            up = _naive_loss(net, X, Y, cost_name, params) - base
            h_up = (x + h) - x
            value[element] = x - h
            down = base - _naive_loss(net, X, Y, cost_name, params)
            h_down = x - (x - h)
            value[element] = x
            levels.append((up, down, h_up, h_down))
        differences = [(up + down) / (h_up + h_down) for up, down, h_up, h_down in levels]
        halves = [(up / h_up - down / h_down) / 2 for up, down, h_up, h_down in levels]
        if order == 2:
            central[element], gap[element] = differences[0], halves[0]
        else:
            central[element], gap[element] = reference.richardson_and_kink(levels)
    return central, gap


#: The compiled kernel, and the plain-NumPy engine the model method uses for small models.
ENGINES = {"kernel": lambda net, X, Y: _ModelKernel(net, X, Y),
           "stacked": lambda net, X, Y: StackedModel(net, X, Y, list(enumerate(net.layers)))}


def _kernel_differences(net, X, Y, index, name, step, order, engine="kernel"):
    kernel = ENGINES[engine](net, X, Y)
    position = [i for i, _ in kernel.chain].index(index) + 1
    value = net.layers[index].parameters[name].astype(np.float64)
    central = np.empty_like(value)
    gap = np.empty_like(value)
    kernel.differences(position, name, value, slice(0, value.shape[0]), step, order, central,
                       gap)
    return central, gap


CHAINS = {
    # the MLP of the benchmark: slope table over one ReLU, closed form at the softmax
    "relu-relu-softmax": ([5, 6, 5, 4], ["relu", "relu", "softmax"],
                          costs.CategoricalCrossentropy),
    # the slope table crosses three piecewise-linear layers from layer 1 (two with kinks)
    "tanh-relu-leaky-identity-softmax": ([4, 5, 6, 5, 4, 3],
                                         ["tanh", "relu", "leaky_relu", "identity", "softmax"],
                                         costs.CategoricalCrossentropy),
    # softmax inside the network: its own pre-activation is the target
    "tanh-softmax-relu-sigmoid": ([3, 4, 5, 4, 2], ["tanh", "softmax", "relu", "sigmoid"],
                                  costs.BinaryCrossentropy),
    "pwl-relu-tanh": ([3, 5, 4, 2], ["piecewise_linear", "relu", "tanh"], costs.MSE),
    "selu-identity": ([3, 4, 2], ["selu", "identity"], costs.MAE),
}


@pytest.mark.nojit
@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("order", [2, 4])
# 1e-4: the closed form and the slope tables; 0.3: steps that cross many ReLU kinks and
# leave the series' range, so the general paths and the rank-1 fallback run too
@pytest.mark.parametrize("step", [1e-4, 0.3])
@pytest.mark.parametrize("chain", list(CHAINS))
def test_every_parameter_matches_the_naive_loss(chain, step, order, engine):
    widths, names, cost_class = CHAINS[chain]
    rng = np.random.default_rng(7)
    net = _net(widths, names, cost_class(), seed=3)
    X = rng.normal(size=(7, widths[0]))
    X[0, 1] = 0.0  # a zero input: its row's steps change nothing in that sample
    Y = _labels(cost_class(), rng, 7, widths[-1], one_hot=step < 1e-3)
    for index in range(len(names)):
        for name in ("W", "b"):
            expected, expected_gap = _naive_differences(net, X, Y, COST_NAMES[cost_class],
                                                        index, name, step, order)
            central, gap = _kernel_differences(net, X, Y, index, name, step, order, engine)
            where = f"{engine} {chain}: layer {index} {name}"
            np.testing.assert_allclose(central, expected, rtol=1e-7, atol=1e-9, err_msg=where)
            # the naive loss carries ~1e-16 / step of rounding noise; a wrong side, level or
            # step in the kink indicator is off by the size of the derivative itself
            np.testing.assert_allclose(gap, expected_gap, rtol=1e-6, atol=1e-8, err_msg=where)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_one_sample_and_one_unit(engine):
    net = _net([1, 1, 1], ["relu", "softmax"], costs.CategoricalCrossentropy(), seed=0)
    X = np.array([[0.7]])
    Y = np.array([[1.0]])
    for index in (0, 1):
        for name in ("W", "b"):
            expected, _ = _naive_differences(net, X, Y, "cross_entropy", index, name, 1e-4, 4)
            central, _ = _kernel_differences(net, X, Y, index, name, 1e-4, 4, engine)
            np.testing.assert_allclose(central, expected, rtol=1e-7, atol=1e-9)


@pytest.mark.nojit
def test_softmax_cross_entropy_closed_form():
    rng = np.random.default_rng(1)
    width = 7
    z = rng.normal(size=width) * 3
    p = reference.softmax_forward(z)
    for labels in (np.eye(width)[2], rng.integers(0, 2, width).astype(np.float64),
                   rng.random(width)):
        v = rng.normal(size=width)
        v *= kernels.SERIES_LIMIT / np.abs(v).max()  # |d v| up to the series' limit
        d = np.concatenate([[0.0, 1.0, -1.0], rng.uniform(-1, 1, 40), [1e-9, -1e-12]])
        out = np.empty_like(d)
        kernels._softmax_cross_entropy_changes(p, v, width, labels.sum(), labels @ v, d, d.size,
                                               out)
        base = reference.loss_forward("cross_entropy", labels[None], p[None])
        naive = np.array([reference.loss_forward(
            "cross_entropy", labels[None], reference.softmax_forward(z + x * v)[None]) - base
            for x in d])
        # the naive difference of two losses is only good to ~1e-16 * |loss|
        np.testing.assert_allclose(out, naive, rtol=1e-9, atol=4e-16 * abs(base))
        assert out[0] == 0.0
