"""Whole-model gradient_check against the seed-style loop and the exhaustive method."""

import numpy as np
import pytest

from fastgrad import _bench, gradient_check

from conftest import record_model

CASES = _bench.model_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_model_check_versus_loop(benchmark, case):
    net, X, Y = case.setup(np.random.default_rng(0))
    result = benchmark.pedantic(gradient_check, args=(net, X, Y), kwargs={"progress": False},
                                rounds=1, iterations=1, warmup_rounds=1)
    assert result.passed
    timing = _bench.run_model_case(case)
    timing.fastgrad_s = benchmark.stats.stats.min
    benchmark.extra_info.update(timing.as_dict())
    record_model(timing)
