"""How the time of a check grows with the number of parameters and with the number of cores.

``measure_sizes`` times a dense-layer check (fastgrad's own ``FullyConnected``, structured
kernels) and a black-box check (``tanh(x @ A)`` through ``check_gradients``' default path) at
growing sizes; ``fit_power_law`` turns each family into ``seconds = c * P**k``.
``measure_threads`` runs one size in fresh processes with ``NUMBA_NUM_THREADS`` (and the BLAS
thread count) set to 1 and to 2, and ``predict_cores`` extrapolates with Amdahl's law, so a
figure from a 2-core machine says what a 16-core one would do. ``plot_scaling`` draws both
(matplotlib is optional: ``pip install "fastgrad[plot]"``).

Every figure is a best-of-N wall time on whatever machine runs it; ``machine()`` describes
that machine (CPU model, cores, load average at the time) so a reader can compare like with
like.
"""

import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

#: Sides n of the n x n parameter of each family (P = n**2 parameters).
DENSE_SIDES = (16, 64, 256, 1024)
BLACK_BOX_SIDES = (8, 16, 32, 64, 128)
QUICK_DENSE_SIDES = (16, 64, 256)
QUICK_BLACK_BOX_SIDES = (8, 16, 32)
#: Samples (rows of X) of the dense family.
N_SAMPLES = 64
#: Environment variables that set a thread count: Numba's, and the usual BLAS/OpenMP ones.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")


@dataclass
class Timing:
    """One timed check: ``family`` at ``n_parameters``, best of ``repeats`` runs."""

    family: str
    n_parameters: int
    seconds: float
    method: str
    passed: bool
    repeats: int
    threads: int

    def as_dict(self):
        return asdict(self)


def machine():
    """Describe the machine a figure was measured on.

    Returns
    -------
    dict
        ``cpu`` (model name), ``cpu_details`` (vendor family/model and vector extensions,
        where the OS tells them), ``logical_cores`` (``os.cpu_count()``), ``usable_cores``
        (this process's affinity), ``numba_threads``, ``blas``, ``load_average`` (1, 5 and
        15 minutes: a busy machine slows every figure), ``python`` and ``platform``.
    """
    import numba

    cpu, details = _cpu_model()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {"cpu": cpu, "cpu_details": details, "logical_cores": os.cpu_count(),
            "usable_cores": usable, "numba_threads": numba.get_num_threads(),
            "blas": _blas_name(), "load_average": load, "python": platform.python_version(),
            "platform": platform.platform()}


def describe_machine(info=None):
    """One line for a report header, e.g. ``AMD EPYC (family 25 model 1; avx2 fma), 2 cores``."""
    info = machine() if info is None else info
    details = f" ({info['cpu_details']})" if info["cpu_details"] else ""
    load = "" if info["load_average"] is None else \
        f", load average {info['load_average'][0]:.2f}"
    return (f"{info['cpu']}{details}, {info['usable_cores']} of {info['logical_cores']} "
            f"cores usable, Numba threads {info['numba_threads']}, BLAS {info['blas']}{load}")


def _cpu_model():
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break  # the first processor is enough
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    parts = []
    if "cpu family" in fields and "model" in fields:
        parts.append(f"family {fields['cpu family']} model {fields['model']}")
    flags = set(fields.get("flags", "").split())
    vector = [flag for flag in ("avx512f", "avx2", "fma", "avx", "neon", "asimd")
              if flag in flags]
    if vector:
        parts.append(" ".join(vector))
    return name, "; ".join(parts)


def _blas_name():
    try:
        config = np.show_config(mode="dicts")
        return config["Build Dependencies"]["blas"]["name"]
    except (TypeError, KeyError, AttributeError):  # NumPy < 1.26
        return "unknown"


def _dense_check(n, rng):
    from .layers import FullyConnected

    layer = FullyConnected(n, activation="tanh", seed=int(rng.integers(1 << 30)))
    X = rng.normal(size=(N_SAMPLES, n))
    dLdY = rng.normal(size=(N_SAMPLES, n))
    layer.forward(X)
    layer.backward(dLdY)
    return (layer.forward_with_param("W", X), layer.gradients["W"], layer.parameters["W"],
            dLdY)


def _black_box_check(n, rng):
    A = rng.normal(size=(n, n)) / np.sqrt(n)
    x = rng.normal(size=(n, n))
    dLdf = rng.normal(size=(n, n))

    def fn(v):  # a user's function: fastgrad sees only calls
        return np.tanh(v @ A)

    grad = ((1 - fn(x) ** 2) * dLdf) @ A.T
    return fn, grad, x, dLdf


FAMILIES = {"dense layer (structured)": _dense_check, "black box (default method)":
            _black_box_check}


def time_check(family, n, *, repeats=3, seed=0, max_seconds=30.0):
    """Best wall time of ``check_gradients`` on one family at side ``n`` (after a warm-up).

    Stops repeating once ``max_seconds`` have been spent. Returns a :class:`Timing`.
    """
    import numba

    from ._checker import check_gradients

    fn, grad, x, dLdf = FAMILIES[family](n, np.random.default_rng(seed))

    def run():
        return check_gradients(fn, grad, x, dLdf, progress=False, seed=seed)

    result = run()  # compile, fill caches
    best = float("inf")
    spent = 0.0
    done = 0
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - started
        best = min(best, elapsed)
        spent += elapsed
        done += 1
        if spent > max_seconds:
            break
    return Timing(family=family, n_parameters=int(np.size(x)), seconds=best,
                  method=result.method, passed=bool(result.passed), repeats=done,
                  threads=numba.get_num_threads())


def measure_sizes(*, quick=False, repeats=3, families=None):
    """Time every family at growing sizes; returns a list of :class:`Timing`."""
    sides = {"dense layer (structured)": QUICK_DENSE_SIDES if quick else DENSE_SIDES,
             "black box (default method)": QUICK_BLACK_BOX_SIDES if quick else
             BLACK_BOX_SIDES}
    timings = []
    for family in families or FAMILIES:
        for n in sides[family]:
            timings.append(time_check(family, n, repeats=repeats))
    return timings


def fit_power_law(n_parameters, seconds, *, smallest=1):
    """Least-squares fit of ``log(seconds) = log(c) + k log(P)``.

    Parameters
    ----------
    n_parameters, seconds : sequence of float
        Sizes and times of one family.
    smallest : int
        Sizes below this are left out (fixed per-call costs dominate tiny checks).

    Returns
    -------
    (k, c) : tuple of float
        The exponent and the prefactor: ``seconds ~= c * P**k``. NaN when fewer than two
        sizes remain.

    Notes
    -----
    ``k = 1`` means a constant time per parameter (a structured kernel does O(n_samples)
    work per element). A black box costs (calls) x (time per call): for ``tanh(x @ A)`` with
    x and A n x n, the colored method's 2n calls of O(n^3) give ``k = 2`` once the calls are
    large enough; while per-call overhead dominates, the time follows the number of calls.
    """
    P = np.asarray(n_parameters, dtype=float)
    t = np.asarray(seconds, dtype=float)
    keep = (P >= smallest) & (t > 0)
    if keep.sum() < 2:
        return float("nan"), float("nan")
    k, log_c = np.polyfit(np.log(P[keep]), np.log(t[keep]), 1)
    return float(k), float(np.exp(log_c))


def fit_families(timings, *, largest=3):
    """``fit_power_law`` per family over its ``largest`` biggest sizes.

    Fixed per-call costs dominate the small checks, so they are left out. Returns
    ``{family: {"exponent", "prefactor", "from_parameters"}}`` (timings as objects or dicts).
    """
    rows_of = {}
    for timing in timings:
        timing = timing if isinstance(timing, dict) else timing.as_dict()
        rows_of.setdefault(timing["family"], []).append(timing)
    fits = {}
    for family, rows in rows_of.items():
        rows.sort(key=lambda row: row["n_parameters"])
        smallest = rows[max(0, len(rows) - largest)]["n_parameters"]
        k, c = fit_power_law([r["n_parameters"] for r in rows], [r["seconds"] for r in rows],
                             smallest=smallest)
        fits[family] = {"exponent": k, "prefactor": c, "from_parameters": smallest}
    return fits


def predict_cores(seconds_one, seconds_two, cores):
    """Amdahl's law from times on 1 and 2 threads: predicted seconds on ``cores`` threads.

    With a serial fraction f, ``T(p) = T(1) (f + (1 - f) / p)``; two measurements give
    ``f = 2 T(2) / T(1) - 1`` (clipped to [0, 1]: noise can make T(2) look better than
    perfect or worse than serial).

    Returns
    -------
    (seconds, serial_fraction) : tuple of float
    """
    if not (seconds_one > 0 and seconds_two > 0):
        raise ValueError("seconds_one, seconds_two: expected positive times")
    serial = min(1.0, max(0.0, 2.0 * seconds_two / seconds_one - 1.0))
    return seconds_one * (serial + (1.0 - serial) / cores), serial


def measure_threads(family="dense layer (structured)", n=1024, *, threads=(1, 2), repeats=3,
                    timeout=600):
    """Time one check in a fresh process per thread count.

    Thread counts are fixed when Numba and BLAS load, so each count gets its own interpreter
    with ``THREAD_VARIABLES`` set. Returns ``{threads: Timing}``.
    """
    timings = {}
    for count in threads:
        env = dict(os.environ, **{name: str(count) for name in THREAD_VARIABLES})
        code = ("import json, sys; from fastgrad._scaling import time_check; "
                f"t = time_check({family!r}, {int(n)}, repeats={int(repeats)}); "
                "sys.stdout.write(json.dumps(t.as_dict()))")
        completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                   text=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"timing with {count} thread(s) failed:\n"
                               f"{completed.stderr[-2000:]}")
        timings[count] = Timing(**json.loads(completed.stdout.strip().splitlines()[-1]))
    return timings


def scaling_report(*, quick=False, repeats=3, thread_side=None, plot=None):
    """Measure sizes and threads, fit, and optionally plot: what ``fastgrad bench`` shows.

    Parameters
    ----------
    quick : bool
        Smaller sizes (seconds instead of a minute).
    repeats : int
        Best of this many runs per point.
    thread_side : int, optional
        Side of the dense check timed on 1 and 2 threads (1024, or 256 when quick).
    plot : str or path, optional
        Where to save the log-log plot (needs matplotlib).

    Returns
    -------
    dict
        ``machine``, ``timings`` (list of dicts), ``fits`` (family -> exponent and
        prefactor), ``threads`` (1 and 2 thread seconds, serial fraction, predictions for 4,
        8 and 16 cores).
    """
    info = machine()
    timings = measure_sizes(quick=quick, repeats=repeats)
    fits = fit_families(timings)
    side = thread_side or (256 if quick else 1024)
    by_threads = measure_threads(n=side, repeats=repeats)
    one, two = by_threads[1].seconds, by_threads[2].seconds
    predictions = {cores: predict_cores(one, two, cores)[0] for cores in (4, 8, 16)}
    threads = {"family": "dense layer (structured)", "n_parameters": side * side,
               "seconds": {1: one, 2: two}, "speedup_2": one / two,
               "serial_fraction": predict_cores(one, two, 2)[1], "predicted": predictions}
    report = {"machine": info, "timings": [t.as_dict() for t in timings], "fits": fits,
              "threads": threads}
    if plot is not None:
        plot_scaling(report, plot)
    return report


def plot_scaling(report, path):
    """Save a two-panel figure: time against parameters (log-log), time against cores.

    Raises
    ------
    ImportError
        When matplotlib is not installed (``pip install "fastgrad[plot]"``).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('plot_scaling needs matplotlib: pip install "fastgrad[plot]"') \
            from error
    figure, (sizes, cores) = plt.subplots(1, 2, figsize=(11, 4.4),
                                          gridspec_kw={"width_ratios": [3, 2]})
    for family, marker in zip(FAMILIES, "os", strict=True):
        rows = [t for t in report["timings"] if t["family"] == family]
        P = np.array([t["n_parameters"] for t in rows], dtype=float)
        seconds = np.array([t["seconds"] for t in rows])
        fit = report["fits"][family]
        label = f"{family}: time ~ P^{fit['exponent']:.2f}"
        line, = sizes.loglog(P, seconds, marker=marker, label=label)
        if np.isfinite(fit["exponent"]):  # drawn over the sizes it was fitted to
            grid = np.geomspace(fit.get("from_parameters", P.min()), P.max(), 50)
            sizes.loglog(grid, fit["prefactor"] * grid ** fit["exponent"], ":",
                         color=line.get_color(), linewidth=1)
    sizes.set_xlabel("parameters checked (P)")
    sizes.set_ylabel("seconds (best of runs)")
    sizes.set_title("check_gradients: time against size")
    sizes.grid(True, which="both", alpha=0.3)
    sizes.legend(fontsize=8)
    threads = report["threads"]
    measured = sorted((int(k), v) for k, v in threads["seconds"].items())
    predicted = sorted((int(k), v) for k, v in threads["predicted"].items())
    counts = [c for c, _ in measured] + [c for c, _ in predicted]
    cores.loglog([c for c, _ in measured], [s for _, s in measured], "o-", label="measured")
    cores.loglog([measured[-1][0]] + [c for c, _ in predicted],
                 [measured[-1][1]] + [s for _, s in predicted], "o--", mfc="none",
                 label=f"Amdahl, serial fraction {threads['serial_fraction']:.2f}")
    ideal = [measured[0][1] / c for c in counts]
    cores.loglog(counts, ideal, ":", color="grey", label="ideal 1/cores")
    cores.set_xticks(counts)
    cores.set_xticklabels([str(c) for c in counts])
    cores.set_xlabel("threads (NUMBA_NUM_THREADS, BLAS threads)")
    cores.set_ylabel("seconds")
    side = math.isqrt(int(threads["n_parameters"]))
    cores.set_title(f"dense {side}x{side}: time against cores")
    cores.grid(True, which="both", alpha=0.3)
    cores.legend(fontsize=8)
    info = report["machine"]
    figure.suptitle(describe_machine(info), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
