"""Simulated sensitivity: how much the network's outputs suffer when only one layer takes a choice.

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

The ``proxy`` metric (no simulation) is :mod:`hwsim.solve.proxy`; one layer's own output error
is :func:`hwsim.sim.layer_output_error`.

Simulated values are cached on disk (:mod:`hwsim.solve.cache`).
"""

from __future__ import annotations

import time

import numpy as np

from hwsim.errors import HwsimError
from hwsim.graph.annotate import apply_config
from hwsim.graph.ir import Graph
from hwsim.sim.metrics import class_labels
from hwsim.solve.cache import SensitivityCache, graph_digest
from hwsim.solve.choices import Choice
from hwsim.solve.configs import layer_config
from hwsim.solve.data import CalibData
from hwsim.solve.layers import prunable, solver_layers
from hwsim.solve.sensitivity_table import Metric, ProgressFn, SensitivityTable
from hwsim.solve.tail import boundary_values, tail_graph


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
            cache: SensitivityCache | None = None, seed: int = 0, progress: ProgressFn | None = None) -> SensitivityTable:
    """Simulated sensitivity (``output_mse`` or ``task_loss``) of every (layer, choice).

    ``graph`` must take ``data.samples`` samples in one run (its batch dimension). ``progress``
    is called with ``(done, total, "layer choice")`` after each pair. An error of the simulator
    propagates, its message naming the layer and the choice.
    """
    from hwsim.errors import InputDataError
    from hwsim.sim.runner import ensure_weights

    if metric == "task_loss" and data.labels is None:
        raise InputDataError("metric task_loss needs labels in the calibration data ('labels')")
    t0 = time.perf_counter()
    layers = solver_layers(graph)
    vals = np.full((len(layers), len(choices)), np.inf)
    g, ref = ensure_weights(graph, seed), {}
    key_base = (graph_digest(g), data.digest(), metric, seed)
    hits, done, total = 0, 0, len(layers) * len(choices)
    for i, layer in enumerate(layers):
        tail, tail_ref = None, None
        for j, ch in enumerate(choices):
            done += 1
            if prunable(g, layer, ch):
                key = cache.key(*key_base, layer, ch) if cache else None
                hit = cache.get(key) if cache else None
                if hit is not None:
                    vals[i, j], hits = hit, hits + 1
                else:
                    if tail is None:
                        ref = ref or float_values(g, data, seed)[1]  # only when something is not cached
                        tail = tail_graph(g, layer)
                    r = _run_choice(tail, layer, ch, boundary_values(tail, ref), tail_ref, seed)
                    tail_ref = r.reference
                    vals[i, j] = _score(metric, r.output_values, r.reference_outputs, data.labels)
                    if cache:
                        cache.put(key, vals[i, j])
            if progress:
                progress(done, total, f"{layer} {ch.label}")
    notes = list(data.notes) + [f"sensitivity metric {metric} on {data.samples} samples from {data.source}"]
    return SensitivityTable(layers, choices, vals, metric, notes, time.perf_counter() - t0, hits)


def _run_choice(tail: Graph, layer: str, choice: Choice, feed: dict, tail_ref, seed: int):
    """One tail run with ``layer`` at ``choice``; errors name the layer and the choice."""
    from hwsim import sim

    where = f"measuring the sensitivity of layer {layer!r} at {choice.label}"
    try:
        return sim.run(apply_config(tail, layer_config(layer, choice)), feed, seed=seed, reference=tail_ref,
                       metrics=False)
    except HwsimError as exc:
        raise type(exc)(f"{where}: {exc}") from exc
    except Exception as exc:  # a simulator bug: propagate it, saying where it happened
        exc.add_note(where)
        raise
