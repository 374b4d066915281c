"""Sensitivity of each (layer, choice): how much the network's output suffers when only that
layer takes that choice.

Metrics
-------
``output_mse``
    Mean squared error of the graph outputs against the float reference, measured with the
    bit-accurate simulator (:func:`hwsim.sim.run`): every other layer stays float, the layer's
    weights are magnitude-pruned (``hwsim.sim.prune``) then quantized, its activation inputs are
    quantized. Only the layer and its descendants are simulated (:mod:`hwsim.solve.tail`), fed
    with the float reference at their boundary, whose float reference is computed once per layer.
``task_loss``
    The same run, scored as the increase of cross-entropy against the labels (needs labels).
``proxy``
    No simulation: the layer's own output-noise energy per sample,
    ``positions x (||W - Q(P(W))||^2 E[x^2] + ||Q(P(W))||^2 E[(x - Q(x))^2])``, from the weights
    (a seeded sample of them for synthetic zoo weights) and the input's second moment and
    quantization noise (from the float reference when it was computed, else unit-variance
    Gaussian inputs).

Simulated values are cached on disk (:mod:`hwsim.solve.cache`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from hwsim.graph.annotate import LayerRule, QuantConfig, apply_config
from hwsim.graph.ir import Graph
from hwsim.solve.cache import SensitivityCache, graph_digest
from hwsim.solve.choices import Choice
from hwsim.solve.costs import prunable, solver_layers
from hwsim.solve.data import CalibData
from hwsim.sim.metrics import class_labels
from hwsim.solve.tail import boundary_values, tail_graph

Metric = Literal["output_mse", "task_loss", "proxy"]
METRICS = ("output_mse", "task_loss", "proxy")


@dataclass(frozen=True)
class SensitivityTable:
    """Values of one metric for every (layer, choice); lower is better.

    Attributes
    ----------
    layers : list of str
        Layer (op) names, rows.
    choices : list of Choice
        Columns.
    values : numpy.ndarray, shape (L, C)
        Metric value; ``inf`` where the choice does not apply to the layer.
    metric : str
    notes : list of str
    """

    layers: list[str]
    choices: list[Choice]
    values: np.ndarray
    metric: str
    notes: list[str] = field(default_factory=list)
    measured_s: float = 0.0
    cache_hits: int = 0


def layer_config(layer: str, choice: Choice) -> QuantConfig:
    """A config setting only ``layer`` to ``choice`` (everything else stays as it is)."""
    return QuantConfig(layers=(LayerRule(match=layer, weights=choice.weight_format,
                                         activations=choice.activation_format,
                                         pruning=choice.pruning.label),))


def applies(graph: Graph, layer: str, choice: Choice) -> bool:
    """False when the choice cannot be applied to the layer (see :func:`hwsim.solve.costs.prunable`)."""
    return prunable(graph, layer, choice)


class Progress:
    """A one-line ``\\r`` progress bar on stderr."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total, self.label, self.done = max(total, 1), label, 0
        self.enabled, self.stream = enabled, stream or sys.stderr
        self.t0 = time.perf_counter()

    def step(self, what: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 24
        fill = int(width * self.done / self.total)
        bar = "#" * fill + "." * (width - fill)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {what[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write(f"\r{self.label}: {self.done} in {time.perf_counter() - self.t0:.1f} s" + " " * 60 + "\n")
            self.stream.flush()


def _score(metric: str, out: dict, ref: dict, labels: np.ndarray | None) -> float:
    if metric == "task_loss":
        (name,) = list(ref)[:1]
        return _xent(out[name], labels) - _xent(ref[name], labels)
    sq = sum(float(np.sum((np.asarray(out[n], np.float64) - ref[n]) ** 2)) for n in ref)
    return sq / max(sum(np.asarray(ref[n]).size for n in ref), 1)


def _xent(logits: np.ndarray, labels: np.ndarray) -> float:
    z = np.asarray(logits, np.float64).reshape(len(labels), -1)
    labels = class_labels(labels, z.shape[1])
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def float_values(graph: Graph, data: CalibData, seed: int = 0) -> tuple[Graph, dict[str, np.ndarray]]:
    """The graph with weights (synthetic if needed) and the float reference of every tensor."""
    from hwsim.sim import boundary
    from hwsim.sim.runner import _kv_values, ensure_weights, float_reference

    g = ensure_weights(graph, seed)
    real, _ = boundary.read_inputs(g, data.inputs)
    real.update(_kv_values(g, data.inputs, seed, []))  # seeded KV caches, as sim.run fills them
    return g, float_reference(g, real, seed).values


def measure(graph: Graph, choices: list[Choice], data: CalibData, metric: Metric = "output_mse",
            cache: SensitivityCache | None = None, seed: int = 0, progress: bool = False) -> SensitivityTable:
    """Simulated sensitivity (``output_mse`` or ``task_loss``) of every (layer, choice).

    ``graph`` must take ``data.samples`` samples in one run (its batch dimension).
    """
    from hwsim import sim
    from hwsim.errors import InputDataError

    if metric == "task_loss" and data.labels is None:
        raise InputDataError("metric task_loss needs labels in the calibration .npz (key 'labels')")
    t0 = time.perf_counter()
    layers = solver_layers(graph)
    vals = np.full((len(layers), len(choices)), np.inf)
    from hwsim.sim.runner import ensure_weights

    g, ref = ensure_weights(graph, seed), {}
    key_base = (graph_digest(g), data.digest(), metric, seed)
    bar = Progress(len(layers) * len(choices), "sensitivity", progress)
    hits, failed = 0, {}
    for i, layer in enumerate(layers):
        tail, tail_ref = None, None
        for j, ch in enumerate(choices):
            bar.step(f"{layer} {ch.label}")
            if not applies(g, layer, ch):
                continue
            key = cache.key(*key_base, layer, ch) if cache else None
            hit = cache.get(key) if cache else None
            if hit is not None:
                vals[i, j], hits = hit, hits + 1
                continue
            if tail is None:
                ref = ref or float_values(g, data, seed)[1]  # only when something is not cached
                tail = tail_graph(g, layer)
                feed = boundary_values(tail, ref)
            try:
                r = sim.run(apply_config(tail, layer_config(layer, ch)), feed, seed=seed, reference=tail_ref,
                            metrics=False)
            except Exception as exc:  # a simulator gap must not sink the solve: drop the choice, say so
                failed.setdefault(f"{ch.label}: {type(exc).__name__}: {exc}"[:160], []).append(layer)
                continue
            tail_ref = r.reference
            vals[i, j] = _score(metric, r.output_values, r.reference_outputs, data.labels)
            if cache:
                cache.put(key, vals[i, j])
    bar.close()
    notes = list(data.notes) + [f"sensitivity metric {metric} on {data.samples} samples from {data.source}"]
    notes += [f"simulation failed, choice dropped for {len(v)} layer(s) ({v[0]}...): {k}" for k, v in failed.items()]
    return SensitivityTable(layers, choices, vals, metric, notes, time.perf_counter() - t0, hits)


def measure_proxy(graph: Graph, choices: list[Choice], reference: dict[str, np.ndarray] | None = None,
                  seed: int = 0, max_sample: int = 1 << 16) -> SensitivityTable:
    """The ``proxy`` metric (no simulation; see module docstring)."""
    from hwsim.solve.proxy import layer_proxy

    t0 = time.perf_counter()
    layers = [graph.op(n) for n in solver_layers(graph)]
    vals = np.full((len(layers), len(choices)), np.inf)
    memo: dict = {}  # synthetic weights of one shape fed the same assumed inputs give the same values
    for i, op in enumerate(layers):
        w = graph.weight(op)
        sig = (op.op, w.shape, graph.tensors[op.outputs[0]].shape) if w.data is None and reference is None else op.name
        if sig not in memo:
            stats = layer_proxy(graph, op, reference, seed, max_sample)
            memo[sig] = [stats(ch) if applies(graph, op.name, ch) else np.inf for ch in choices]
        vals[i] = memo[sig]
    note = "proxy metric: layer output-noise energy from weight and input statistics (no simulation)"
    if reference is None:
        note += "; inputs assumed unit-variance Gaussian"
    return SensitivityTable([o.name for o in layers], choices, vals, "proxy", [note], time.perf_counter() - t0)


ProxyFn = Callable[[Choice], float]
