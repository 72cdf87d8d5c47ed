"""``fastgrad bench``: one table, every method side by side on the same cases."""

import time

import numpy as np

from . import _bench, _peers
from ._checker import check_gradients
from ._warmup import warmup


def _format_seconds(seconds, estimated):
    if seconds is None:
        return "-"
    mark = "*" if estimated else ""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us{mark}"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms{mark}"
    return f"{seconds:.2f}s{mark}"


def _ratio(value):
    return f"{value:.2g}x" if value < 10 else f"{value:,.0f}x"


def _time_case(case, budget_s, peer_names):
    fn, grad, x, dLdf = case.setup(np.random.default_rng(0))
    best, result = _bench.best_time(lambda: check_gradients(
        fn, grad, x, dLdf, method=case.method, progress=False, seed=0, **case.options),
        warm_up=True)
    loop_s, (numerical, _, n_timed) = _bench.best_time(
        lambda: _bench.seed_style_loop(fn, x, dLdf, budget_s=budget_s))
    if n_timed < np.size(x):
        loop_s = loop_s * np.size(x) / n_timed
    times = {f"fastgrad ({result.method})": (best, False),
             "seed loop": (loop_s, n_timed < np.size(x))}
    errors = {f"fastgrad ({result.method})": result.max_abs_error}
    timed = np.isfinite(numerical)
    errors["seed loop"] = float(np.max(np.abs(numerical[timed] - np.asarray(grad)[timed]))) \
        if timed.any() else float("nan")
    notes = []
    for name in peer_names:
        _, run = _peers.PEERS[name]
        try:
            timing = run(fn, grad, x, dLdf, budget_s)
        except Exception as error:  # a peer's own failure is reported, not fatal
            notes.append(f"{name}: {type(error).__name__}: {error}")
            continue
        times[name] = (timing.seconds, timing.estimated)
        errors[name] = timing.error
    return {"case": case.name, "n_elements": int(np.size(x)), "times": times,
            "errors": errors, "passed": bool(result.passed), "notes": notes}


def run_bench(*, quick, budget_s, peers, json_path, plot_path, write_json):
    """Run the benchmark and print one table; return the exit code."""
    budget_s = budget_s if budget_s is not None else (0.5 if quick else 3.0)
    started = time.perf_counter()
    print("compiling (or loading) every kernel first, so that no timing contains a compile",
          flush=True)
    warmup()  # and each case runs once untimed before it is timed
    available = _peers.installed()
    peer_names = [name for name, (package, _) in _peers.PEERS.items()
                  if peers and available[package]]
    missing = sorted({package for package, ok in available.items() if not ok}) if peers else []
    cases = _bench.checker_cases(quick) + _bench.scaling_cases(quick)
    seen = set()
    cases = [c for c in cases if not (c.name in seen or seen.add(c.name))]
    methods = ["seed loop"]
    print(f"fastgrad bench{' --quick' if quick else ''}: seed-style loop, fastgrad and "
          f"{', '.join(peer_names) or 'no peers'}; * = extrapolated from a timed sample "
          f"(loop) or from the cost of one call (peers), beyond a {budget_s:g} s budget")
    if missing:
        print(f"not installed, skipped: {', '.join(missing)} (pip install '.[compare]')")
    timings = []
    for case in cases:
        timing = _time_case(case, budget_s, peer_names)
        timings.append(timing)
        for method in timing["times"]:
            if method not in methods:
                methods.append(method)
        fastgrad_name = next(m for m in timing["times"] if m.startswith("fastgrad"))
        fastgrad_s = timing["times"][fastgrad_name][0]
        loop_s = timing["times"]["seed loop"][0]
        cells = "  ".join(f"{name}={_format_seconds(*value)}"
                          for name, value in timing["times"].items())
        print(f"{timing['case'][:52]:52} P={timing['n_elements']:<9d} {cells}  "
              f"speed-up vs loop {_ratio(loop_s / fastgrad_s)}  "
              f"max |err| {timing['errors'][fastgrad_name]:.1e}", flush=True)
        for note in timing["notes"]:
            print(f"    {note}")
    model_timings = []
    for case in _bench.model_cases(quick):
        timing = _bench.run_model_case(case, loop_budget_s=budget_s)
        model_timings.append(timing)
        print(f"{timing.case[:52]:52} P={timing.n_parameters:<9d} "
              f"fastgrad (model)={_format_seconds(timing.fastgrad_s, False)}  "
              f"seed loop={_format_seconds(timing.loop_s, timing.loop_extrapolated)}  "
              f"exhaustive={_format_seconds(timing.exhaustive_s, timing.exhaustive_extrapolated)}"
              f"  speed-up vs loop {_ratio(timing.speedup)}  distance {timing.distance:.1e}",
              flush=True)
    print(f"done in {time.perf_counter() - started:.1f} s")
    if json_path:
        write_json(json_path, {"command": "bench", "quick": quick, "budget_s": budget_s,
                               "cases": timings,
                               "models": [t.as_dict() for t in model_timings]})
    if plot_path:
        from ._plot import plot_bench

        plot_bench(timings, plot_path)
        print(f"plot written to {plot_path}")
    return 0 if all(t["passed"] for t in timings) and all(t.passed for t in model_timings) \
        else 1
