"""The Pareto front of a sweep: one panel for 2 objectives, one per pair for 3 or more."""

from __future__ import annotations

import itertools

_LABELS = {"latency_s": "latency (s)", "energy_j": "energy (J)", "area_mm2": "area (mm$^2$)",
           "weight_bytes": "weight bytes", "accuracy_proxy": "accuracy proxy (summed sensitivity)"}


def plot_front(table, objectives: list[str], path: str) -> None:
    """Every ok point in grey, the front of each model in colour, log axes; written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table.to_pylist() if r["status"] == "ok"]
    pairs = list(itertools.combinations(objectives, 2)) or [(objectives[0], objectives[0])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.6), squeeze=False)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for ax, (x, y) in zip(axes[0], pairs):
        ax.scatter([r[x] for r in rows], [r[y] for r in rows], s=6, c="0.8", label="all points")
        for k, m in enumerate(models):
            front = sorted((r for r in rows if r["model"] == m and r["pareto"]), key=lambda r: r[x])
            ax.plot([r[x] for r in front], [r[y] for r in front], "o-", ms=4, color=f"C{k}", label=f"{m} front")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(_LABELS.get(x, x))
        ax.set_ylabel(_LABELS.get(y, y))
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
