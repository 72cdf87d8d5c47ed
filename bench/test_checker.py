"""check_gradients against the seed-style loop, on the cases of fastgrad._bench."""

import numpy as np
import pytest

from fastgrad import _bench, check_gradients

from conftest import record

CASES = _bench.checker_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_checker_versus_loop(benchmark, case):
    fn, grad, x, dLdf = case.setup(np.random.default_rng(0))
    result = benchmark.pedantic(
        check_gradients, args=(fn, grad, x, dLdf),
        kwargs={"method": case.method, "progress": False, "seed": 0, **case.options},
        rounds=3, iterations=1, warmup_rounds=1)
    assert result.passed
    timing = _bench.run_case(case, repeats=1)
    timing.fastgrad_s = benchmark.stats.stats.min
    benchmark.extra_info.update(timing.as_dict())
    record(timing)
