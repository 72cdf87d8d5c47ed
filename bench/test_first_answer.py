"""Time to the first answer on a fresh machine: a new process and an empty kernel cache.

Each case runs in its own Python process with ``NUMBA_CACHE_DIR`` pointing at an empty
folder, so whatever it compiles is in its time, as on a user's first run::

    python -m pytest bench/test_first_answer.py -s

prints one line per case (wall seconds; CPU seconds of the process and its children, which
on a busy machine says more than the wall clock). The README quotes these. Nothing here asserts
a time: the figures depend on the machine and its load.
"""

import os
import resource
import subprocess
import sys
import textwrap
import time

import pytest

#: The first cells of the seed notebooks, as a user runs them after changing the imports.
NOTEBOOK_000 = textwrap.dedent("""
    import numpy as np
    from fastgrad import check_gradients
    from fastgrad.layers import FullyConnected
    from fastgrad.activations import Identity, Sigmoid, TanH, ReLU, SoftMax

    X = np.random.randn(2, 3)
    dLdY = np.random.randn(2, 3)
    identity_activation = Identity()
    _ = identity_activation.forward(X)
    grad = identity_activation.backward(X, dLdY)
    print(
        f"Relative error for identity activation:",
        check_gradients(fn=identity_activation.forward, grad=grad, x=X, dLdf=dLdY)
    )
""")

NOTEBOOK_003 = textwrap.dedent("""
    import numpy as np
    from fastgrad import activations, costs, initializers, layers, model, optimizers, utils

    X = np.random.randn(100, 3)
    Y = np.random.randint(0, 2, (100, 2))
    activation = model.Model()
    activation.add(layers.Dense(units=16, activation=activations.ReLU()))
    activation.add(layers.Dense(units=8, activation=activations.ReLU()))
    activation.add(layers.Dense(units=2, activation=activations.Softmax()))
    activation.configure(
        input_size=3,
        cost_type=costs.CategoricalCrossentropy(),
        optimizer=optimizers.SGD(),
    )
    diff = utils.gradient_check(activation, X, Y)
    print(diff)
""")

BLACK_BOX = textwrap.dedent("""
    import numpy as np
    from fastgrad import check_gradients

    rng = np.random.default_rng(0)
    X, W, dLdY = rng.normal(size=(8, 5)), rng.normal(size=(5, 4)), rng.normal(size=(8, 4))
    grad = X.T @ ((1 - np.tanh(X @ W) ** 2) * dLdY)
    result = check_gradients(lambda w: np.tanh(X @ w), grad, W, dLdY)
    print(result.method, result.passed)
""")

USER_CHECK = textwrap.dedent("""
    import numpy as np

    def my_layer():
        rng = np.random.default_rng(0)
        X, W, dLdY = rng.normal(size=(8, 5)), rng.normal(size=(5, 4)), rng.normal(size=(8, 4))
        grad = X.T @ ((1 - np.tanh(X @ W) ** 2) * dLdY)
        return (lambda w: np.tanh(X @ w)), grad, W, dLdY
""")

FIGURES = []


def _first_run(args, tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty_cache")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path,
                               timeout=900, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return wall, cpu, completed


def _record(name, wall, cpu, note=""):
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    line = (f"{name:58} {wall:6.1f} s wall  {cpu:6.1f} s CPU (incl. helpers)  "
            f"load {load:.1f}  {note}")
    FIGURES.append(line)
    print("\n" + line)


@pytest.mark.parametrize("name, code", [
    ("check_gradients, small black box, new process", BLACK_BOX),
    ("seed notebook 000, first cell (identity activation)", NOTEBOOK_000),
    ("seed notebook 003, first cell (3-16-8-2 model)", NOTEBOOK_003),
], ids=["black-box", "notebook-000", "notebook-003"])
def test_first_answer_in_a_new_process(name, code, tmp_path):
    wall, cpu, completed = _first_run([sys.executable, "-c", code], tmp_path)
    _record(name, wall, cpu, completed.stdout.strip().splitlines()[-1][:40])


def test_fastgrad_check_user_function(tmp_path):
    (tmp_path / "my_checks.py").write_text(USER_CHECK)
    wall, cpu, completed = _first_run(
        [sys.executable, "-m", "fastgrad.cli", "check", "my_checks.py:my_layer"], tmp_path)
    _record("fastgrad check my_checks.py:my_layer", wall, cpu,
            completed.stdout.strip().splitlines()[-1])


def test_fastgrad_check_builtin(tmp_path):
    wall, cpu, completed = _first_run([sys.executable, "-m", "fastgrad.cli", "check",
                                       "--quiet"], tmp_path)
    assert completed.stderr.count("compiling fastgrad's Numba kernels") == 1
    _record("fastgrad check (every built-in object, both dtypes)", wall, cpu,
            completed.stdout.strip().splitlines()[-1])
