"""What CI must have installed, so that no part of the suite is skipped there unnoticed."""

import os

import pytest


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI must install every extra")
def test_ci_installs_the_distributed_extra():
    # without it test_dask_distributed_executor skips and executor= on Dask goes untested
    import distributed  # noqa: F401
