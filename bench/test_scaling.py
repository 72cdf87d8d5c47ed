"""Scaling: check time against the number of parameters, and against cores.

Run: ``python -m pytest bench/test_scaling.py -s``. ``FASTGRAD_BENCH_QUICK=1`` takes smaller
sizes; ``FASTGRAD_SCALING_PLOT=docs/scaling.png`` saves the log-log plot (matplotlib).
The fitted exponent (time ~ P^k) and the 1 -> 2 thread speed-up are ratios, so they carry
over to another machine; the Amdahl prediction for 4, 8 and 16 cores follows from them.
"""

import os

import numpy as np

from fastgrad import _scaling

from conftest import record_floor

QUICK = os.environ.get("FASTGRAD_BENCH_QUICK", "") not in ("", "0")
RESULTS = {}


def test_time_against_parameters(benchmark):
    timings = benchmark.pedantic(_scaling.measure_sizes, kwargs={"quick": QUICK},
                                 rounds=1, iterations=1)
    assert all(t.passed for t in timings), [t for t in timings if not t.passed]
    fits = _scaling.fit_families(timings)
    for family in _scaling.FAMILIES:
        rows = [t for t in timings if t.family == family]
        k = fits[family]["exponent"]
        largest = rows[-1]
        per_parameter = [t.seconds / t.n_parameters for t in rows]
        print(f"\n{family}: time ~ P^{k:.2f}; " + ", ".join(
            f"P={t.n_parameters}: {t.seconds * 1e3:.2f} ms ({t.method})" for t in rows))
        # the floor of a check is one unit of work per parameter: time per parameter at the
        # largest size against the smallest time per parameter seen in this run
        record_floor(f"{family}, P={largest.n_parameters} (exponent {k:.2f})",
                     largest.seconds, min(per_parameter) * largest.n_parameters, None,
                     "best time per parameter in this run, times P")
    benchmark.extra_info.update({"timings": [t.as_dict() for t in timings], "fits": fits})
    RESULTS["timings"] = [t.as_dict() for t in timings]
    RESULTS["fits"] = fits
    assert all(np.isfinite(f["exponent"]) for f in fits.values())


def test_time_against_cores(benchmark):
    side = 256 if QUICK else 1024
    by_threads = benchmark.pedantic(_scaling.measure_threads, kwargs={"n": side},
                                    rounds=1, iterations=1)
    one, two = by_threads[1].seconds, by_threads[2].seconds
    predicted = {cores: _scaling.predict_cores(one, two, cores)[0] for cores in (4, 8, 16)}
    serial = _scaling.predict_cores(one, two, 2)[1]
    print(f"\ndense {side}x{side}: 1 thread {one:.3f} s, 2 threads {two:.3f} s "
          f"(speed-up {one / two:.2f}, serial fraction {serial:.2f}); Amdahl: " +
          ", ".join(f"{c} cores {s:.3f} s" for c, s in predicted.items()))
    record_floor(f"dense {side}x{side} on 2 threads (speed-up {one / two:.2f} of 2)", two,
                 one / 2, None, "1-thread time / 2 (perfect scaling)")
    threads = {"family": "dense layer (structured)", "n_parameters": side * side,
               "seconds": {1: one, 2: two}, "speedup_2": one / two, "serial_fraction": serial,
               "predicted": predicted}
    benchmark.extra_info.update(threads)
    RESULTS["threads"] = threads
    assert by_threads[1].passed and by_threads[2].passed
    plot = os.environ.get("FASTGRAD_SCALING_PLOT")
    if plot and "timings" in RESULTS:
        _scaling.plot_scaling({"machine": _scaling.machine(), **RESULTS}, plot)
        print(f"scaling plot: {plot}")
