"""Simulated sensitivity: how much the network's outputs suffer when only one layer takes a choice.

Metrics
-------
``output_mse``
    Mean squared error of the graph outputs against the float reference, measured with the
    bit-accurate simulator (:func:`hwsim.sim.run`): every other layer stays float, the layer's
    weights are magnitude-pruned (``hwsim.sim.prune``) then quantized, its activation inputs are
    quantized. Only the layer and its descendants are simulated (:mod:`hwsim.solve.tail`), fed
    with the float reference at their boundary; the float reference is computed once. When every
    descendant is a float op they run in float32 arithmetic, which changed values by at most
    3.1e-5 relative on resnet18 and MiniLM-L6, 5.3e-5 on a 10-class CNN (choices that barely
    move the outputs are simulated; see :func:`_descendants`).
``task_loss``
    The same run, scored as the increase of cross-entropy against the labels (needs labels).

The ``proxy`` metric (no simulation) is :mod:`hwsim.solve.proxy`; one layer's own output error
is :func:`hwsim.sim.layer_output_error`.

Simulated values are cached on disk (:mod:`hwsim.solve.cache`).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Callable

import networkx as nx
import numpy as np

from hwsim.errors import HwsimError, MemoryLimitError
from hwsim.graph.annotate import apply_config
from hwsim.graph.ir import Graph
from hwsim.heap import keep_freed_memory
from hwsim.sim.metrics import class_labels
from hwsim.sim.refblas import threads_at_once
from hwsim.sim.arriving import ArrivingReference, ReferenceFailed, reference_names
from hwsim.solve.cache import SensitivityCache, graph_digest
from hwsim.solve.choices import Choice
from hwsim.solve.configs import layer_config
from hwsim.solve.data import CalibData
from hwsim.solve.layer_gain import CACHE_TAG, SharedRuns
from hwsim.solve.layers import prunable, solver_layers
from hwsim.solve.sensitivity_table import TAILS, Metric, ProgressFn, SensitivityTable, Tails
from hwsim.solve.tail import boundary_names, boundary_values, float32_outputs, one_blas_thread, plain_float, subgraph


#: how an estimate's values are named in cache keys (a new name when its values change)
CACHE_TAGS = {"cut": "cut", "gain": CACHE_TAG}


def score(metric: Metric, out: dict, ref: dict, labels: np.ndarray | None) -> float:
    """The metric (module docstring) of simulated outputs ``out`` against the float reference
    ``ref`` (output name -> values; the outputs scored are ``ref``'s): ``output_mse`` the mean
    squared error over every element of them; ``task_loss`` the cross-entropy of the first
    output against ``labels`` less that of the reference. The one scoring of sensitivities and of
    whole plans (:mod:`hwsim.solve.verify`)."""
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


def float_values(graph: Graph, data: CalibData, seed: int = 0,
                 into: dict | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """The graph with weights (synthetic if needed) and the float reference of every tensor
    (``into``: the dict the values are stored in as they are made, see
    :func:`hwsim.sim.runner.float_reference`)."""
    from hwsim.sim import boundary
    from hwsim.sim.runner import _kv_values, ensure_weights, float_reference

    g = ensure_weights(graph, seed)
    real, _ = boundary.read_inputs(g, data.inputs)
    real.update(_kv_values(g, data.inputs, seed, []))  # seeded KV caches, as sim.run fills them
    return g, float_reference(g, real, seed, into=into).values


def measure(graph: Graph, choices: list[Choice], data: CalibData, metric: Metric = "output_mse",
            cache: SensitivityCache | None = None, seed: int = 0, progress: ProgressFn | None = None,
            batched: Callable[[int], Graph | None] | None = None, tails: Tails = "exact",
            reference: Callable[[dict], dict] | None = None) -> SensitivityTable:
    """Simulated sensitivity (``output_mse`` or ``task_loss``) of every (layer, choice).

    ``graph`` must take ``data.samples`` samples in one run (its batch dimension). ``progress``
    is called with ``(done, total, "layer choice")`` after each pair. ``batched(m)``, when given,
    returns the same model built for ``m`` times the samples (or None): the descendants of a
    layer then run once for all its choices, stacked along the batch (see :func:`_layer_values`).
    ``tails="cut"`` (``output_mse`` only) estimates most values from the error at the next cut
    of the graph (:mod:`hwsim.solve.cut_gain`) instead of running every layer's descendants;
    ``tails="gain"`` (``output_mse`` only) runs one choice's descendants per layer and scales its
    other choices by that layer's gain (:mod:`hwsim.solve.layer_gain`).
    ``reference(into)``, when given, returns the float reference of every tensor on ``data`` (as
    :func:`float_values`, storing the values in ``into`` as it makes them; e.g. kept to simulate
    whole plans later); it is called only when a value is not cached. The layers are measured
    while it runs, each reading the values it needs as they arrive (:mod:`hwsim.sim.arriving`).
    An error of the simulator propagates, its message naming the layer and the choice.
    """
    from hwsim.errors import ConfigError, InputDataError
    from hwsim.sim.runner import ensure_weights

    if tails not in TAILS:
        raise ConfigError(f"tails: {tails!r} is unknown; use one of {', '.join(TAILS)}", param="tails")
    if tails != "exact" and metric != "output_mse":
        raise ConfigError(f"tails: {tails!r} estimates output_mse only; use tails 'exact' with metric {metric}",
                          param="tails")
    if metric == "task_loss" and data.labels is None:
        raise InputDataError("metric task_loss needs labels in the calibration data ('labels')")
    t0 = time.perf_counter()
    layers = solver_layers(graph)
    vals = np.full((len(layers), len(choices)), np.inf)
    g, ref = ensure_weights(graph, seed), None
    key_base = (graph_digest(g), data.digest(), metric if tails == "exact" else f"{metric}@{CACHE_TAGS[tails]}", seed)
    stacked = _Stacked(g, batched, seed)
    hits, done, total = 0, 0, len(layers) * len(choices)
    pending = []  # (group, cut, pairs to measure, cache keys) in table order
    for group, cut in _groups(g, layers, tails):
        todo, keys = [], {}
        for i, j in itertools.product(group, range(len(choices))):
            if not prunable(g, layers[i], choices[j]):
                continue
            keys[i, j] = cache.key(*key_base, layers[i], choices[j]) if cache else None
            hit = cache.get(keys[i, j], nonnegative=metric == "output_mse") if cache else None
            if hit is None:
                todo.append((i, j))
            else:
                vals[i, j], hits = hit, hits + 1
        pending.append((group, cut, todo, keys))
    with keep_freed_memory(give_back=False):  # large arrays come and go; kept for the plans (hwsim.heap)
        if any(todo for _, _, todo, _ in pending):  # the reference only when something is not cached
            ref = ArrivingReference(reference_names(g), reference or (lambda into: float_values(g, data, seed, into)))
            if threads_at_once() < 2:  # nothing may run beside it (hwsim.sim.refblas.threads_at_once)
                ref.result()

        shared = SharedRuns(data.samples)  # tails="gain": runs several layers share (hwsim.solve.layer_gain)
        held = _Held()  # outputs kept for scoring once the reference's outputs have arrived

        def values_of(item):
            group, cut, todo, keys = item
            return _group_values(g, [layers[i] for i in group], choices, [[j for j in range(len(choices))
                                 if (i, j) in keys] for i in group], ref, seed, stacked, metric, data.labels,
                                 cut, tails, shared, held) if todo else None

        try:
            for (group, _, todo, keys), new in zip(pending, _each(values_of, pending)):
                if callable(new):  # scored here, once the reference's outputs have arrived
                    new = new()
                for i, j in todo:
                    vals[i, j] = new[group.index(i), j]
                    if cache and np.isfinite(vals[i, j]):
                        cache.put(keys[i, j], vals[i, j])
                for i, j in itertools.product(group, range(len(choices))):
                    done += 1
                    if progress:
                        progress(done, total, f"{layers[i]} {choices[j].label}")
        except ReferenceFailed:
            ref.result()  # the reference's own error
            raise
        if ref is not None:
            ref.result()
    how = {"exact": "", "cut": ", most values scaled from the error at the next cut (tails=cut)",
           "gain": ", estimated: one choice per layer run to the outputs, the others scaled by the layer's gain "
                   "(tails=gain)"}[tails]
    notes = list(data.notes) + [f"sensitivity metric {metric} on {data.samples} samples from {data.source}{how}"]
    return SensitivityTable(layers, choices, vals, metric, notes, time.perf_counter() - t0, hits)


def _each(fn: Callable, items: list):
    """``fn(item)`` of each item, yielded in order; on one thread per CPU (groups of layers are
    independent), BLAS held at one thread meanwhile so that no two of them set its thread count
    against each other (threadpoolctl limits are process-wide), and numba's parallel kernels at
    one thread on each of them (:func:`_one_kernel_thread`). Values do not depend on the number
    of threads: every product runs in fixed blocks (:mod:`hwsim.sim.refblas`)."""
    from concurrent.futures import ThreadPoolExecutor

    workers = min(threads_at_once(), sum(1 for _ in items))
    if workers < 2:
        yield from map(fn, items)
        return
    with one_blas_thread(), ThreadPoolExecutor(workers, thread_name_prefix="hwsim-sensitivity") as pool:
        yield from pool.map(_one_kernel_thread(fn), items)


def _one_kernel_thread(fn: Callable) -> Callable:
    """``fn`` run with numba's parallel kernels at one thread on the calling thread (numba's
    thread count is per calling thread): the pool has a thread per CPU already, and a kernel that
    starts a thread per CPU on each of them puts twice as many threads as CPUs on the machine
    (``hwsim.kernels.workqueue.threads_now`` counts the process's own busy threads as free CPUs).
    Values do not change (no result depends on the thread count). Measured on resnet18's cold
    sensitivity at load 3-9 (benchmarks/RESULTS.md, "Seventh session: alone"): process CPU
    median 17.0 s against 17.3 s without, tables equal; at idle not measured."""
    import numba

    if numba.config.DISABLE_JIT:
        return fn

    def run(item):
        numba.set_num_threads(1)
        return fn(item)

    return run


def _groups(g: Graph, layers: list[str], tails: str) -> list[tuple[list[int], tuple[int, str] | None]]:
    """Layers measured together: one each (exact), or those sharing a first cut (tails=cut;
    a layer without a cut, or alone at its cut, is measured exactly)."""
    from hwsim.solve.cut_gain import first_cuts

    if tails != "cut":
        return [([i], None) for i in range(len(layers))]
    cuts = first_cuts(g, layers)
    by_cut: dict = {}
    for i, layer in enumerate(layers):
        by_cut.setdefault(cuts.get(layer, (None, layer)), []).append(i)
    return [(group, None if key[0] is None or len(group) == 1 else key) for key, group in by_cut.items()]


def _group_values(g, names, choices, applicable, ref, seed, stacked, metric, labels, cut,
                  tails: Tails = "exact", shared: SharedRuns | None = None,
                  held: "_Held | None" = None) -> np.ndarray | Callable[[], np.ndarray]:
    """Values (len(names), len(choices)) of a group of layers (see :func:`_groups`; ``tails="gain"``:
    :func:`hwsim.solve.layer_gain.layer_values`), or, with ``held``, a function that returns them
    once the reference has made the outputs they are scored against: a layer's outputs are ready
    long before the reference's own (early layers; the reference runs beside them), and its thread
    goes on to the next layer instead of waiting for them (:func:`measure` calls it), while the
    outputs so kept fit in ``held``."""
    from hwsim.solve.layer_gain import layer_values

    vals = np.full((len(names), len(choices)), np.inf)
    if cut is None:
        unscored = []
        for r, (layer, js) in enumerate(zip(names, applicable)):
            if tails == "gain":
                vals[r, js] = layer_values(g, layer, [choices[j] for j in js], ref, seed, stacked, shared)
                continue
            unscored.append((r, js, _layer_values(g, layer, [choices[j] for j in js], ref, seed, stacked, later=True)))

        def scored() -> np.ndarray:
            for r, js, outs in unscored:
                for j, out in zip(js, outs() if callable(outs) else outs):
                    vals[r, j] = score(metric, out, {n: ref[n] for n in out}, labels)
            return vals

        if held is not None and any(callable(outs) or not _made(ref, outs) for _, _, outs in unscored):
            nbytes = sum(_outputs_nbytes(outs) for _, _, outs in unscored)
            if held.take(nbytes):
                def later() -> np.ndarray:
                    try:
                        return scored()
                    finally:
                        held.give(nbytes)
                return later
        return scored()
    return _cut_values(g, names, choices, applicable, ref, seed, stacked, cut)


def _cut_values(g, names, choices, applicable, ref, seed, stacked, cut) -> np.ndarray:
    """output_mse of layers sharing the cut ``(op index, tensor)``, scaled from probes
    (:mod:`hwsim.solve.cut_gain`)."""
    from hwsim.solve.cut_gain import cut_mse, probe_rows, scaled_values, segment_ops

    index, tensor = cut
    errors = np.full((len(names), len(choices)), np.inf)
    at_cut = {}
    for r, (layer, js) in enumerate(zip(names, applicable)):
        chs = [choices[j] for j in js]
        firsts, _ = _alone(g, layer, chs, ref, seed)
        seg = segment_ops(g, layer, index)
        outs = firsts if not seg else _descendants(g, layer, seg, chs, firsts, ref, seed, stacked, [tensor])
        for j, out in zip(js, outs):
            at_cut[r, j] = np.asarray(out[tensor], np.float32)
            errors[r, j] = cut_mse(out[tensor], ref[tensor])
    probes = probe_rows(errors)
    cols = [j for j, p in enumerate(probes) if p is not None]
    firsts = [{tensor: at_cut[probes[j], j]} for j in cols]
    after = nx.descendants(g.nx, g.producer(tensor))
    probe = names[probes[cols[0]]] if cols else names[0]
    outs = _descendants(g, probe, after, [choices[j] for j in cols], firsts, ref, seed, stacked) if after and cols \
        else [{} for _ in cols]
    values = {}
    for j, f, o in zip(cols, firsts, outs):
        out = {n: {**f, **o}[n] for n in g.outputs if n in f or n in o}
        values[j] = score("output_mse", out, {n: ref[n] for n in out}, None)
    return scaled_values(errors, probes, values)


def _layer_values(g: Graph, layer: str, chs: list[Choice], ref: dict, seed: int, stacked: "_Stacked",
                  later: bool = False) -> list[dict] | Callable[[], list[dict]]:
    """Graph outputs downstream of ``layer`` (real values) with ``layer`` at each choice
    (``later``: or a function that finishes them, where the descendants' last step waits for
    reference values not made yet, see :func:`_descendants`).

    The layer runs alone once per choice (:func:`_alone`). Its descendants then run once for all
    choices, their inputs from the layer (its outputs, and its quantized inputs where descendants
    read them too) stacked along the batch axis, on the model built for that many samples; else
    once per choice. Together they run what a run of the layer and its descendants runs (exactly
    in the simulator; float32 descendants: see :func:`_descendants`); outputs are compared with
    the whole model's float reference.
    """
    firsts, after = _alone(g, layer, chs, ref, seed)
    if after:
        _as_tail_inputs(firsts, set(g.outputs))
    outs = _descendants(g, layer, after, chs, firsts, ref, seed, stacked, later=later) if after else [{} for _ in chs]

    def joined(outs: list[dict]) -> list[dict]:
        return [{n: {**f, **o}[n] for n in g.outputs if n in f or n in o} for f, o in zip(firsts, outs)]

    if not callable(outs):
        return joined(outs)

    def finish() -> list[dict]:
        return joined(outs())

    finish.held = list(outs.held) + list(firsts)
    return finish


#: most bytes of layer outputs one :func:`measure` holds for scoring later (:func:`_group_values`),
#: over its threads; beyond it a layer's thread waits for the reference's outputs instead (a model
#: with large outputs, such as a language model's logits, would otherwise hold many layers' outputs
#: while the reference computes)
DEFER_MAX_BYTES = 1 << 28


class _Held:
    """Bytes of outputs held for scoring later, at most :data:`DEFER_MAX_BYTES` (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.nbytes = 0

    def take(self, nbytes: int) -> bool:
        """Hold ``nbytes`` more if they fit (True), else nothing (False)."""
        with self._lock:
            if self.nbytes + nbytes > DEFER_MAX_BYTES:
                return False
            self.nbytes += nbytes
            return True

    def give(self, nbytes: int) -> None:
        with self._lock:
            self.nbytes -= nbytes


def _outputs_nbytes(outs) -> int:
    """Bytes of the arrays ``outs`` holds: a list of name -> array, or a function that finishes
    them (its ``held``: the lists of name -> array it keeps until it runs)."""
    items = getattr(outs, "held", []) if callable(outs) else outs
    return sum(int(getattr(v, "nbytes", 0)) for out in items for v in out.values())


def _made(ref, outs: list[dict]) -> bool:
    """Whether the reference values of every name in ``outs`` have been made (an
    :class:`~hwsim.sim.arriving.ArrivingReference` still computing may not have them yet)."""
    made = getattr(ref, "made", None)
    return made is None or all(made(n) for out in outs for n in out)


def _as_tail_inputs(firsts: list[dict], scored: set[str]) -> None:
    """Each choice's values (``firsts``, changed in place) as the descendants read them: float32
    (:func:`_tail_runs` feeds them so), and those of one name consecutive slices of one array
    along the batch axis, in choice order, which :func:`_stacked_f32` hands to the stacked run
    without a copy. Names in ``scored`` (graph outputs, scored in float64) stay as they are.

    Why: ``_alone`` gives float64 arrays; held beside the stacked copy of them during the tails,
    resnet18's conv1 kept 147 MiB of float64 outputs and a 74 MiB float32 stack alive
    (benchmarks/RESULTS.md, "Eighth session: footprint"). Same values: the rounding to float32
    is the one the feed's concatenation made (round to nearest)."""
    for n in firsts[0] if firsts else ():
        parts = [f[n] for f in firsts]
        if n in scored or not all(isinstance(p, np.ndarray) and p.ndim and p.shape[1:] == parts[0].shape[1:]
                                  for p in parts):
            continue
        stack = np.empty((sum(len(p) for p in parts),) + parts[0].shape[1:], np.float32)
        row = 0
        for f, p in zip(firsts, parts):
            view = stack[row:row + len(p)]
            np.copyto(view, p, casting="same_kind")
            f[n], row = view, row + len(p)  # the float64 array dies here


def _alone(g: Graph, layer: str, chs: list[Choice], ref: dict, seed: int) -> tuple[list[dict], set[str]]:
    """(values of ``layer`` run alone at each choice, its descendants).

    The values are its outputs and those of its quantized inputs that descendants read (its
    inputs and weights quantized, fed with the float reference). Activation scales are
    calibrated on the whole model's float reference, as a run of the whole model does. The
    choices run side by side in one simulator run (:func:`_side_by_side`: what they share is
    rounded and quantized once); where that run fails (it would not fit in memory, or an error:
    then the error of the choice that raises it propagates) one run each (:func:`_alone_each`).
    """
    from hwsim.sim.runner import FloatCache

    after = nx.descendants(g.nx, layer)
    one, feed = _one_op(g, layer, after, ref)
    configured = [apply_config(one, layer_config(layer, ch)) for ch in chs]
    if len(chs) > 1:
        both, renames = _side_by_side(configured, [ch.label for ch in chs])
        try:
            values = _Renamed(ref, renames)
            out = _run(both, _where(layer, chs), {r[n]: v for r in renames for n, v in feed.items()},
                       FloatCache(values=values, inputs={}, calibrated=values.calibrated()), seed).output_values
        except Exception:  # noqa: BLE001  (too big, or an error: one run each below names the choice)
            pass
        else:
            return [{n: out[r[n]] for n in one.outputs} for r in renames], after
    return _alone_each(configured, layer, chs, feed, ref, seed), after


def _one_op(g: Graph, layer: str, after: set[str], ref: dict) -> tuple[Graph, dict[str, np.ndarray]]:
    """The graph of ``layer`` alone (its outputs, and those of its inputs that ops in ``after``
    read too) and its input values (the float reference)."""
    one = subgraph(g, {layer}, f"{g.name}[{layer}]")
    op = g.op(layer)
    read_after = {t for o in after for t in g.op(o).inputs}
    one.outputs = list(dict.fromkeys(one.outputs + [t for t in op.outputs if t in read_after]
                                     + [t for t in op.inputs if t in read_after and t in one.inputs]))
    return one, boundary_values(one, ref)


def _alone_each(configured: list[Graph], layer: str, chs: list[Choice], feed: dict, ref: dict,
                seed: int) -> list[dict]:
    """Output values of each configured one-op graph, one simulator run each."""
    from hwsim.sim.runner import FloatCache

    whole = FloatCache(values=ref, inputs={}, calibrated=_calibrations(ref))  # no float run of the layer
    return [_run(gk, _where(layer, [ch]), feed, whole, seed).output_values for gk, ch in zip(configured, chs)]


def _side_by_side(graphs: list[Graph], labels: list[str]) -> tuple[Graph, list[dict[str, str]]]:
    """One graph running every graph of ``graphs`` (the same ops, configured differently) side
    by side, and for each graph its tensor names there.

    A tensor that two graphs hold alike (name, shape, role, spec, type and the same data array)
    is one tensor: a graph input on the same grid is rounded once, a weight in the same format
    quantized once. Each graph's ops and the tensors they produce are its own; those of graph
    ``k`` > 0 are named with `` at `` ``labels[k]``. Each op computes from equal inputs with the
    same spec what it computes in its own graph, so every output is the same.
    """
    both = Graph(graphs[0].name)
    both.notes = list(dict.fromkeys(n for gk in graphs for n in gk.notes))
    held: dict = {}  # (tensor, id of its data) -> name in both
    renames = []
    for k, gk in enumerate(graphs):
        name = (lambda n: n) if k == 0 else (lambda n, at=f" at {labels[k]}": n + at)  # noqa: E731
        produced = {t for op in gk.ops() for t in op.outputs}
        rename = {}
        for n, t in gk.tensors.items():
            key = (t, id(t.data))
            if n in produced or key not in held:
                rename[n] = name(n)
                both.add_tensor(replace(t, name=rename[n]))
                if n not in produced:
                    held[key] = rename[n]
            else:
                rename[n] = held[key]
        for op in gk.ops():
            both.add_op(op.model_copy(update={"name": name(op.name), "inputs": [rename[t] for t in op.inputs],
                                              "outputs": [rename[t] for t in op.outputs]}))
        both.outputs = list(dict.fromkeys(both.outputs + [rename[t] for t in gk.outputs]))
        renames.append(rename)
    return both.verify(), renames


def _calibrations(ref) -> dict:
    """The calibrations made on the reference ``ref`` (tensor names of the model; see
    :func:`hwsim.sim.runner.calibrate_graph`'s ``memo``): one dict for every layer measured on an
    :class:`~hwsim.sim.arriving.ArrivingReference` (an activation read by several layers, at
    several formats, is calibrated once), else a new one."""
    return ref.calibrated if isinstance(ref, ArrivingReference) else {}


class _Renamed(Mapping):
    """Float reference values under the names of :func:`_side_by_side`'s graph (read lazily)."""

    def __init__(self, ref: dict, renames: list[dict[str, str]]):
        self.ref, self.origin = ref, {new: old for r in renames for old, new in r.items()}

    def calibrated(self) -> "_RenamedKeys":
        """:func:`_calibrations` of the reference, keyed by the names of this graph."""
        return _RenamedKeys(_calibrations(self.ref), self.origin)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.ref[self.origin[name]]

    def __contains__(self, name) -> bool:
        return name in self.origin and self.origin[name] in self.ref

    def __iter__(self):
        return (n for n in self.origin if n in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _RenamedKeys:
    """``memo`` of :func:`hwsim.sim.runner.calibrate_graph` (keys ``(tensor, ...)``) under the
    names of :func:`_side_by_side`'s graph, stored under the model's names (``origin``)."""

    def __init__(self, memo: dict, origin: dict[str, str]):
        self.memo, self.origin = memo, origin

    def _key(self, key: tuple) -> tuple:
        return (self.origin.get(key[0], key[0]),) + tuple(key[1:])

    def __contains__(self, key) -> bool:
        return self._key(key) in self.memo

    def __getitem__(self, key):
        return self.memo[self._key(key)]

    def __setitem__(self, key, value) -> None:
        self.memo[self._key(key)] = value


#: smallest relative change of the outputs (RMS of the change over RMS of the float outputs) that
#: a float32 run of the descendants may measure; a choice that changes them less is measured again
#: in the simulator's arithmetic (see :func:`_descendants`). 1e-3 until 2026-11-26: measured, the
#: float32 values of choices between 1.4e-4 and 1e-3 were as close to the simulator's as those above
#: 1e-3 (benchmarks/RESULTS.md, "Seventh session: tails")
F32_MIN_CHANGE = 2e-4
#: how those choices run again (see :func:`_descendants`)
RERUN_PRODUCTS = "float64"


def _descendants(g, layer, after, chs, firsts, ref, seed, stacked, outputs: list[str] | None = None,
                 min_change: float | None = None, change: Callable[[int, dict], float] | None = None,
                 later: bool = False) -> list[dict] | Callable[[], list[dict]]:
    """Outputs of the descendants of ``layer`` fed with each choice's values (see above).

    When every descendant is a float op (:func:`hwsim.solve.tail.plain_float`) they run in
    float32 arithmetic (:func:`hwsim.solve.tail.float32_outputs`) instead of the simulator's
    float64 ops rounded to float32. Both differ from the exact outputs by float32 roundoff ``e``
    (relative RMS ``eps``, about 1e-7 to 1e-6 measured, see benchmarks/RESULTS.md); a choice whose
    outputs change by ``d``, of relative RMS ``r``, then gets an MSE off by ``2 rho eps / r +
    (eps / r)^2`` relative, ``rho`` the correlation of ``e`` with ``d``: at most ``2 eps / r`` +
    that square (``rho`` = 1), but roundoff is not the change, and measured (resnet18 and
    MiniLM-L6 on int8-npu, 45 choices with ``r`` from 1.8e-5 to 3e-3) the MSEs were off by at
    most 3.1e-5 for ``r`` >= 1.4e-4, above 1e-3 as below, and by 1.5e-4 to 6.2e-4 (all too high:
    the square, at ``eps`` about 5e-7) for ``r`` of 3e-5 and 1.8e-5; with few output values
    ``rho`` is larger (about 1 / sqrt(values)): 5.3e-5 at ``r`` = 2.7e-4 on the 160 outputs of a
    10-class CNN at 16 samples (tests/solve, fp16). Choices with ``r`` below
    :data:`F32_MIN_CHANGE` (the square 2.5e-5 at eps = 1e-6; ``2 eps / r`` 1e-2) are
    run again with float64 products (``float32_outputs(..., products="float64")``: the
    simulator's arithmetic, float64 ops each rounded to float32, without its executor). Other
    descendants run in the simulator. ``outputs`` (default: the graph outputs among them) are
    the tensors returned. ``min_change``, when given, replaces :data:`F32_MIN_CHANGE` (an
    estimate that tolerates more roundoff, :mod:`hwsim.solve.layer_gain`); ``change(k, out)``
    replaces the relative RMS change of choice ``k``'s outputs compared with it (default
    :func:`_change`). ``later``: where that comparison needs reference outputs not made yet (the
    reference still computing beside the first layers), a function that makes it (and the
    re-runs) is returned instead of the outputs, so that the caller's thread need not wait.
    """
    min_change = F32_MIN_CHANGE if min_change is None else min_change
    post = subgraph(g, after, f"{g.name}[{layer}:]+")
    if outputs is not None:
        post.outputs = list(outputs)
    products = "float32" if plain_float(post) else None
    outs = _tail_runs(post, layer, after, chs, firsts, ref, seed, stacked, products)

    def checked() -> list[dict]:
        moved = change or (lambda k, out: _change(out, ref))
        again = [k for k, out in enumerate(outs) if products and not moved(k, out) >= min_change]  # NaN too
        if again:
            redo = _tail_runs(post, layer, after, [chs[k] for k in again], [firsts[k] for k in again], ref, seed,
                              stacked, RERUN_PRODUCTS)
            for k, out in zip(again, redo):
                outs[k] = out
        return outs

    checked.held = outs
    return checked if later and products and change is None and not _made(ref, outs) else checked()


def _tail_runs(post, layer, after, chs, firsts, ref, seed, stacked, products: str | None) -> list[dict]:
    """Outputs of ``post`` for each choice: stacked on the batched model when it has one, else one
    run per choice; by :func:`float32_outputs` with ``products`` ("float32" or "float64"), or in
    the simulator (None)."""
    names = boundary_names(post, ref)
    m = len(chs)
    big = stacked.graph(m) if m > 1 else None
    if big is not None:
        bigpost = subgraph(big, after, post.name)
        bigpost.outputs = list(post.outputs)
        if all(_stacks(post.tensors[n].shape, bigpost.tensors[n].shape, m) for n in names + post.outputs):
            feed = {n: _stacked_f32([f[n] if n in f else ref[n] for f in firsts]) for n in names}
            try:
                out = _run_tail(bigpost, _where(layer, chs), feed, ref, seed, m, products)
            except MemoryLimitError:  # m times the samples do not fit: one run per choice below
                out = None
            if out is not None:
                return [{o: v[k * len(v) // m:(k + 1) * len(v) // m] for o, v in out.items()} for k in range(m)]
    return [_run_tail(post, _where(layer, [ch]), {n: np.asarray(f[n] if n in f else ref[n], np.float32)
                                                  for n in names}, ref, seed, 1, products)
            for ch, f in zip(chs, firsts)]


def _run_tail(post: Graph, where: str, feed: dict, ref: dict, seed: int, m: int, products: str | None) -> dict:
    """Outputs of the descendants graph ``post`` (``m`` stacked copies of the samples) on ``feed``
    (``products``: see :func:`_tail_runs`)."""
    from hwsim.sim.runner import FloatCache, check_memory

    if products:
        with _named(where):
            check_memory(post)
            return float32_outputs(post, feed, seed, products)
    rest = FloatCache(values={n: np.concatenate([ref[n]] * m) for n in _needed(post)}, inputs={})
    with one_blas_thread():  # see hwsim.solve.tail.one_blas_thread
        return _run(post, where, feed, rest, seed).output_values


def _stacked_f32(parts: list) -> np.ndarray:
    """``np.concatenate(parts)`` as float32 (rounded to nearest in the same pass); parts that are
    consecutive slices of one C-contiguous float32 array (:func:`_as_tail_inputs`) give the
    slice of that array they cover, without a copy (the same values)."""
    base = getattr(parts[0], "base", None)
    if isinstance(base, np.ndarray) and base.dtype == np.float32 and base.flags.c_contiguous and all(
            isinstance(p, np.ndarray) and p.base is base and p.dtype == np.float32 and p.flags.c_contiguous
            and p.ndim and p.shape[1:] == parts[0].shape[1:] for p in parts):
        at = [p.__array_interface__["data"][0] for p in parts]
        if all(b == a + p.nbytes for a, b, p in zip(at, at[1:], parts)):
            start = (at[0] - base.__array_interface__["data"][0]) // base.itemsize
            shape = (sum(len(p) for p in parts),) + parts[0].shape[1:]
            return base.reshape(-1)[start:start + int(np.prod(shape))].reshape(shape)
    return np.concatenate(parts, dtype=np.float32, casting="same_kind")  # one pass: cast while stacking


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
        import threading

        self.g, self.build, self.seed, self.memo = g, build, seed, {}
        self.lock = threading.Lock()  # layers are measured on several threads (see _each)

    def graph(self, m: int) -> Graph | None:
        if self.build is None:
            return None
        with self.lock:
            return self._graph(m)

    def _graph(self, m: int) -> Graph | None:
        from hwsim.sim.runner import ensure_weights

        if m not in self.memo:
            big = self.build(m)
            if big is not None:
                big = ensure_weights(_shared_weights(big, self.g), self.seed)
                same = set(big.tensors) == set(self.g.tensors) and all(
                    t.data is None or t.data is big.tensors[n].data or _tiled(t.data, big.tensors[n].data, m)
                    for n, t in self.g.tensors.items() if t.role in ("weight", "bias", "buffer", "const"))
                big = big if same else None
            self.memo[m] = big
        return self.memo[m]


def _shared_weights(big: Graph, g: Graph) -> Graph:
    """``big`` with the arrays of ``g``'s parameters where ``big`` has none of the same shape (the
    synthetic weights :func:`hwsim.sim.runner.ensure_weights` would draw again for it)."""
    names = [n for n, t in big.tensors.items() if t.data is None and t.role in ("weight", "bias", "buffer")
             and n in g.tensors and g.tensors[n].data is not None and g.tensors[n].shape == t.shape]
    if not names:
        return big
    big = big.copy()
    for n in names:
        big.set_data(n, g.tensors[n].data)
    if g.notes != big.notes:
        big.notes = list(dict.fromkeys(big.notes + g.notes))
    return big


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
