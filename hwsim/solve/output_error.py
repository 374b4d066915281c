"""Simulated sensitivity: how much the network's outputs suffer when only one layer takes a choice.

Metrics
-------
``output_mse``
    Mean squared error of the graph outputs against the float reference, measured with the
    bit-accurate simulator (:func:`hwsim.sim.run`): every other layer stays float, the layer's
    weights are magnitude-pruned (``hwsim.sim.prune``) then quantized, its activation inputs are
    quantized. Only the layer and its descendants are simulated (:mod:`hwsim.solve.tail`), fed
    with the float reference at their boundary; the float reference is computed once. When every
    descendant is a float op they run in float32 arithmetic, which changes a value by at most
    about 2e-3 relative (choices that barely move the outputs are simulated; see
    :func:`_descendants`).
``task_loss``
    The same run, scored as the increase of cross-entropy against the labels (needs labels).

The ``proxy`` metric (no simulation) is :mod:`hwsim.solve.proxy`; one layer's own output error
is :func:`hwsim.sim.layer_output_error`.

Simulated values are cached on disk (:mod:`hwsim.solve.cache`).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Callable

import networkx as nx
import numpy as np

from hwsim.errors import HwsimError, MemoryLimitError
from hwsim.graph.annotate import apply_config
from hwsim.graph.ir import Graph
from hwsim.sim.metrics import class_labels
from hwsim.solve.cache import SensitivityCache, graph_digest
from hwsim.solve.choices import Choice
from hwsim.solve.configs import layer_config
from hwsim.solve.data import CalibData
from hwsim.solve.layers import prunable, solver_layers
from hwsim.solve.sensitivity_table import Metric, ProgressFn, SensitivityTable
from hwsim.solve.tail import boundary_names, boundary_values, float32_outputs, plain_float, subgraph


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
            cache: SensitivityCache | None = None, seed: int = 0, progress: ProgressFn | None = None,
            batched: Callable[[int], Graph | None] | None = None) -> SensitivityTable:
    """Simulated sensitivity (``output_mse`` or ``task_loss``) of every (layer, choice).

    ``graph`` must take ``data.samples`` samples in one run (its batch dimension). ``progress``
    is called with ``(done, total, "layer choice")`` after each pair. ``batched(m)``, when given,
    returns the same model built for ``m`` times the samples (or None): the descendants of a
    layer then run once for all its choices, stacked along the batch (see :func:`_layer_values`).
    An error of the simulator propagates, its message naming the layer and the choice.
    """
    from hwsim.errors import InputDataError
    from hwsim.sim.runner import ensure_weights

    if metric == "task_loss" and data.labels is None:
        raise InputDataError("metric task_loss needs labels in the calibration data ('labels')")
    t0 = time.perf_counter()
    layers = solver_layers(graph)
    vals = np.full((len(layers), len(choices)), np.inf)
    g, ref = ensure_weights(graph, seed), None
    key_base = (graph_digest(g), data.digest(), metric, seed)
    stacked = _Stacked(g, batched, seed)
    hits, done, total = 0, 0, len(layers) * len(choices)
    for i, layer in enumerate(layers):
        todo, keys = [], {}
        for j, ch in enumerate(choices):
            if not prunable(g, layer, ch):
                continue
            keys[j] = cache.key(*key_base, layer, ch) if cache else None
            hit = cache.get(keys[j], nonnegative=metric == "output_mse") if cache else None
            if hit is None:
                todo.append(j)
            else:
                vals[i, j], hits = hit, hits + 1
        if todo:
            ref = ref or float_values(g, data, seed)[1]  # only when something is not cached
            outs = _layer_values(g, layer, [choices[j] for j in todo], ref, seed, stacked)
            for j, out in zip(todo, outs):
                vals[i, j] = _score(metric, out, {n: ref[n] for n in out}, data.labels)
                if cache and np.isfinite(vals[i, j]):
                    cache.put(keys[j], vals[i, j])
        for j, ch in enumerate(choices):
            done += 1
            if progress:
                progress(done, total, f"{layer} {ch.label}")
    notes = list(data.notes) + [f"sensitivity metric {metric} on {data.samples} samples from {data.source}"]
    return SensitivityTable(layers, choices, vals, metric, notes, time.perf_counter() - t0, hits)


def _layer_values(g: Graph, layer: str, chs: list[Choice], ref: dict, seed: int, stacked: "_Stacked") -> list[dict]:
    """Graph outputs downstream of ``layer`` (real values) with ``layer`` at each choice.

    The layer runs alone once per choice (its inputs and weights quantized, the rest float).
    Its descendants then run once for all choices, their inputs from the layer (its outputs, and
    its quantized inputs where descendants read them too) stacked along the batch axis, on the
    model built for that many samples; else once per choice. Activation scales are calibrated on
    the whole model's float reference, as a run of the whole model does. Together they run what
    a run of the layer and its descendants runs (exactly in the simulator; float32 descendants:
    see :func:`_descendants`); outputs are compared with the whole model's float reference.
    """
    from hwsim.sim.runner import FloatCache

    after = nx.descendants(g.nx, layer)
    one = subgraph(g, {layer}, f"{g.name}[{layer}]")
    op = g.op(layer)
    read_after = {t for o in after for t in g.op(o).inputs}
    one.outputs = list(dict.fromkeys(one.outputs + [t for t in op.outputs if t in read_after]
                                     + [t for t in op.inputs if t in read_after and t in one.inputs]))
    feed = boundary_values(one, ref)
    whole = FloatCache(values=ref, inputs={})  # the model's reference: no float run of the layer
    firsts = [_run(apply_config(one, layer_config(layer, ch)), _where(layer, [ch]), feed, whole, seed).output_values
              for ch in chs]
    outs = _descendants(g, layer, after, chs, firsts, ref, seed, stacked) if after else [{} for _ in chs]
    return [{n: {**f, **o}[n] for n in g.outputs if n in f or n in o} for f, o in zip(firsts, outs)]


#: smallest relative change of the outputs (RMS of the change over RMS of the float outputs) that
#: a float32 run of the descendants may measure; a choice that changes them less is measured again
#: in the simulator (see :func:`_descendants`)
F32_MIN_CHANGE = 1e-3


def _descendants(g, layer, after, chs, firsts, ref, seed, stacked) -> list[dict]:
    """Outputs of the descendants of ``layer`` fed with each choice's values (see above).

    When every descendant is a float op (:func:`hwsim.solve.tail.plain_float`) they run in
    float32 arithmetic (:func:`hwsim.solve.tail.float32_outputs`) instead of the simulator's
    float64 ops rounded to float32. Both differ from the exact outputs by float32 roundoff
    (relative RMS ``eps``, about 1e-7 to 1e-6 measured, see benchmarks/RESULTS.md); a choice whose
    outputs change by a relative RMS ``r`` then gets an MSE off by at most about ``2 eps / r``
    relative. Choices with ``r`` below :data:`F32_MIN_CHANGE` (bound 2e-3 at eps = 1e-6) are
    run again in the simulator.
    """
    post = subgraph(g, after, f"{g.name}[{layer}:]+")
    fast = plain_float(post)
    outs = _tail_runs(post, layer, after, chs, firsts, ref, seed, stacked, fast)
    again = [k for k, out in enumerate(outs) if fast and not _change(out, ref) >= F32_MIN_CHANGE]  # NaN too
    if again:
        redo = _tail_runs(post, layer, after, [chs[k] for k in again], [firsts[k] for k in again], ref, seed,
                          stacked, False)
        for k, out in zip(again, redo):
            outs[k] = out
    return outs


def _tail_runs(post, layer, after, chs, firsts, ref, seed, stacked, fast: bool) -> list[dict]:
    """Outputs of ``post`` for each choice: stacked on the batched model when it has one, else one
    run per choice; in float32 (``fast``) or in the simulator."""
    names = boundary_names(post, ref)
    m = len(chs)
    big = stacked.graph(m) if m > 1 else None
    if big is not None:
        bigpost = subgraph(big, after, post.name)
        if all(_stacks(post.tensors[n].shape, bigpost.tensors[n].shape, m) for n in names + post.outputs):
            feed = {n: np.concatenate([f[n] if n in f else ref[n] for f in firsts]).astype(np.float32) for n in names}
            try:
                out = _run_tail(bigpost, _where(layer, chs), feed, ref, seed, m, fast)
            except MemoryLimitError:  # m times the samples do not fit: one run per choice below
                out = None
            if out is not None:
                return [{o: v[k * len(v) // m:(k + 1) * len(v) // m] for o, v in out.items()} for k in range(m)]
    return [_run_tail(post, _where(layer, [ch]), {n: np.asarray(f[n] if n in f else ref[n], np.float32)
                                                  for n in names}, ref, seed, 1, fast)
            for ch, f in zip(chs, firsts)]


def _run_tail(post: Graph, where: str, feed: dict, ref: dict, seed: int, m: int, fast: bool) -> dict:
    """Outputs of the descendants graph ``post`` (``m`` stacked copies of the samples) on ``feed``."""
    from hwsim.sim.runner import FloatCache, check_memory

    if fast:
        with _named(where):
            check_memory(post)
            return float32_outputs(post, feed, seed)
    rest = FloatCache(values={n: np.concatenate([ref[n]] * m) for n in _needed(post)}, inputs={})
    return _run(post, where, feed, rest, seed).output_values


def _change(out: dict, ref: dict) -> float:
    """Relative RMS change of ``out`` against the float reference ``ref`` (0 when nothing moved)."""
    sq = sum(float(np.sum((v - ref[n]) ** 2)) for n, v in out.items())
    total = sum(float(np.sum(np.asarray(ref[n], np.float64) ** 2)) for n in out)
    return math.sqrt(sq / total) if total > 0 else (0.0 if sq == 0 else math.inf)


def _stacks(shape: tuple, big: tuple, m: int) -> bool:
    """Whether ``big`` is ``shape`` with ``m`` times the leading (batch) dimension."""
    return len(shape) == len(big) > 0 and big[0] == m * shape[0] and tuple(big[1:]) == tuple(shape[1:])


def _needed(post: Graph) -> list[str]:
    """Tensors whose float reference a run of ``post`` reads: outputs, and scales to calibrate."""
    from hwsim.sim import qspec

    scaled = [n for n, t in post.tensors.items() if t.role in ("input", "activation", "kv_cache")
              and t.quant.scale is None and qspec.needs_scale(t.quant)]
    return list(dict.fromkeys(post.outputs + scaled))


def _where(layer: str, chs: list[Choice]) -> str:
    return f"measuring the sensitivity of layer {layer!r} at {', '.join(c.label for c in chs)}"


class _Stacked:
    """The model built for ``m`` x the samples (memoised per ``m``), when it has the same weights
    (constants with a batch dimension: ``m`` copies of the model's)."""

    def __init__(self, g: Graph, build: Callable[[int], Graph | None] | None, seed: int):
        self.g, self.build, self.seed, self.memo = g, build, seed, {}

    def graph(self, m: int) -> Graph | None:
        from hwsim.sim.runner import ensure_weights

        if self.build is None:
            return None
        if m not in self.memo:
            big = self.build(m)
            if big is not None:
                big = ensure_weights(big, self.seed)
                same = set(big.tensors) == set(self.g.tensors) and all(
                    t.data is None or _tiled(t.data, big.tensors[n].data, m) for n, t in self.g.tensors.items()
                    if t.role in ("weight", "bias", "buffer", "const"))
                big = big if same else None
            self.memo[m] = big
        return self.memo[m]


def _tiled(small: np.ndarray, big: np.ndarray, m: int) -> bool:
    """Whether constant ``big`` is ``small``, or ``m`` copies of it along the batch axis (a constant
    with a batch dimension, e.g. position ids, stacks with the samples)."""
    small, big = np.asarray(small), np.asarray(big)
    if small.shape == big.shape:
        return np.array_equal(small, big)
    return _stacks(small.shape, big.shape, m) and np.array_equal(np.concatenate([small] * m), big)


def _run(graph: Graph, where: str, feed: dict, reference, seed: int):
    """One simulator run; an error names ``where`` (the layer and the choices)."""
    from hwsim import sim

    with _named(where):
        return sim.run(graph, feed, seed=seed, reference=reference, metrics=False)


@contextmanager
def _named(where: str):
    """An error raised inside names ``where`` (the layer and the choices being measured)."""
    try:
        yield
    except HwsimError as exc:
        raise type(exc)(f"{where}: {exc}") from exc
    except Exception as exc:  # a simulator bug: propagate it, saying where it happened
        exc.add_note(where)
        raise
