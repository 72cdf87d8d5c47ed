"""Benchmark cases shared by ``fastgrad bench`` and the pytest-benchmark suite in ``bench/``.

Every case is timed side by side in one run: the seed-style loop (one element at a time,
perturbing ``x`` in place) and fastgrad. Where the loop would take too long it is timed on a
sample of elements and extrapolated to all of them, and the result says so.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from . import activations, losses
from ._checker import check_gradients
from .layers import FullyConnected

#: Seconds the seed-style loop may run before it is extrapolated from its sample.
LOOP_BUDGET_S = 2.0
#: Short runs are repeated until this much time has passed, and the fastest run is kept.
REPEAT_FOR_S = 0.2


def best_time(run, *, repeat_for_s=REPEAT_FOR_S, max_repeats=200, warm_up=False):
    """Fastest of repeated runs of ``run()`` (at least one; more while they are short).

    With ``warm_up``, ``run()`` is called once untimed first: a first call may compile a
    kernel for new argument types, which no timing should contain.

    Returns ``(seconds, last_result)``.
    """
    if warm_up:
        run()
    best = float("inf")
    spent = 0.0
    result = None
    for _ in range(max_repeats):
        started = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - started
        best = min(best, elapsed)
        spent += elapsed
        if spent >= repeat_for_s:
            break
    return best, result


def seed_style_loop(fn, x, dLdf, h=1e-6, *, budget_s=LOOP_BUDGET_S, max_elements=None):
    """The checker most notebooks use: perturb one element in place, call fn twice, restore.

    Returns ``(numerical, seconds_for_all, n_timed)``: ``numerical`` holds the elements that
    were timed (NaN elsewhere); ``seconds_for_all`` is measured when ``n_timed == x.size`` and
    extrapolated linearly from the timed elements otherwise.
    """
    x = np.array(x, dtype=np.float64)
    numerical = np.full(x.shape, np.nan)
    flat = x.reshape(-1)
    out_flat = numerical.reshape(-1)
    limit = flat.size if max_elements is None else min(flat.size, max_elements)
    started = time.perf_counter()
    n_timed = 0
    for i in range(limit):
        old = flat[i]
        flat[i] = old + h
        pos = np.array(fn(x), copy=True)
        flat[i] = old - h
        neg = np.array(fn(x), copy=True)
        flat[i] = old
        out_flat[i] = np.sum((pos - neg) * dLdf) / (2 * h)
        n_timed += 1
        if time.perf_counter() - started > budget_s:
            break
    elapsed = time.perf_counter() - started
    return numerical, elapsed * flat.size / n_timed, n_timed


@dataclass
class Case:
    """One benchmark case: ``setup(rng)`` returns ``(fn, grad, x, dLdf)``."""

    name: str
    setup: object
    method: str = "auto"
    options: dict = field(default_factory=dict)


@dataclass
class Timing:
    """Both sides of one case."""

    case: str
    n_elements: int
    method: str
    fastgrad_s: float
    loop_s: float
    loop_extrapolated: bool
    loop_timed: int
    relative_error: float
    passed: bool
    max_loop_difference: float

    @property
    def speedup(self):
        return self.loop_s / self.fastgrad_s if self.fastgrad_s > 0 else float("inf")

    def as_dict(self):
        return {"case": self.case, "n_elements": self.n_elements, "method": self.method,
                "fastgrad_s": self.fastgrad_s, "loop_s": self.loop_s,
                "loop_extrapolated": self.loop_extrapolated, "loop_timed": self.loop_timed,
                "speedup": self.speedup, "relative_error": self.relative_error,
                "passed": self.passed, "max_loop_difference": self.max_loop_difference}


def run_case(case, *, seed=0, repeats=3, loop_budget_s=LOOP_BUDGET_S):
    """Time fastgrad (best of ``repeats``) and the seed-style loop on one case."""
    fn, grad, x, dLdf = case.setup(np.random.default_rng(seed))
    best, result = best_time(lambda: check_gradients(fn, grad, x, dLdf, method=case.method,
                                                     progress=False, seed=seed, **case.options),
                             max_repeats=max(repeats, 1) * 100)
    loop_s, (numerical, _, n_timed) = best_time(
        lambda: seed_style_loop(fn, x, dLdf, budget_s=loop_budget_s))
    if n_timed < np.size(x):
        loop_s = loop_s * np.size(x) / n_timed
    timed = np.isfinite(numerical)
    difference = 0.0
    if result.numerical is not None and timed.any():
        difference = float(np.max(np.abs(numerical[timed] - result.numerical[timed])))
    return Timing(case=case.name, n_elements=int(np.size(x)), method=result.method,
                  fastgrad_s=best, loop_s=loop_s, loop_extrapolated=n_timed < np.size(x),
                  loop_timed=n_timed, relative_error=float(result), passed=bool(result.passed),
                  max_loop_difference=difference)


def _activation_case(activation, shape):
    def setup(rng):
        X = rng.normal(size=shape)
        dLdY = rng.normal(size=shape)
        return activation.forward, activation.backward(X, dLdY), X, dLdY
    return setup


def _dense_case(n_in, n_out, n_samples, activation, param="W"):
    def setup(rng):
        layer = FullyConnected(n_out, activation=activation, seed=int(rng.integers(1 << 30)))
        X = rng.normal(size=(n_samples, n_in))
        dLdY = rng.normal(size=(n_samples, n_out))
        layer.forward(X)
        layer.backward(dLdY)
        return (layer.forward_with_param(param, X), layer.gradients[param],
                layer.parameters[param], dLdY)
    return setup


def _cross_entropy_case(n_samples, n_classes):
    def setup(rng):
        loss = losses.CrossEntropy("cross_entropy")
        Y = np.eye(n_classes)[rng.integers(0, n_classes, n_samples)]
        scores = rng.uniform(0, 1, size=(n_samples, n_classes))
        P = scores / scores.sum(axis=1, keepdims=True)
        return (lambda p: loss.forward(Y, p)), loss.backward(Y, P), P, 1.0
    return setup


def _black_box_case(n):
    def setup(rng):
        A = rng.normal(size=(n, n)) / np.sqrt(n)
        x = rng.normal(size=(n, n))
        dLdf = rng.normal(size=(n, n))

        def fn(v):
            return np.tanh(v @ A)

        grad = ((1 - fn(x) ** 2) * dLdf) @ A.T
        return fn, grad, x, dLdf
    return setup


def checker_cases(quick=False):
    """The cases of the checker benchmark (issue: check_gradients)."""
    notebook = [Case(f"notebook {a!r} 2x3", _activation_case(a, (2, 3)))
                for a in (activations.Identity(), activations.Sigmoid(), activations.TanH(),
                          activations.ReLU(), activations.SoftMax())]
    notebook += [Case("notebook FullyConnected W 3x4", _dense_case(3, 4, 2, "identity", "W")),
                 Case("notebook FullyConnected b 1x4", _dense_case(3, 4, 2, "identity", "b")),
                 Case("notebook CrossEntropy 5x6", _cross_entropy_case(5, 6))]
    shape = (64, 128) if quick else (256, 512)
    wide = [Case(f"{a!r} {shape[0]}x{shape[1]}", _activation_case(a, shape))
            for a in (activations.Sigmoid(), activations.TanH(), activations.ReLU(),
                      activations.SELU())]
    wide.append(Case(f"SoftMax() {shape[0]}x{shape[1]}",
                     _activation_case(activations.SoftMax(), shape)))
    n = 128 if quick else 512
    wide.append(Case(f"FullyConnected W {n}x{n}, 64 samples, tanh",
                     _dense_case(n, n, 64, "tanh")))
    black_box = [Case("black box tanh(x @ A) 64x64, auto", _black_box_case(64)),
                 Case("black box tanh(x @ A) 64x64, exhaustive (stacked)", _black_box_case(64),
                      method="exhaustive"),
                 Case("black box tanh(x @ A) 64x64, exhaustive (loop)", _black_box_case(64),
                      method="exhaustive", options={"memory_budget": 1})]
    return notebook + wide + black_box


# ---------------------------------------------------------------- whole models


def seed_style_model_loop(net, X, Y, epsilon=1e-4, *, budget_s=LOOP_BUDGET_S):
    """The notebook's gradient_check: perturb each parameter in place, run the model, restore.

    Returns ``(seconds_for_all, n_timed, n_parameters)``; extrapolated when
    ``n_timed < n_parameters``. Elements are visited layer by layer in a strided sample so
    every layer is represented.
    """
    params = [p for layer in net.layers for p in getattr(layer, "parameters", {}).values()]
    n_parameters = sum(p.size for p in params)
    order = [(p, i) for p in params for i in range(p.size)]
    stride = max(1, len(order) // 5000)
    sample = order[::stride]
    started = time.perf_counter()
    n_timed = 0
    for p, i in sample:
        flat = p.reshape(-1)
        old = flat[i]
        flat[i] = old + epsilon
        up = net.cost.forward(Y, net.forward(X))
        flat[i] = old - epsilon
        down = net.cost.forward(Y, net.forward(X))
        flat[i] = old
        _ = (up - down) / (2 * epsilon)
        n_timed += 1
        if time.perf_counter() - started > budget_s:
            break
    elapsed = time.perf_counter() - started
    return elapsed * n_parameters / n_timed, n_timed, n_parameters


@dataclass
class ModelCase:
    """A model benchmark case: ``setup(rng)`` returns ``(model, X, Y)``."""

    name: str
    setup: object
    exhaustive_in_full: bool = True


def _mlp_case(widths, activations_, cost, n_samples):
    def setup(rng):
        from . import costs as costs_module
        from . import layers as layers_module
        from . import model as model_module

        net = model_module.Model()
        for units, activation in zip(widths[1:], activations_, strict=True):
            net.add(layers_module.Dense(units, activation=activation))
        net.configure(input_size=widths[0], cost_type=getattr(costs_module, cost)(), seed=0)
        X = rng.normal(size=(n_samples, widths[0]))
        n_out = widths[-1]
        if cost == "CategoricalCrossentropy" and n_out > 1:
            Y = np.eye(n_out)[rng.integers(0, n_out, n_samples)]
        else:
            Y = rng.integers(0, 2, size=(n_samples, n_out))
        return net, X, Y
    return setup


def model_cases(quick=False):
    """The cases of the model benchmark (issue: whole-model gradient check)."""
    cases = [
        ModelCase("notebook 3-16-8-2 relu/relu/softmax, 100 samples",
                  _mlp_case([3, 16, 8, 2], ["relu", "relu", "softmax"],
                            "CategoricalCrossentropy", 100)),
        ModelCase("notebook 1-4-2-1 relu/relu/sigmoid, 100 samples",
                  _mlp_case([1, 4, 2, 1], ["relu", "relu", "sigmoid"], "BinaryCrossentropy",
                            100)),
    ]
    widths = [784, 64, 32, 10] if quick else [784, 256, 128, 10]
    cases.append(ModelCase(f"{'-'.join(map(str, widths))} relu/relu/softmax, 64 samples",
                           _mlp_case(widths, ["relu", "relu", "softmax"],
                                     "CategoricalCrossentropy", 64),
                           exhaustive_in_full=False))
    return cases


@dataclass
class ModelTiming:
    case: str
    n_parameters: int
    fastgrad_s: float
    loop_s: float
    loop_extrapolated: bool
    exhaustive_s: float
    exhaustive_extrapolated: bool
    distance: float
    passed: bool

    @property
    def speedup(self):
        return self.loop_s / self.fastgrad_s

    def as_dict(self):
        return {"case": self.case, "n_parameters": self.n_parameters,
                "fastgrad_s": self.fastgrad_s, "loop_s": self.loop_s,
                "loop_extrapolated": self.loop_extrapolated, "exhaustive_s": self.exhaustive_s,
                "exhaustive_extrapolated": self.exhaustive_extrapolated,
                "speedup": self.speedup, "distance": self.distance, "passed": self.passed}


def run_model_case(case, *, seed=0, loop_budget_s=LOOP_BUDGET_S):
    """Time the model method, the seed-style loop and the exhaustive method on one model."""
    from ._model_check import _pure_loss, gradient_check

    net, X, Y = case.setup(np.random.default_rng(seed))
    gradient_check(net, X, Y, progress=False)  # untimed: compiles what this model needs
    started = time.perf_counter()
    result = gradient_check(net, X, Y, progress=False)
    fastgrad_s = time.perf_counter() - started
    loop_s, n_timed, n_parameters = seed_style_model_loop(net, X, Y, budget_s=loop_budget_s)
    if case.exhaustive_in_full:
        started = time.perf_counter()
        gradient_check(net, X, Y, method="exhaustive", progress=False)
        exhaustive_s = time.perf_counter() - started
        extrapolated = False
    else:  # time one row of each parameter and extrapolate layer by layer
        exhaustive_s = 0.0
        for index, layer in enumerate(net.layers):
            for name, value in layer.parameters.items():
                row = value[:1].copy()

                def fn(v, index=index, name=name, value=value):
                    full = np.broadcast_to(value, v.shape[:-2] + value.shape).copy()
                    full[..., :1, :] = v
                    return _pure_loss(net, X, Y, index, name, full)

                started = time.perf_counter()
                check_gradients(fn, np.zeros_like(row), row, h=1e-4, method="exhaustive",
                                order=2, progress=False)
                exhaustive_s += (time.perf_counter() - started) * value.size / row.size
        extrapolated = True
    return ModelTiming(case=case.name, n_parameters=n_parameters, fastgrad_s=fastgrad_s,
                       loop_s=loop_s, loop_extrapolated=n_timed < n_parameters,
                       exhaustive_s=exhaustive_s, exhaustive_extrapolated=extrapolated,
                       distance=float(result), passed=bool(result.passed))


def scaling_cases(quick=False):
    """Families of one function at growing sizes, for the time-versus-size plot."""
    sides = [(4, 8), (16, 32), (64, 128)] + ([] if quick else [(256, 512)])
    cases = [Case(f"TanH() {rows}x{cols}", _activation_case(activations.TanH(), (rows, cols)))
             for rows, cols in sides]
    widths = [16, 64] + ([] if quick else [256, 1024])
    cases += [Case(f"FullyConnected W {n}x{n}, 64 samples, tanh", _dense_case(n, n, 64, "tanh"))
              for n in widths]
    return cases
