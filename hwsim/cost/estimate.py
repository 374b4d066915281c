"""``hwsim.estimate``: model + target (+ formats) -> :class:`~hwsim.cost.report.CostReport`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.cost import ops_cost  # noqa: F401  (registers the cost functions)
from hwsim.cost.area import area
from hwsim.cost.layer import COSTS, Ctx
from hwsim.cost.report import ENERGY_COMPONENTS, CostReport, CostTotal
from hwsim.cost.stats import SAMPLE_ELEMENTS, weight_stats
from hwsim.cost.traffic import home_level
from hwsim.errors import ConfigError, UnsupportedOpError
from hwsim.graph.ir import Graph
from hwsim.graph.weights import SYNTHETIC_NOTE, kaiming_columns, synthetic_values
from hwsim.targets import Target, load_target


class _Stats:
    """Lazily measured weight statistics, only for targets whose cost depends on the values.

    Zoo weights are the simulator's synthetic values (:func:`hwsim.graph.weights.synthetic_values`);
    synthetic layers with the same weight shape, format and pruning share one measurement (their
    values are i.i.d. from the same distribution). Tensors above 4 x SAMPLE_ELEMENTS are not
    synthesized in full: a column sample is drawn from the same Kaiming-normal law
    (:func:`hwsim.graph.weights.kaiming_columns`), so their statistics are estimates.
    """

    def __init__(self, graph: Graph, target: Target, seed: int):
        self.graph, self.target, self.seed = graph, target, seed
        f = target.features
        self.nm = tuple((p.n, p.m) for p in f.nm_sparsity)
        self.always = bool(f.skip_zero_weights or f.repetition_window)
        self.cache: dict = {}
        self.synthetic = False
        self.sampled: dict[str, float] = {}  # real weight -> fraction of its columns repetition was measured on

    def __call__(self, op):
        w = self.graph.weight(op)
        if w is None or not (self.always or (self.nm and w.data is not None)):
            return None
        groups = getattr(op, "groups", 1)
        key = (w.name,) if w.data is not None else (w.shape, w.quant.format, op.pruning, groups)
        if key not in self.cache:
            self.cache[key] = self._measure(op, w, groups)
        return self.cache[key]

    def _codes(self, op, w) -> np.ndarray:
        """Signed codes of the weights the simulator runs (hwsim.sim.qspec.prepare_weight)."""
        from hwsim.sim import qspec

        if w.data is not None:
            values, spec = qspec.prepare_constant(w, op.pruning, self.seed)
            return qspec.weight_codes(values, spec)
        self.synthetic = True
        if w.numel <= 4 * SAMPLE_ELEMENTS:
            values, spec = qspec.prepare_weight(synthetic_values(w, self.seed), w.quant, op.pruning, self.seed)
            return qspec.weight_codes(values, spec)
        # too big to draw in full: a column sample of the same law (all rows, so channel sharing is seen)
        rows, cols = w.shape[0], math.prod(w.shape[1:])
        keep = min(cols, max(64, SAMPLE_ELEMENTS // rows // 64 * 64))
        sample = kaiming_columns(rows, keep, cols, self.seed)
        values, spec = qspec.prepare_weight(sample, w.quant, op.pruning, self.seed)
        return qspec.weight_codes(values, spec)

    def _measure(self, op, w, groups):
        codes = self._codes(op, w)
        window = self.target.features.repetition_window
        try:
            st = weight_stats(codes, groups, self.nm, window)
        except ValueError:  # codes too varied for a 64-bit window key: measure without reuse
            return weight_stats(codes, groups, self.nm, None)
        if w.data is not None and st.repetition_fraction < 1:
            self.sampled[w.name] = st.repetition_fraction
        return st

    def notes(self) -> list[str]:
        """Report note naming the real weights whose repetition was measured on a column sample."""
        if not self.sampled:
            return []
        shown = ", ".join(f"{n} ({f:.0%})" for n, f in list(self.sampled.items())[:4])
        more = f", ... {len(self.sampled) - 4} more" if len(self.sampled) > 4 else ""
        return [f"repetition of {len(self.sampled)} weight tensor(s) over {SAMPLE_ELEMENTS:,} elements is measured on "
                f"their first columns (fraction measured): {shown}{more}; density and N:M are measured in full"]


def _streamed(graph: Graph) -> set[str]:
    """Tensors that are KV-cache data in flight (outputs of cache ops and views of them)."""
    out: set[str] = set()
    for op in graph.ops():
        if op.op in ("kv_cache_read", "kv_cache_append") or (
                type(op).is_view and any(i in out for i in op.inputs)):
            out.update(op.outputs)
    return out


def _prepare(model, target, weights, activations, config, shapes, values=None,
             scope=None) -> tuple[Graph, Target, list[str]]:
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.zoo import load_model

    t = load_target(target)
    g = load_model(model, shapes, values)
    notes = []
    if weights or activations or config is not None:
        g = quantize_graph(g, weights, activations, config, scope, t.activation_scope)
    elif all(x.quant.is_float32 for x in g.tensors.values()):
        native = t.compute.rates[0]
        g = quantize_graph(g, native.weight, native.activation, scope=scope, target_scope=t.activation_scope)
        notes.append(f"formats: {native.activation} activations x {native.weight} weights, the target's "
                     f"native pair (pass weights=/activations= to change)")
    return g, t, notes


def estimate(model: str | Path | Graph, target: str | Path | Target, weights: str | None = None,
             activations: str | None = None, config=None, shapes: dict[str, int] | None = None,
             seed: int = 0, inputs: dict | None = None,
             weights_resident: bool = True, scope: str | None = None) -> CostReport:
    """Latency and energy of ``model`` on ``target``, per layer and in total.

    Parameters
    ----------
    model : str, Path or Graph
        Zoo name with parameters (``llama2-7b:phase=decode``), model YAML, ONNX path, or a Graph.
    target : str, Path or Target
        Bundled target name (``hwsim targets``), a target YAML path, or a Target.
    weights, activations : str, optional
        Formats for every layer (``int4``, ``int8``, ``fp8_e4m3fn``, ``ternary``, ``vq_d2_b6``...).
        Without them (and without ``config``) an unquantized model runs at the target's first pair.
    config : QuantConfig or path, optional
        A quant config (per-layer formats, pruning); exclusive with weights/activations.
    shapes : dict, optional
        Zoo parameter overrides / ONNX dynamic dims, e.g. ``{"context": 128}``.
    seed : int
        Seed of synthetic weights, used only by targets whose cost depends on weight values.
    inputs : dict, optional
        Input arrays by name: an ONNX model takes its input shapes and control values from them.
    weights_resident : bool
        True: weights live in the innermost level that holds them all between runs. False: they come
        from the outermost level every run (other work evicts them between runs).
    scope : str, optional
        Which activations the activation format quantizes (:func:`hwsim.graph.annotate.scoped_activations`).

    Returns
    -------
    CostReport
        Per-op rows (seconds, joules, bytes per memory level) and totals.
    """
    g, t, notes = _prepare(model, target, weights, activations, config, shapes, inputs, scope)
    return price(g, t, notes, seed, weights_resident=weights_resident)


@dataclass
class GraphFacts:
    """What pricing reads from a graph whatever the target: computed once per graph, reusable."""

    weight_bytes: float
    kv_bytes: float
    streamed: set[str]
    nbytes: dict[str, float] = field(default_factory=dict)  # tensor -> bytes, filled by Ctx.nbytes


def graph_facts(g: Graph) -> GraphFacts:
    """:class:`GraphFacts` of ``g``; refuses op kinds without a cost function."""
    missing = sorted({op.op for op in g.ops()} - set(COSTS))
    if missing:
        raise UnsupportedOpError(f"no cost function for op kind(s) {missing}")
    return GraphFacts(g.total_weight_bytes, sum(x.size_bytes for x in g.tensors.values() if x.role == "kv_cache"),
                      _streamed(g))


def _check_finite(t: Target, rows) -> None:
    """ConfigError naming the layer and the target part whose time or energy overflowed (a clock,
    rate or bandwidth too small for float64), instead of an 'inf ms' report."""
    for r in rows:
        if math.isfinite(r.latency_s) and math.isfinite(r.energy_j):
            continue
        causes = [] if math.isfinite(r.compute_s) else ["compute time (clock_hz, compute.rates, efficiency)"]
        causes += [f"memory level '{k}' (bandwidth_bytes_per_s)" for k, v in r.transfer_s.items() if not math.isfinite(v)]
        causes += [f"memory level '{k}' (energy per bit)" for k, v in r.memory_energy_j.items() if not math.isfinite(v)]
        causes = causes or ["energy (static_power_w, energy_per_gate_fj)"]
        raise ConfigError(f"target '{t.name}': layer '{r.name}' is priced at a value that is not finite, from "
                          f"{', '.join(causes)}; fix the value that is too small or too large")


def price(g: Graph, t: Target, notes: list[str], seed: int = 0, layer_cost=None,
          weights_resident: bool = True, facts: GraphFacts | None = None) -> CostReport:
    """Price an annotated graph on a target (the body of :func:`estimate`).

    ``layer_cost(op, ctx, cost_fn)``, when given, replaces ``cost_fn(op, ctx)`` for every op, so a
    caller can reuse rows across targets (``hwsim.sweep.layercache``); it must return what
    ``cost_fn`` would. ``facts``: :func:`graph_facts` of ``g``, when the caller keeps them.
    """
    notes = list(notes)
    facts = facts or graph_facts(g)
    sizes = [m.size_bytes for m in t.memory]
    stats = _Stats(g, t, seed)
    whome = home_level(facts.weight_bytes, sizes) if weights_resident else len(sizes) - 1
    ctx = Ctx(graph=g, target=t, weight_home=whome, kv_home=home_level(facts.kv_bytes, sizes),
              streamed=facts.streamed, stats=stats, byte_cache=facts.nbytes)
    if layer_cost is None:
        rows = [COSTS[op.op](op, ctx) for op in g.ops()]
    else:
        rows = [layer_cost(op, ctx, COSTS[op.op]) for op in g.ops()]
    rows = tuple(r for r in rows if r.latency_s > 0 or r.energy_j > 0)
    _check_finite(t, rows)
    notes += ops_cost.fallback_notes(ctx, rows) + ops_cost.unexploited_pruning_notes(ctx, rows) \
        + ops_cost.control_flow_notes(rows) + stats.notes()
    breakdown = {k: sum(r.energy_breakdown_j[k] for r in rows) for k in ENERGY_COMPONENTS}
    levels = {m.name: sum(r.memory_energy_j[m.name] for r in rows) for m in t.memory}
    if stats.synthetic:
        notes.append(SYNTHETIC_NOTE)
    notes += g.notes  # the import's and the config's (e.g. shapes that bound nothing, run-time scales kept)
    notes = list(dict.fromkeys(notes))
    total = CostTotal(latency_s=sum(r.latency_s for r in rows), energy_j=sum(r.energy_j for r in rows),
                      macs=sum(r.macs for r in rows), weight_bytes=facts.weight_bytes,
                      energy_breakdown_j=breakdown, memory_energy_j=levels)
    return CostReport(model=g.name, target=t.name, total=total, layers=rows, notes=tuple(notes), area=area(t))
