"""fastgrad._scaling: the fit, the core prediction and the machine description (no timing)."""

import numpy as np
import pytest

from fastgrad import _scaling


def test_power_law_fit_recovers_exponent_and_prefactor():
    P = np.array([1e2, 1e3, 1e4, 1e5])
    k, c = _scaling.fit_power_law(P, 3e-7 * P**1.5)
    assert k == pytest.approx(1.5, rel=1e-12)
    assert c == pytest.approx(3e-7, rel=1e-10)


def test_power_law_fit_leaves_out_small_sizes():
    P = np.array([1e1, 1e2, 1e3, 1e4])
    seconds = 2e-6 * P
    seconds[0] = 1e-3  # fixed per-call cost dominates the smallest check
    assert _scaling.fit_power_law(P, seconds, smallest=100)[0] == pytest.approx(1.0)
    assert _scaling.fit_power_law(P, seconds)[0] < 0.9
    assert np.isnan(_scaling.fit_power_law(P[:1], seconds[:1])[0])


@pytest.mark.parametrize(("one", "two", "serial"), [(2.0, 1.0, 0.0), (2.0, 2.0, 1.0),
                                                    (2.0, 1.2, 0.2)])
def test_amdahl_prediction(one, two, serial):
    for cores in (1, 2, 16):
        seconds, fraction = _scaling.predict_cores(one, two, cores)
        assert fraction == pytest.approx(serial)
        assert seconds == pytest.approx(one * (serial + (1 - serial) / cores))


def test_fit_families_uses_the_largest_sizes_of_each_family():
    timings = [{"family": "a", "n_parameters": P, "seconds": 1e-3 + 1e-6 * P}
               for P in (10, 1e4, 1e5, 1e6)]
    timings += [{"family": "b", "n_parameters": P, "seconds": 1e-9 * P**2} for P in (4, 64)]
    fits = _scaling.fit_families(timings)
    assert fits["a"]["from_parameters"] == 1e4 and fits["a"]["exponent"] > 0.8
    assert fits["b"]["exponent"] == pytest.approx(2.0)


def test_amdahl_clips_noise_and_rejects_bad_times():
    # two threads slower than one (a busy machine): no gain predicted, not a negative time
    assert _scaling.predict_cores(1.0, 3.0, 16) == (1.0, 1.0)
    assert _scaling.predict_cores(1.0, 0.4, 16)[1] == 0.0
    with pytest.raises(ValueError, match="positive"):
        _scaling.predict_cores(0.0, 1.0, 4)


def test_machine_description_names_cpu_and_cores():
    info = _scaling.machine()
    assert info["logical_cores"] >= 1 and 1 <= info["usable_cores"] <= info["logical_cores"]
    line = _scaling.describe_machine(info)
    assert info["cpu"] in line and f"{info['usable_cores']} of {info['logical_cores']}" in line


def test_one_timed_check_and_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    timings = [_scaling.time_check(family, n, repeats=1)
               for family in _scaling.FAMILIES for n in (2, 4)]
    assert all(t.passed and t.seconds > 0 for t in timings)
    assert [t.n_parameters for t in timings] == [4, 16, 4, 16]
    report = {"machine": _scaling.machine(), "timings": [t.as_dict() for t in timings],
              "fits": {family: {"exponent": 1.0, "prefactor": 1e-4}
                       for family in _scaling.FAMILIES},
              "threads": {"n_parameters": 16, "seconds": {1: 1.0, 2: 0.6},
                          "serial_fraction": 0.2, "predicted": {4: 0.4, 16: 0.25}}}
    path = _scaling.plot_scaling(report, tmp_path / "scaling.png")
    assert path.stat().st_size > 10_000
