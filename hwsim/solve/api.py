"""The public entry points: :func:`solve`, :func:`pareto` and :func:`tables` (what both build on)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError, HwsimError
from hwsim.graph.ir import Graph
from hwsim.solve.cache import SensitivityCache
from hwsim.solve.choices import Choice, choices_for
from hwsim.solve.costs import CostTable, cost_table
from hwsim.solve import knapsack
from hwsim.solve.data import CalibData, load_npz, synthetic
from hwsim.solve.plan import Plan, solve_tables
from hwsim.solve.output_error import float_values, measure
from hwsim.solve.proxy import measure_proxy
from hwsim.solve.sensitivity_table import METRICS, ProgressFn, SensitivityTable, Tails
from hwsim.solve.verify import PlanMeter

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
    #: simulates whole plans on the sensitivity's samples (None: metric proxy, plans are not simulated)
    meter: PlanMeter | None = None


def _sim_graph(model, shapes: dict, n: int, inputs: dict | None = None) -> tuple[Graph, int, list[str]]:
    """The model built with batch ``n`` when it has a batch parameter / dynamic dim, else as is."""
    from hwsim.graph.zoo import load_model

    if not isinstance(model, Graph):
        try:
            g = load_model(model, {**shapes, "batch": n}, inputs)
            if all(g.tensors[i].shape[:1] == (n,) for i in g.inputs if g.tensors[i].shape):  # 0-d: shared
                return g, n, []
        except HwsimError:  # no batch parameter or dim: fall back to the model's own batch
            pass
    g = model if isinstance(model, Graph) else load_model(model, shapes, inputs)
    b = next((g.tensors[i].shape[0] for i in g.inputs if g.tensors[i].shape), 1)
    return g, b, [f"model has a fixed batch of {b}: sensitivity measured on {b} sample(s)"]


def _batched(model, shapes: dict, n: int, inputs: dict | None = None, samples: bool = False):
    """``m -> the model built for m * n samples`` (None when its batch cannot be set). With
    ``samples``, ``inputs`` are the ``n`` calibration samples, stacked ``m`` times for the build."""
    def build(m: int) -> Graph | None:
        values = {k: np.concatenate([v] * m) if v.ndim else v for k, v in inputs.items()} if samples else inputs
        g, b, _ = _sim_graph(model, shapes, m * n, values)
        return g if b == m * n else None

    return build


def _calib_inputs(model, calib) -> CalibData | None:
    """The calibration data of an ONNX model, read before the model (its arrays give the model
    its shapes and control values); None for other models or without data."""
    if calib is None or isinstance(model, Graph) or not str(model).endswith(".onnx"):
        return None
    if isinstance(calib, CalibData):
        return calib
    from types import SimpleNamespace

    from hwsim.graph.onnx import input_names

    return load_npz(calib, SimpleNamespace(inputs=input_names(model)))


def _priced_inputs(model, shapes: dict, data: CalibData, inputs: dict | None) -> tuple[Graph, dict, dict, list[str]]:
    """The priced model, the arrays it was built with, the arrays to build the measured model
    with, and notes; for an ONNX model with calibration ``data``.

    ``inputs`` given: they must agree with the data on per-sample shapes and scalars (else the
    model measured would not be the model priced); the measured model is built for the samples.
    Else the data's scalars (control values) are used, and when the model has dynamic dims
    besides its batch, the first sample gives them (the measured model is then built for the
    samples)."""
    from hwsim.errors import ShapeError

    samples = data.inputs
    if inputs is not None:
        _check_agree(inputs, samples)
        return _cost_graph(model, shapes, inputs), inputs, samples, []
    scalars = {k: v for k, v in samples.items() if not v.ndim}
    try:
        trial = dict(shapes)
        graph = _cost_graph(model, trial, scalars)
        shapes.update(trial)
        return graph, scalars, scalars, []
    except ShapeError:  # priced at batch 1 (as :func:`_cost_graph`) unless shapes bind the batch
        k = shapes.get("batch", 1) if isinstance(shapes.get("batch", 1), int) else 1
        first = {name: np.repeat(v[:1], k, axis=0) if v.ndim else v for name, v in samples.items()}
        return (_cost_graph(model, shapes, first), first, samples,
                [f"input shapes and control values priced from the first sample of {data.source}"])


def _check_agree(inputs: dict, samples: dict) -> None:
    for name, v in inputs.items():
        c = samples.get(name)
        if c is None:
            continue
        if v.ndim != c.ndim or v.shape[1:] != c.shape[1:] or (v.ndim == 0 and not np.array_equal(v, c)):
            what = f"{v.item()!r} and {c.item()!r}" if v.ndim == 0 == c.ndim else \
                f"shapes {v.shape} and {c.shape} (samples first)"
            raise ConfigError(f"calib: input {name!r} differs from the inputs the model is priced with ({what}); "
                              "sensitivity is measured on the calibration data, so give both one per-sample "
                              "shape and the same control values", param="calib")


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
           progress: ProgressFn | None = None, inputs: dict | None = None, tails: Tails = "exact") -> Tables:
    """Choices, sensitivity table and cost table of a model on a target.

    ``inputs`` (arrays by input name) give an ONNX model its input shapes and control values.
    ``tails``: ``"exact"``, or an estimate of output_mse: ``"gain"`` (:mod:`hwsim.solve.layer_gain`) or
    ``"cut"`` (:mod:`hwsim.solve.cut_gain`).

    ``progress`` is called with ``(done, total, what)`` while sensitivities are measured.
    """
    from hwsim.targets import load_target

    if metric not in METRICS:
        raise ConfigError(f"metric: {metric!r} is unknown; use one of {', '.join(METRICS)}", param="metric")
    if tails != "exact" and metric != "output_mse":
        raise ConfigError(f"tails: {tails!r} estimates output_mse only; use tails 'exact' with metric {metric}",
                          param="tails")
    t0 = time.perf_counter()
    knapsack.prefetch()  # the solvers' scipy loads while the sensitivities are measured
    shapes = dict(shapes or {})
    t = load_target(target)
    cdata, priced = _calib_inputs(model, calib), []
    if cdata is None:
        graph, sim_inputs = _cost_graph(model, shapes, inputs), inputs
    else:  # the data give an ONNX model its shapes and control values
        graph, inputs, sim_inputs, priced = _priced_inputs(model, shapes, cdata, inputs)
    chs = choices if isinstance(choices, list) else choices_for(choices, t)
    n = samples or (DEFAULT_SAMPLES if calib is not None else DEFAULT_SYNTHETIC_SAMPLES)
    if calib is not None:  # never ask for more samples than the file holds
        n = min(n, (cdata or _data(graph, calib, 0, seed)).samples)
    g, data = graph, None
    stacked = cdata is not None and sim_inputs is cdata.inputs  # built for the samples measured
    if stacked:
        sim_inputs = cdata.take(n).inputs
    if metric != "proxy" or calib is not None:
        try:
            g, n, notes = _sim_graph(model, shapes, n, sim_inputs)
        except HwsimError:
            if not stacked:
                raise
            g, n, notes = _sim_graph(model, shapes, n, inputs)  # e.g. a fixed batch: as priced
            sim_inputs, stacked = inputs, False
        data = cdata.take(n) if cdata is not None else _data(g, calib, n, seed)
        data = CalibData(data.inputs, data.labels, data.source, data.notes + notes)
    t1 = time.perf_counter()
    meter = None
    if metric == "proxy":  # with real data, one float run gives the input statistics
        ref = None if data is None else float_values(g, data, seed)[1]
        sens = measure_proxy(graph, chs, ref, seed)
    else:
        from hwsim.sim.runner import ensure_weights

        meter = PlanMeter(ensure_weights(g, seed), data, metric, seed)
        sens = measure(meter.graph, chs, data, metric, SensitivityCache(cache_dir), seed, progress,
                       None if isinstance(model, Graph) else _batched(model, shapes, n, sim_inputs, stacked), tails,
                       meter.reference)
    if priced:
        sens = replace(sens, notes=priced + list(sens.notes))
    if data is not None:  # a float reference the sensitivities compare with: is it the float model?
        from hwsim.sim.metrics import CLAMP_REMEDY_SOLVE, clamp_at_zero_note

        clamp = clamp_at_zero_note(g, compares="the sensitivities compare", remedy=CLAMP_REMEDY_SOLVE)
        if clamp:
            sens = replace(sens, notes=list(sens.notes) + [clamp])
    t2 = time.perf_counter()
    costs = cost_table(graph, t, chs, seed)
    timings = {"load_s": t1 - t0, "sensitivity_s": t2 - t1, "costs_s": time.perf_counter() - t2}
    return Tables(graph, t, sens, costs, timings, meter)


def solve(model, target, budgets: dict[str, float], choices: str | list[Choice] | None = None,
          metric: str = "output_mse", calib=None, samples: int | None = None, cache_dir=None,
          shapes: dict | None = None, seed: int = 0, progress: ProgressFn | None = None,
          max_rounds: int = 4, tails: Tails = "exact", simulate_plans: bool = True) -> Plan:
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
    tails : {"exact", "cut", "gain"}
        ``exact`` runs every layer's descendants; the estimates of output_mse: ``gain`` runs one
        choice per layer to the outputs and scales the layer's other choices by its gain
        (:mod:`hwsim.solve.layer_gain`), ``cut`` scales most values from the error at the next cut
        of the graph (:mod:`hwsim.solve.cut_gain`).
    simulate_plans : bool
        Simulate candidate plans as whole models on the samples and return the one measured best
        (:func:`plan_from`); False: pick by summed sensitivity alone.

    Returns
    -------
    Plan
        Status ``infeasible`` carries each budget's minimum reachable value.
    """
    tb = tables(model, target, choices, metric, calib, samples, cache_dir, shapes, seed, progress, tails=tails)
    return plan_from(tb, budgets, max_rounds, seed, simulate_plans)


def plan_from(tb: Tables, budgets: dict[str, float], max_rounds: int = 4, seed: int = 0,
              simulate_plans: bool = True) -> Plan:
    """Solve on already built tables (reuse them across budgets).

    With ``simulate_plans`` and a simulated metric, the candidate plans (one per activation format
    the tensors no solver layer chooses may take, where it meets every budget) are simulated as
    whole models on the sensitivity's samples and the one measured best is returned, its
    ``measured`` set (:func:`hwsim.solve.plan.solve_tables`, :mod:`hwsim.solve.verify`).
    """
    meter = tb.meter if simulate_plans else None
    return solve_tables(tb.graph, tb.target, tb.sensitivity.values, tb.costs, budgets, tb.sensitivity.metric,
                        max_rounds, seed, tb.sensitivity.notes, meter)


def pareto(tb: Tables, name: str, points: int = 8, budgets: dict[str, float] | None = None,
           max_rounds: int = 4, seed: int = 0, simulate_plans: bool = True) -> list[Plan]:
    """Plans along budget ``name`` from its minimum reachable value to the unconstrained plan's cost.

    Other ``budgets`` stay in force. Points are spaced evenly; infeasible points are dropped.
    ``simulate_plans``: as :func:`plan_from`, at every point; and a point whose plan simulates worse
    than the plan of a tighter point (which meets its budgets too) takes that plan instead, its
    notes saying so, so the simulated error never rises along the front.
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
    plans: list[Plan] = []
    for limit in np.linspace(lo, max(hi, lo), points):
        p = plan_from(tb, {**(budgets or {}), name: float(limit)}, max_rounds, seed, simulate_plans)
        if p.status != "infeasible":
            plans.append(_kept_if_better(plans, p, name))
    return plans


def _kept_if_better(tighter: list[Plan], plan: Plan, name: str) -> Plan:
    """``plan``, or the best-measured of the ``tighter`` points' plans where that one simulated
    better and meets every budget (always, when met at a tighter limit of ``name``), with the
    limits of ``plan`` and a note saying why."""
    met = [p for p in tighter if p.measured is not None and p.status in ("optimal", "time_limit")]
    if plan.measured is None or not met:
        return plan
    best = min(met, key=lambda p: p.measured)
    if best.measured >= plan.measured:
        return plan
    uses = {k: best.budgets[k].model_copy(update={"limit": b.limit}) for k, b in plan.budgets.items()}
    why = (f"the plan solved at {name} <= {plan.budgets[name].limit:.6g} simulated to {plan.metric} "
           f"{plan.measured:.4g}; this plan, solved at the tighter {name} <= {best.budgets[name].limit:.6g}, "
           f"simulated to {best.measured:.4g} and meets these budgets too, so it is kept")
    spent = {k: getattr(plan, k) for k in ("solve_s", "milp_s", "estimate_s", "simulate_s")}  # this point's work
    return best.model_copy(update={"budgets": uses, "notes": best.notes + (why,), **spent})
