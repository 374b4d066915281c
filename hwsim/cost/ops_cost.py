"""One cost function per op kind (the explicit registry :data:`hwsim.cost.layer.COSTS`).

Dot products (conv2d, linear, matmul) run on the MAC unit; every other arithmetic op runs on the
elementwise path at ``elementwise_ops_per_cycle`` with half the gate energy of a MAC of its format
(assumption); views move no data, except the KV cache (read and append) and embedding rows.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

from hwsim import formats
from hwsim.cost import arith
from hwsim.cost.constants import ELEMENTWISE_OP_MAC_FRACTION, LUT_ADD_BITS
from hwsim.cost.fusion import FUSED_ATTENTION_NOTE
from hwsim.cost.layer import COSTS, Ctx, Work, finish, layer_overhead, level_energy_j, register_cost
from hwsim.cost.traffic import Operands, dot_traffic, reuse, scratchpad_traffic, stream_traffic
from hwsim.cost.unit import (NARROW_CONV_NOTE, UNALIGNED_NOTE, DotShape, accumulator_bits, decode_cycles_per_weight,
                             decode_energy_pj, gate_energy_fj, misaligned, narrow_conv_rate, occupancy, op_efficiency,
                             represents, select_rate, unit_mac_energy_pj, utilization)
from hwsim.graph.ops_onnx import CONTROL_FLOW

_RELU = ("relu", "relu6")


def dot_shape(op, ins, outs) -> DotShape:
    """The (m x k) @ (k x n) view of a conv2d / linear / matmul, per group."""
    if op.op == "conv2d":
        o, i, kh, kw = ins[1]
        n_, _, oh, ow = outs[0]
        return DotShape(n_ * oh * ow, o // op.groups, i * kh * kw, op.groups, kh, oh, convolution=True)
    if op.op in ("linear", "linear_block_int8"):
        return DotShape(math.prod(ins[0][:-1]), ins[1][0], ins[1][1], 1, 1, math.prod(ins[0][:-1]), inner=ins[1][1])
    if op.op == "conv3d":
        o, i, kd, kh, kw = ins[1]
        n_, _, od, oh, ow = outs[0]
        return DotShape(n_ * od * oh * ow, o // op.groups, i * kd * kh * kw, op.groups, kh, oh, convolution=True)
    if op.op in ("conv_transpose", "conv_transpose3d"):  # every input pixel x the group's C_out/groups x kernel
        ci, og, kh = ins[1][:3]
        pixels = math.prod(ins[0][2:])
        return DotShape(ins[0][0] * pixels, og * math.prod(ins[1][2:]), ci // op.groups, op.groups, kh, ins[0][2])
    if op.op in ("lstm", "gru", "rnn"):  # per direction: (seq x batch) rows through the W|R gate GEMM
        seq, batch = ins[0][:2]
        dirs, gh, k = ins[1]
        return DotShape(seq * batch, gh, k, dirs, 1, seq * batch)
    if op.op == "dynamic_quantize_lstm":  # per direction: (seq x batch) rows through the R gate GEMM
        seq, batch = ins[0][:2]
        rows, k = ins[1]
        return DotShape(seq * batch, rows // op.dirs, k, op.dirs, 1, seq * batch)
    out = outs[0]
    return DotShape(out[-2], out[-1], ins[0][-1], math.prod(out[:-2]), 1, out[-2])


def _stored_weight_bytes(ctx: Ctx, tensor: str, density: float, pruning) -> tuple[float, str]:
    """Bytes of a weight as stored: dense, or compressed with metadata where the target skips zeros."""
    t = ctx.graph.tensors[tensor]
    f = formats.get(t.quant.format)
    dense = t.size_bytes + f.side_bits_per_tensor / 8
    feats = ctx.target.features
    if pruning.kind == "nm" and any(p.n >= pruning.n and p.m == pruning.m for p in feats.nm_sparsity):
        kept = t.numel * pruning.n / pruning.m
        return kept * (f.bits_per_element + math.ceil(math.log2(pruning.m))) / 8, f"{pruning.label} compressed"
    if feats.skip_zero_weights and density < 1:
        sparse = t.numel * (density * f.bits_per_element + 1) / 8  # values + 1-bit occupancy mask
        if sparse < dense:
            return sparse, "zero-compressed"
    return dense, ""


def _effectual(op, ctx: Ctx, shape: DotShape, macs: int) -> tuple[float, float, str]:
    """(executed MAC-equivalents, weight density, note) after the target's data-dependent features."""
    st = ctx.stats(op) if op.op != "matmul" else None
    feats = ctx.target.features
    pruning = getattr(op, "pruning", None)
    if st is None:
        if pruning is not None and pruning.kind == "nm" and any(
                p.n >= pruning.n and p.m == pruning.m for p in feats.nm_sparsity):
            return macs * pruning.n / pruning.m, pruning.density, f"{pruning.label} sparse speed-up"
        return float(macs), 1.0, ""
    if st.window:
        cols = math.ceil(shape.k / st.window) * shape.m
        ops = (st.pattern_adds_per_window_col + st.row_adds_per_window_col) * cols
        if ops >= macs * st.density:  # no repetition to exploit: plain zero-skipping is cheaper
            return macs * st.density, st.density, f"zero-skipping, density {st.density:.2f}"
        return ops, st.density, (f"repetition reuse: {st.unique_patterns_per_window:.1f} unique patterns "
                                 f"per window of {st.window}, density {st.density:.2f}")
    for (n, m), comp in st.nm_compliance.items():
        if comp == 1.0:  # the hardware needs every group to comply
            return macs * n / m, st.density, f"{n}:{m} sparse speed-up (compliance {comp:.3f})"
    if feats.skip_zero_weights:
        return macs * st.density, st.density, f"zero-skipping, density {st.density:.2f}"
    return float(macs), st.density, ""


def _relu_input(ctx: Ctx, tensor: str) -> bool:
    prod = ctx.graph.producer(tensor)
    if prod is None:
        return False
    op = ctx.graph.op(prod)
    return (op.op == "unary" and op.fn in _RELU) or op.op == "pool"


def _relu_zeroed(ctx: Ctx, tensor: str) -> bool:
    """Whether ``tensor`` holds ReLU zeros: a ReLU / pool output, or a MAC output whose ReLU is folded into it."""
    if _relu_input(ctx, tensor):
        return True
    readers = ctx.graph.consumers(tensor)
    if len(readers) != 1:
        return False
    reader = readers[0]
    return reader.op == "unary" and reader.fn in _RELU and folded_into(reader, ctx) is not None


def _coded(ctx: Ctx, tensor: str) -> float:
    """Stored over plain bytes of activation ``tensor`` at the target's run-length-coded level (1 if none, and
    for the network's inputs, which are stored plain: Chen et al. JSSC'17 Sec. III-B)."""
    coding = ctx.target.features.fmap_coding
    if coding is None or ctx.graph.producer(tensor) is None:
        return 1.0
    z = ctx.target.features.activation_zero_fraction if _relu_zeroed(ctx, tensor) else 0.0
    return coding.coded_fraction(z, ctx.graph.tensors[tensor].quant.bits)


def _vq_lut(ctx: Ctx, wfmt: str, shape: DotShape, macs: int, rate, util: float):
    """LUT-GEMM path for codebook weights (T-MAC / GPTVQ-style kernels), or None if not VQ.

    For every activation vector of ``d`` elements the dot products with all ``2^B`` centroids are
    computed once (``m x k x 2^B`` MACs, shared by every output channel); each weight index then
    costs one table look-up (``ceil(2^B / lut_table_entries)`` look-up instructions' worth) and
    one add. Returns (core cycles, arithmetic pJ, decode pJ, executed ops).
    """
    f = formats.get(wfmt)
    if not f.codebook_entries:
        return None
    t = ctx.target
    lookups = macs / f.dim
    table_macs = shape.m * shape.k * shape.groups * f.num_centroids
    tables = math.ceil(f.num_centroids / t.compute.lut_table_entries)
    cycles = (lookups * (tables + 1) / t.compute.lut_lookups_per_cycle
              + table_macs / rate.macs_per_cycle) / util
    add_pj = arith.adder_gates(int(LUT_ADD_BITS.value)) * gate_energy_fj(t) * 1e-3
    arith_pj = table_macs * unit_mac_energy_pj(t, rate) + lookups * add_pj
    return cycles, arith_pj, lookups * decode_energy_pj(t, wfmt, rate), lookups + table_macs


def _operands(op, ctx: Ctx, shape: DotShape, rate, density: float) -> tuple[Operands, str]:
    """Bytes and homes of a dot product's operands (weights as stored, with metadata)."""
    g = ctx.graph
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if op.op == "matmul":
        wb, wnote, whome = ctx.nbytes(w.name), "", ctx.home_of(w.name, ctx.nbytes(w.name))
    else:
        wb, wnote = _stored_weight_bytes(ctx, w.name, density, getattr(op, "pruning", None))
        whome = ctx.weight_home
    ib, ob = ctx.nbytes(x.name), ctx.nbytes(y.name)
    acc_b = (ctx.target.compute.psum_bits or accumulator_bits(rate)) / 8  # partial sums as stored between passes
    return Operands(wb, ib, ob, wb / max(1, shape.n * shape.groups), y.numel * acc_b, m=shape.m,
                    n=shape.n * shape.groups, acc_bytes=acc_b, weight_home=whome,
                    input_home=ctx.home_of(x.name, ib + ob), output_home=ctx.activation_home(ib + ob),
                    groups=shape.groups, coded_level=ctx.coded_level, input_coded=_coded(ctx, x.name),
                    output_coded=_coded(ctx, y.name)), wnote


def dot_pair(op, ctx: Ctx) -> tuple[str, str, object, bool]:
    """(activation format, weight format, rate used, exact) of a MAC layer: the one decision that
    both its price and the report's fallback summary read."""
    g = ctx.graph
    act, wfmt = g.tensors[op.inputs[0]].quant.format, g.tensors[op.inputs[1]].quant.format
    act = getattr(op, "internal_act_format", None) or act  # an op that quantizes its activations itself
    rate, exact = select_rate(ctx.target.compute.rates, act, wfmt)
    return act, wfmt, rate, exact


def fallback_notes(ctx: Ctx, rows) -> list[str]:
    """Report notes naming every pair the target lacks that some layers run on, and those layers."""
    dots = [r for r in rows if COSTS.get(r.op) is _dot]
    groups: dict[str, list[str]] = {}
    assumed: set[str] = set()
    for r in dots:
        act, wfmt, rate, exact = dot_pair(ctx.graph.op(r.name), ctx)
        if not exact:
            groups.setdefault(r.formats, []).append(r.name)
            if not represents(rate, act, wfmt):
                assumed.add(r.formats)
    notes = []
    for label, names in groups.items():
        shown = ", ".join(names[:4]) + (f", ... {len(names) - 4} more" if len(names) > 4 else "")
        tail = "; priced as an assumption (no pair holds these values)" if label in assumed else ""
        notes.append(f"{len(names)} of {len(dots)} MAC layers run on a pair {ctx.target.name} lacks: {label} "
                     f"({shown}){tail}")
    return notes


def unexploited_pruning_notes(ctx: Ctx, rows) -> list[str]:
    """A note naming the pruned MAC layers the target prices dense: it neither runs their N:M
    pattern nor skips zero weights (nor reuses repeated ones), so pruning saves it nothing."""
    feats = ctx.target.features
    if feats.skip_zero_weights or feats.repetition_window:
        return []
    dense: dict[str, list[str]] = {}
    for r in rows:
        p = getattr(ctx.graph.op(r.name), "pruning", None) if COSTS.get(r.op) is _dot else None
        if p is None or p.kind == "none" or (p.kind == "nm" and any(
                q.n >= p.n and q.m == p.m for q in feats.nm_sparsity)):
            continue
        dense.setdefault(p.label, []).append(r.name)
    return [f"pruning {label} priced dense on {len(names)} layer(s) ({', '.join(names[:4])}"
            f"{', ...' if len(names) > 4 else ''}): {ctx.target.name} neither runs that pattern nor skips zero "
            "weights, so it saves no time, energy or bytes there (it still changes the simulated values)"
            for label, names in dense.items()]


def _in_containers(operands, numel: int, wfmt: str, rate):
    """``operands`` with dense weight codes stored in the unit's weight width instead of packed."""
    extra = (formats.get(rate.weight).bits - formats.get(wfmt).bits_per_element) / 8
    return replace(operands, weight_bytes=operands.weight_bytes + numel * extra,
                   column_weight_bytes=operands.column_weight_bytes + numel / operands.n * extra)


def _unit_traffic(ctx: Ctx, operands, flow, executed: float, gated: float, rate) -> tuple[list, list]:
    """(read, write) bytes per level of a MAC layer: the tiling of :func:`dot_traffic`, except that a
    row-stationary array works out of its PE scratchpads (level 0), operand by operand (:func:`scratchpad_traffic`)."""
    reads, writes = dot_traffic(operands, ctx.capacities, flow)
    if flow == "row_stationary":
        reads[0], writes[0] = scratchpad_traffic(executed, gated, formats.get(rate.activation).bits / 8,
                                                 formats.get(rate.weight).bits / 8, operands.acc_bytes)
    return reads, writes


def _container_storage(ctx: Ctx, operands, reads, writes, numel: int, wfmt: str, rate, n_decode: float, traffic):
    """(operands, reads, writes) of dense integer codes narrower than the unit's weight format
    stored at the unit's width (more bytes moved, no unpack) when that costs less energy than
    storing them packed (one unpack per element read); None otherwise."""
    t = ctx.target
    f = formats.get(wfmt)
    if f.codebook_entries or not f.integer_codes or decode_cycles_per_weight(t, wfmt, rate) == 0:
        return None
    padded = _in_containers(operands, numel, wfmt, rate)
    r2, w2 = traffic(padded)
    packed_j = sum(level_energy_j(t, reads, writes).values()) + n_decode * decode_energy_pj(t, wfmt, rate) * 1e-12
    return (padded, r2, w2) if sum(level_energy_j(t, r2, w2).values()) < packed_j else None


def _dot(op, ctx: Ctx):
    """conv2d / linear / matmul on the MAC unit (see module and hwsim.cost.layer docstrings)."""
    g, t = ctx.graph, ctx.target
    ins, outs = g.shapes(op)
    macs, shape = g.macs(op), dot_shape(op, ins, outs)
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    act, wfmt, rate, exact = dot_pair(op, ctx)
    depthwise = op.op == "conv2d" and shape.groups > 1 and ins[1][1] == 1
    pointwise = op.op == "conv2d" and shape.groups == 1 and len(ins[1]) == 4 and ins[1][2] * ins[1][3] == 1
    role = ctx.attention_role(op)
    narrow = narrow_conv_rate(t, shape, ins[1][1], formats.get(rate.activation).bits) if exact else None
    unit_rate = narrow or rate
    util = utilization(t, shape) * op_efficiency(t, unit_rate, op.op, depthwise, pointwise, attention=role is not None)
    executed, density, note = _effectual(op, ctx, shape, macs)
    if misaligned(t, shape, formats.get(rate.activation).bits, formats.get(rate.weight).bits):
        util *= t.compute.unaligned_efficiency
        note = "; ".join(filter(None, [note, UNALIGNED_NOTE]))
    operands, wnote = _operands(op, ctx, shape, rate, density)
    if role is not None:  # flash attention: the scores are neither written by q k^T nor read by the second product
        operands = replace(operands, output_home=-1) if role == "qk" else replace(operands, input_home=-1)
        note = "; ".join(filter(None, [note, FUSED_ATTENTION_NOTE]))
    flow = t.compute.dataflow if t.compute.mapping == "systolic" else None
    gated = t.features.activation_zero_fraction if (
        t.features.skip_zero_activations and _relu_input(ctx, x.name)) else 0.0
    traffic = partial(_unit_traffic, ctx, flow=flow, executed=executed, gated=gated, rate=rate)
    reads, writes = traffic(operands)
    cycles = executed / (rate.macs_per_cycle * util)
    if t.features.bit_serial:
        cycles *= formats.get(wfmt).bits_per_element / formats.get(rate.weight).bits
    n_decode = w.numel * reuse(operands, ctx.capacities[0], flow)[0] if op.op != "matmul" else 0.0
    stored = _container_storage(ctx, operands, reads, writes, w.numel, wfmt, rate, n_decode, traffic) \
        if n_decode and not wnote else None
    if stored:
        # a deployment stores these codes in the unit's weight width when unpacking them would
        # cost more energy than the bytes it saves (e.g. int7 on an int8 unit): no unpack, int8 bytes
        operands, reads, writes = stored
        n_decode = 0.0
        wnote = "; ".join(filter(None, [wnote, f"{wfmt} weights stored as {rate.weight} (unpacking would cost "
                                               "more energy than the bytes it saves)"]))
    cycles += decode_cycles_per_weight(t, wfmt, rate) * n_decode
    label = f"{rate.activation} x {rate.weight} -> {rate.accumulator}"
    if narrow is not None:
        cycles *= rate.macs_per_cycle / narrow.macs_per_cycle
        label = f"{act} x {wfmt} as {narrow.activation} x {narrow.weight} -> {narrow.accumulator}"
        note = "; ".join(filter(None, [note, NARROW_CONV_NOTE]))
    arith_pj = executed * unit_mac_energy_pj(t, unit_rate) * (1 - gated)
    decode_pj = n_decode * decode_energy_pj(t, wfmt, rate)
    lut = None if exact else _vq_lut(ctx, wfmt, shape, macs, rate, util)
    if lut is not None and lut[0] < cycles:
        cycles, arith_pj, decode_pj, executed = lut
        label, note = f"{rate.activation} x {wfmt} table look-ups (LUT-GEMM)", "codebook look-ups replace the multiplies"
    elif not exact:
        fallback = f"{act} x {wfmt} not native, runs as {label}" + (" + decode" if n_decode and decode_pj else "")
        if not represents(rate, act, wfmt):
            fallback += (f"; no pair of {t.name} holds {act} x {wfmt} values, so this price is an "
                         "assumption")
        note = "; ".join(filter(None, [fallback, note]))
        label = f"{act} x {wfmt} as {label}"
    acc = getattr(op, "accumulator", None)
    if acc and acc != rate.accumulator:
        note = "; ".join(filter(None, [note, f"accumulator {acc} of the quant config is not priced: {t.name} "
                                             f"accumulates {rate.activation} x {rate.weight} in {rate.accumulator}"]))
    work = Work(macs=macs, executed_ops=executed, compute_s=cycles / (t.compute.cores * t.clock_hz),
                arith_pj=arith_pj, decode_pj=decode_pj, reads=reads, writes=writes, utilization=util, formats=label,
                density=density, note="; ".join(filter(None, [note, wnote])), occupancy=occupancy(t, shape),
                convolution=shape.convolution,
                fixed_s=((rate.depthwise_overhead_s or 0.0) if depthwise else 0.0) + gemm_reshapes(op, ctx, ins),
                overhead=role != "qk")
    acts = [i for i in op.inputs if g.tensors[i].role in ("input", "activation", "kv_cache")]
    return finish(op, ctx, _with_qdq(work, op, ctx, acts))


#: op kinds priced as MAC layers (:func:`_dot`)
_MAC_KINDS = ("conv2d", "linear", "matmul", "conv3d", "conv_transpose", "conv_transpose3d", "linear_block_int8",
              "lstm", "gru", "rnn", "dynamic_quantize_lstm")
for _kind in _MAC_KINDS:
    register_cost(_kind)(_dot)


def _elementwise_pj(ctx: Ctx, fmt: str) -> float:
    if ctx.target.compute.elementwise_energy_pj is not None:  # measured on this target
        return ctx.target.compute.elementwise_energy_pj
    f = formats.get(fmt)
    if f.can_accumulate and f.is_float:  # a float unit adds in its own format
        gates = arith.mac_gates(fmt, fmt, fmt).total
    else:
        gates = arith.mac_gates(fmt if f.integer_codes else "int8", "int8", "int32").total
    return ELEMENTWISE_OP_MAC_FRACTION.value * gates * gate_energy_fj(ctx.target) * 1e-3


#: activations a MAC layer's output write can apply (epilogue_fusion)
_EPILOGUE_FNS = ("relu", "relu6", "clip", "sigmoid", "tanh", "hardsigmoid")


def folded_into(op, ctx: Ctx) -> str | None:
    """Name of the MAC layer ``op`` is folded into under the target's ``epilogue_fusion``, else None."""
    g = ctx.graph
    if not ctx.target.compute.epilogue_fusion or not (
            op.op == "batchnorm" or (op.op == "unary" and op.fn in _EPILOGUE_FNS)):
        return None
    name = g.producer(op.inputs[0])
    if name is None or len(g.consumers(op.inputs[0])) != 1:
        return None
    prod = g.op(name)
    if prod.op in ("conv2d", "linear"):
        wfmt = formats.get(g.tensors[prod.inputs[1]].quant.format)
        return name if wfmt.is_float or op.op != "batchnorm" else None
    return folded_into(prod, ctx)


def gemm_reshapes(op, ctx: Ctx, ins) -> float:
    """Fixed time of the two Reshape nodes around a linear with a bias on more than 2-D input, which
    onnxruntime runs as a 2-D Gemm (its MatMul + Add fusion; ``hwsim export`` writes it so), on
    ``movement_nodes`` targets, s."""
    g, t = ctx.graph, ctx.target
    if (t.compute.movement_nodes and op.op == "linear" and len(ins[0]) > 2 and len(op.inputs) > 2
            and g.tensors[op.inputs[2]].role == "bias" and not _integer_mac(op, g)):
        return 2 * layer_overhead(t, Work(elementwise=True))
    return 0.0


def _integer_mac(op, g) -> bool:
    """A MAC layer that writes its int32 sums (MatMulInteger / ConvInteger style)."""
    return op.op in ("conv2d", "linear", "matmul") and g.tensors[op.outputs[0]].dtype == "int32"


def quantize_fused_into(op, ctx: Ctx) -> str | None:
    """Name of the integer MAC layer ``op`` runs inside under the target's ``quantize_fusion``, else None.

    Fused (onnxruntime's DynamicQuantizeMatMul / MatMulIntegerToFloat kernels):

    - a dynamic quantization whose outputs only integer MAC layers and scalar products read;
    - the cast, scale multiply and bias add on an integer MAC layer's int32 output, each the only reader
      of that chain, the other operand a constant or a scalar;
    - a product of scalars (the run-time scale) that only such fused ops read.
    """
    g = ctx.graph
    if not ctx.target.compute.quantize_fusion or op.op not in ("dynamic_quantize", "cast", "binary"):
        return None
    if op.op == "dynamic_quantize":
        readers = [c for o in op.outputs for c in g.consumers(o)]
        macs = [c for c in readers if _integer_mac(c, g)]
        scalar = [quantize_fused_into(c, ctx) for c in readers if c.op == "binary"]
        into = [c.name for c in macs] + [s for s in scalar if s]
        return into[0] if into and len(into) == len(readers) else None
    if op.op == "binary" and all(g.tensors[i].numel <= 1 for i in op.inputs):
        readers = g.consumers(op.outputs[0])
        into = [quantize_fused_into(c, ctx) for c in readers if c.op != "binary" or g.tensors[c.outputs[0]].numel > 1]
        return into[0] if readers and into and len(into) == len(readers) and all(into) else None
    for i in op.inputs:
        name = g.producer(i)
        if name is None or len(g.consumers(i)) != 1:
            continue
        prod = g.op(name)
        into = name if _integer_mac(prod, g) else quantize_fused_into(prod, ctx)
        others = [j for j in op.inputs if j != i]
        if into and all(g.tensors[j].role not in ("input", "activation", "kv_cache") or g.tensors[j].numel <= 1
                        for j in others):
            return into
    return None


#: non-MAC ops with an integer version that runs on quantized codes in and out (onnxruntime's QLinearAdd,
#: QLinearMul, QLinearSoftmax, QLinearAveragePool, QLinearGlobalAveragePool)
_INTEGER_STREAM = ("softmax", "pool", "global_avgpool")


def _codes(ctx: Ctx, tensor: str) -> bool:
    """``tensor`` is stored as integer codes of a float value (a quantized activation)."""
    t = ctx.graph.tensors[tensor]
    return t.dtype in ("float32", "float") and formats.get(t.quant.format).integer_codes


def qdq_nodes(op, ctx: Ctx, acts: list[str]) -> Work:
    """The conversion nodes a runtime with ``qdq_nodes`` runs around ``op`` (activation inputs ``acts``),
    as :class:`Work` fields ``extra_s`` / ``extra_reads`` / ``extra_writes`` (empty elsewhere):

    - a QuantizeLinear per quantized graph input ``op`` reads;
    - for a non-MAC op that computes in float (no integer version, :data:`_INTEGER_STREAM`, binary add /
      mul; or not every activation around it quantized): a DequantizeLinear per quantized input and a
      QuantizeLinear for a quantized output.

    Each node is priced as a stream op: the per-layer overhead plus the slower of reading its input and
    writing its output at their homes (float32 on one side, the codes on the other).
    """
    g, t = ctx.graph, ctx.target
    if not t.compute.qdq_nodes:
        return Work()
    convert = [i for i in acts if g.tensors[i].role == "input" and _codes(ctx, i)]
    if op.op not in _MAC_KINDS:
        integer = (op.op in _INTEGER_STREAM or op.op == "binary" and op.fn in ("add", "mul")) and all(
            _codes(ctx, i) or (g.producer(i) is not None and g.op(g.producer(i)).op == "dequantize") for i in acts
        ) and all(_codes(ctx, o) for o in op.outputs)
        if not integer:
            convert = [i for i in acts if _codes(ctx, i)] + [o for o in op.outputs if _codes(ctx, o)]
    n = len(t.memory)
    work = Work(extra_reads=[0.0] * n, extra_writes=[0.0] * n)
    for name in convert:
        codes, floats = ctx.nbytes(name), 4.0 * g.tensors[name].numel
        home = ctx.activation_home(codes + floats)
        r, w = stream_traffic(n, [(floats, home)], [(codes, home)])
        work.extra_s += layer_overhead(t, Work(elementwise=True)) + max(
            (r[i] + w[i]) / m.bandwidth_bytes_per_s for i, m in enumerate(t.memory))
        work.extra_reads = [a + b for a, b in zip(work.extra_reads, r)]
        work.extra_writes = [a + b for a, b in zip(work.extra_writes, w)]
    return work


def _with_qdq(work: Work, op, ctx: Ctx, acts: list[str]) -> Work:
    q = qdq_nodes(op, ctx, acts)
    if not q.extra_s:
        return work
    return replace(work, extra_s=work.extra_s + q.extra_s, extra_reads=q.extra_reads, extra_writes=q.extra_writes,
                   note="; ".join(filter(None, [work.note, "+ Quantize/DequantizeLinear nodes (qdq_nodes)"])))


def _stream(op, ctx: Ctx):
    """Non-MAC arithmetic: read inputs once, compute elementwise, write outputs once (nothing where the
    target folds it into the MAC layer before it, :func:`folded_into`)."""
    g, t = ctx.graph, ctx.target
    into = folded_into(op, ctx)
    if into is not None:
        return finish(op, ctx, Work(overhead=False, note=f"folded into {into} (epilogue_fusion)"))
    into = quantize_fused_into(op, ctx)
    if into is not None:
        return finish(op, ctx, Work(overhead=False, note=f"runs inside {into} (quantize_fusion)"))
    n_ops = g.elementwise_ops(op)
    fmt = g.tensors[op.outputs[0]].quant.format
    if ctx.attention_role(op) == "inner":
        return finish(op, ctx, Work(executed_ops=float(n_ops), arith_pj=n_ops * _elementwise_pj(ctx, fmt),
                                    overhead=False, elementwise=True, note=f"inside the {FUSED_ATTENTION_NOTE}"))
    act = [i for i in op.inputs if g.tensors[i].role in ("input", "activation", "kv_cache")]
    ab = sum(ctx.nbytes(i) for i in act) + sum(ctx.nbytes(o) for o in op.outputs)
    reads = [(ctx.nbytes(i), ctx.home_of(i, ab)) for i in act]
    reads += [(ctx.nbytes(i), ctx.weight_home) for i in op.inputs if i not in act]
    writes = [(ctx.nbytes(o), ctx.activation_home(ab)) for o in op.outputs]
    r, w = stream_traffic(len(t.memory), reads, writes)
    lvl = ctx.coded_level
    if lvl >= 0:  # activations move run-length coded at that level
        coded = [(b * _coded(ctx, i), h) for (b, h), i in zip(reads, act)] + reads[len(act):]
        r[lvl] = stream_traffic(len(t.memory), coded, [])[0][lvl]
        w[lvl] = stream_traffic(len(t.memory), [], [(b * _coded(ctx, o), h) for (b, h), o in
                                                    zip(writes, op.outputs)])[1][lvl]
    rate = t.compute.elementwise_ops_per_cycle * t.compute.cores * t.clock_hz
    work = Work(compute_s=n_ops / rate, executed_ops=float(n_ops), arith_pj=n_ops * _elementwise_pj(ctx, fmt),
                reads=r, writes=w, elementwise=True, kernels=t.compute.batchnorm_kernels if op.op == "batchnorm" else 1,
                note=CONTROL_FLOW_NOTE if getattr(op, "op_type", "") in CONTROL_FLOW else "")
    return finish(op, ctx, _with_qdq(work, op, ctx, act))


#: layer note of a run-time If / Loop / Scan (bodies without MAC ops; one with MAC ops is refused at import)
CONTROL_FLOW_NOTE = "decided at run time: priced as element work on its outputs, not the work of its body"


def control_flow_notes(rows) -> list[str]:
    """Report note naming the run-time control-flow ops whose bodies' work is not priced."""
    names = [r.name for r in rows if r.note == CONTROL_FLOW_NOTE]
    if not names:
        return []
    shown = ", ".join(names[:4]) + (f", ... {len(names) - 4} more" if len(names) > 4 else "")
    return [f"{len(names)} If/Loop/Scan op(s) decided at run time are priced by their outputs only, "
            f"not by the work of their bodies (no MAC ops inside): {shown}"]


for _kind in ("binary", "unary", "batchnorm", "softmax", "layernorm", "rotary", "pool", "global_avgpool",
              "reduce", "quantize", "dequantize", "cast", "dynamic_quantize", "onnx"):
    register_cost(_kind)(_stream)


#: data-movement op kinds that copy their output (the others re-label the same buffer)
COPYING_VIEWS = ("transpose", "slice", "concat", "gather")


def _view(op, ctx: Ctx):
    """Views and copies: folded into addressing (no arithmetic, no traffic), or, on a target whose runtime
    runs them as nodes (``movement_nodes``), one node each: the per-layer overhead, plus a read and a write
    of the output where the op copies (:data:`COPYING_VIEWS`). Views of constants are folded either way."""
    g = ctx.graph
    act = [i for i in op.inputs if g.tensors[i].role in ("input", "activation", "kv_cache")]
    if not ctx.target.compute.movement_nodes or not act:
        return finish(op, ctx, Work(overhead=False))
    if op.op not in COPYING_VIEWS:
        return finish(op, ctx, Work(elementwise=True, note="runs as a node (movement_nodes)"))
    out = sum(ctx.nbytes(o) for o in op.outputs)
    home = ctx.activation_home(2 * out)
    r, w = stream_traffic(len(ctx.target.memory), [(out, home)], [(out, home)])
    return finish(op, ctx, Work(reads=r, writes=w, elementwise=True, note="copy node (movement_nodes)"))


for _kind in ("reshape", "transpose", "flatten", "squeeze", "unsqueeze", "slice", "concat", "gather"):
    register_cost(_kind)(_view)


@register_cost("kv_cache_read")
def _kv_read(op, ctx: Ctx):
    """Read the cached keys/values at their format from where the whole model's cache fits."""
    b = ctx.nbytes(op.inputs[0])
    r, w = stream_traffic(len(ctx.target.memory), [(b, ctx.kv_home)], [])
    return finish(op, ctx, Work(reads=r, writes=w, note="KV cache read", overhead=False))


@register_cost("kv_cache_append")
def _kv_append(op, ctx: Ctx):
    """Write the new keys/values into the cache."""
    new = ctx.nbytes(op.inputs[1])
    r, w = stream_traffic(len(ctx.target.memory), [], [(new, ctx.kv_home)])
    return finish(op, ctx, Work(reads=r, writes=w, note="KV cache append", overhead=False))


@register_cost("embedding")
def _embedding(op, ctx: Ctx):
    """Read one table row per id from where the weights live; write the rows out."""
    g = ctx.graph
    ids, table = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    rows = ids.numel * table.shape[1] * table.quant.bits / 8
    out = ctx.nbytes(op.outputs[0])
    r, w = stream_traffic(len(ctx.target.memory), [(rows, ctx.weight_home)], [(out, ctx.activation_home(out))])
    return finish(op, ctx, Work(reads=r, writes=w, note=f"{ids.numel} row reads", elementwise=True))
