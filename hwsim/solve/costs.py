"""Cost of each (layer, choice) from :func:`hwsim.estimate`, and the verifying whole-model estimate.

Assumption (checked afterwards): a layer's cost depends only on its own formats and pruning.
So the whole model is estimated once per distinct choice, with every layer taking that choice,
and each layer's row is read off. What no layer owns (norms, pooling, attention matmuls, the
activations between layers) is the *base*, taken from the estimate of a *base choice*: one of
the choices' weight formats, unpruned, and one of their activation formats (:func:`shared_choices`
lists them, one base each). Its formats become the plan's defaults for tensors no layer chooses
(embeddings, the residual stream, norm and softmax inputs, attention matmuls), so a per-layer
choice of a narrow activation format narrows only that layer's inputs; sensitivities, measured one layer at a
time with the rest of the model in float, never see those shared tensors. Which formats they take
is decided by :func:`hwsim.solve.plan.solve_tables` (the most precise weight format at which every
budget can be met, and the activation format whose plan simulates best). The assumption
breaks where the target decides something from the whole model, e.g. whether all weights fit
on chip; :func:`hwsim.solve.plan.solve` therefore re-estimates every plan as a whole and
tightens the budgets it misses.

Budgets: ``latency_s`` and ``energy_j`` (as estimate totals), ``size_bytes`` (stored weight and
bias bytes at their formats, scales included: ``total.weight_bytes`` of the estimate; pruning
does not shrink it, as the cost model stores pruned weights dense), ``bops`` (MACs x weight bits
x activation bits x weight density, summed over layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hwsim.graph.annotate import QuantConfig, apply_config
from hwsim.graph.ir import Graph
from hwsim.solve.choices import Choice
from hwsim.solve.configs import uniform_config
from hwsim.solve.layers import prunable, solver_layers

BUDGETS = ("latency_s", "energy_j", "size_bytes", "bops")


@dataclass(frozen=True)
class CostTable:
    """Per-(layer, choice) costs and the base every plan pays.

    Attributes
    ----------
    layers : list of str
    choices : list of Choice
    tables : dict of str to numpy.ndarray, each (L, C)
        ``latency_s``, ``energy_j``, ``size_bytes``, ``bops``; ``inf`` where the choice does not apply.
    base : dict of str to float
        Cost outside the solver layers (same keys), with ``default``'s formats.
    default : Choice
        Formats of weights and activations that no solver layer chooses (the base's).
    estimates : int
        Calls to :func:`hwsim.estimate` made.
    shared : tuple of (Choice, dict of str to float)
        Every base choice the tensors no solver layer chooses may take, with its base cost; most
        precise activation format first (``default`` and ``base`` are the first).
    """

    layers: list[str]
    choices: list[Choice]
    tables: dict[str, np.ndarray]
    base: dict[str, float]
    default: Choice
    estimates: int = 0
    notes: list[str] = field(default_factory=list)
    shared: tuple = ()

    def at_shared(self) -> list["CostTable"]:
        """This table with each of the ``shared`` base choices (most precise first)."""
        return [replace(self, default=d, base=b) for d, b in self.shared] or [self]

    def totals(self, choice_idx: np.ndarray) -> dict[str, float]:
        """Predicted totals of a plan (base + the chosen rows)."""
        idx = np.arange(len(self.layers))
        return {k: float(self.base[k] + t[idx, choice_idx].sum()) for k, t in self.tables.items()}


def _layer_bytes(g: Graph, name: str) -> float:
    op = g.op(name)
    slots = set(type(op).weight_slots) | set(type(op).bias_slots)
    return sum(g.tensors[t].size_bytes for i, t in enumerate(op.inputs) if i in slots)


def cost_table(graph: Graph, target, choices: list[Choice], seed: int = 0) -> CostTable:
    """Price every (layer, choice) (see module docstring and :mod:`hwsim.solve.reps`).

    One whole-model estimate at the first choice gives the base; each choice then prices only
    the distinct layers of a stand-in graph that carries the whole model's weight bytes.
    """
    from hwsim.cost import estimate
    from hwsim.solve.reps import stand_in, with_filler

    layers = solver_layers(graph)
    mini, rep = stand_in(graph, layers)
    reps = list(dict.fromkeys(rep.values()))
    shared, fulls = _shared_estimates(graph, target, layers, shared_choices(choices), seed)
    default = shared[0]
    bases = [_base(f, mini, rep, reps, layers, d) for f, d in zip(fulls, shared)]
    full, base = fulls[0], bases[0]
    tables = {k: np.full((len(layers), len(choices)), np.inf) for k in BUDGETS}
    rows_of = {layer: i for i, layer in enumerate(layers)}
    for j, ch in enumerate(choices):
        cfg = uniform_config(mini, reps, ch)
        mq = apply_config(mini, cfg)
        nbytes = {r: _layer_bytes(mq, r) for r in reps}
        total = base["size_bytes"] + sum(nbytes[rep[n]] for n in layers)
        rows = {r.name: r for r in estimate(with_filler(mini, total - mq.total_weight_bytes), target,
                                            config=cfg, seed=seed).layers}
        for layer in layers:
            r, i = rep[layer], rows_of[layer]
            if not prunable(graph, layer, ch):
                continue
            op = mq.op(r)
            tables["latency_s"][i, j] = rows[r].latency_s if r in rows else 0.0
            tables["energy_j"][i, j] = rows[r].energy_j if r in rows else 0.0
            tables["size_bytes"][i, j] = nbytes[r]
            tables["bops"][i, j] = mq.macs(op) * ch.weight_bits * ch.activation_bits * op.pruning.density
    notes = list(dict.fromkeys(graph.notes))  # the import's (e.g. shapes that bound nothing)
    notes += [f"costs: {len(set(rep.values()))} distinct of {len(layers)} layers priced per choice ({len(choices)}) "
             f"on a stand-in graph; whole plan re-estimated"]
    if default in choices:
        notes += _check_rows(full, tables["energy_j"][:, choices.index(default)], layers)
    return CostTable(layers, choices, tables, base, default, len(choices) + len(shared), notes,
                     tuple(zip(shared, bases)))


def _base(full, mini: Graph, rep: dict, reps: list[str], layers: list[str], default: Choice) -> dict[str, float]:
    """Cost outside the solver layers, from the whole-model estimate ``full`` at ``default``."""
    own = set(layers)
    base = {"latency_s": sum(r.latency_s for r in full.layers if r.name not in own),
            "energy_j": sum(r.energy_j for r in full.layers if r.name not in own), "bops": 0.0}
    dq = apply_config(mini, uniform_config(mini, reps, default))
    base["size_bytes"] = full.total.weight_bytes - sum(_layer_bytes(dq, rep[n]) for n in layers)
    return base


def _shared_estimates(graph: Graph, target, layers: list[str], shared: list[Choice], seed: int):
    """(base choices, whole-model estimate at each): a less precise weight format that the tensors no
    solver layer chooses cannot take (e.g. a block format on an embedding) is left out."""
    from hwsim.cost import estimate
    from hwsim.errors import ConfigError

    kept, fulls = [], []
    for d in shared:
        try:
            fulls.append(estimate(graph, target, config=uniform_config(graph, layers, d), seed=seed))
        except ConfigError:
            if d.weight_format == shared[0].weight_format:
                raise
            continue
        kept.append(d)
    return kept, fulls


def shared_choices(choices: list[Choice]) -> list[Choice]:
    """Formats the tensors no solver layer chooses may take, unpruned: the most precise weight format
    among ``choices`` with each of their activation formats (most precise first; first on ties),
    then the least precise weight format with the least precise activation format (every tensor
    at the cheapest formats, e.g. the uniform int4 plan a user can write by hand). Formats in
    between are not offered: each base costs a whole-model estimate (36 on llama2-7b's h100-sxm
    choices took 36 s)."""
    from hwsim import formats

    def bits(name: str) -> float:
        return formats.get(name).bits_per_element

    weights = sorted(dict.fromkeys(c.weight_format for c in choices), key=bits, reverse=True)
    acts = sorted(dict.fromkeys(c.activation_format for c in choices), key=bits, reverse=True)
    cheapest = [Choice(weight_format=weights[-1], activation_format=acts[-1])] if len(weights) > 1 else []
    return [Choice(weight_format=weights[0], activation_format=a) for a in acts] + cheapest


def _check_rows(full, predicted: np.ndarray, layers: list[str]) -> list[str]:
    """A note when the stand-in prices a layer differently from the whole model (same formats)."""
    rows = {r.name: r.energy_j for r in full.layers}
    worst = max((abs(p - rows.get(n, 0.0)) / max(abs(rows.get(n, 0.0)), 1e-300)
                 for n, p in zip(layers, predicted) if np.isfinite(p)), default=0.0)
    return [f"stand-in layer energy differs from the whole model by up to {worst:.2%}"] if worst > 1e-6 else []


def actual_totals(graph: Graph, target, config: QuantConfig, seed: int = 0) -> tuple[dict[str, float], object]:
    """Totals of a plan from one whole-model estimate (the verification), and the report."""
    from hwsim.cost import estimate

    from hwsim.targets import load_target

    g = apply_config(graph, config, target_scope=load_target(target).activation_scope)
    rep = estimate(g, target, seed=seed)
    bops = 0.0
    for name in solver_layers(g):
        op = g.op(name)
        w, xs = g.weight(op), g.activation_inputs(op)
        abits = max(x.quant.bits for x in xs) if xs else 32.0
        bops += g.macs(op) * w.quant.bits * abits * op.pruning.density
    totals = {"latency_s": rep.total.latency_s, "energy_j": rep.total.energy_j,
              "size_bytes": rep.total.weight_bytes, "bops": bops}
    return totals, rep
