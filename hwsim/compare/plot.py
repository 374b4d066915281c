"""``--plot``: accuracy against energy per MAC per format, the INT/FP crossover, per-layer SQNR.

Uses matplotlib's Agg backend (no display needed). Panels: (1) SQNR on Gaussian (filled) and
Student-t nu=3 (open) samples against energy per MAC, one colour per format, one marker per
accumulator; (2) SQNR of the crossover pair over Student-t nu with the crossover marked; with a
model, (3) weight and (4) activation SQNR per layer per format.
"""

from __future__ import annotations

import math

from hwsim.compare.results import Comparison
from hwsim.errors import ConfigError

_MARKERS = {"fx": "o", "fp16": "s", "fp32": "^", "bf16": "D"}


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


def _accuracy_vs_energy(ax, res: Comparison, colours: dict) -> None:
    for r in res.rows:
        m = _MARKERS.get(r.accumulator, "P")
        for dist, fill in (("gaussian", True), ("student_t3", False)):
            v = r.sqnr_db.get(dist)
            if _finite(v):
                ax.scatter(r.energy_pj_per_mac, v, marker=m, s=50, color=colours[r.format],
                           facecolors=colours[r.format] if fill else "none")
        if _finite(r.sqnr_db.get("gaussian")):
            ax.annotate(f"{r.format}/{r.accumulator}", (r.energy_pj_per_mac, r.sqnr_db["gaussian"]),
                        fontsize=7, xytext=(4, 3), textcoords="offset points")
    tech = f"{res.target.technology_nm:g} nm, {res.target.name}" if res.target else "45 nm"
    ax.set_xlabel(f"energy per MAC (pJ, {tech})")
    ax.set_ylabel("SQNR (dB) at MSE-optimal scale")
    ax.set_title("accuracy vs energy: filled = Gaussian, open = Student-t nu=3", fontsize=9)
    ax.grid(alpha=0.3)


def _crossover(ax, res: Comparison) -> None:
    c = res.crossover
    for name, curve in c.sqnr_db.items():
        ax.plot(c.nu, curve, marker="o", ms=3, label=name)
    if c.crossover_nu is not None:
        ax.axvline(c.crossover_nu, color="k", ls="--", lw=1)
        ax.annotate(f"crossover nu = {c.crossover_nu:.2f}", (c.crossover_nu, min(min(v) for v in c.sqnr_db.values())),
                    fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ticks = [v for v in (2, 3, 4, 5, 7, 10, 20, 30, 50, 100) if c.nu[0] <= v <= c.nu[-1]]
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("Student-t degrees of freedom nu (small = heavy tails)")
    ax.set_ylabel("SQNR (dB)")
    ax.set_title(f"{c.int_format} vs {c.float_format} over tail weight", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _per_layer(ax, res: Comparison, colours: dict, key: str) -> None:
    layers = res.model.layers
    xs = range(len(layers))
    for f in colours:
        ys = [getattr(l, key).get(f) for l in layers]
        ys = [y if _finite(y) else float("nan") for y in ys]
        ax.plot(xs, ys, marker=".", color=colours[f], label=f)
    what = "weights" if key.startswith("weights") else "activations"
    ax.set_title(f"{res.model.name}: SQNR of {what} per layer", fontsize=9)
    ax.set_xlabel("layer index (topological order)")
    ax.set_ylabel("SQNR (dB)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)


def plot_comparison(res: Comparison, path: str) -> None:
    """Write the comparison figure to ``path`` (PNG or any format matplotlib infers from the suffix).

    Raises
    ------
    ConfigError
        If matplotlib is missing or the file cannot be written.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install 'hwsim[plot]'", param="plot") from None
    fmts = list(dict.fromkeys(r.format for r in res.rows))
    cmap = plt.get_cmap("tab10")
    colours = {f: cmap(i % 10) for i, f in enumerate(fmts)}
    nrows = 2 if res.model is not None and res.model.layers else 1
    fig, axes = plt.subplots(nrows, 2, figsize=(13, 5 * nrows), squeeze=False)
    _accuracy_vs_energy(axes[0][0], res, colours)
    _crossover(axes[0][1], res)
    if nrows == 2:
        _per_layer(axes[1][0], res, colours, "weights_sqnr_db")
        _per_layer(axes[1][1], res, colours, "activations_sqnr_db")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise ConfigError(f"cannot write plot {path!r}: {exc}; pick a writable path") from None
    finally:
        plt.close(fig)
