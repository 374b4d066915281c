"""What a Dask worker runs: a batch of points -> one row (a plain dict) per point.

Each worker process keeps caches across the batches it runs: quantized graphs per (model,
quantization), validated targets per hardware point, and per-layer costs
(:mod:`hwsim.sweep.layercache`). A point that raises becomes a row with ``status: error`` and the
message; the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.sweep.space import Point, build_target

@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the points; built once in the client."""

    spec: Any                                # SweepSpec
    bases: list                              # per target entry: (raw mapping, origin)
    levels: list[str]                        # memory level names -> bottleneck columns
    budget_names: list[str]                  # min_<name> columns
    base_keys: list = field(default_factory=list)     # per target entry: digest of its raw mapping
    model_keys: dict = field(default_factory=dict)    # model / config path -> digest of the file
    graphs: dict = field(default_factory=dict)        # model -> Graph the solver priced (solve entries)
    sensitivity: dict = field(default_factory=dict)   # model -> SensitivityTable (measured once, client)
    choices: dict = field(default_factory=dict)       # quant index -> list of Choice (solve entries)


_GRAPHS: dict = {}
_TARGETS: dict = {}
_CACHE_LIMIT = 4096


def _remember(cache: dict, key, make):
    if key not in cache:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = make()
    return cache[key]


def _graph(job: Job, model: str, q, target_scope: str | None = None) -> tuple:
    """(quantized graph, its LayerCache), kept for the life of the worker process; ``target_scope``
    is the hardware point's ``activation_scope`` (applies where the quantization sets none)."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.zoo import load_model
    from hwsim.sweep.layercache import LayerCache

    def make():
        return quantize_graph(load_model(model), q.weights, q.activations, q.config,
                              target_scope=target_scope), LayerCache()

    return _remember(_GRAPHS, (job.model_keys.get(model, model), q.label, job.model_keys.get(q.config),
                               target_scope), make)


def _target(job: Job, p: Point) -> tuple:
    """(validated Target, its layer-cache key) of a hardware point."""
    from hwsim.sweep.layercache import stream_key

    def make():
        t = build_target(job.bases[p.target_idx], p.params)
        return t, stream_key(t)

    return _remember(_TARGETS, (job.base_keys[p.target_idx], json_key(p.params)), make)


def json_key(params) -> str:
    import json

    return json.dumps([[k, v] for k, v in params])


def empty_row(job: Job, p: Point) -> dict:
    """The row of ``p`` before it is computed: identity and parameters, every metric None."""
    row: dict[str, Any] = {"point": p.index, "point_id": p.point_id, "model": p.model, "target": p.family,
                           "quantization": p.quant}
    row.update({k: v for k, v in p.params})
    row.update(status="error", message="", latency_s=None, energy_j=None, area_mm2=None, weight_bytes=None,
               macs=None, accuracy_proxy=None)
    row.update({f"bound_{k}": None for k in ["compute", *job.levels]})
    row.update({f"min_{k}": None for k in job.budget_names})
    return row


def _fill(row: dict, report, job: Job) -> None:
    tot = report.total
    row.update(latency_s=tot.latency_s, energy_j=tot.energy_j, weight_bytes=float(tot.weight_bytes),
               macs=int(tot.macs))
    mix = {k: 0.0 for k in ["compute", *job.levels]}
    for layer in report.layers:
        mix[layer.bottleneck] = mix.get(layer.bottleneck, 0.0) + layer.latency_s
    for k in ["compute", *job.levels]:
        row[f"bound_{k}"] = mix[k] / tot.latency_s if tot.latency_s > 0 else 0.0


def _uniform_accuracy(job: Job, model: str, q) -> float | None:
    table = job.sensitivity.get(model)
    if table is None:
        return None
    for j, c in enumerate(table.choices):
        if (c.weight_format, c.activation_format, c.pruning.kind) == (q.weights, q.activations, "none"):
            col = table.values[:, j]
            return float(col[np.isfinite(col)].sum())
    return None


def _solve_point(job: Job, p: Point, t, area, q, row: dict) -> None:
    from dataclasses import replace

    from hwsim.cost import estimate
    from hwsim.solve.api import Tables, plan_from
    from hwsim.solve.costs import cost_table

    limits = q.solve.budgets.limits()
    area_limit = limits.pop("area_mm2", None)
    if area_limit is not None and area.area_mm2 > area_limit:
        row.update(status="infeasible", min_area_mm2=area.area_mm2, area_mm2=area.area_mm2,
                   message=f"area {area.area_mm2:.4g} mm^2 > budget {area_limit:g} (fixed by the hardware point)")
        return
    graph, full, chs = job.graphs[p.model], job.sensitivity[p.model], job.choices[p.quant_idx]
    cols = [full.choices.index(c) for c in chs]
    sens = replace(full, choices=chs, values=full.values[:, cols])
    tb = Tables(graph, t, sens, cost_table(graph, t, chs, job.spec.seed))
    plan = plan_from(tb, limits, seed=job.spec.seed)
    if plan.status == "infeasible":
        mins = {k: b.min_reachable for k, b in plan.budgets.items()}
        row.update(status="infeasible", **{f"min_{k}": v for k, v in mins.items()},
                   message="; ".join(f"{k} >= {v:.4g} reachable" for k, v in mins.items()))
        return
    _fill(row, estimate(graph, t, config=plan.config(), seed=job.spec.seed), job)
    row.update(status="ok", accuracy_proxy=plan.objective if job.spec.accuracy else None,
               message="" if plan.status == "optimal" else f"solver status {plan.status}")


def evaluate(job: Job, p: Point) -> dict:
    """The row of one point; errors are caught and recorded."""
    from hwsim.cost.area import area as area_of

    row = empty_row(job, p)
    try:
        t, key = _target(job, p)
        area = area_of(t)
        row["area_mm2"] = area.area_mm2 if area is not None else None
        q = job.spec.quantization[p.quant_idx]
        if q.solve is not None:
            _solve_point(job, p, t, area, q, row)
            return row
        graph, cache = _graph(job, p.model, q, t.activation_scope)
        _fill(row, cache.report(graph, t, job.spec.seed, key), job)
        row.update(status="ok", accuracy_proxy=_uniform_accuracy(job, p.model, q) if job.spec.accuracy else None)
    except HwsimError as exc:
        row.update(status="error", message=str(exc))
    except Exception as exc:  # a bug, or hardware the model cannot price: record it, keep sweeping
        row.update(status="error", message=f"{type(exc).__name__}: {exc}")
    return row


def run_batch(job: Job, points: list[Point]) -> list[dict]:
    """Rows of a batch of points (the Dask task)."""
    return [evaluate(job, p) for p in points]
