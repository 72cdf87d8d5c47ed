"""The fastgrad command, through its real entry point (a subprocess)."""

import json
import os
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

    def raises():
        x = np.linspace(-1, 1, 12).reshape(3, 4)

        def fn(v):
            if not np.array_equal(v, x):
                raise ValueError("my layer broke")
            return np.sin(v)
        return fn, np.cos(x), x

    def wrong_shape():
        x = np.linspace(-1, 1, 12).reshape(3, 4)
        return np.sin, np.cos(x)[:2], x
''')


def fastgrad(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "fastgrad.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600, check=False, env=env)


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
            "max_abs_error", "worst", "seconds", "passed", "verdict", "verdict_reason"}
    assert all(set(row) == keys for row in rows)
    objects = " ".join(row["object"] for row in rows)
    for name in ("SoftMax()", "SELU()", "MAE()", "FullyConnected", "Model 4-16-8-3"):
        assert name in objects
    # names are not cut: the model's last layer keeps its activation
    assert "Model 4-16-8-3 layer 2 FullyConnected(3, SoftMax())" in objects
    assert "Model 4-16-8-3 layer 2 FullyConnected(3, SoftMax())" in completed.stdout
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


@pytest.mark.parametrize("args, words", [
    (["--activation", "foo", "--wide", "8"], "unknown name 'foo'"),
    (["--activation", "foo"], "give --wide N too"),
    (["--activation", "relu"], "give --wide N too"),
])
def test_activation_mistakes_are_usage_errors_not_tracebacks(args, words):
    completed = fastgrad("check", *args)
    assert completed.returncode == 2
    assert words in completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""  # no table header before the error


def test_fn_that_raises_exits_2_with_its_message_and_no_header(user_file):
    completed = fastgrad("check", f"{user_file}:raises")
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "ValueError: my layer broke" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""


def test_bad_input_from_the_check_exits_2(user_file):
    completed = fastgrad("check", f"{user_file}:wrong_shape")
    assert completed.returncode == 2
    assert "grad" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.parametrize("method", ["exhaustive", "colored", "directional"])
def test_every_black_box_method_is_offered(user_file, method):
    completed = fastgrad("check", f"{user_file}:good", "--method", method)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert method in completed.stdout


def test_help_is_plain_text_and_documents_every_option_and_exit_code():
    text = fastgrad("check", "--help").stdout
    assert "``" not in text and ":func:" not in text
    from fastgrad.cli import _parser

    commands = next(a for a in _parser()._actions if a.dest == "command")
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, (name, action.option_strings)  # every option explained
            assert "``" not in action.help
    for method in ("auto", "structured", "exhaustive", "colored", "directional", "model"):
        assert method in text
    for code, meaning in (("0", "passed"), ("1", "failed"), ("2", "usage"),
                          ("3", "could not decide")):
        assert any(line.strip().startswith(code) and meaning in line
                   for line in text.splitlines()), (code, meaning)
    assert "``" not in fastgrad("--help").stdout


def test_a_first_run_says_once_what_it_compiles(user_file, tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    small = fastgrad("check", f"{user_file}:good", env=env)
    assert small.returncode == 0, small.stderr
    assert "compiling" not in small.stderr  # a tiny black box needs no compiler at all
    first = fastgrad("check", f"{user_file}:layer", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("compiling fastgrad's Numba kernels") == 1
    assert "compiling" in first.stdout.splitlines()[-1]  # the summary says how long
    again = fastgrad("check", f"{user_file}:layer", env=env)
    assert "compiling" not in again.stderr  # loaded from the cache this time
    assert list((tmp_path / "cache" / "fastgrad").glob("*/*.nbi"))


def test_exit_codes_follow_the_verdicts():
    from fastgrad._selfcheck import Row
    from fastgrad.cli import _overall

    def row(verdict):
        return Row(target="t", parameter="x", shape=(1,), dtype="float64", method="m",
                   relative_error=0.0, max_abs_error=0.0, worst=None, seconds=0.0,
                   passed=verdict != "failed", verdict=verdict)

    assert _overall([row("passed")]) == "passed"
    assert _overall([row("passed"), row("inconclusive")]) == "inconclusive"
    assert _overall([row("inconclusive"), row("failed")]) == "failed"


def test_plot_without_matplotlib_is_a_clear_usage_error(user_file, tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        completed = fastgrad("check", f"{user_file}:good", "--plot", str(tmp_path / "e.png"))
        assert completed.returncode == 2 and "matplotlib" in completed.stderr
    else:
        completed = fastgrad("check", f"{user_file}:layer", "--plot", str(tmp_path / "e.png"))
        assert completed.returncode == 0 and (tmp_path / "e.png").stat().st_size > 0
        failing = fastgrad("check", f"{user_file}:bad", "--plot", str(tmp_path / "f.png"))
        assert failing.returncode == 1 and (tmp_path / "f.png").stat().st_size > 0


def test_wide_layer_option():
    completed = fastgrad("check", "--wide", "64", "--dtype", "float64", "--quiet")
    assert completed.returncode == 0, completed.stdout
    assert " 0 failed" in completed.stdout
