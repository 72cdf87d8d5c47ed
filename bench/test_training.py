# ruff: noqa: NPY002  (seeded like the originals: they draw from the global generator)
"""Training and layer speed against plain-NumPy re-implementations of the originals.

Run with ``python -m pytest bench/test_training.py`` (pytest-benchmark). Every case times the
candidates side by side in one process, interleaved round by round (best of ``ROUNDS``), and
reports ratios, so the load of a shared machine hits all of them alike. The table is printed
at the end with the CPU model. ``FASTGRAD_BENCH_SAMPLES`` sets the MNIST-sized data set (60,000
by default is the real size; CI-sized runs use fewer, and the table says how many).
"""

import itertools
import os
import platform
import time

import numpy as np
import originals
import pytest

from fastgrad import activations, costs, layers, losses, model, optimizers

N_SAMPLES = int(os.environ.get("FASTGRAD_BENCH_SAMPLES", "60000"))
ROUNDS = int(os.environ.get("FASTGRAD_BENCH_ROUNDS", "3"))
WIDTHS = (784, 256, 128, 10)
ROWS = []

try:
    import torch
except ImportError:  # PyTorch is optional
    torch = None


def _cpu():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class _Table:
    """Prints the side-by-side table in pytest's terminal summary (after the benchmark table)."""

    def pytest_terminal_summary(self, terminalreporter):
        if not ROWS:
            return
        write = terminalreporter.write_line
        write("")
        write(f"training and layers, side by side in this run (best of {ROUNDS}; CPU: {_cpu()},"
              f" {os.cpu_count()} logical cores)")
        write(f"{'case':58} {'original':>11} {'fastgrad':>11} {'ratio':>7} {'PyTorch':>11}"
              f" {'vs torch':>8}")
        for row in ROWS:
            torch_s = _fmt(row["torch"]) if row.get("torch") else "-"
            vs = f"{row['torch'] / row['fastgrad']:.2f}x" if row.get("torch") else "-"
            original = _fmt(row["original"]) if row.get("original") else "-"
            ratio = f"{row['original'] / row['fastgrad']:.2f}x" if row.get("original") else "-"
            write(f"{row['case'][:58]:58} {original:>11} {_fmt(row['fastgrad']):>11} "
                  f"{ratio:>7} {torch_s:>11} {vs:>8}")


@pytest.fixture(scope="module", autouse=True)
def _table(request):
    manager = request.config.pluginmanager
    if not manager.has_plugin("fastgrad-training-table"):
        manager.register(_Table(), "fastgrad-training-table")
    yield


def _fmt(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"


def _side_by_side(candidates, rounds=ROUNDS, repeat=1):
    """Best time of each candidate over ``rounds``, the candidates interleaved in each round.

    ``candidates`` maps a name to ``(setup, run)``: ``setup()`` (untimed) returns the argument
    of ``run``; ``run`` is timed ``repeat`` times and the mean kept.
    """
    best = {name: np.inf for name in candidates}
    for _ in range(rounds):
        for name, (setup, run) in candidates.items():
            state = setup()
            started = time.perf_counter()
            for _ in range(repeat):
                run(state)
            best[name] = min(best[name], (time.perf_counter() - started) / repeat)
    return best


def _mnist_like(n, dtype=np.float64):
    rng = np.random.default_rng(0)
    X = rng.random((n, WIDTHS[0])).astype(dtype)
    Y = np.eye(WIDTHS[-1])[rng.integers(0, WIDTHS[-1], n)]
    return X, Y


def _original_mlp(widths):
    np.random.seed(0)
    net = originals.SandboxModel()
    acts = [originals.ReLU() for _ in widths[1:-1]]
    for units, act in zip(widths[1:], [*acts, originals.Softmax()], strict=True):
        net.add(originals.Dense(units, act))
    net.configure(originals.CategoricalCrossentropy(), widths[0], originals.SGD())
    return net


def _fastgrad_mlp(widths, dtype=np.float64):
    np.random.seed(0)
    net = model.Model()
    acts = [activations.ReLU() for _ in widths[1:-1]]
    for units, act in zip(widths[1:], [*acts, activations.Softmax()], strict=True):
        net.add(layers.Dense(units, act))
    net.configure(costs.CategoricalCrossentropy(), widths[0], optimizers.SGD(), dtype=dtype)
    return net


def _torch_mlp(widths, dtype):
    torch.manual_seed(0)
    mods = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        mods.append(torch.nn.Linear(n_in, n_out, dtype=dtype))
        if i < len(widths) - 2:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    return net, torch.optim.SGD(net.parameters(), lr=0.01)


def _torch_epoch(net, optimizer, X, labels, batch_size):
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(X.shape[0])
    for start in range(0, X.shape[0] - batch_size + 1, batch_size):
        rows = order[start:start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(X[rows]), labels[rows])
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("batch_size", [32, 256])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mlp_epoch(benchmark, batch_size, dtype):
    dtype = np.dtype(dtype)
    X, Y = _mnist_like(N_SAMPLES, dtype)
    candidates = {
        "fastgrad": (lambda: _fastgrad_mlp(WIDTHS, dtype),
                     lambda net: net.train(X, Y, 1, 0.01, batch_size)),
    }
    if dtype == np.float64:   # the original is float64 only (np.zeros, np.random.uniform)
        candidates["original"] = (lambda: _original_mlp(WIDTHS),
                                  lambda net: net.train(X, Y, 1, 0.01, batch_size))
    if torch is not None:
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        Xt, labels = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
        candidates["torch"] = (lambda: _torch_mlp(WIDTHS, tdtype),
                               lambda state: _torch_epoch(*state, Xt, labels, batch_size))
    warm = _fastgrad_mlp(WIDTHS, dtype)
    warm.train(X[:2 * batch_size], Y[:2 * batch_size], 1, 0.01, batch_size)  # compile
    best = _side_by_side(candidates)
    setup, run = candidates["fastgrad"]
    benchmark.pedantic(run, setup=lambda: ((setup(),), {}), rounds=1)
    benchmark.extra_info.update(best)
    ROWS.append({"case": f"784-256-128-10, {N_SAMPLES} samples, 1 epoch, batch {batch_size},"
                         f" {dtype}", **best})


def test_notebook_regime_per_step(benchmark):
    np.random.seed(0)
    X = np.random.randn(100, 3)
    Y = np.eye(2)[np.random.randint(0, 2, 100)]
    steps = 100 // 32          # array_split into 3 batches per epoch

    def run_fastgrad(net):
        net.train(X, Y, 1, 0.01, 32)

    def run_original(net):
        net.train(X, Y, 1, 0.01, 32)

    _fastgrad_mlp((3, 16, 8, 2)).train(X, Y, 1, 0.01, 32)   # compile
    best = _side_by_side({
        "original": (lambda: _original_mlp((3, 16, 8, 2)), run_original),
        "fastgrad": (lambda: _fastgrad_mlp((3, 16, 8, 2)), run_fastgrad),
    }, rounds=5 * ROUNDS, repeat=200)
    best = {name: value / steps for name, value in best.items()}
    benchmark.pedantic(run_fastgrad, setup=lambda: ((_fastgrad_mlp((3, 16, 8, 2)),), {}),
                       rounds=20)
    if torch is not None:
        Xt, labels = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
        best.update(_side_by_side({"torch": (
            lambda: _torch_mlp((3, 16, 8, 2), torch.float64),
            lambda state: _torch_epoch(*state, Xt, labels, 32))}, rounds=5 * ROUNDS,
            repeat=200))
        best["torch"] /= steps
    benchmark.extra_info.update(best)
    ROWS.append({"case": "3-16-8-2 on 100 samples, batch 32, per step, float64", **best})


@pytest.mark.parametrize("n", [1, 8, 32, 64, 256, 1024])
def test_dense_layer_forward_backward(benchmark, n):
    rng = np.random.default_rng(n)
    X = rng.random((n, 784))
    dLdY = rng.standard_normal((n, 256))
    cs189 = originals.CS189FullyConnected(784, 256, originals.CS189ReLU(), rng)
    W, b = cs189.parameters["W"], cs189.parameters["b"]
    sandbox = originals.Dense(256, originals.ReLU())
    mine = layers.FullyConnected(256, "relu")
    mine.forward(X)
    mine.parameters = {"W": W.copy(), "b": b.copy()}
    mine.backward(dLdY)       # compiled

    def run_cs189(_):
        cs189.forward(X)
        cs189.backward(dLdY)

    def run_sandbox(_):
        _, Z = sandbox.forward(X, W, b)
        sandbox.backward(dLdY, X, W, b, Z)

    def run_fastgrad(_):
        mine.forward(X)
        mine.backward(dLdY)

    repeat = max(3, 2000 // max(n, 1))
    best = _side_by_side({"cs189": (lambda: None, run_cs189),
                          "sandbox": (lambda: None, run_sandbox),
                          "fastgrad": (lambda: None, run_fastgrad)},
                         rounds=5 * ROUNDS, repeat=repeat)
    np.testing.assert_allclose(mine.gradients["W"], cs189.gradients["W"], rtol=1e-10)
    benchmark.pedantic(run_fastgrad, args=(None,), rounds=5 * ROUNDS, iterations=repeat)
    benchmark.extra_info.update(best)
    ROWS.append({"case": f"Dense 784->256 ReLU fwd+bwd, batch {n} (CS189 layer)",
                 "original": best["cs189"], "fastgrad": best["fastgrad"]})
    ROWS.append({"case": f"Dense 784->256 ReLU fwd+bwd, batch {n} (sandbox layer)",
                 "original": best["sandbox"], "fastgrad": best["fastgrad"]})


def test_softmax_cross_entropy(benchmark):
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(1024, 10))
    Y = np.eye(10)[rng.integers(0, 10, 1024)]
    soft_o, soft_f = originals.Softmax(), activations.SoftMax()
    loss = losses.CrossEntropy()

    def run_original(_):
        A = soft_o.forward(Z)
        -np.sum(Y * np.log(A)) / len(A)
        dA = -Y / A / len(A)
        weighted = np.sum(dA * A, axis=1, keepdims=True)
        A * (dA - weighted)

    def run_fastgrad(_):
        A = soft_f.forward(Z)
        loss.forward(Y, A)
        soft_f.backward(Z, loss.backward(Y, A))

    run_fastgrad(None)
    best = _side_by_side({"original": (lambda: None, run_original),
                          "fastgrad": (lambda: None, run_fastgrad)},
                         rounds=5 * ROUNDS, repeat=100)
    benchmark.pedantic(run_fastgrad, args=(None,), rounds=5 * ROUNDS, iterations=100)
    benchmark.extra_info.update(best)
    ROWS.append({"case": "softmax + cross-entropy fwd+bwd, 1024x10", **best})
