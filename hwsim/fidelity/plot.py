"""Log-log scatter of predicted vs measured latency and energy with the +-25% band (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from hwsim.cost.plot import _pyplot
from hwsim.fidelity.validate import Validation


def plot_validation(v: Validation, path: str | Path) -> Path:
    """Write a PNG: latency (left) and energy (right), one marker per record, coloured by kind."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    panels = [("latency (s)", [(r.measured_latency_s, r.predicted_latency_s, r.kind) for r in v.rows]),
              ("energy (J)", [(r.measured_energy_j, r.predicted_energy_j, r.kind) for r in v.rows
                              if r.measured_energy_j is not None])]
    for ax, (label, pts) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured {label}")
        ax.set_ylabel(f"predicted {label}")
        if not pts:
            ax.set_title(f"{label}: not compared")
            continue
        lo = min(min(p[0], p[1]) for p in pts) / 1.5
        hi = max(max(p[0], p[1]) for p in pts) * 1.5
        xs = [lo, hi]
        ax.fill_between(xs, [x * 0.75 for x in xs], [x * 1.25 for x in xs], color="0.85", label="+-25%")
        ax.plot(xs, xs, color="0.4", lw=0.8)
        for kind in sorted({p[2] for p in pts}):
            sel = [p for p in pts if p[2] == kind]
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=14, label=kind)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.legend(fontsize=8)
        ax.set_title(f"{v.target}: {label}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
