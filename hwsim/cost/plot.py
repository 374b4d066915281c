"""Roofline and stacked energy breakdown of a CostReport (matplotlib, Agg backend; extra ``plot``)."""

from __future__ import annotations

from pathlib import Path

from hwsim.cost.report import CostReport
from hwsim.errors import ConfigError
from hwsim.targets import Target


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install 'hwsim[plot]' (or pip install matplotlib)", param="plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: CostReport, target: Target, path: str | Path, top: int = 30) -> Path:
    """Write a PNG: left, per-layer roofline (arithmetic intensity vs attained MAC throughput under
    the compute roof and each memory level's bandwidth roof); right, energy per component for the
    ``top`` most energetic layers, stacked."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.5))
    peak_ops = 2 * target.peak_macs_per_s
    rows = [r for r in report.layers if r.macs and r.latency_s]
    xs = [r.arithmetic_intensity for r in rows]
    finite = [x for x in xs if x != float("inf")]
    lo, hi = min(finite + [1.0]) / 2, max(finite + [1e3]) * 2
    outer = target.memory[-1]
    ax1.axhline(peak_ops, color="k", lw=1, label=f"compute {peak_ops / 1e12:.3g} TOPS")
    ax1.plot([lo, hi], [min(peak_ops, outer.bandwidth_bytes_per_s * lo), min(peak_ops, outer.bandwidth_bytes_per_s * hi)],
             lw=1, ls="--", color="k", label=f"{outer.name} {outer.bandwidth_bytes_per_s / 1e9:.3g} GB/s")
    for b in sorted({r.bottleneck for r in rows}):
        pts = [(min(x, hi), 2 * r.executed_ops / r.latency_s) for x, r in zip(xs, rows) if r.bottleneck == b]
        ax1.scatter(*zip(*pts), s=12, label=f"{b}-bound layers")
    ax1.set(xscale="log", yscale="log", xlabel=f"arithmetic intensity (MAC ops per {outer.name} byte)",
            ylabel="attained ops/s (executed MACs x 2 / latency)", title=f"{report.model} on {report.target}: roofline")
    ax1.legend(fontsize=7)
    rows = sorted(report.layers, key=lambda r: r.energy_j, reverse=True)[:top]
    parts = [(k, lambda r, k=k: r.energy_breakdown_j[k]) for k in ("mac", "decode")]
    parts += [(f"{k} (memory)", lambda r, k=k: r.memory_energy_j[k]) for k in report.total.memory_energy_j]
    parts += [("static", lambda r: r.energy_breakdown_j["static"])]
    bottom = [0.0] * len(rows)
    for label, get in parts:
        vals = [get(r) * 1e3 for r in rows]
        ax2.bar(range(len(rows)), vals, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax2.set_xticks(range(len(rows)), [r.name for r in rows], rotation=90, fontsize=6)
    ax2.set(ylabel="energy (mJ)", title=f"energy breakdown, top {len(rows)} layers")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
