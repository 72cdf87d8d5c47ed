import numpy as np
import pytest

DTYPES = [np.float64, np.float32]


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


#: Tolerance of a kernel against the float64 reference, per dtype (results, not gradients).
KERNEL_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-6}
KERNEL_ATOL = {np.dtype(np.float64): 1e-13, np.dtype(np.float32): 2e-6}


def assert_kernel_close(actual, expected, dtype):
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected,
                               rtol=KERNEL_RTOL[np.dtype(dtype)],
                               atol=KERNEL_ATOL[np.dtype(dtype)] * scale)
