"""``run``: execute a (quantized) graph bit-accurately beside its float reference.

Order of work: synthetic weights if the graph has none; inputs checked and converted to real
values (:mod:`hwsim.sim.boundary`); float reference (float64, no quantization, no pruning) over
every tensor; calibration of missing activation scales from the reference (or from
``calibration`` inputs); then the quantized run, op by op in topological order. After each op
its output is rounded onto its tensor's QuantSpec (an fp32 tensor to float32); graph inputs are
rounded onto theirs. Weights are pruned (``op.pruning``) then quantized per their QuantSpec.
A float op reading an integer-quantized tensor sees it rounded to float32, as ONNX
DequantizeLinear outputs it (QDQ semantics and onnxruntime's fused ops: :mod:`hwsim.sim.ortfused`).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from hwsim import heap
from hwsim import requant as requant_modes
from hwsim.errors import ConfigError, InputDataError, MemoryLimitError, ShapeError
from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.weights import synthesize_weights
from hwsim.sim import boundary, lanes, memory, ortfused, qspec, refblas, refchain, refvalues
from hwsim.sim.qspec import const_real
from hwsim.sim import compute, elementwise, qdq  # noqa: F401  (register executors)
from hwsim.sim.arriving import reference_names
from hwsim.sim.metrics import (clamp_at_zero_note, coded_errors, nonfinite_notes, reference_nonfinite_note,
                               rounding_notes, unmatched_note)
from hwsim.sim.registry import ExecContext, execute, rounds_own_inputs, takes_coded

_EXPLICIT = ("quantize", "dequantize", "cast")
#: ops whose output keeps the input's scale when formats agree (no arithmetic on the grid)
_SCALE_PRESERVING = ("reshape", "transpose", "flatten", "squeeze", "unsqueeze", "slice",
                     "kv_cache_read", "concat", "gather")


@dataclass(frozen=True)
class LayerError:
    """Error of one op's output against the float reference."""

    name: str
    op: str
    sqnr_db: float
    mse: float


@dataclass(frozen=True)
class FloatCache:
    """Float reference values of every tensor for one set of inputs (reuse it across runs)."""

    #: tensor name -> float64 values (a :class:`~hwsim.sim.refvalues.RefValues` from
    #: :func:`float_reference`: values read as float64 arrays, made from a deferred sum on first read)
    values: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    #: type the dot products were computed in (``reference_precision`` of :func:`run`)
    precision: str = "float64"
    #: (tensor name, per-tensor spec) -> spec calibrated on ``values`` (filled by runs reusing this;
    #: also each tensor's calibration statistic, see :func:`calibrate_graph`)
    calibrated: dict = field(default_factory=dict, repr=False, compare=False)
    #: a dict to keep the constants runs reusing this prepare (pruned, calibrated, quantized), one
    #: preparation per constant, spec, pruning and seed, even for runs at once (solve's candidate
    #: plans share most weights); None (the default): each run prepares its own and frees them
    prepared: dict | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SimResult:
    """Outcome of :func:`run`.

    Attributes
    ----------
    outputs : dict
        Graph outputs in boundary types (integer codes for integer-typed outputs).
    output_values : dict
        Graph outputs as real float64 values.
    reference_outputs : dict
        Float reference of the graph outputs, real float64 values (empty without a reference).
    layers : list of LayerError
        One entry per op, in execution order (empty when run with ``metrics=False``).
    notes : list of str
        What the run assumed or met (synthetic weights, NaN counts, fallbacks).
    graph : Graph
        The calibrated graph that was run (scales filled in).
    reference : FloatCache or None
        The float reference (pass it back as ``reference=`` to skip recomputing it); None when
        run with ``float_reference=False``.
    memory : MemoryEstimate
        Peak memory estimated before the run (:mod:`hwsim.sim.memory`), checked against what
        was available.
    """

    outputs: dict[str, np.ndarray]
    output_values: dict[str, np.ndarray]
    reference_outputs: dict[str, np.ndarray]
    layers: list[LayerError]
    notes: list[str]
    graph: Graph
    reference: FloatCache | None = field(repr=False)
    memory: memory.MemoryEstimate | None = None

    def layer(self, name: str) -> LayerError:
        for e in self.layers:
            if e.name == name:
                return e
        raise KeyError(name)


def ensure_weights(graph: Graph, seed: int) -> Graph:
    """The graph itself if every parameter has data, else a copy with seeded synthetic weights."""
    if all(t.data is not None for t in graph.tensors.values() if t.role in ("weight", "bias", "buffer")):
        return graph
    return synthesize_weights(graph, seed)


def _kv_values(graph: Graph, inputs: dict, seed: int, notes: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for t in graph.tensors.values():
        if t.role == "kv_cache" and t.name not in graph.inputs:
            if t.name in inputs:
                out[t.name] = boundary.to_real(t, boundary.check_input(t, inputs[t.name]))
            else:
                out[t.name] = np.random.default_rng([seed, 7]).standard_normal(t.shape)
                notes.append("KV caches not given: filled with seeded N(0, 1) values")
    return out


def _execute(ctx: ExecContext, values: dict, prepare, after=None, release=None) -> dict:
    """Run every op; ``values`` holds inputs (and receives every op output).

    With ``after`` (the quantized run), ``after(op, y)`` sees each output as it is made and
    values die after their last reader (:func:`hwsim.sim.memory.liveness`); the reference keeps
    every value, or with ``release`` calls ``release(name)`` for each op output once no later op
    reads it (:class:`_Release` decides when it goes). Integer outputs stay
    :class:`~hwsim.sim.qspec.Coded` (reals made when a reader needs them).
    """
    g = ctx.graph
    dead = memory.liveness(g) if after is not None else None
    lane = lanes.current()
    ops, chains, ahead = g.ops(), {}, {}
    if ctx.reference and after is None and refchain.enabled and (plan := refchain.plan(g)):
        ops, chains = refchain.order(g, plan), {c.ops[0].name: c for c in plan}
    done = _last_reads(ops) if release is not None else None
    for i, op in enumerate(ops):
        if lane is not None:
            lane.before_op()  # its numba threads: 1 while the run's other thread runs, all once it has ended
        if op.name in chains:  # the reference's elementwise chain: every op's values made here
            ahead.update(refchain.run(chains[op.name], values) or {})
        if op.outputs[0] in ahead:
            values[op.outputs[0]] = ahead.pop(op.outputs[0])
            for t in done[i] if done is not None else ():
                release(t)
            continue
        xs = [values[t] if t in values else prepare(op, i, t) for i, t in enumerate(op.inputs)]
        dequantized = not ctx.reference and not op.is_compute and op.op not in _EXPLICIT and not rounds_own_inputs(op)
        if not takes_coded(op):
            xs = [ortfused.dequantized_real(ctx, t, x) if dequantized else qspec.real_of(x) for t, x in zip(op.inputs, xs)]
        elif dequantized:
            xs = [ortfused.dequantized_input(ctx, t, x) for t, x in zip(op.inputs, xs)]
        y = execute(ctx, op, xs)
        if ctx.reference and isinstance(y, qspec.Coded):  # the reference keeps reals (a Biased stays)
            y = y.real()
        if not isinstance(y, qspec.Deferred):  # codes are on their grid; a Biased is the reference's
            y = np.asarray(y, dtype=np.float64)
            out = g.tensors[op.outputs[0]]
            if not ctx.reference and op.op not in _EXPLICIT and out.name not in ctx.on_grid:
                y = _round_output(ctx, op, out, y)
        values[op.outputs[0]] = y
        if after is not None:
            after(op, y)
            for t in dead[i]:
                values.pop(t, None)
                ctx.codes.pop(t, None)
                prepare.release(t)
        for t in done[i] if done is not None else ():
            release(t)
    return values


def _last_reads(ops: list) -> list[list[str]]:
    """For each op of ``ops`` (in the order they run), the op outputs no later op reads: those
    whose last reader it is, and its own outputs that nothing reads."""
    last = memory.last_readers(ops)
    made = {t: i for i, op in enumerate(ops) for t in op.outputs}
    done: list[list[str]] = [[] for _ in ops]
    for t, i in made.items():
        done[max(i, last.get(t, i))].append(t)
    return done


class _Release:
    """When a run that does not keep its reference (``keep_reference=False``) drops each
    reference value: once no later reference op reads it and its per-op metric, if it has one,
    has read it; never the names in ``keep`` (the outputs). Called from the reference's thread
    (:meth:`reference_done`) and from whichever thread computes a metric (:meth:`metric_done`);
    ``values`` is the dict the reference is computed into (set when it starts)."""

    def __init__(self, keep: set[str], metric_reads: list[str]):
        self._lock = threading.Lock()
        self.values: dict | None = None
        self._keep = keep
        self._metric = Counter(n for n in metric_reads if n not in keep)  # reads still to come, per name
        self._past = set()  # read by no later reference op, a metric still to come

    def reference_done(self, name: str) -> None:
        with self._lock:
            if name in self._keep:
                return
            if self._metric[name] > 0:
                self._past.add(name)
                return
        self._drop(name)

    def metric_done(self, name: str) -> None:
        with self._lock:
            self._metric[name] -= 1
            if self._metric[name] > 0 or name not in self._past:
                return
            self._past.discard(name)
        self._drop(name)

    def _drop(self, name: str) -> None:
        values = self.values  # the reference's dict (hwsim.sim.arriving._Filling): its readers hold its lock
        with values.changed:
            if dict.__contains__(values, name):
                dict.__delitem__(values, name)
                values.gone.add(name)
                values.changed.notify_all()


def _round_output(ctx: ExecContext, op, out: Tensor, y: np.ndarray) -> np.ndarray:
    if boundary.is_integer_type(out.dtype) and qspec.is_passthrough(out.quant):
        return y
    coded = None if op is None else qspec.quantize_coded(y, out.quant)  # an 8-bit grid: its codes
    if coded is not None:
        return coded
    try:
        return qspec.quantize(y, out.quant, seed=ctx.seed)
    except InputDataError as exc:
        where = f"graph input '{out.name}'" if op is None else f"{op.op} '{op.name}' output '{out.name}'"
        raise InputDataError(f"{where}: {exc}") from None


#: ``reference_precision`` values: the type of the float reference's convolutions and matrix products
REFERENCE_PRECISIONS = ("float32", "float64")


def float_reference(graph: Graph, real_inputs: dict, seed: int = 0, precision: str = "float64",
                    into: dict | None = None, release=None) -> FloatCache:
    """Float reference values (float64 arrays) of every tensor: no quantization, no pruning.

    ``precision`` is the type of its convolutions and matrix products (``reference_precision``
    of :func:`run`); everything else runs in float64. ``into``: the dict the values are stored
    in as they are made (default a new one; e.g. read meanwhile by another thread,
    :mod:`hwsim.sim.arriving`); ``release(name)``: called once no later op reads an op output
    (:class:`_Release`: :func:`run` with ``keep_reference=False``).
    """
    check_reference_precision(precision)
    ctx = ExecContext(graph=graph, reference=True, seed=seed, reference_dtype=precision, deferred_sums=True)
    values = {} if into is None else into
    values.update(refvalues.constants(graph))
    values.update(real_inputs)
    values = _execute(ctx, values, None, release=release)
    return FloatCache(values=refvalues.RefValues(values), inputs=dict(real_inputs), precision=precision)


def check_reference_precision(precision: str) -> str:
    if precision not in REFERENCE_PRECISIONS:
        raise ConfigError(f"unknown reference precision {precision!r}; use float32 or float64",
                          param="reference_precision")
    return precision


_reference_run = float_reference  # run() has a parameter of that name


def _calibrated(spec, name: str, ref, memo) -> object:
    """:func:`qspec.calibrate` of ``spec`` on ``ref[name]``; a statistic that serves several specs
    (:func:`qspec.finite_span`) is kept in ``memo`` under ``(name, "finite span")``."""
    if not qspec.uses_span(spec):
        return qspec.calibrate(spec, ref[name])
    key = (name, "finite span")
    if key not in memo:
        memo[key] = qspec.finite_span(ref[name])
    return qspec.calibrate_span(spec, memo[key])


def calibrate_graph(graph: Graph, ref: dict[str, np.ndarray], memo: dict | None = None) -> Graph:
    """Copy of ``graph`` with missing activation scales set from reference values (qspec rules).

    ``memo`` (optional, kept by the caller for one ``ref``) remembers calibrated specs by
    (tensor name, spec), and each tensor's statistic once for all its specs (an 8-bit and a
    16-bit format), so repeated runs on the same reference skip the max-abs passes.
    """
    memo = {} if memo is None else memo
    g = graph.copy()
    producers = {op.outputs[0]: op for op in g.ops()}
    for op in [None] + g.ops():
        names = g.inputs if op is None else op.outputs
        for name in names:
            t = g.tensors[name]
            if t.quant.scale is not None or t.role not in ("input", "activation", "kv_cache"):
                continue
            if boundary.is_integer_type(t.dtype) or boundary._key(t.dtype).startswith(boundary._LOWP_FLOAT):
                if qspec.formats.get(t.quant.format).integer_codes:
                    g.set_quant(name, t.quant.model_copy(update={"scale": (1.0,)}))
                continue
            src = producers.get(name)
            if src is not None and src.op in _EXPLICIT:
                continue
            if src is not None and src.op in _SCALE_PRESERVING and g.tensors[src.inputs[0]].quant.format == t.quant.format \
                    and g.tensors[src.inputs[0]].quant.scale is not None and t.quant.granularity == "tensor":
                g.set_quant(name, g.tensors[src.inputs[0]].quant)
                continue
            if qspec.needs_scale(t.quant) and name in ref:
                spec = t.quant.model_copy(update={"granularity": "tensor", "axis": None})
                if (name, spec) not in memo:
                    memo[(name, spec)] = _calibrated(spec, name, ref, memo)
                g.set_quant(name, memo[(name, spec)])
    return g


class _Weights:
    """Prepares constants for the quantized run: pruning, weight calibration, quantization."""

    def __init__(self, ctx: ExecContext, shared: dict | None = None):
        self.ctx, self.cache, self.shared = ctx, {}, shared

    def release(self, name: str) -> None:
        """Forget the prepared copies of constant ``name`` (its last reader has run)."""
        for key in [k for k in self.cache if k[0] == name]:
            del self.cache[key]

    def __call__(self, op, slot: int, name: str) -> np.ndarray | qspec.Coded:
        """The value op ``op`` reads in input ``slot`` from constant ``name``: stored codes the
        simulator runs as they are (:func:`qspec.grid_codes`) as a :class:`qspec.Coded`, else
        the prepared real values."""
        g = self.ctx.graph
        t = g.tensors[name]
        if t.data is None:
            raise InputDataError(f"{op.op} '{op.name}' reads '{name}', which has no value")
        compute_weight = op.is_compute and slot in type(op).weight_slots
        if op.is_compute and slot in type(op).bias_slots:
            return qspec.const_real_kept(t)
        key = (name, op.pruning.label if compute_weight else "")
        if op.op == "embedding" and slot == 1 and rounds_own_inputs(op):
            rows = self._table_rows(t)
            if rows is not None:
                return rows
        if key not in self.cache:
            spec, pruning = t.quant, op.pruning if compute_weight else None
            codes = qspec.grid_codes(t, pruning)
            if codes is not None:  # what prepare_constant runs: the integer ops read the codes themselves
                self.cache[key] = qspec.Coded(codes, spec)
                return self.cache[key]
            values, new_spec = self._prepare(t, pruning, compute_weight)
            if new_spec is not spec:
                g.set_quant(name, new_spec)
            self.cache[key] = values
        return self.cache[key]

    def _table_rows(self, t: Tensor) -> qspec.TableRows | None:
        """An embedding table as :class:`qspec.TableRows` (its rows quantized as they are read), or
        None where that does not apply (:func:`qspec.table_rows_apply`; stored codes, and tensors of
        an integer type, go the whole table's way, :func:`qspec.prepare_constant`)."""
        key = (t.name, "", "rows")
        if key not in self.cache:
            rows = None
            if qspec.grid_codes(t, None) is None and not qspec.is_passthrough(t.quant) \
                    and not boundary.is_integer_type(t.dtype):
                spec = qspec.weight_spec(t.data, t.quant)  # calibrated on the whole table, as prepare_weight does
                if qspec.table_rows_apply(t, spec):
                    if spec is not t.quant:
                        self.ctx.graph.set_quant(t.name, spec)
                    rows = qspec.TableRows(t.data, spec, self.ctx.seed)
            self.cache[key] = rows
        return self.cache[key]

    def _prepare(self, t: Tensor, pruning, coded: bool) -> tuple[np.ndarray | qspec.Coded, object]:
        """:func:`qspec.prepare_constant` of ``t`` (``coded``: a MAC weight, its codes made in the
        same pass), made once among the runs sharing ``shared`` (:attr:`FloatCache.prepared`); the
        key holds the constant's data, so its ``id`` stays its own."""
        if self.shared is None:
            return qspec.prepare_constant(t, pruning, self.ctx.seed, coded)

        def make():
            values, spec = qspec.prepare_constant(t, pruning, self.ctx.seed, coded)
            for a in (values.codes, values.real()) if isinstance(values, qspec.Coded) else (values,):
                if isinstance(a, np.ndarray):  # runs share it: a write in place would reach the others
                    a.flags.writeable = False
            return values, spec

        key = (t.name, t.quant, pruning, id(t.data), self.ctx.seed, coded)
        return self.shared.setdefault(key, _Once(t.data)).get(make)


class _Once:
    """A value made by the first caller of :meth:`get`; callers at the same time wait for it."""

    def __init__(self, pinned):
        self.pinned, self._lock, self._value = pinned, threading.Lock(), None

    def get(self, make):
        with self._lock:
            if self._value is None:
                self._value = make()
            return self._value


def check_requant(requant: str) -> str:
    return requant_modes.get(requant).name


def run(graph: Graph, inputs: dict, requant: str = "exact", seed: int = 0,
        calibration: list[dict] | dict | None = None, reference: FloatCache | None = None,
        overflow: str = "wrap", pairwise_int16: bool = False, ort_e4m3fn_cast: bool = False,
        float_order: str = "sequential", metrics: bool = True,
        memory_limit_bytes: int | None = None, float_reference: bool = True, ort_threads: int = 1,
        reference_precision: str = "float32", ort_activations: bool = False,
        reference_graph: Graph | None = None, keep_reference: bool = True) -> SimResult:
    """Simulate ``graph`` on ``inputs`` bit-accurately beside a float reference.

    Parameters
    ----------
    graph : Graph
        Quantized (or float) graph; zoo graphs without weights get seeded synthetic weights.
    inputs : dict
        Graph input name -> array in boundary types (:mod:`hwsim.sim.boundary`); KV caches may
        be given by tensor name too.
    requant : {"exact", "onnxruntime", "gemmlowp", "tflite"}
        Requantization of integer layers (see :func:`hwsim.kernel_api.requantize`).
    seed : int
        Seed of synthetic weights, KV caches, VQ codebooks and stochastic rounding.
    calibration : dict or list of dict, optional
        Inputs to calibrate missing activation scales on (max-abs over all of them); default
        the simulated inputs.
    reference : FloatCache, optional
        Float reference of these same inputs from an earlier run (skips recomputing it).
    overflow : {"wrap", "saturate"}
        Integer accumulator overflow rule.
    pairwise_int16, ort_e4m3fn_cast, ort_activations : bool
        Model the known onnxruntime deviations (never on by default): x86 u8*s8 int16 pair
        saturation, its FLOAT8E4M3FN cast, and its float32 Sigmoid / Tanh ops (MLAS's rational
        approximations, within a few ulps of the functions; the default computes each value in
        float64 and rounds it once).
    float_order : {"sequential", "pairwise", "blocked"}
        Summation order of low-precision float layers.
    metrics : bool
        Compute the per-op SQNR / MSE (``layers``); False leaves ``layers`` empty (faster when
        only the outputs are needed, as in sensitivity tail runs).
    ort_threads : int
        onnxruntime intra-op threads to model where its result depends on them (DynamicQuantizeLSTM
        splits the batch over threads, one hidden-state scale per part); default 1.
    memory_limit_bytes : int, optional
        Refuse (MemoryLimitError, before allocating anything) when the estimated peak memory is
        larger; default the memory available now. 0 disables the check.
    float_reference : bool
        Run the float64 reference beside the simulation (per-op metrics, ``reference_outputs``).
        False: outputs only, about half the work on conv nets; ``layers`` and
        ``reference_outputs`` are empty and ``reference`` is None, unless missing activation
        scales must be calibrated on the reference (then it runs anyway, for that alone, and is
        returned; ``layers`` stays empty).
    reference_precision : {"float32", "float64"}
        Type of the float reference's convolutions and matrix products (its values and all other
        ops stay float64). float32 (the default) runs them on float32 BLAS (depthwise convs sum
        their taps in float32 too, since 2026-11-26; float64 sums before; 3x3 stride-1 convs of
        128+ input channels as float32 Winograd F(2x2, 3x3), since 2026-11-27,
        :func:`hwsim.sim.refconv.winograd`), about twice as fast:
        its rounding (relative ~1e-7) is far below the quantization noise an SQNR figure measures
        (8-bit: ~1e-2); on the benchmark QDQ models (benchmarks/qdq_zoo.py) no per-layer SQNR
        moved by more than 1e-5 dB. Choose float64 to measure formats whose noise nears float32's
        own (fp32, tf32, SQNR above ~100 dB). When missing
        activation scales are calibrated on the reference it runs in float64 whatever is asked,
        so calibrated scales never depend on this choice.
    reference_graph : Graph, optional
        The float model to compare with, instead of ``graph`` run without its quantizers: e.g.
        the float ONNX file onnxruntime's ``quantize_static`` made ``graph`` from (by default it
        removes each Relu or Clip whose range the next quantizer clamps, so the QDQ graph without
        its quantizers lacks them). Its values are matched to ``graph``'s by tensor name: it must
        read only inputs of ``graph`` (same shapes) and hold every output of ``graph``;
        :func:`check_reference_graph` says what does not match. Ops whose output it lacks get no
        per-op metrics (a note counts them). Missing activation scales are still calibrated on
        ``graph``'s own reference. Needs ``float_reference``; excludes ``reference``.
    keep_reference : bool
        Keep every reference value to the end and return them (``reference``, the default: e.g.
        to run again with ``reference=``). False: where the reference runs beside the simulation
        (:func:`hwsim.sim.refblas.threads_at_once` above 1, no scale calibrated on it), each
        value is dropped once the reference's later ops and the op's metrics have read it, and
        ``reference`` holds the graph's outputs, constants and inputs only; the figures are the
        same. The ``hwsim simulate`` command runs so: a reference keeps every activation in float64
        (PP-OCRv4's recogniser at batch 8: 3.3 GiB, most of a whole run's time faulting it in).

    Returns
    -------
    SimResult
    """
    check_requant(requant)
    if overflow not in ("wrap", "saturate"):
        raise ConfigError(f"unknown overflow rule {overflow!r}; use wrap or saturate")
    if int(ort_threads) < 1:
        raise ConfigError(f"ort_threads must be >= 1, got {ort_threads}", param="ort_threads")
    check_reference_precision(reference_precision)
    if reference_graph is not None and (reference is not None or not float_reference):
        raise ConfigError("a reference graph (the float model to compare with) needs the float reference run "
                          "and replaces a given reference: drop one of them", param="reference_graph")
    calibrates = calibration is None and needs_calibration(graph)
    with_ref = bool(reference) or float_reference or calibrates
    need = check_memory(graph, memory_limit_bytes, reference=with_ref, reference_graph=reference_graph)
    if with_ref:  # the reference's values are freed together at the end: keep them for the next run
        heap.keep_for_reuse(need.total_bytes, memory.available_bytes())
    notes: list[str] = []
    g = ensure_weights(graph, seed)
    notes += list(dict.fromkeys(g.notes))  # the import's and the config's notes too (e.g. --shape keys unused)
    real_inputs, input_notes = boundary.read_inputs(g, inputs)
    notes += input_notes
    real_inputs.update(_kv_values(g, inputs, seed, notes))
    precision = "float64" if calibrates else reference_precision
    rg = ref_inputs = matched = None  # the float model compared with, when it is not g
    if reference_graph is not None:
        rg = ensure_weights(reference_graph, seed)
        ref_inputs, matched = check_reference_graph(g, rg, real_inputs)
    beside = release = None
    if with_ref and reference is None and not calibrates and refblas.threads_at_once() > 1:
        # nothing before the metrics reads it
        if not keep_reference:
            read = [] if not metrics else \
                [op.outputs[0] for op in g.ops()] if matched is None else list(matched.values())
            release = _Release(set(g.outputs) | (set() if rg is None else set(rg.outputs)), read)
        beside = _ReferenceBeside(g, real_inputs, seed, precision, release) if rg is None else \
            _ReferenceBeside(rg, ref_inputs, seed, reference_precision, release)
        ref = None
    else:
        ref = (reference or _reference_run(g, real_inputs, seed, precision)) if with_ref else None
    if calibration is not None:
        gq = calibrate_graph(g, _calibration_stats(g, calibration, seed))
    else:  # (beside: no scale to calibrate, calibrate_graph reads no value)
        gq = calibrate_graph(g, ref.values, ref.calibrated) if ref is not None else calibrate_graph(g, {}) \
            if beside is not None else g
    if rg is not None and beside is None:  # (g's own reference, if made, calibrated the scales)
        ref = _reference_run(rg, ref_inputs, seed, reference_precision)
    unmatched: list[str] = []  # ops whose output the reference graph lacks
    metrics = metrics and float_reference
    ctx = ExecContext(graph=gq, reference=False, requant=requant, overflow=overflow,
                      pairwise_int16=pairwise_int16, ort_e4m3fn_cast=ort_e4m3fn_cast, ort_activations=ort_activations,
                      float_order=float_order, seed=seed, notes=notes, ort_threads=int(ort_threads))
    start = {n: _round_input(gq.tensors[n], v, ctx) for n, v in real_inputs.items()}
    for n in gq.inputs:
        notes += _input_notes(n, gq.tensors[n].quant.format, real_inputs[n], start[n])
    layers: list[LayerError | None] = []  # None: a job of beside.jobs (computed by a free thread)
    nonfinite: list[tuple] = []  # only tensors holding NaN / inf are kept for their notes
    simulated_nonfinite: set[str] = set()  # the names of their ops

    ref_raw = beside.raw if beside is not None else (lambda name: refvalues.raw_value(ref.values, name))

    def after(op, y):
        if release is not None and metrics:
            beside.jobs.run_ready()  # the reference values they compare with can go
        name = op.outputs[0] if matched is None else matched.get(op.outputs[0])  # the reference's name
        if metrics and name is None:
            unmatched.append(f"{op.op} '{op.name}'")
            if not isinstance(y, qspec.Coded) and y.dtype.kind in "fc" and op.outputs[0] not in gq.outputs \
                    and not np.isfinite(y).all():
                nonfinite.append((f"{op.op} '{op.name}'", None, y))
        elif metrics and beside is not None and beside.jobs.wants(name, _held_bytes(y)) and _finite(y):
            # codes are finite, and so is this float output: no note to make. (A job keeps its
            # reference value from its arrival until it runs: run_ready above, in a run that drops
            # its reference.)
            beside.jobs.add(len(layers), name, lambda: _read_once(LayerError(op.name, op.op, *coded_errors(ref_raw(name), y)),
                                                                  release, name),
                            _held_bytes(y))
            layers.append(None)
        elif metrics:
            err = LayerError(op.name, op.op, *coded_errors(ref_raw(name), y))
            layers.append(err)
            # a finite mse is a finite sum of (ref - y)**2: y holds no NaN or inf (no pass to ask);
            # codes are finite
            if not isinstance(y, qspec.Coded) and y.dtype.kind in "fc" \
                    and not np.isfinite(err.mse) and not np.isfinite(y).all():
                simulated_nonfinite.add(op.name)  # else the reference is NaN or inf (reference_nonfinite_note)
                if op.outputs[0] not in gq.outputs:
                    nonfinite.append((f"{op.op} '{op.name}'", qspec.real_of(ref_raw(name)), y))
            _read_once(None, release, name)

    if beside is None:
        values = _execute(ctx, start, _Weights(ctx, None if ref is None else ref.prepared), after)
    else:
        values = beside.beside(lambda: _execute(ctx, start, _Weights(ctx), after))
        ref = beside.cache
        layers = [beside.jobs.results[i] if e is None else e for i, e in enumerate(layers)]
    # an output that is a constant also read as an op's weight (the importer gives a constant
    # output of its own an identity op) is no op's output: its value is the stored constant
    values.update({n: qspec.real_of(values[n]) if n in values else const_real(gq.tensors[n]) for n in gq.outputs})
    ref_out = {n: ref.values[n] if n in ref.values else const_real(gq.tensors[n]) for n in gq.outputs} \
        if ref is not None else {}
    watched = [(f"output '{n}'", ref_out.get(n), values[n]) for n in gq.outputs]
    notes += nonfinite_notes(watched + nonfinite)
    ref_notes = [clamp_at_zero_note(gq) if rg is None else unmatched_note(unmatched, len(layers)),
                 reference_nonfinite_note(layers, simulated_nonfinite)] if metrics else []
    notes += [n for n in ref_notes if n]
    return SimResult(
        outputs={n: boundary.from_real(gq.tensors[n], values[n]) for n in gq.outputs},
        output_values={n: values[n] for n in gq.outputs},
        reference_outputs=ref_out,
        layers=layers, notes=list(dict.fromkeys(notes)), graph=gq, reference=ref, memory=need)


def _held_bytes(y) -> int:
    """Bytes a metric job holding the quantized output ``y`` keeps alive (its codes, or the array)."""
    return y.codes.nbytes if isinstance(y, qspec.Coded) else y.nbytes


def _finite(y) -> bool:
    """Whether the quantized output ``y`` holds no NaN or inf, so that its metrics make no note
    (codes always; a float array by a pass over it)."""
    return isinstance(y, qspec.Coded) or y.dtype.kind not in "fc" or bool(np.isfinite(y).all())


def _read_once(result, release: _Release | None, name: str):
    """``result``, after telling ``release`` (if any) that the metric of ``name`` has read its value."""
    if release is not None:
        release.metric_done(name)
    return result


class _ReferenceBeside:
    """The float reference of :func:`run` computed on a thread of its own
    (:class:`hwsim.sim.arriving.ArrivingReference`) while the quantized run goes on: its ops
    read no reference value (no activation scale is calibrated on it) and each op's metrics wait
    for the value they compare with. The values are those of the reference run first."""

    def __init__(self, g: Graph, real_inputs: dict, seed: int, precision: str, release: _Release | None = None):
        from hwsim.sim.arriving import ArrivingReference
        from hwsim.sim.metric_jobs import MetricJobs

        self._made: list[FloatCache] = []
        jobs_made = threading.Event()

        #: the two threads' CPUs (:mod:`hwsim.sim.lanes`): one each while both run
        self.lanes = lanes.Lanes()

        def compute(into: dict) -> None:
            self.lanes.enter()
            try:
                if release is not None:
                    release.values = into
                self._made.append(_reference_run(g, real_inputs, seed, precision, into=into,
                                                 release=None if release is None else release.reference_done))
            finally:
                self.lanes.leave()
            jobs_made.wait()
            self.jobs.help()  # then the metrics the quantized run handed over

        self._arriving = ArrivingReference(reference_names(g), compute)
        #: per-op metrics run by whichever thread is free (:mod:`hwsim.sim.metric_jobs`)
        self.jobs = MetricJobs(self._arriving)
        jobs_made.set()
        self.raw = self._arriving.raw

    def beside(self, quantized_run):
        """``quantized_run()``'s result once the reference and every metric job are complete too.
        Either's error is raised as a run with the reference first would raise it: the
        reference's, if it failed."""
        try:
            self.lanes.enter()
            try:
                out = quantized_run()
            finally:
                self.lanes.leave()
            self.jobs.finish()
        except BaseException:
            self.jobs.close()
            self._arriving.result()  # the reference's own error first
            raise
        self._arriving.result()
        return out

    @property
    def cache(self) -> FloatCache:
        return self._made[0]


def needs_calibration(graph: Graph) -> bool:
    """True if some input or activation of ``graph`` still lacks the scale its format needs
    (:func:`calibrate_graph` would set it from reference values)."""
    return any(t.role in ("input", "activation", "kv_cache") and qspec.needs_scale(t.quant)
               for t in graph.tensors.values())


def check_memory(graph: Graph, limit_bytes: int | None = None, reference: bool = True,
                 reference_graph: Graph | None = None) -> memory.MemoryEstimate:
    """The memory estimate of simulating ``graph`` (with or without the float ``reference``; of
    ``reference_graph`` instead when given, plus ``graph``'s own when it must calibrate scales);
    MemoryLimitError if it exceeds ``limit_bytes`` (default: the memory available now; 0: no check)."""
    if reference and reference_graph is not None:
        own = memory.estimate(graph, needs_calibration(graph))
        other = memory.estimate(reference_graph, True)
        need = replace(own, constants_bytes=own.constants_bytes + other.constants_bytes,
                       reference_bytes=own.reference_bytes + other.reference_bytes)
    else:
        need = memory.estimate(graph, reference)
    limit = memory.available_bytes() if limit_bytes is None else limit_bytes
    if limit and need.total_bytes > limit:
        gib = memory.gib
        raise MemoryLimitError(
            f"simulating '{graph.name}' needs about {gib(need.total_bytes)} of memory, more than the "
            f"{gib(limit)} available (stored constants {gib(need.constants_bytes)}; float64 reference of "
            f"constants and activations {gib(need.reference_bytes)}; live quantized "
            f"values {gib(need.live_bytes)}; largest op workspace {gib(need.workspace_bytes)} in "
            f"'{need.workspace_op}'). Reduce it: fewer layers, a smaller batch, sequence or context "
            "(model parameters), or simulate a part of the model; nothing was allocated")
    return need


#: onnxruntime's quantize_static names the dequantized copy of a tensor NAME (a constant it
#: quantizes, or an activation) NAME + this suffix
_ORT_DEQUANTIZED = "_DequantizeLinear_Output"


def check_reference_graph(graph: Graph, reference_graph: Graph, real_inputs: dict) -> tuple[dict, dict]:
    """``(inputs, matched)`` for :func:`run` comparing ``graph`` with ``reference_graph`` (the float
    model): the reference's inputs taken from ``real_inputs`` (``graph``'s), and for each op output
    of ``graph`` the name of the reference tensor it compares with: the same name, else for
    ``NAME_DequantizeLinear_Output`` (quantize_static's name of a dequantized copy) ``NAME``;
    outputs with neither are left out. ShapeError naming the first thing that does not match: an
    input of the reference that ``graph`` does not read or reads in another shape, an output of
    ``graph`` the reference does not compute, a matched pair of tensors of different shapes."""
    def shape(g, n):
        return tuple(int(d) for d in g.tensors[n].shape)

    other = f"the reference model '{reference_graph.name}'"
    for n in reference_graph.inputs:
        if n not in graph.inputs:
            raise ShapeError(f"{other} reads input '{n}', which '{graph.name}' does not have (its inputs: "
                             f"{list(graph.inputs)}): the reference must run on the same inputs")
        if shape(reference_graph, n) != shape(graph, n):
            raise ShapeError(f"input '{n}' is {shape(graph, n)} in '{graph.name}' and "
                             f"{shape(reference_graph, n)} in {other}: bind the same shapes (--shape)")
    names = reference_names(reference_graph)
    for n in graph.outputs:
        if n not in names:
            raise ShapeError(f"{other} computes no tensor '{n}' (an output of '{graph.name}'; its outputs are "
                             f"{list(reference_graph.outputs)}): it is not the float model this one was made from")
    matched = {}
    for op in graph.ops():
        n = op.outputs[0]
        base = n[:-len(_ORT_DEQUANTIZED)] if n.endswith(_ORT_DEQUANTIZED) else None
        r = n if n in names else base if base in names else None
        if r is None:
            continue
        if shape(graph, n) != shape(reference_graph, r):
            raise ShapeError(f"tensor '{n}' is {shape(graph, n)} in '{graph.name}' and '{r}' is "
                             f"{shape(reference_graph, r)} in {other}: it is not the float model this one was made from")
        matched[n] = r
    return {n: real_inputs[n] for n in reference_graph.inputs}, matched


def _round_input(t: Tensor, v: np.ndarray, ctx: ExecContext) -> np.ndarray | qspec.Coded:
    """A graph input's real values on its tensor's grid: the codes (a :class:`qspec.Coded`) on an
    8-bit grid (:func:`qspec.quantize_coded`, the integer ops read them without taking them again)."""
    if boundary.is_integer_type(t.dtype):
        return v
    if qspec.is_passthrough(t.quant) and t.dtype != "float32":
        return v
    coded = qspec.quantize_coded(v, t.quant)
    return coded if coded is not None else _round_output(ctx, None, t, v)


def _input_notes(name: str, fmt: str, before: np.ndarray, after) -> list[str]:
    """:func:`rounding_notes` of a graph input (codes are finite: a finite input has nothing to say)."""
    if isinstance(after, qspec.Coded):
        if np.isfinite(before).all():
            return []
        after = after.real()
    return rounding_notes(f"input '{name}'", fmt, before, after)


def _calibration_stats(g: Graph, calibration, seed: int) -> dict[str, np.ndarray]:
    """Per tensor, the elementwise extremes over all calibration sets (enough for max-abs rules)."""
    sets = calibration if isinstance(calibration, (list, tuple)) else [calibration]
    if not sets:
        raise InputDataError("calibration needs at least one input set")
    stats: dict[str, list] = {}
    for inp in sets:
        real, _ = boundary.read_inputs(g, inp)
        for n, v in float_reference(g, real, seed).values.items():
            stats.setdefault(n, []).append(np.asarray(v).reshape(-1))
    return {n: np.concatenate(vs) for n, vs in stats.items()}


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
