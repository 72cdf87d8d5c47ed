"""Pictures for ``--plot`` (matplotlib is an optional extra: ``pip install ".[plot]"``)."""

import numpy as np


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'fastgrad[plot]' "
                              "(or pip install matplotlib)") from error
    return plt


def _ratio(row):
    """The check's largest error in units of its tolerance (its worst element's)."""
    worst = row.worst
    if worst is None:
        return None
    if worst.tolerance > 0:
        return worst.abs_error / worst.tolerance
    return np.inf if worst.abs_error > 0 else 0.0


#: Marker colour per verdict.
VERDICT_COLOR = {"passed": "tab:green", "failed": "tab:red", "inconclusive": "tab:orange"}
#: Where a ratio of exactly 0 (or below) is drawn on the log axis.
FLOOR = 1e-12


def plot_check(rows, path):
    """Draw the results of ``fastgrad check``.

    Several checks: one picture with a row per check, its largest error in units of its
    tolerance on a log scale, the tolerance as a line at 1, failures in red. One check of an
    array: a heatmap of ``|numerical - analytic|`` in units of each element's tolerance,
    with the failing elements marked.

    Parameters
    ----------
    rows : list of fastgrad._selfcheck.Row
        The rows of the report.
    path : str
        The PNG to write.
    """
    if not rows:
        raise ValueError("rows: nothing to plot")
    if len(rows) == 1 and rows[0].numerical is not None and rows[0].tolerance is not None \
            and np.ndim(rows[0].numerical) >= 1:
        _heatmap(rows[0], path)
    else:
        _overview(rows, path)


def _overview(rows, path):
    plt = _pyplot()
    ratios = [_ratio(row) for row in rows]
    shown = [FLOOR if r is None or r <= FLOOR else min(r, 1e12) for r in ratios]
    labels = [f"{row.target} {row.parameter} {row.dtype}" for row in rows]
    height = max(3.0, 0.19 * len(rows) + 1.2)
    width = 7.0 + 0.055 * max(len(label) for label in labels)
    fig, ax = plt.subplots(figsize=(width, height))
    y = np.arange(len(rows))
    for verdict, color in VERDICT_COLOR.items():
        mask = np.array([row.verdict == verdict for row in rows])
        if mask.any():
            ax.scatter(np.asarray(shown)[mask], y[mask], color=color, s=22, zorder=3,
                       marker="o" if verdict == "passed" else "X",
                       label=f"{verdict} ({int(mask.sum())})")
    ax.hlines(y, FLOOR, shown, color="0.85", linewidth=0.8, zorder=1)
    ax.axvline(1.0, color="tab:red", linestyle="--", linewidth=1.2,
               label="tolerance (error = 1x its tolerance)")
    ax.set_xscale("log")
    ax.set_xlim(FLOOR / 2, max(10.0, max(shown) * 3))
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("largest |numerical - analytic| of the check, in units of its tolerance")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    failed = sum(row.verdict == "failed" for row in rows)
    ax.set_title(f"{len(rows)} checks, {failed} failed: right of the dashed line fails",
                 fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _heatmap(row, path):
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    numerical = np.asarray(row.numerical, np.float64)
    analytic = np.asarray(row.analytic, np.float64)
    rtol, atol = row.tolerance
    error = np.abs(numerical - analytic)
    units = error / (atol + rtol * np.abs(analytic))
    grid = units.reshape(units.shape[0], -1) if units.ndim >= 2 else units.reshape(1, -1)
    shown = np.clip(np.where(np.isfinite(grid), grid, 1e12), FLOOR, 1e12)
    fig, ax = plt.subplots(figsize=(min(11.0, max(7.0, 3.0 + 0.25 * grid.shape[1])), 5.5))
    image = ax.imshow(shown, aspect="auto", cmap="viridis",
                      norm=LogNorm(vmin=min(FLOOR * 1e4, shown.min()), vmax=max(10.0, shown.max())),
                      interpolation="nearest")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("|numerical - analytic| / (atol + rtol |analytic|)")
    bar.ax.axhline(1.0, color="red", linewidth=2)
    # the result's own verdict per element (its tolerance also allows for rounding noise)
    failing = [w.index for w in row.worst_list if w.failed]
    bad = np.array([np.unravel_index(np.ravel_multi_index(index, units.shape), grid.shape)
                    for index in failing]).reshape(-1, 2)
    if len(bad):
        ax.scatter(bad[:, 1], bad[:, 0], marker="s", s=max(30.0, 4000.0 / grid.size),
                   facecolors="none", edgecolors="red", linewidths=2,
                   label=f"outside tolerance ({len(bad)})")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("column" if units.ndim == 2 else "flattened trailing axes")
    ax.set_ylabel("row")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{row.target} {row.parameter} ({row.dtype}, {row.method}): {row.verdict}\n"
                 f"error in units of its tolerance {atol:.2g} + {rtol:.2g} |analytic|",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bench(timings, path, family="TanH() "):
    """Time against number of elements for one family of cases, log-log, a line per method."""
    plt = _pyplot()
    series = {}
    for timing in timings:
        if not timing["case"].startswith(family):
            continue
        for method, (seconds, _estimated) in timing["times"].items():
            if seconds is not None and np.isfinite(seconds):
                series.setdefault(method, []).append((timing["n_elements"], seconds))
    fig, ax = plt.subplots(figsize=(7, 5))
    for method, points in sorted(series.items()):
        points.sort()
        ax.plot([p for p, _ in points], [s for _, s in points], "o-", label=method)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("elements checked (P)")
    ax.set_ylabel("seconds (estimated points included)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"checking {family.strip()} on growing inputs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
