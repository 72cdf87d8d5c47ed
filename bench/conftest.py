"""Shared set-up of the benchmark suite: compile first, print the side-by-side table last.

Run with ``python -m pytest bench/`` (add ``--benchmark-json=FILE`` to keep the numbers).
"""

import pytest

import fastgrad

RATIOS = []
MODEL_RATIOS = []


@pytest.fixture(scope="session", autouse=True)
def _compiled():
    fastgrad.warmup()  # compile outside every timed region


def record(timing):
    """Keep one case's side-by-side timing for the summary table."""
    RATIOS.append(timing)


def record_model(timing):
    """Keep one model case's side-by-side timing for the summary table."""
    MODEL_RATIOS.append(timing)


def pytest_terminal_summary(terminalreporter):
    write = terminalreporter.write_line
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
