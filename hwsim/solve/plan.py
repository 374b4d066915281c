"""``solve``: sensitivities + costs -> exact MCKP -> a Plan verified by re-estimating the whole model.

Layers that read one activation tensor are tied: they must choose the same activation format
(the tensor has one). Loop: solve the knapsack with each budget reduced by the base cost; estimate the whole model
under the plan; if a total misses its limit, tighten that budget to the plan's own predicted total less 1.25
times the miss (so the same plan is excluded) and solve again, at most ``max_rounds`` times. The returned Plan
carries the re-estimated totals, never the predicted ones, and its status says whether every budget is met. Given a
:class:`hwsim.solve.verify.PlanMeter`, the candidate plans (one per format of the tensors no solver layer
chooses) are simulated as whole models and the one measured best is returned, its ``measured`` set.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
from pydantic import Field

from hwsim.errors import ConfigError, MemoryLimitError
from hwsim.graph.annotate import QuantConfig
from hwsim.records import Record
from hwsim.solve.choices import Choice
from hwsim.solve.configs import plan_config
from hwsim.solve.costs import BUDGETS, CostTable, actual_totals
from hwsim.solve.layers import tie_groups
from hwsim.solve.knapsack import mckp

#: a missed budget is tightened by this multiple of the miss (the miss of the next plan is alike)
_OVERSHOOT = 1.25

Status = Literal["optimal", "infeasible", "time_limit", "budget_missed"]


class PlanLayer(Record):
    """What one layer runs in the plan."""

    name: str = Field(description="Layer (op) name.")
    weight_format: str = Field(description="Weight format.")
    activation_format: str = Field(description="Format of the layer's activation inputs.")
    pruning: str = Field(description="Pruning label: 0, 50%, 2:4, ch25%.")
    sensitivity: float = Field(description="Metric value of this (layer, choice).")


class BudgetUse(Record):
    """A budget, what the plan uses of it (re-estimated) and what the table predicted."""

    limit: float = Field(description="The '<=' limit, in the budget's unit.")
    value: float | None = Field(description="Re-estimated total of the plan (None when infeasible).")
    predicted: float | None = Field(description="Total predicted from the per-layer table.")
    min_reachable: float = Field(description="Smallest total any plan reaches on this budget alone.")


class Plan(Record):
    """A solved plan: per-layer choices, budgets, the verified totals."""

    status: Status = Field(description="optimal (every budget met, proven optimal on the table), infeasible, "
                                       "time_limit, or budget_missed (the re-estimate still misses a budget).")
    objective: float | None = Field(description="Summed sensitivity of the chosen (layer, choice) pairs.")
    metric: str = Field(description="Sensitivity metric.")
    budgets: dict[str, BudgetUse] = Field(description="Budget name -> limit, re-estimated value, prediction.")
    layers: tuple[PlanLayer, ...] = Field(description="One entry per solver layer (conv2d, linear), in graph order.")
    quant_config: QuantConfig | None = Field(None, description="The plan as the quant config that was verified.")
    total: dict = Field(default_factory=dict, description="The re-estimate's totals (as hwsim.estimate).")
    rounds: int = Field(0, description="Solve / re-estimate rounds.")
    solve_s: float = Field(0.0, description="Wall time of the whole solve, s.")
    milp_s: float = Field(0.0, description="Part of solve_s in the knapsack solver (all rounds), s.")
    estimate_s: float = Field(0.0, description="Part of solve_s re-estimating plans as a whole, s.")
    measured: float | None = Field(None, description="The metric of the whole plan simulated on the calibration "
                                                     "samples (every layer at its choice, the other tensors at the "
                                                     "plan's defaults); None when not simulated.")
    simulate_s: float = Field(0.0, description="Part of solve_s simulating candidate plans as a whole, s.")
    notes: tuple[str, ...] = Field((), description="Data used, assumptions, tightening rounds.")

    def config(self) -> QuantConfig:
        """The plan as a quant config (``hwsim estimate --config`` / ``hwsim simulate --config``)."""
        if self.quant_config is None:
            raise ConfigError(f"a plan with status {self.status!r} has no config")
        return self.quant_config

    def to_json(self) -> dict:
        """{"status", "objective", "metric", "budgets": {NAME: {"limit", "value", ...}}, "layers": [...],
        "measured", "total", "rounds", "notes"}."""
        return {
            "status": self.status, "objective": self.objective, "metric": self.metric,
            "budgets": {k: {"limit": b.limit, "value": b.value, "predicted": b.predicted,
                            "min_reachable": b.min_reachable} for k, b in self.budgets.items()},
            "layers": [{"name": x.name, "weight_format": x.weight_format, "activation_format": x.activation_format,
                        "pruning": x.pruning} for x in self.layers],
            "measured": self.measured, "total": self.total, "rounds": self.rounds, "notes": list(self.notes),
        }


def check_budgets(budgets: dict[str, float]) -> None:
    unknown = sorted(set(budgets) - set(BUDGETS))
    if unknown:
        raise ConfigError(f"budgets: unknown name(s) {unknown}; use {', '.join(BUDGETS)} (e.g. energy_j <= 0.002)",
                          param="budgets")
    bad = [k for k, v in budgets.items() if not np.isfinite(v) or v < 0]
    if bad:
        raise ConfigError(f"budgets: {bad} must be finite and >= 0", param="budgets")


def solve_tables(graph, target, values: np.ndarray, costs: CostTable, budgets: dict[str, float], metric: str,
                 max_rounds: int = 4, seed: int = 0, notes: list[str] | None = None, meter=None) -> Plan:
    """Solve, verify by re-estimating, tighten missed budgets; see module docstring.

    Tensors no solver layer chooses take one of the choices' weight formats and one of their
    activation formats (``costs.shared``): the most precise weight format at which a plan meets
    every budget (a less precise one is tried only when a more precise one has no such plan, so a
    plan that sets every tensor to one of the choices, e.g. uniform int4 weights with int8
    activations, is always reachable). Activations: without ``meter``, likewise the most precise
    one at which a plan meets every budget; with ``meter`` (:class:`hwsim.solve.verify.PlanMeter`)
    a plan is solved at every activation format, those that meet every budget are simulated as
    whole models, and the one measured best is returned (the most precise on ties), with its
    ``measured`` value: more bits are not always better (see :mod:`hwsim.solve.verify`).
    """
    check_budgets(budgets)
    t0 = time.perf_counter()
    tried: list[tuple[CostTable, Plan]] = []
    for at in costs.at_shared():  # most precise weight format first: a less precise one only if none meets
        if any(p.status in _MEETS and (meter is None or a.default.weight_format != at.default.weight_format)
               for a, p in tried):
            break
        tried.append((at, _solve_shared(graph, target, values, at, budgets, metric, max_rounds, seed, notes)))
    t = time.perf_counter()
    at, plan, why = _pick(tried, meter, target, metric)
    simulate_s = time.perf_counter() - t if meter is not None else 0.0
    extra = [f"tensors no solver layer chooses at weights {a.default.weight_format}, activations "
             f"{a.default.activation_format}: no plan meets every "
             f"budget ({p.status}; minimum reachable "
             + ", ".join(f"{k} {b.min_reachable:.4g}" for k, b in p.budgets.items()) + ")"
             for a, p in tried if p is not plan and p.status not in _MEETS and len(costs.shared) > 1]
    if plan.status != "infeasible":
        d = plan.quant_config.defaults
        extra.append(f"tensors no solver layer chooses use weights {d.weights}, activations {d.activations} ({why})")
    if plan.measured is not None:
        extra.append(f"whole plan simulated on {meter.describe()}: {metric} {plan.measured:.4g} (the summed "
                     f"per-layer values predicted {plan.objective:.4g})")
    # the table's part of a minimum is the same at every shared format; only the base differs
    uses = {k: b.model_copy(update={"min_reachable": b.min_reachable - at.base[k]
                                    + min(a.base[k] for a in costs.at_shared())})
            for k, b in plan.budgets.items()}
    return plan.model_copy(update={"solve_s": time.perf_counter() - t0, "notes": plan.notes + tuple(extra),
                                   "budgets": uses, "milp_s": sum(p.milp_s for _, p in tried),
                                   "estimate_s": sum(p.estimate_s for _, p in tried), "simulate_s": simulate_s})


#: plan statuses that meet every budget
_MEETS = ("optimal", "time_limit")


def _pick(tried: list[tuple[CostTable, Plan]], meter, target, metric: str) -> tuple[CostTable, Plan, str]:
    """(table, plan, why) of the plan returned among those solved at each shared format (most
    precise first): the first that meets every budget, or with ``meter`` the one of those whose
    whole-model simulation measures best (the first on ties); the rest as :func:`solve_tables`."""
    meets = [(a, p) for a, p in tried if p.status in _MEETS]
    at, plan = meets[0] if meets else next(((a, p) for a, p in tried if p.status != "infeasible"), tried[0])
    why = "the most precise formats among the choices at which the budgets can be met"
    if meter is None or plan.status == "infeasible":
        return at, plan, why
    pool = meets or [(at, plan)]
    scope = _scope(target)
    try:
        errors = meter.errors([p.config() for _, p in pool], scope)
    except MemoryLimitError as exc:  # the whole model does not fit where each layer's tail did
        return at, plan, f"{why}; the plans were not simulated: {exc}"
    best = min(range(len(pool)), key=lambda i: errors[i])
    at, plan = pool[best]
    if len(pool) > 1:
        got = ", ".join(f"{a.default.activation_format} {e:.4g}" for (a, _), e in zip(pool, errors))
        why = (f"the most precise weight format at which the budgets can be met; of the activation formats, the "
               f"one whose plan simulated best, {metric}: {got}" + ("" if best == 0 else
                                                                   "; the more precise measured worse"))
    return at, plan.model_copy(update={"measured": errors[best]}), why


def _solve_shared(graph, target, values: np.ndarray, costs: CostTable, budgets: dict[str, float], metric: str,
                  max_rounds: int, seed: int, notes: list[str] | None) -> Plan:
    """:func:`solve_tables` with the tensors no solver layer chooses at ``costs.default``."""
    eff = {k: v - costs.base[k] for k, v in budgets.items()}
    tables = {k: costs.tables[k] for k in budgets}
    _check_usable(values, tables, costs, metric)
    notes = list(notes or []) + list(costs.notes)
    plan = None
    ties = tie_groups(graph, costs.layers)
    acts = {f: i for i, f in enumerate(dict.fromkeys(c.activation_format for c in costs.choices))}
    labels = np.array([acts[c.activation_format] for c in costs.choices])
    milp_s = estimate_s = 0.0
    for rnd in range(1, max_rounds + 1):
        t = time.perf_counter()
        r = mckp(values, tables, eff, ties=ties, labels=labels)
        milp_s += time.perf_counter() - t
        reach = {k: costs.base[k] + r.min_reachable[k] for k in budgets}
        if r.status == "infeasible" and plan is not None:  # tightened past what the table can reach
            notes.append(f"round {rnd}: no plan left under the tightened budgets; the last plan misses")
            plan = plan.model_copy(update={"status": "budget_missed"})
            break
        if r.status == "infeasible":
            plan = _infeasible(budgets, reach, metric, costs, rnd, notes, 0.0)
            return plan.model_copy(update={"milp_s": milp_s, "estimate_s": estimate_s})
        picks = [costs.choices[c] for c in r.choice]
        t = time.perf_counter()
        cfg = plan_config(graph, costs.layers, picks, costs.default)
        cfg = cfg.model_copy(update={"scope": _scope(target)})  # as priced, so a later simulate agrees
        actual, rep = actual_totals(graph, target, cfg, seed)
        estimate_s += time.perf_counter() - t
        predicted = costs.totals(r.choice)
        missed = {k: actual[k] - budgets[k] for k in budgets if actual[k] > budgets[k] * (1 + 1e-9)}
        plan = _plan(r, picks, values, costs, budgets, actual, predicted, reach, metric, rep, rnd, notes, cfg)
        if not missed:
            break
        for k, miss in missed.items():  # from this plan's own predicted total, so that it is excluded
            eff[k] = min(eff[k], predicted[k] - costs.base[k]) - _OVERSHOOT * miss
        notes.append(f"round {rnd}: re-estimate missed {', '.join(f'{k} by {v:.4g}' for k, v in missed.items())}; "
                     "tightened and re-solved")
    else:
        plan = plan.model_copy(update={"status": "budget_missed"})
    return plan.model_copy(update={"milp_s": milp_s, "estimate_s": estimate_s, "notes": tuple(notes)})


def _scope(target) -> str:
    """The activation scope the plan is priced with: the target's (a plan config states it)."""
    from hwsim.targets import load_target

    return load_target(target).activation_scope


def _check_usable(values: np.ndarray, tables: dict, costs: CostTable, metric: str) -> None:
    """A ConfigError naming the first layer left without a usable choice, and why."""
    finite_cost = np.ones(values.shape, bool)
    for t in tables.values():
        finite_cost &= np.isfinite(t)
    dead = np.flatnonzero(~(np.isfinite(values) & finite_cost).any(axis=1))
    if not dead.size:
        return
    i = int(dead[0])
    row = ", ".join(f"{c.label}: {v:.3g}" for c, v in zip(costs.choices, values[i]))
    if not finite_cost[i].any():
        why = "no choice can be applied to it or priced (e.g. N:M pruning needs M to divide its reduction length)"
    else:
        why = f"its {metric} is not finite for any choice ({row}): the simulated outputs overflow or are NaN"
    raise ConfigError(f"layer {costs.layers[i]!r} has no usable choice: {why}"
                      + (f" (and {dead.size - 1} more layer(s))" if dead.size > 1 else ""))


def _plan(r, picks: list[Choice], values, costs: CostTable, budgets, actual, predicted, reach, metric, rep,
          rounds, notes, cfg: QuantConfig) -> Plan:
    layers = tuple(PlanLayer(name=n, weight_format=c.weight_format, activation_format=c.activation_format,
                             pruning=c.pruning.label, sensitivity=float(values[i, r.choice[i]]))
                   for i, (n, c) in enumerate(zip(costs.layers, picks)))
    uses = {k: BudgetUse(limit=budgets[k], value=actual[k], predicted=predicted[k], min_reachable=reach[k])
            for k in budgets}
    return Plan(status=r.status, objective=r.objective, metric=metric, budgets=uses, layers=layers,
                quant_config=cfg,
                total={**rep.total.model_dump(), "bops": actual["bops"]},
                rounds=rounds, notes=tuple(notes))


def _infeasible(budgets, reach, metric, costs: CostTable, rounds, notes, dt) -> Plan:
    uses = {k: BudgetUse(limit=v, value=None, predicted=None, min_reachable=reach[k]) for k, v in budgets.items()}
    return Plan(status="infeasible", objective=None, metric=metric, budgets=uses, layers=(),
                rounds=rounds, solve_s=dt, notes=tuple(notes))


def infeasible_message(plan: Plan) -> str:
    """What to tell a user whose budgets cannot be met."""
    parts = [f"{k} <= {b.limit:.6g} (minimum reachable {b.min_reachable:.6g})" for k, b in plan.budgets.items()]
    alone = [k for k, b in plan.budgets.items() if b.limit < b.min_reachable]
    why = (f"{', '.join(alone)} below what any plan reaches" if alone
           else "each budget is reachable alone but not all at once")
    return (f"no plan meets the budgets ({why}): " + "; ".join(parts)
            + ". Raise a budget, or add cheaper choices (fewer bits, pruning).")
