"""The directional and colored methods on black-box wide layers, executors and auto."""

import concurrent.futures

import numpy as np
import pytest

from fastgrad import check_gradients, costs


class Dense:
    """A user's plain-NumPy layer as a function of W (module level: picklable)."""

    def __init__(self, X, b):
        self.X = X
        self.b = b

    def __call__(self, W):
        return np.tanh(self.X @ W + self.b)


class Normalized(Dense):
    """Every output depends on every weight: no sparse structure to color."""

    def __call__(self, W):
        Y = np.exp(np.tanh(self.X @ W + self.b))
        return Y / Y.sum()


def _layer(n_in, n_out, dtype, seed=0, cls=Dense, n_samples=8):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_in)).astype(dtype)
    W = (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    dLdY = rng.normal(size=(n_samples, n_out)).astype(dtype)
    fn = cls(X, b)
    if cls is Dense:
        Y = fn(W)
        grad = X.T @ ((1 - Y**2) * dLdY)
    else:
        grad = _numerical(fn, W, dLdY)
    return fn, grad.astype(dtype), W, dLdY


def _numerical(fn, W, dLdY, h=1e-6):
    W = W.astype(np.float64)
    grad = np.zeros_like(W)
    for index in np.ndindex(W.shape):
        up, down = W.copy(), W.copy()
        up[index] += h
        down[index] -= h
        grad[index] = np.sum((fn(up) - fn(down)) * dLdY) / (2 * h)
    return grad


def _corrupt(grad, kind):
    bad = grad.copy()
    bump = 10 * np.sqrt(np.mean(grad.astype(np.float64) ** 2))
    if kind == "element":
        bad[3, 5] += bump
        return bad, {(3, 5)}
    if kind == "row":
        bad[2, :] += bump
        return bad, {(2, j) for j in range(grad.shape[1])}
    bad[:, 4] *= 1.5  # a systematically wrong column
    bad[:, 4] += bump
    return bad, {(i, 4) for i in range(grad.shape[0])}


@pytest.mark.parametrize("method", ["directional", "colored"])
@pytest.mark.parametrize("kind", ["element", "row", "column"])
def test_bugs_are_caught_and_located(method, kind, dtype):
    fn, grad, W, dLdY = _layer(24, 16, dtype)
    bad, wrong = _corrupt(grad, kind)
    result = check_gradients(fn, bad, W, dLdY, method=method, seed=1)
    assert result.method == method and not result.passed
    located = {w.index for w in result.worst if w.failed}
    assert located and located <= wrong, (located, result.method_note)


@pytest.mark.parametrize("method", ["directional", "colored"])
def test_correct_wide_layers_pass(method, dtype):
    for seed in range(10):
        fn, grad, W, dLdY = _layer(32, 24, dtype, seed=seed)
        result = check_gradients(fn, grad, W, dLdY, method=method, seed=seed)
        assert result.passed, repr(result)


def test_colored_values_match_exhaustive():
    fn, grad, W, dLdY = _layer(12, 10, np.float64)
    colored = check_gradients(fn, grad, W, dLdY, method="colored")
    exhaustive = check_gradients(fn, grad, W, dLdY, method="exhaustive")
    assert "pairs (input axis, output axis) [(1, 1)]" in colored.method_note
    assert "verified" in colored.method_note
    np.testing.assert_allclose(colored.numerical, exhaustive.numerical, rtol=1e-8, atol=1e-11)
    # exhaustive perturbs each element 4 times (order 4); colored one row of W at a time
    assert colored.n_evaluations < W.size


def test_colored_detects_elementwise_and_rowwise_patterns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 7))
    elementwise = check_gradients(np.sin, np.cos(x), x, method="colored")
    assert elementwise.passed and "1 group(s)" in elementwise.method_note

    def row_softmax(v):
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    dLdY = rng.normal(size=x.shape)
    s = row_softmax(x)
    grad = s * (dLdY - np.sum(dLdY * s, axis=-1, keepdims=True))
    rowwise = check_gradients(row_softmax, grad, x, dLdY, method="colored")
    assert rowwise.passed and "[(0, 0)]" in rowwise.method_note


def test_colored_falls_back_when_the_jacobian_is_not_sparse():
    fn, grad, W, dLdY = _layer(6, 5, np.float64, cls=Normalized)
    result = check_gradients(fn, grad, W, dLdY, method="colored")
    assert result.passed
    assert "colored fell back to exhaustive" in result.method_note


def test_user_given_sparsity_and_a_wrong_one_is_rejected():
    fn, grad, W, dLdY = _layer(8, 6, np.float64)
    right = check_gradients(fn, grad, W, dLdY, method="colored", sparsity=[(1, 1)])
    assert right.passed and right.method == "colored"
    # claims W's rows pair with the samples: the verification must reject it
    wrong = check_gradients(fn, grad, W, dLdY, method="colored", sparsity=[(0, 0)])
    assert wrong.passed and "fell back" in wrong.method_note
    with pytest.raises(ValueError, match="sparsity"):
        check_gradients(fn, grad, W, dLdY, method="colored", sparsity=[(5, 0)])


def test_process_pool_executor_gives_the_same_values():
    fn, grad, W, dLdY = _layer(16, 12, np.float64)
    alone = check_gradients(fn, grad, W, dLdY, method="colored", seed=3)
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
        spread = check_gradients(fn, grad, W, dLdY, method="colored", seed=3, executor=pool)
    np.testing.assert_array_equal(alone.numerical, spread.numerical)
    assert spread.passed


def test_dask_distributed_executor():
    distributed = pytest.importorskip("dask.distributed")
    fn, grad, W, dLdY = _layer(10, 8, np.float64)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        result = check_gradients(fn, grad, W, dLdY, method="colored",
                                 executor=client.get_executor())
    assert result.passed and result.method == "colored"


def test_auto_chooses_by_counted_work_the_same_on_a_busy_machine(monkeypatch):
    fn, grad, W, dLdY = _layer(16, 12, np.float64)
    small = check_gradients(fn, grad, W, dLdY)
    # both complete methods fit the budget: the cheaper one (16 groups, not 192 elements) runs
    assert small.method == "colored" and "chosen: " in small.method_note
    assert "exhaustive: " in small.method_note and "element-evaluations" in small.method_note

    def slow(v):  # the same function on a machine 10,000x slower: the same choice
        import time
        time.sleep(1e-3)
        return fn(v)

    assert check_gradients(slow, grad, W, dLdY).method == small.method
    over = check_gradients(fn, grad, W, dLdY, work_budget=1e3)
    assert over.method == "directional" and "work budget" in over.method_note
    weights = dLdY[0, :3]
    every_output = (1 - np.tanh(W.sum()) ** 2) * weights.sum() * np.ones_like(W)
    dense = check_gradients(lambda v: np.tanh(v.sum()) * np.ones(3), every_output, W, weights)
    assert dense.method == "exhaustive" and dense.passed  # no sparse pattern for colored
    tight = check_gradients(fn, grad, W, dLdY, time_budget_s=1e-9)
    assert tight.method == "directional" and "time_budget_s" in tight.method_note
    assert tight.numerical is None and tight.passed


def test_directional_result_reports_directions():
    fn, grad, W, dLdY = _layer(16, 12, np.float64)
    result = check_gradients(fn, grad, W, dLdY, method="directional", directions=6, seed=0)
    assert len(result.directional_numerical) == 6 and result.passed
    assert result < 1e-8
    with pytest.raises(ValueError, match="directions"):
        check_gradients(fn, grad, W, dLdY, method="directional", directions=0)
    with pytest.raises(TypeError, match="executor"):
        check_gradients(fn, grad, W, dLdY, executor="pool")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_directional_sees_past_a_kink_crossing_at_a_finer_step(dtype):
    # one |y - p| term has its kink within both steps of the fourth-order difference: every
    # direction crosses it there, and is measured again at a finer step that does not
    rng = np.random.default_rng(3)
    loss = costs.internal_loss(costs.MAE())  # in (Y, Y_hat) order
    P = rng.uniform(0.05, 0.95, size=(128, 32)).astype(dtype)
    Y = rng.normal(size=P.shape)
    crossing = (17, 5)
    step = float(np.cbrt(np.finfo(np.float64).eps))  # float32 is differenced in float64
    Y[crossing] = float(P[crossing]) + 0.3 * step

    def fn(p):
        return loss.forward(Y, p)

    correct = loss.backward(Y, P)
    result = check_gradients(fn, correct, P, method="directional", seed=0)
    assert result.verdict == "passed", repr(result)
    assert result < 1e-6  # the directions are reported at the step that resolved them
    wrong = correct.copy()
    wrong[crossing] *= -1
    caught = check_gradients(fn, wrong, P, method="directional", seed=0)
    assert not caught.passed and caught.worst[0].index == crossing
