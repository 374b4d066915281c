"""The public entry points: :func:`solve`, :func:`pareto` and :func:`tables` (what both build on)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError, HwsimError
from hwsim.graph.ir import Graph
from hwsim.solve.cache import SensitivityCache
from hwsim.solve.choices import Choice, choices_for
from hwsim.solve.costs import CostTable, cost_table
from hwsim.solve.data import CalibData, load_npz, synthetic
from hwsim.solve.plan import Plan, solve_tables
from hwsim.solve.output_error import float_values, measure
from hwsim.solve.proxy import measure_proxy
from hwsim.solve.sensitivity_table import METRICS, ProgressFn, SensitivityTable

#: samples simulated for sensitivity: from calibration data, and synthetic (zoo models, no data)
DEFAULT_SAMPLES = 16
DEFAULT_SYNTHETIC_SAMPLES = 8


@dataclass(frozen=True)
class Tables:
    """Everything the solver needs for one (model, target, choices, metric, data)."""

    graph: Graph
    target: object
    sensitivity: SensitivityTable
    costs: CostTable
    #: wall time of each step, s: ``load_s`` (model, target, data), ``sensitivity_s``, ``costs_s``
    timings: dict[str, float] = field(default_factory=dict)


def _sim_graph(model, shapes: dict, n: int, inputs: dict | None = None) -> tuple[Graph, int, list[str]]:
    """The model built with batch ``n`` when it has a batch parameter / dynamic dim, else as is."""
    from hwsim.graph.zoo import load_model

    if not isinstance(model, Graph):
        try:
            g = load_model(model, {**shapes, "batch": n}, inputs)
            if all(g.tensors[i].shape[:1] == (n,) for i in g.inputs):
                return g, n, []
        except HwsimError:  # no batch parameter or dim: fall back to the model's own batch
            pass
    g = model if isinstance(model, Graph) else load_model(model, shapes, inputs)
    b = g.tensors[g.inputs[0]].shape[0] if g.inputs and g.tensors[g.inputs[0]].shape else 1
    return g, b, [f"model has a fixed batch of {b}: sensitivity measured on {b} sample(s)"]


def _batched(model, shapes: dict, n: int, inputs: dict | None = None):
    """``m -> the model built for m * n samples`` (None when its batch cannot be set)."""
    def build(m: int) -> Graph | None:
        g, b, _ = _sim_graph(model, shapes, m * n, inputs)
        return g if b == m * n else None

    return build


def _cost_graph(model, shapes: dict, inputs: dict | None = None) -> Graph:
    """The model as costed: a dynamic batch dimension is bound to 1 unless ``shapes`` binds it."""
    from hwsim.errors import ShapeError
    from hwsim.graph.zoo import load_model

    try:
        return load_model(model, shapes, inputs)
    except ShapeError:
        if "batch" in shapes:
            raise
        shapes["batch"] = 1
        return load_model(model, shapes, inputs)


def _data(graph: Graph, calib, samples: int, seed: int) -> CalibData:
    if isinstance(calib, CalibData):
        return calib.take(samples)
    if calib is not None:
        return load_npz(calib, graph, samples)
    return synthetic(graph, samples, seed)


def tables(model, target, choices: str | list[Choice] | None = None, metric: str = "output_mse",
           calib: str | Path | CalibData | None = None, samples: int | None = None,
           cache_dir: str | Path | None = None, shapes: dict | None = None, seed: int = 0,
           progress: ProgressFn | None = None, inputs: dict | None = None) -> Tables:
    """Choices, sensitivity table and cost table of a model on a target.

    ``inputs`` (arrays by input name) give an ONNX model its input shapes and control values.

    ``progress`` is called with ``(done, total, what)`` while sensitivities are measured.
    """
    from hwsim.targets import load_target

    if metric not in METRICS:
        raise ConfigError(f"metric: {metric!r} is unknown; use one of {', '.join(METRICS)}", param="metric")
    t0 = time.perf_counter()
    shapes = dict(shapes or {})
    t = load_target(target)
    graph = _cost_graph(model, shapes, inputs)
    chs = choices if isinstance(choices, list) else choices_for(choices, t)
    n = samples or (DEFAULT_SAMPLES if calib is not None else DEFAULT_SYNTHETIC_SAMPLES)
    if calib is not None:  # never ask for more samples than the file holds
        n = min(n, _data(graph, calib, 0, seed).samples)
    g, data = graph, None
    if metric != "proxy" or calib is not None:
        g, n, notes = _sim_graph(model, shapes, n, inputs)
        data = _data(g, calib, n, seed)
        data = CalibData(data.inputs, data.labels, data.source, data.notes + notes)
    t1 = time.perf_counter()
    if metric == "proxy":  # with real data, one float run gives the input statistics
        ref = None if data is None else float_values(g, data, seed)[1]
        sens = measure_proxy(graph, chs, ref, seed)
    else:
        sens = measure(g, chs, data, metric, SensitivityCache(cache_dir), seed, progress,
                       None if isinstance(model, Graph) else _batched(model, shapes, n, inputs))
    t2 = time.perf_counter()
    costs = cost_table(graph, t, chs, seed)
    timings = {"load_s": t1 - t0, "sensitivity_s": t2 - t1, "costs_s": time.perf_counter() - t2}
    return Tables(graph, t, sens, costs, timings)


def solve(model, target, budgets: dict[str, float], choices: str | list[Choice] | None = None,
          metric: str = "output_mse", calib=None, samples: int | None = None, cache_dir=None,
          shapes: dict | None = None, seed: int = 0, progress: ProgressFn | None = None,
          max_rounds: int = 4) -> Plan:
    """Per-layer formats and pruning minimising summed sensitivity under every budget.

    Parameters
    ----------
    model : str, Path or Graph
        Zoo name, model YAML or ONNX path (or a Graph: then its own batch is the sample count).
    target : str, Path or Target
    budgets : dict of str to float
        ``latency_s`` (s), ``energy_j`` (J), ``size_bytes`` (B), ``bops`` -> limit (``<=``).
    choices : str or list of Choice, optional
        ``"w=int8,int4;a=int8;prune=0,2:4"``; default: what the target supports.
    metric : {"output_mse", "task_loss", "proxy"}
    calib : path to .npz or CalibData, optional
        Calibration inputs (and labels); default seeded synthetic inputs.
    samples : int, optional
        Samples simulated (default 16 from ``calib``, 8 synthetic).
    cache_dir : path, optional
        Sensitivity cache (default ``$XDG_CACHE_HOME/hwsim`` or ``~/.cache/hwsim``).

    Returns
    -------
    Plan
        Status ``infeasible`` carries each budget's minimum reachable value.
    """
    tb = tables(model, target, choices, metric, calib, samples, cache_dir, shapes, seed, progress)
    return plan_from(tb, budgets, max_rounds, seed)


def plan_from(tb: Tables, budgets: dict[str, float], max_rounds: int = 4, seed: int = 0) -> Plan:
    """Solve on already built tables (reuse them across budgets)."""
    return solve_tables(tb.graph, tb.target, tb.sensitivity.values, tb.costs, budgets, tb.sensitivity.metric,
                        max_rounds, seed, tb.sensitivity.notes)


def pareto(tb: Tables, name: str, points: int = 8, budgets: dict[str, float] | None = None,
           max_rounds: int = 4, seed: int = 0) -> list[Plan]:
    """Plans along budget ``name`` from its minimum reachable value to the unconstrained plan's cost.

    Other ``budgets`` stay in force. Points are spaced evenly; infeasible points are dropped.
    """
    from hwsim.solve.costs import BUDGETS

    if name not in BUDGETS:
        raise ConfigError(f"name: budget {name!r} is unknown; use one of {', '.join(BUDGETS)}", param="name")
    if points < 2:
        raise ConfigError("points: a front needs at least 2 points", param="points")
    table = tb.costs.tables[name]
    vals = tb.sensitivity.values
    ok = np.isfinite(table) & np.isfinite(vals)
    lo = min(c.base[name] for c in tb.costs.at_shared()) + np.where(ok, table, np.inf).min(axis=1).sum()
    best = np.where(ok, vals, np.inf).argmin(axis=1)
    hi = tb.costs.base[name] + table[np.arange(len(best)), best].sum()
    plans = []
    for limit in np.linspace(lo, max(hi, lo), points):
        p = plan_from(tb, {**(budgets or {}), name: float(limit)}, max_rounds, seed)
        if p.status != "infeasible":
            plans.append(p)
    return plans
