"""The fastgrad command, through its real entry point (a subprocess)."""

import json
import subprocess
import sys
import textwrap

import pytest

USER_CHECKS = textwrap.dedent('''
    import numpy as np
    from fastgrad.layers import FullyConnected

    def good():
        x = np.linspace(-1, 1, 12).reshape(3, 4)
        return np.sin, np.cos(x), x

    def bad():
        x = np.linspace(-1, 1, 12).reshape(3, 4)
        grad = np.cos(x)
        grad[2, 1] += 0.5
        return np.sin, grad, x

    def layer():
        rng = np.random.default_rng(0)
        fc = FullyConnected(4, activation="tanh", seed=0)
        X = rng.normal(size=(5, 3))
        dLdY = rng.normal(size=(5, 4))
        fc.forward(X)
        fc.backward(dLdY)
        return fc.forward_with_param("W", X), fc.gradients["W"], fc.parameters["W"], dLdY

    def a_model():
        from fastgrad import costs, layers, model
        net = model.Model()
        net.add(layers.Dense(3, activation="relu"))
        net.add(layers.Dense(1, activation="sigmoid"))
        net.configure(input_size=2, cost_type=costs.BinaryCrossentropy(), seed=0)
        rng = np.random.default_rng(0)
        return net, rng.normal(size=(10, 2)), rng.integers(0, 2, (10, 1))

    def not_a_check():
        return 42
''')


def fastgrad(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastgrad.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600, check=False)


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "my_checks.py"
    path.write_text(USER_CHECKS)
    return path


def test_builtin_check_passes_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    completed = fastgrad("check", "--json", str(out))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert " 0 failed" in completed.stdout
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["command"] == "check"
    rows = report["results"]
    keys = {"object", "parameter", "shape", "dtype", "method", "relative_error",
            "max_abs_error", "worst", "seconds", "passed"}
    assert all(set(row) == keys for row in rows)
    objects = " ".join(row["object"] for row in rows)
    for name in ("SoftMax()", "SELU()", "MAE()", "FullyConnected", "Model 4-16-8-3"):
        assert name in objects
    assert {row["dtype"] for row in rows} == {"float64", "float32"}


def test_user_checks(user_file):
    completed = fastgrad("check", f"{user_file}:good")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    layer = fastgrad("check", f"{user_file}:layer", "--dtype", "float64")
    assert layer.returncode == 0 and "structured" in layer.stdout
    net = fastgrad("check", f"{user_file}:a_model")
    assert net.returncode == 0 and "layer 1" in net.stdout and "model" in net.stdout


def test_failing_user_check_exits_1_and_names_the_element(user_file):
    completed = fastgrad("check", f"{user_file}:bad")
    assert completed.returncode == 1
    assert "FAILED" in completed.stdout and "(2, 1)" in completed.stdout


@pytest.mark.parametrize("target, words", [
    ("nowhere.py:f", "no such file"),
    ("{file}:missing", "has no function 'missing'"),
    ("{file}:not_a_check", "expected it to return"),
    ("no_such_package_xyz.mod:f", "cannot import"),
    ("just_a_name", "expected module.py:function"),
])
def test_bad_targets_exit_2_with_a_message(user_file, target, words):
    completed = fastgrad("check", target.format(file=user_file))
    assert completed.returncode == 2
    assert words in completed.stderr


def test_usage_errors_exit_2():
    assert fastgrad("check", "--wide", "0").returncode == 2
    assert fastgrad("check", "--method", "magic").returncode == 2
    assert fastgrad("frobnicate").returncode == 2


def test_plot_without_matplotlib_is_a_clear_usage_error(user_file, tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        completed = fastgrad("check", f"{user_file}:good", "--plot", str(tmp_path / "e.png"))
        assert completed.returncode == 2 and "matplotlib" in completed.stderr
    else:
        completed = fastgrad("check", f"{user_file}:layer", "--plot", str(tmp_path / "e.png"))
        assert completed.returncode == 0 and (tmp_path / "e.png").stat().st_size > 0


def test_wide_layer_option():
    completed = fastgrad("check", "--wide", "64", "--dtype", "float64", "--quiet")
    assert completed.returncode == 0, completed.stdout
    assert " 0 failed" in completed.stdout
