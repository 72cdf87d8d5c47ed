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


def plot_check(rows, path):
    """Heatmaps of |numerical - analytic| for the matrices among ``rows``, bars for models."""
    plt = _pyplot()
    matrices = [r for r in rows if r.kind == "array" and r.numerical is not None
                and np.ndim(r.numerical) == 2 and min(np.shape(r.numerical)) > 1]
    models = [r for r in rows if r.kind == "model"]
    panels = matrices[:6] + ([models] if models else [])
    if not panels:
        panels = [rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if isinstance(panel, list):
            labels = [f"{r.target.split(' layer ')[-1][:18]} {r.parameter}" for r in panel]
            values = [max(r.relative_error, 1e-18) for r in panel]
            colors = ["tab:green" if r.passed else "tab:red" for r in panel]
            ax.barh(range(len(panel)), values, color=colors)
            ax.set_xscale("log")
            ax.set_yticks(range(len(panel)), labels, fontsize=7)
            ax.set_xlabel("relative error (distance)")
            ax.set_title("per layer and parameter")
        else:
            error = np.abs(np.asarray(panel.numerical, np.float64) -
                           np.asarray(panel.analytic, np.float64))
            image = ax.imshow(np.log10(error + 1e-20), aspect="auto", cmap="viridis")
            fig.colorbar(image, ax=ax, label="log10 |numerical - analytic|")
            ax.set_title(f"{panel.target[:30]} {panel.parameter}", fontsize=9)
            if panel.worst is not None and len(panel.worst.index) == 2:
                ax.plot(panel.worst.index[1], panel.worst.index[0], "rx", markersize=10)
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
