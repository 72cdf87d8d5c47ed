"""check_gradients at its boundary: bad input, faults in fn, and the restore-x guarantee."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastgrad import activations, check_gradients


def _ok_args():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    return np.sin, np.cos(x), x


@pytest.mark.parametrize("change, error, words", [
    ({"fn": 3}, TypeError, "fn: expected a callable"),
    ({"x": np.arange(6).reshape(2, 3)}, TypeError, "x: expected a float32 or float64 array, "
                                                   "got integer dtype"),
    ({"x": np.ones((2, 3), dtype=complex)}, TypeError, "x: expected a real"),
    ({"x": np.array([["a"] * 3] * 2)}, TypeError, "x: expected a real"),
    ({"grad": np.ones((2, 3), dtype=object)}, TypeError, "grad: expected a real"),
    ({"grad": np.arange(6).reshape(2, 3)}, TypeError, "grad: expected a float32"),
    ({"grad": np.ones((3, 2))}, ValueError, r"grad: expected shape \(2, 3\).*got \(3, 2\)"),
    ({"x": np.array([[np.nan, 0, 0], [0, 0, 0]])}, ValueError, r"x: contains 1 NaN.*\(0, 0\)"),
    ({"grad": np.full((2, 3), np.inf)}, ValueError, "grad: contains 6 NaN or infinite"),
    ({"dLdf": np.ones(4)}, ValueError, r"dLdf: shape \(4,\) does not broadcast.*\(2, 3\)"),
    ({"dLdf": np.array([np.nan])}, ValueError, "dLdf: contains 1 NaN"),
    ({"h": -1.0}, ValueError, "h: expected a finite value > 0"),
    ({"h": "small"}, TypeError, "h: expected a real number"),
    ({"method": "magic"}, ValueError, "method: expected 'auto' or one of"),
    ({"order": 3}, ValueError, "order: expected None, 2 or 4"),
    ({"rtol": -1}, ValueError, "rtol"),
    ({"memory_budget": 0}, ValueError, "memory_budget"),
    ({"progress": "yes"}, TypeError, "progress: expected None, True or False"),
])
def test_bad_arguments_name_themselves(change, error, words):
    fn, grad, x = _ok_args()
    arguments = {"fn": fn, "grad": grad, "x": x, "dLdf": 1.0, **change}
    before = arguments["x"].copy()
    with pytest.raises(error, match=words):
        check_gradients(**arguments)
    np.testing.assert_array_equal(arguments["x"], before)


def test_fn_output_with_nan_at_the_base_point():
    x = np.array([1.0, -1.0])
    with pytest.raises(ValueError, match=r"fn\(x\): returned 1 NaN.*output index \(1,\)"), \
            np.errstate(invalid="ignore"):
        check_gradients(np.sqrt, 0.5 / np.sqrt(np.abs(x)), x)


def test_fn_returning_strings_or_complex():
    x = np.ones(3)
    with pytest.raises(TypeError, match=r"fn\(x\): expected a real float"):
        check_gradients(lambda v: v.astype(complex), x, x)


def test_fn_returning_another_shape_when_perturbed():
    x = np.array([0.5, 1.5, 2.5])
    base = x.copy()

    def fn(v):
        return v**2 if np.array_equal(v, base) else np.append(v**2, 0.0)

    with pytest.raises(ValueError, match=r"fn: returned shape \(4,\) .*expected \(3,\)"):
        check_gradients(fn, 2 * x, x, method="exhaustive")


def test_fn_raising_on_the_kth_call_propagates_with_a_note_and_x_is_unchanged():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    before = x.copy()

    def fn(v):
        if v.shape != (3, 4):
            raise ValueError("no stacks")  # forces one element per call
        moved = np.argwhere(v != before)
        if len(moved) == 1 and tuple(moved[0]) == (1, 2):  # element (1, 2) alone, perturbed
            raise RuntimeError("boom")
        return np.sin(v)

    with pytest.raises(RuntimeError, match="boom") as info:
        check_gradients(fn, np.cos(x), x, method="exhaustive")
    notes = getattr(info.value, "__notes__", [])
    assert any("perturbed" in note and "(1, 2)" in note for note in notes), notes
    assert np.array_equal(x, before) and x.flags.writeable


def test_keyboard_interrupt_leaves_x_unchanged():
    x = np.linspace(-1, 1, 8)
    before = x.copy()
    calls = {"n": 0}

    def fn(v):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return np.sin(v)

    with pytest.raises(KeyboardInterrupt):
        check_gradients(fn, np.cos(x), x, method="exhaustive")
    assert np.array_equal(x, before)


@pytest.mark.parametrize("method", ["auto", "exhaustive", "colored", "directional"])
@pytest.mark.parametrize("write", ["add", "relu", "out"])
def test_fn_that_writes_into_its_input_is_refused_by_every_method(method, write):
    x = np.linspace(-0.5, 1.5, 6)
    before = x.copy()

    def fn(v):
        if write == "add":
            v += 1e-3
        elif write == "relu":
            v[v < 0] = 0.0
        else:
            np.tanh(v, out=v)
        return v**2

    with pytest.raises(ValueError, match="fn: writes into its input array"):
        check_gradients(fn, 2 * x, x, method=method)
    assert np.array_equal(x, before)


def test_empty_x_returns_zero_without_calling_fn():
    def fn(v):
        raise AssertionError("must not be called")

    result = check_gradients(fn, np.zeros((0, 3)), np.zeros((0, 3)))
    assert result == 0.0 and result.passed and result.n_checked == 0 and result.n_evaluations == 0


def test_read_only_and_non_contiguous_inputs():
    base = np.linspace(-1, 1, 24).reshape(4, 6)
    x = base[:, ::2]  # not contiguous
    x.flags.writeable = False
    result = check_gradients(np.tanh, 1 - np.tanh(x) ** 2, x)
    assert result.passed and result.numerical.shape == (4, 3)


def test_scalar_output_and_dLdf_forms():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    assert check_gradients(lambda v: np.sum(v**2), 2 * x, x).passed
    row = np.array([1.0, -2.0, 0.5])
    assert check_gradients(np.sin, np.cos(x) * row, x, row).passed
    assert check_gradients(np.sin, np.cos(x) * 3, x, 3).passed
    assert check_gradients(lambda v: np.sum(v**2), 6 * x, x, np.array([3.0])).passed


def test_progress_bar_only_when_asked(capsys):
    x = np.linspace(-1, 1, 50)
    check_gradients(np.sin, np.cos(x), x, progress=True, method="exhaustive")
    assert "exhaustive" in capsys.readouterr().err
    check_gradients(np.sin, np.cos(x), x, progress=False, method="exhaustive")
    assert capsys.readouterr().err == ""


finite_floats = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                    elements=finite_floats),
       weight_kind=st.sampled_from(["scalar", "full", "last_axis"]),
       method=st.sampled_from(["auto", "exhaustive"]))
def test_property_correct_gradients_pass_and_x_is_restored(x, weight_kind, method):
    before = x.copy()
    rng = np.random.default_rng(0)
    if weight_kind == "scalar":
        dLdf = 1.5
    elif weight_kind == "full":
        dLdf = rng.normal(size=x.shape)
    else:
        dLdf = rng.normal(size=x.shape[-1:])
    tanh = activations.TanH()
    grad = (1 - np.tanh(x) ** 2) * dLdf
    result = check_gradients(tanh.forward, np.broadcast_to(grad, x.shape), x, dLdf,
                             method=method)
    assert result.passed, repr(result)
    assert np.array_equal(x, before)


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
                    elements=finite_floats),
       data=st.data())
def test_property_single_wrong_element_is_located(x, data):
    flat = data.draw(st.integers(0, x.size - 1))
    grad = np.cos(x)
    index = np.unravel_index(flat, x.shape)
    grad[index] += 0.1 + abs(grad[index])
    result = check_gradients(np.sin, grad, x)
    assert not result.passed and result.n_failed == 1
    assert result.worst[0].index == tuple(int(i) for i in index)
