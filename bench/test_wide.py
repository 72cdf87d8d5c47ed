"""Wide layers: a black-box research layer with millions of weights, and fastgrad's own.

Run: python -m pytest bench/test_wide.py -s  (the 4096x4096 colored case takes minutes).
Everything is measured in this run, side by side; the seed-style loop is timed on a sample of
elements and extrapolated to the whole matrix, and says so.
"""

import time

import numpy as np
import pytest
from research_layer import ForwardOfW, ResearchDense

from fastgrad import _bench, check_gradients
from fastgrad.layers import FullyConnected

from conftest import record_floor

N_SAMPLES = 64


def _research_case(n, seed=0):
    rng = np.random.default_rng(seed)
    layer = ResearchDense(n, n, seed=seed)
    X = rng.normal(size=(N_SAMPLES, n))
    dLdY = rng.normal(size=(N_SAMPLES, n))
    return layer, X, dLdY, layer.backward(X, dLdY)


def _report(label, seconds, loop_s, extra=""):
    print(f"\n{label}: {seconds:.2f} s; seed-style loop ~{loop_s:,.0f} s (extrapolated from a "
          f"timed sample) -> {loop_s / seconds:,.0f}x {extra}")


def _loop_estimate(fn, W, dLdY):
    _, loop_s, n_timed = _bench.seed_style_loop(fn, W, dLdY, budget_s=2.0)
    return loop_s, n_timed


def _one_call_s(fn, W, repeats=5):
    """Best time of one forward call: the unit of a black-box method's floor."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn(W)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("n", [2048, 4096])
def test_directional_finds_one_corrupted_element(benchmark, n):
    layer, X, dLdY, grad = _research_case(n)
    fn = ForwardOfW(layer, X)
    corrupted = grad.copy()
    where = (n // 3, n // 5)
    corrupted[where] += 10 * np.sqrt(np.mean(grad**2))
    result = benchmark.pedantic(check_gradients, args=(fn, corrupted, layer.W, dLdY),
                                kwargs={"method": "directional", "progress": False, "seed": 0},
                                rounds=1, iterations=1)
    assert not result.passed and result.worst[0].index == where
    loop_s, _ = _loop_estimate(fn, layer.W, dLdY)
    floor_s = result.n_evaluations * _one_call_s(fn, layer.W)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update({"located": list(result.worst[0].index), "loop_s": loop_s,
                                 "evaluations": result.n_evaluations, "floor_s": floor_s,
                                 "ratio_to_floor": seconds / floor_s,
                                 "ratio_to_loop": loop_s / seconds})
    record_floor(f"directional {n}x{n}, one bad element located", seconds, floor_s, loop_s,
                 f"its {result.n_evaluations} forward calls")
    _report(f"directional {n}x{n}, one corrupted element located at {result.worst[0].index} "
            f"with {result.n_evaluations} evaluations", benchmark.stats.stats.min, loop_s)


@pytest.mark.parametrize("n", [2048, 4096])
def test_colored_every_element(benchmark, n):
    layer, X, dLdY, grad = _research_case(n)
    fn = ForwardOfW(layer, X)
    result = benchmark.pedantic(check_gradients, args=(fn, grad, layer.W, dLdY),
                                kwargs={"method": "colored", "progress": False, "seed": 0},
                                rounds=1, iterations=1)
    assert result.method == "colored" and result.passed
    assert result.numerical is not None and np.all(np.isfinite(result.numerical))
    loop_s, _ = _loop_estimate(fn, layer.W, dLdY)
    floor_s = 2 * n * _one_call_s(fn, layer.W)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update({"relative_error": float(result), "loop_s": loop_s,
                                 "max_rel_error": result.max_rel_error, "floor_s": floor_s,
                                 "ratio_to_floor": seconds / floor_s,
                                 "ratio_to_loop": loop_s / seconds})
    record_floor(f"colored {n}x{n}, every element", seconds, floor_s, loop_s,
                 f"2 n_in = {2 * n} forward calls")
    _report(f"colored {n}x{n}, every element: relative error {float(result):.2e}, largest "
            f"elementwise relative error {result.max_rel_error:.2e}",
            benchmark.stats.stats.min, loop_s)


def test_fullyconnected_structured_4096(benchmark):
    n = 4096
    rng = np.random.default_rng(0)
    layer = FullyConnected(n, activation="tanh", seed=0)
    X = rng.normal(size=(N_SAMPLES, n))
    dLdY = rng.normal(size=(N_SAMPLES, n))
    layer.forward(X)
    layer.backward(dLdY)
    fn = layer.forward_with_param("W", X)
    result = benchmark.pedantic(check_gradients,
                                args=(fn, layer.gradients["W"], layer.parameters["W"], dLdY),
                                kwargs={"progress": False}, rounds=1, iterations=1)
    assert result.method == "structured" and result.passed
    loop_s, _ = _loop_estimate(fn, layer.parameters["W"], dLdY)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update({"loop_s": loop_s, "relative_error": float(result),
                                 "ratio_to_loop": loop_s / seconds})
    record_floor("FullyConnected 4096x4096 structured, every element", seconds, None, loop_s,
                 "(goal: <= 2 s, >= 500,000x the loop)")
    _report(f"FullyConnected 4096x4096 structured, every element: relative error "
            f"{float(result):.2e}", benchmark.stats.stats.min, loop_s)
