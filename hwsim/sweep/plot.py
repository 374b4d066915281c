"""The Pareto front of a sweep: one panel for 2 objectives, one per pair of objectives for 3 or more."""

from __future__ import annotations

import itertools

_LABELS = {"latency_s": "latency (s)", "energy_j": "energy (J)", "area_mm2": "area (mm$^2$)",
           "weight_bytes": "weight bytes", "accuracy_proxy": "accuracy proxy (summed sensitivity)"}


def plot_front(table, objectives: list[str], path: str) -> None:
    """Every ok point in grey; per model, the points of the front over all objectives as markers and,
    in each panel, the front of that pair of objectives as a step line. Log axes; written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter, LogLocator

    from hwsim.sweep.store import front

    rows = [r for r in table.to_pylist() if r["status"] == "ok"]
    pairs = list(itertools.combinations(objectives, 2)) or [(objectives[0], objectives[0])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.6), squeeze=False)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for ax, (x, y) in zip(axes[0], pairs):
        ax.scatter([r[x] for r in rows], [r[y] for r in rows], s=5, c="0.82", label="all points")
        for k, m in enumerate(models):
            mine = [r for r in rows if r["model"] == m]
            on = [r for r in mine if r["pareto"]]
            ax.scatter([r[x] for r in on], [r[y] for r in on], s=14, color=f"C{k}",
                       label=f"{m}: front over all objectives")
            pts = np.array([[r[x], r[y]] for r in mine], dtype=float)
            step = sorted((tuple(pts[i]) for i in front(pts)) if len(pts) else [])
            ax.step([p[0] for p in step], [p[1] for p in step], where="post", color=f"C{k}", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # label 1, 2 and 5 of each decade in plain numbers
            axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.set_xlabel(_LABELS.get(x, x))
        ax.set_ylabel(_LABELS.get(y, y))
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
