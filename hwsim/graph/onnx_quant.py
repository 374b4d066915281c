"""Quantized ONNX: QDQ folding, QLinear / Integer ops, weight-only patterns, standalone Q/DQ.

:data:`PRE` holds handlers the walk tries before constant folding (they return True when they
consumed the node): DequantizeLinear of an initializer becomes a :class:`QConst` (codes kept,
never dequantized), QuantizeLinear of an activation a lazy :class:`QAct`, and the weight-only
chain ``Cast(int initializer) -> [Sub zero point] -> Mul scale -> [Transpose/Reshape]`` a QConst.
The IR contract these produce is documented in :mod:`hwsim.graph.onnx`.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _one, attrs
from hwsim.graph.onnx_values import (Act, Codes, Const, QAct, QConst, activation_spec, array_dtype,
                                     broadcast_param, dtype_name, format_of, is_code_dtype)
from hwsim.graph.quant import QuantSpec

PRE: dict = {}


def pre(*op_types: str):
    def deco(fn):
        for t in op_types:
            PRE[t] = fn
        return fn
    return deco


@pre("Shape", "Size")
def _shape(ctx, node) -> bool:
    shape = ctx.shape(node.input[0])
    if node.op_type == "Size":
        ctx.values[node.output[0]] = Const(np.asarray(math.prod(shape), np.int64))
        return True
    a = attrs(node)
    start, end = a.get("start", 0), a.get("end", len(shape))
    ctx.values[node.output[0]] = Const(np.asarray(shape[slice(start, end)], np.int64))
    return True


@pre("Identity")
def _identity(ctx, node) -> bool:
    """Alias, also for constants (keeps an initializer a parameter; exporters dedupe weights this way)."""
    ctx.values[node.output[0]] = ctx.values[node.input[0]]
    return True


# ------------------------------------------------------------------ QuantizeLinear / DequantizeLinear
def _q_dtype(ctx, node, zp_index: int) -> str:
    name = ctx.input(node, zp_index)
    if name is not None:
        v = ctx.values[name]
        return array_dtype(v.value) if isinstance(v, Const) else ctx.g.tensors[ctx.act(name)].dtype
    to = attrs(node).get("output_dtype", 0)
    return dtype_name(to) if to else "uint8"


def _fmt(ctx, node, dtype: str) -> str:
    fmt = format_of(dtype)
    if fmt is None:
        raise ctx.fail(node, f"quantized type {dtype} is not supported")
    return fmt


def _axis(node, rank: int) -> int:
    return int(attrs(node).get("axis", 1)) % max(rank, 1)


@pre("QuantizeLinear")
def _quantize(ctx, node) -> bool:
    x = ctx.values[node.input[0]]
    if isinstance(x, (Const, Codes)):
        return False  # quantizing a constant is folded (exactly, by the ONNX reference)
    if isinstance(x, QConst) and _params_const(ctx, node):  # requantized constant: new codes
        ctx.values[node.input[0]] = Const(x.real())
        try:
            ctx.fold(node)
        finally:
            ctx.values[node.input[0]] = x
        return True
    dtype = _q_dtype(ctx, node, 2)
    shape = ctx.shape(node.input[0])
    if not _params_const(ctx, node):
        _runtime_params(ctx, node, O.Quantize, dtype, dtype, shape, saturate=bool(attrs(node).get("saturate", 1)))
        return True
    spec = activation_spec(_fmt(ctx, node, dtype), ctx.const(node, 1, "y_scale"), ctx.const(node, 2, "y_zero_point"),
                           shape, _axis(node, len(shape)), int(attrs(node).get("block_size", 0)))
    src = node.input[0] if isinstance(x, Act) else ctx.act(node.input[0])
    ctx.values[node.output[0]] = QAct(src, node.output[0], spec, dtype, bool(attrs(node).get("saturate", 1)))
    if ctx.expanding:
        ctx.expanded_q.add(node.output[0])
    return True


def _dq_qconst(ctx, node, codes: np.ndarray, src: str) -> QConst:
    rank, block = codes.ndim, int(attrs(node).get("block_size", 0))
    axis = _axis(node, rank)
    scale = np.asarray(ctx.const(node, 1, "x_scale"))
    zp = ctx.const(node, 2, "x_zero_point")
    per_axis = scale.ndim == 1 and scale.size > 1 or block
    shape_axis = axis if per_axis else None
    s = scale if block else broadcast_param(scale, rank, shape_axis)
    z = None if zp is None else (np.asarray(zp) if block else broadcast_param(zp, rank, shape_axis))
    return QConst(codes, array_dtype(codes), src, s, z, (axis, block) if block else None)


@pre("DequantizeLinear")
def _dequantize(ctx, node) -> bool:
    name = node.input[0]
    x = ctx.values[name]
    if isinstance(x, Const) and _params_const(ctx, node):
        ctx.values[node.output[0]] = _dq_qconst(ctx, node, x.value, name)
        return True
    shape = ctx.shape(name)
    dtype = x.dtype if isinstance(x, QAct) else ctx.g.tensors[ctx.act(name)].dtype
    if not _params_const(ctx, node):
        out_dtype = ctx.g.tensors[ctx.act(node.input[1])].dtype
        _runtime_params(ctx, node, O.Dequantize, dtype, out_dtype, shape)
        return True
    spec = activation_spec(_fmt(ctx, node, dtype), ctx.const(node, 1, "x_scale"), ctx.const(node, 2, "x_zero_point"),
                           shape, _axis(node, len(shape)), int(attrs(node).get("block_size", 0)))
    if isinstance(x, QAct) and x.spec == spec and not _read_unquantized(ctx, x, node):
        ctx.annotate(node, x.src, spec)
        ctx.values[node.output[0]] = Act(x.src)
        if ctx.expanding or name in ctx.expanded_q:  # a QLinear op's codes, not a QDQ pair of the file
            ctx.g.qlinear_codes.add(x.src)
        return True
    src = ctx.act(name)
    scale_dtype = array_dtype(np.asarray(ctx.const(node, 1, "x_scale")))
    if _lookup_of_codes(ctx, node, src, spec, scale_dtype):
        return True
    ctx.annotate(node, src, spec)
    _one(ctx, node, O.Dequantize, [src], dtype=scale_dtype)
    return True


_VIEWS = ("transpose", "reshape", "squeeze", "unsqueeze", "flatten")


def reads_unquantized(readers, q_node, value) -> bool:
    """Whether any of ``readers`` (the nodes reading the tensor that QuantizeLinear ``q_node``
    quantizes) reads its values as they are: a node other than a QuantizeLinear with ``q_node``'s
    scale and zero point (the same tensors, or constants of equal values: ``value(name)`` gives a
    constant's array or None; onnxruntime's ``DedicatedQDQPair`` gives each reader its own pair)
    and attributes, or Shape / Size (which read the shape only)."""
    def same(a: str, b: str) -> bool:
        if a == b:
            return True
        va, vb = (value(a) if a else None), (value(b) if b else None)
        return va is not None and vb is not None and va.dtype == vb.dtype and np.array_equal(va, vb)

    mine = attrs(q_node)

    def quantizes_alike(n) -> bool:
        return n.op_type == "QuantizeLinear" and len(n.input) == len(q_node.input) \
            and all(same(a, b) for a, b in zip(n.input[1:], q_node.input[1:])) and attrs(n) == mine

    return any(n.op_type not in ("Shape", "Size") and not quantizes_alike(n) for n in readers)


def _read_unquantized(ctx, q: QAct, dq) -> bool:
    """Whether the ONNX tensor ``q`` quantizes is also read as it is (:func:`reads_unquantized`),
    or is a graph output other than ``dq``'s own (``_keep_output_names`` gives a folded pair's
    output name to the producer). Then the Q -> DQ pair cannot fold into a QuantSpec on the tensor,
    which every reader would see: explicit quantization places Q -> DQ on some readers only
    (TensorRT-style QDQ: on a conv's input, while a residual Add reads the tensor as it is); it
    stays an explicit Quantize -> Dequantize."""
    if q.src in ctx.graph_outputs and q.src != dq.output[0]:
        return True
    readers = ctx.consumers.get(q.src, [])
    mine = next((n for n in readers if n.op_type == "QuantizeLinear" and n.output[0] == q.out), None)
    return mine is not None and reads_unquantized(readers, mine, lambda n: _const_array(ctx, n))


def _const_array(ctx, name: str):
    v = ctx.values.get(name)
    return np.asarray(v.value) if isinstance(v, Const) else None


def _lookup_of_codes(ctx, node, src: str, spec: QuantSpec, dtype: str) -> bool:
    """``Gather(integer table, ids) -> DequantizeLinear`` (what ``quantize_dynamic`` writes for
    embeddings): the table becomes a weight holding the codes and ``spec`` (a per-tensor scale
    commutes with the lookup), the lookup output carries ``spec`` and stands for the DQ output.
    Other readers of codes that have no scale, or a per-axis scale, are refused: dequantizing
    after the lookup with the table's grid unknown would return raw codes. Views between the
    lookup and the DequantizeLinear (``quantize_dynamic`` moves it past a Transpose) carry the
    spec too."""
    chain = [src]
    producer = ctx.g.producer(src)
    op = ctx.g.op(producer) if producer else None
    while op is not None and op.op in _VIEWS and len(op.inputs) == 1:
        chain.append(op.inputs[0])
        producer = ctx.g.producer(op.inputs[0])
        op = ctx.g.op(producer) if producer else None
    if op is None or op.op not in ("embedding", "gather"):
        return False
    table = ctx.g.tensors[op.inputs[1] if op.op == "embedding" else op.inputs[0]]
    if table.data is None or table.data.dtype.kind not in "iu" or table.quant.scale is not None:
        return False
    if spec.granularity != "tensor" or not is_code_dtype(table.dtype):
        raise ctx.fail(node, f"dequantizes a lookup of the integer table '{table.name}' with a "
                             f"{spec.granularity} scale; hwsim supports a per-tensor scale here")
    outputs = [t for t in chain if t in ctx.graph_outputs]
    if outputs:  # the lookup stands for the DQ output: it would output reals where the model outputs codes
        raise ctx.fail(node, f"dequantizes a lookup of the integer table '{table.name}' whose codes "
                             f"'{outputs[0]}' are also a graph output; hwsim simulates the lookup as its "
                             "dequantized values and cannot output the codes: drop it from the graph outputs")
    from dataclasses import replace

    ctx.g.tensors[table.name] = replace(table, role="weight", quant=spec)
    for t in chain:
        ctx.g.tensors[t] = replace(ctx.g.tensors[t], quant=spec, dtype=dtype)
    ctx.values[node.output[0]] = Act(src)
    return True


def _params_const(ctx, node) -> bool:
    return all(ctx.is_const(n) for n in node.input[1:3] if n)


def _runtime_params(ctx, node, op_cls, codes_dtype: str, out_dtype: str, shape, **kw) -> None:
    """Q/DQ whose scale / zero point are run-time tensors: an explicit op reading them as inputs.

    The codes tensor (Quantize output, Dequantize input) carries a per-tensor QuantSpec with the
    format and no scale (its values are codes); the op carries ``axis`` (when the scale is 1-D with
    more than one element) and ``block_size``, and the simulator uses the values of inputs 1 and 2.
    """
    ins = [ctx.act(n) for n in node.input if n]
    rank = len(shape)
    block = int(attrs(node).get("block_size", 0))
    scale_shape = ctx.shape(node.input[1])
    per_axis = block or (len(scale_shape) == 1 and scale_shape[0] > 1)
    kw.update(axis=_axis(node, rank) if per_axis else None, block_size=block)
    spec = QuantSpec(format=_fmt(ctx, node, codes_dtype))
    if op_cls is O.Quantize:
        _one(ctx, node, op_cls, ins, dtype=out_dtype, quant=spec, **kw)
    else:
        ctx.annotate(node, ins[0], spec)
        _one(ctx, node, op_cls, ins, dtype=out_dtype, **kw)


# ------------------------------------------------------------------ weight-only patterns
@pre("Cast")
def _cast_codes(ctx, node) -> bool:
    x = ctx.values[node.input[0]]
    to = dtype_name(int(attrs(node)["to"]))
    if isinstance(x, Const) and is_code_dtype(array_dtype(x.value)) and array_dtype(x.value) != "int32" \
            and to in ("float32", "float16", "bfloat16") and x.value.ndim >= 1:
        ctx.values[node.output[0]] = Codes(x.value, array_dtype(x.value), node.input[0])
        return True
    return False


@pre("Sub")
def _sub_zero_point(ctx, node) -> bool:
    x, z = ctx.values[node.input[0]], ctx.values[node.input[1]]
    if not isinstance(x, Codes) or x.zero_point is not None or not isinstance(z, (Const, Codes)):
        return False
    zp = z.value if isinstance(z, Const) else z.codes.astype(np.int64)
    if np.broadcast_shapes(zp.shape, x.codes.shape) != x.codes.shape or np.any(np.asarray(zp) % 1):
        return False
    zp = np.asarray(zp).reshape((1,) * (x.codes.ndim - np.ndim(zp)) + np.shape(zp)).astype(np.int64)
    ctx.values[node.output[0]] = Codes(x.codes, x.dtype, x.src, zp)
    return True


@pre("Mul")
def _mul_scale(ctx, node) -> bool:
    a, b = (ctx.values[n] for n in node.input[:2])
    if isinstance(b, Codes):
        a, b = b, a
    if not isinstance(a, Codes) or not isinstance(b, Const) or b.value.dtype.kind != "f":
        return False
    rank = a.codes.ndim
    if b.value.ndim > rank or np.broadcast_shapes(b.value.shape, a.codes.shape) != a.codes.shape \
            or np.any(b.value <= 0):
        return False
    scale = b.value.reshape((1,) * (rank - b.value.ndim) + b.value.shape)
    ctx.values[node.output[0]] = QConst(a.codes, a.dtype, a.src, scale, a.zero_point)
    return True


@pre("Transpose")
def _transpose_q(ctx, node) -> bool:
    x = ctx.values[node.input[0]]
    if not isinstance(x, QConst):
        return False
    perm = tuple(attrs(node).get("perm", range(x.codes.ndim - 1, -1, -1)))
    ctx.values[node.output[0]] = x.transpose(tuple(int(p) for p in perm))
    return True


@pre("Reshape")
def _reshape_q(ctx, node) -> bool:
    x = ctx.values[node.input[0]]
    if not isinstance(x, QConst) or not ctx.is_const(node.input[1]):
        return False
    target = np.empty(x.codes.shape, np.int8).reshape(tuple(int(d) for d in ctx.const(node, 1, "shape"))).shape
    old = x.codes.shape
    if all(d == 1 for d in x.scale.shape) and x.block is None:
        one = (1,) * len(target)
        zp = None if x.zero_point is None else x.zero_point.reshape(one)
        ctx.values[node.output[0]] = QConst(x.codes.reshape(target), x.dtype, x.src, x.scale.reshape(one), zp)
        return True
    # merging a group axis with the axis of elements inside each group -> per-group scales
    for a in range(len(old) - 1):
        merged = old[:a] + (old[a] * old[a + 1],) + old[a + 2:]
        if merged == target and x.block is None and x.scale.shape[a + 1] == 1 and x.scale.shape[a] == old[a]:
            s = x.scale.reshape(x.scale.shape[:a + 1] + x.scale.shape[a + 2:])
            zp = None if x.zero_point is None else np.broadcast_to(x.zero_point, x.scale.shape).reshape(s.shape)
            ctx.values[node.output[0]] = QConst(x.codes.reshape(target), x.dtype, x.src, s, zp, (a, old[a + 1]))
            return True
    return False
