"""Fit the host target to its microbenchmarks (``hwsim calibrate --host``), never to whole networks.

Two steps, each reading only microbenchmark records (:mod:`hwsim.fidelity.host_bench`):

1. The shared least-squares fit (:func:`hwsim.fidelity.calibrate.calibrate`) on the GEMM and
   elementwise records: each format pair's efficiency against its best measured rate, the bandwidth
   of every memory level and the elementwise rate; the per-node overhead is held at its direct
   measurement (a chain of tiny ReLUs).
2. Per pair, the efficiency of dense, 1x1 and depthwise convolutions (``conv_efficiency``,
   ``pointwise_efficiency``, ``depthwise_efficiency``; the record's ``family`` says which):
   onnxruntime runs them through other kernels than its GEMMs (im2col, NCHWc, unfused
   dequantization), so they get their own measured fraction. Each convolution record
   gives the efficiency at which the fitted target predicts its measured time exactly; the median
   over the class's records is kept.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from hwsim.fidelity.calibrate import calibrate
from hwsim.fidelity.records import Measurement
from hwsim.fidelity.validate import predict
from hwsim.targets import Target

#: efficiencies are kept within these bounds (a measured time the memory alone explains gives the top)
EFFICIENCY_RANGE = (0.005, 1.0)


#: convolution efficiency field of each convolution microbenchmark family (hwsim.fidelity.host_bench)
CONV_FIELDS = {"conv2d": "conv_efficiency", "pointwise": "pointwise_efficiency", "depthwise": "depthwise_efficiency"}


def _explain(target: Target, rec: Measurement, folder: Path) -> tuple[float, float, float]:
    """(compute ``c`` at efficiency 1, time left to explain ``measured - rest``, slowest transfer ``t``)
    of ``rec``'s one convolution: the rest of the record (its other layers, the overheads) is fixed."""
    rep = predict(rec, target, folder)
    dots = [r for r in rep.layers if r.op == "conv2d"]
    if len(dots) != 1:
        raise ValueError(f"record {rec.id!r} is not one convolution")
    row = dots[0]
    busy = max([row.compute_s] + list(row.transfer_s.values()))
    rest = rep.total.latency_s - busy
    return row.compute_s, rec.latency_s - rest, max(row.transfer_s.values(), default=0.0)


def conv_efficiency(target: Target, rec: Measurement, folder: Path) -> float:
    """The efficiency of ``rec``'s convolution at which ``target`` predicts its measured latency:
    ``c / (measured - rest)`` where that time exceeds the slowest transfer (:func:`_explain`)."""
    c, left, t = _explain(target, rec, folder)
    if left <= t or left <= 0:
        return EFFICIENCY_RANGE[1]
    return min(max(c / left, EFFICIENCY_RANGE[0]), EFFICIENCY_RANGE[1])


def fixed_and_rate(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(efficiency, fixed seconds) with ``left = c / efficiency + fixed`` closest to the ``(c, left)``
    points in relative terms (least squares on ``left``-scaled rows); None where fewer than three
    points, or where the fit gives no positive fixed time or an efficiency outside the bounds."""
    if len(points) < 3:
        return None
    c = np.array([p[0] for p in points])
    left = np.array([p[1] for p in points])
    if (left <= 0).any():
        return None
    a = np.stack([c, np.ones_like(c)], axis=1) / left[:, None]
    (inv_eff, fixed), *_ = np.linalg.lstsq(a, np.ones_like(c), rcond=None)
    if fixed <= 0 or inv_eff <= 0 or not EFFICIENCY_RANGE[0] <= 1 / inv_eff <= EFFICIENCY_RANGE[1]:
        return None
    return float(1 / inv_eff), float(fixed)


def _with_rates(target: Target, update: dict[tuple[str, str], dict]) -> Target:
    d = target.model_dump()
    for r in d["compute"]["rates"]:
        r.update(update.get((r["activation"], r["weight"]), {}))
    return Target.model_validate(d)


def fit_host(base: Target, records: list[Measurement], path: Path, seed: int = 0) -> Target:
    """The host target fitted to the microbenchmark ``records`` (of the file ``path``).

    ``base.layer_overhead_s`` is held fixed: it is measured directly (a chain of tiny nodes), and a
    free overhead trades off against the rates of the small GEMMs."""
    shared = tuple(r for r in records if r.kind != "conv2d")
    fitted = calibrate(base, path, holdout=0.0, seed=seed, records=shared,
                       source=f"{path.name} (GEMM and elementwise microbenchmarks)",
                       fixed={"layer_overhead_s": base.layer_overhead_s}).target
    pairs = [(r.activation, r.weight) for r in fitted.compute.rates]
    flat = _with_rates(fitted, {p: dict.fromkeys(CONV_FIELDS.values(), 1.0) for p in pairs})
    update: dict[tuple[str, str], dict] = {}
    for p in pairs:
        convs = [r for r in records if r.kind == "conv2d" and (r.activations, r.weights) == p]
        for family, field in CONV_FIELDS.items():
            effs = [conv_efficiency(flat, r, path.parent) for r in convs if r.family == family]
            if effs:
                update.setdefault(p, {})[field] = round(statistics.median(effs), 4)
        dw = fixed_and_rate([_explain(flat, r, path.parent)[:2] for r in convs if r.family == "depthwise"])
        if dw is not None:
            update[p].update(depthwise_efficiency=round(dw[0], 4), depthwise_overhead_s=float(f"{dw[1]:.3g}"))
        if p in update:
            src = next(r["source"] for r in fitted.model_dump()["compute"]["rates"] if (r["activation"], r["weight"]) == p)
            how = (f"{' / '.join(f for f in update[p] if f.endswith('efficiency'))}: median over the convolution "
                   f"microbenchmarks of {path.name} of the efficiency that explains each")
            if "depthwise_overhead_s" in update[p]:
                how += ("; depthwise_efficiency and depthwise_overhead_s: least-squares line (relative) through "
                        "the depthwise ones instead")
            update[p]["source"] = f"{src}; {how}"
    return _with_rates(fitted, update)
