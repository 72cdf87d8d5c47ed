"""The directional method's fused kernels against plain NumPy."""

import numpy as np
import pytest

from fastgrad.kernels import directions

import reference


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [1, 7, 4096])
def test_perturb_along_matches_reference(dtype, size, rng):
    x = (rng.normal(size=size) * rng.choice([1e-3, 1.0, 1e3], size=size)).astype(dtype)
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=size)
    scale = np.maximum(1.0, np.abs(x.astype(np.float64)))
    grad = rng.normal(size=size)
    step = float(np.cbrt(np.finfo(dtype).eps))
    for signed in (step, -step):
        work = np.full_like(x, np.nan)
        dot = directions.perturb_along(x, signs, scale, grad, signed, work)
        expected_work, expected_dot = reference.perturb_along(x, signs, scale, grad, signed)
        np.testing.assert_array_equal(work, expected_work)
        np.testing.assert_allclose(dot, expected_dot, rtol=1e-12, atol=1e-300)


@pytest.mark.nojit
def test_the_steps_taken_are_those_of_the_rounded_point(rng):
    # float32 x of magnitude 1e3: x + h rounds, and the analytic change must use the step taken
    x = np.full(3, 1000.0, dtype=np.float32)
    signs = np.ones(3, dtype=np.int8)
    work = np.empty_like(x)
    dot = directions.perturb_along(x, signs, np.ones(3), np.ones(3), 1e-4, work)
    assert dot == pytest.approx(3 * (float(np.float32(1000.0 + 1e-4)) - 1000.0), rel=1e-12)
    assert dot != pytest.approx(3e-4)


@pytest.mark.nojit
@pytest.mark.parametrize("size", [1, 5, 1000])
def test_direction_norms_match_reference(size, rng):
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=size)
    scale = np.maximum(1.0, np.abs(rng.normal(scale=3.0, size=size)))
    grad = rng.normal(size=size)
    np.testing.assert_allclose(directions.direction_norms(signs, scale, grad),
                               reference.direction_norms(signs, scale, grad), rtol=1e-12)
