"""Cost of each (layer, choice) from :func:`hwsim.estimate`, and plans as quant configs.

Assumption (checked afterwards): a layer's cost depends only on its own formats and pruning.
So the whole model is estimated once per distinct choice, with every layer taking that choice,
and each layer's row is read off. What no layer owns (norms, pooling, attention matmuls, the
activations between layers) is the *base*, taken from the estimate of the first choice (whose
activation format becomes the plan's default for tensors no layer chooses). The assumption
breaks where the target decides something from the whole model, e.g. whether all weights fit
on chip; :func:`hwsim.solve.plan.solve` therefore re-estimates every plan as a whole and
tightens the budgets it misses.

Budgets: ``latency_s`` and ``energy_j`` (as estimate totals), ``size_bytes`` (stored weight and
bias bytes at their formats, scales included: ``total.weight_bytes`` of the estimate; pruning
does not shrink it, as the cost model stores pruned weights dense), ``bops`` (MACs x weight bits
x activation bits x weight density, summed over layers).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np

from hwsim.graph.annotate import LayerRule, QuantConfig, apply_config
from hwsim.graph.ir import Graph
from hwsim.solve.choices import Choice

BUDGETS = ("latency_s", "energy_j", "size_bytes", "bops")


def solver_layers(graph: Graph) -> list[str]:
    """Names of the layers the solver chooses for: conv2d and linear ops (ops with a weight)."""
    return [o.name for o in graph.layers() if graph.weight(o) is not None]


def glob_escape(name: str) -> str:
    """A glob that matches exactly ``name`` (fnmatch metacharacters bracketed)."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def prunable(graph: Graph, layer: str, choice: Choice) -> bool:
    """Whether the choice's pruning can be applied to the layer (N:M needs M | reduction length)."""
    if choice.pruning.kind == "none":
        return True
    w = graph.weight(graph.op(layer))
    if w is None:
        return False
    return choice.pruning.kind != "nm" or (w.numel // w.shape[0]) % choice.pruning.m == 0


def uniform_config(graph: Graph, layers: list[str], choice: Choice) -> QuantConfig:
    """Every solver layer at ``choice`` (pruning left out where it cannot apply)."""
    rules = [LayerRule(match=glob_escape(n), pruning="0") for n in layers if not prunable(graph, n, choice)]
    return QuantConfig(defaults=LayerRule(weights=choice.weight_format, activations=choice.activation_format,
                                          pruning=choice.pruning.label), layers=tuple(rules))


def plan_config(layers: list[str], picks: list[Choice], default_activation: str) -> QuantConfig:
    """The quant config of a plan: default activation format plus one rule per layer."""
    rules = tuple(LayerRule(match=glob_escape(n), weights=c.weight_format, activations=c.activation_format,
                            pruning=c.pruning.label) for n, c in zip(layers, picks))
    return QuantConfig(defaults=LayerRule(activations=default_activation), layers=rules)


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
        Cost outside the solver layers (same keys).
    default_activation : str
        Activation format of tensors no layer chooses.
    estimates : int
        Calls to :func:`hwsim.estimate` made.
    """

    layers: list[str]
    choices: list[Choice]
    tables: dict[str, np.ndarray]
    base: dict[str, float]
    default_activation: str
    estimates: int = 0
    notes: list[str] = field(default_factory=list)

    def totals(self, choice_idx: np.ndarray) -> dict[str, float]:
        """Predicted totals of a plan (base + the chosen rows)."""
        idx = np.arange(len(self.layers))
        return {k: float(self.base[k] + t[idx, choice_idx].sum()) for k, t in self.tables.items()}


def _layer_bytes(g: Graph, name: str) -> float:
    op = g.op(name)
    slots = set(type(op).weight_slots) | set(type(op).bias_slots)
    return sum(g.tensors[t].size_bytes for i, t in enumerate(op.inputs) if i in slots)


def cost_table(graph: Graph, target, choices: list[Choice], seed: int = 0) -> CostTable:
    """Estimate the whole model once per choice and read each layer's row (see module docstring)."""
    from hwsim.cost import estimate

    layers = solver_layers(graph)
    L, C = len(layers), len(choices)
    tables = {k: np.full((L, C), np.inf) for k in BUDGETS}
    base: dict[str, float] = {}
    for j, ch in enumerate(choices):
        g = apply_config(graph, uniform_config(graph, layers, ch))
        rep = estimate(g, target, seed=seed)
        rows = {r.name: r for r in rep.layers}
        for i, name in enumerate(layers):
            if not prunable(graph, name, ch):
                continue
            r = rows.get(name)
            op = g.op(name)
            density = op.pruning.density
            tables["latency_s"][i, j] = r.latency_s if r else 0.0
            tables["energy_j"][i, j] = r.energy_j if r else 0.0
            tables["size_bytes"][i, j] = _layer_bytes(g, name)
            tables["bops"][i, j] = g.macs(op) * ch.weight_bits * ch.activation_bits * density
        if j == 0:
            own = set(layers)
            base = {"latency_s": sum(r.latency_s for r in rep.layers if r.name not in own),
                    "energy_j": sum(r.energy_j for r in rep.layers if r.name not in own),
                    "size_bytes": rep.total.weight_bytes - sum(_layer_bytes(g, n) for n in layers),
                    "bops": 0.0}
    notes = [f"costs: one whole-model estimate per choice ({C}), layer rows read off; plan re-estimated"]
    return CostTable(layers, choices, tables, base, choices[0].activation_format, C, notes)


def actual_totals(graph: Graph, target, config: QuantConfig, seed: int = 0) -> tuple[dict[str, float], object]:
    """Totals of a plan from one whole-model estimate (the verification), and the report."""
    from hwsim.cost import estimate

    g = apply_config(graph, config)
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


def matches_exactly(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)
