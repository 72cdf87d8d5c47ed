"""Shared set-up of the benchmark suite: compile first, print the side-by-side table last.

Run with ``python -m pytest bench/`` (add ``--benchmark-json=FILE`` to keep the numbers).

Every figure is a ratio to something measured in the same run (the seed-style loop, or the
forward calls a method cannot avoid), and the machine is printed in the header, stored in
the JSON's ``machine_info`` and in each benchmark's ``extra_info``: seconds on a busy or a
different machine mean little, ratios and the machine they came from do.
"""

import pytest

import fastgrad
from fastgrad._scaling import describe_machine, machine

_MACHINE = machine()


def pytest_report_header(config):
    return f"machine: {describe_machine(_MACHINE)}"


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastgrad"] = _MACHINE


@pytest.fixture(autouse=True)
def _machine_in_extra_info(request):
    if "benchmark" in request.fixturenames:
        benchmark = request.getfixturevalue("benchmark")
        benchmark.extra_info["machine"] = {key: _MACHINE[key] for key in (
            "cpu", "cpu_details", "usable_cores", "numba_threads")}
        benchmark.extra_info["load_average_at_start"] = machine()["load_average"]

RATIOS = []
MODEL_RATIOS = []
FLOOR_RATIOS = []


@pytest.fixture(scope="session", autouse=True)
def _compiled():
    fastgrad.warmup()  # compile outside every timed region


def record(timing):
    """Keep one case's side-by-side timing for the summary table."""
    RATIOS.append(timing)


def record_model(timing):
    """Keep one model case's side-by-side timing for the summary table."""
    MODEL_RATIOS.append(timing)


def record_floor(case, seconds, floor_s, loop_s, what):
    """Keep a case timed against its floor (and the loop, when it was timed) for the summary."""
    FLOOR_RATIOS.append((case, seconds, floor_s, loop_s, what))


def pytest_terminal_summary(terminalreporter):
    write = terminalreporter.write_line
    if MODEL_RATIOS or RATIOS or FLOOR_RATIOS:
        write("")
        write(f"machine: {describe_machine(machine())} (load average now)")
    if FLOOR_RATIOS:
        write("")
        write("time against what the method cannot avoid, measured in this run")
        write(f"{'case':62} {'seconds':>9} {'floor':>9} {'x floor':>8} {'x loop':>10}  floor is")
        for case, seconds, floor, loop, what in FLOOR_RATIOS:
            ratio_loop = f"{loop / seconds:10,.0f}" if loop else f"{'':10}"
            floors = f"{floor:9.3f} {seconds / floor:8.2f}" if floor else f"{'-':>9} {'-':>8}"
            write(f"{case[:62]:62} {seconds:9.3f} {floors} {ratio_loop}  {what}")
    if MODEL_RATIOS:
        write("")
        write("gradient_check(model) versus the seed-style loop and the exhaustive method, "
              "side by side (* = timed on a sample and extrapolated)")
        write(f"{'model':52} {'params':>8} {'fastgrad':>10} {'loop':>11} {'exhaustive':>12} "
              f"{'vs loop':>9} {'distance':>9}")
        for t in MODEL_RATIOS:
            loop_star = "*" if t.loop_extrapolated else " "
            exh_star = "*" if t.exhaustive_extrapolated else " "
            write(f"{t.case[:52]:52} {t.n_parameters:8d} {t.fastgrad_s:9.3f}s "
                  f"{t.loop_s:9.2f}s{loop_star} {t.exhaustive_s:10.2f}s{exh_star} "
                  f"{t.speedup:8.0f}x {t.distance:9.1e}")
    if not RATIOS:
        return
    write("")
    write("fastgrad versus the seed-style loop, measured side by side in this run "
          "(* = loop timed on a sample of elements and extrapolated)")
    write(f"{'case':58} {'P':>9} {'method':>10} {'fastgrad':>12} {'loop':>13} {'speed-up':>10}"
          f" {'rel. error':>10}")
    for t in RATIOS:
        star = "*" if t.loop_extrapolated else " "
        write(f"{t.case[:58]:58} {t.n_elements:9d} {t.method:>10} {t.fastgrad_s * 1e3:10.3f}ms"
              f" {t.loop_s * 1e3:11.1f}ms{star} {t.speedup:9.1f}x {t.relative_error:10.1e}")
