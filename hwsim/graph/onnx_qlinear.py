"""QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger and DynamicQuantizeLinear -> IR ops
with integer QuantSpecs (the contract is in :mod:`hwsim.graph.onnx`)."""

from __future__ import annotations

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _one, conv_attrs, converter
from hwsim.graph.onnx_values import (Act, Const, QConst, activation_spec, array_dtype, broadcast_param,
                                     format_of)
from hwsim.graph.quant import QuantSpec

INT32 = QuantSpec(format="int32", scale=(1.0,), zero_point=(0,))


def _act_in(ctx, node, i: int, scale, zp, axis: int | None) -> str:
    """Activation input ``i`` with its integer QuantSpec put on the tensor."""
    t = ctx.act(node.input[i])
    dtype = ctx.g.tensors[t].dtype
    fmt = format_of(dtype)
    if fmt is None or not fmt.startswith(("int", "uint")):
        raise ctx.fail(node, f"input {i} ('{node.input[i]}') has type {dtype}, expected uint8 or int8")
    shape = ctx.g.tensors[t].shape
    ctx.annotate(node, t, activation_spec(fmt, np.asarray(scale, np.float32), zp, shape,
                                          None if axis is None else axis % len(shape)))
    return t


def _weight(ctx, node, i: int, scale, zp, axis: int, perm=None) -> str:
    """Constant integer weight input ``i`` as codes with its QuantSpec (per-tensor or along ``axis``)."""
    v = ctx.values[node.input[i]]
    if not isinstance(v, Const):
        raise ctx.fail(node, f"weight input {i} ('{node.input[i]}') must be an initializer")
    codes = v.value
    scale = np.asarray(scale, np.float32).ravel()
    zp = None if zp is None else np.asarray(zp).ravel()
    n = max(scale.size, 1 if zp is None else zp.size)
    scale = np.broadcast_to(scale, (n,))
    zp = None if zp is None else np.broadcast_to(zp, (n,))
    per_axis = axis if n > 1 else None
    q = QConst(codes, array_dtype(codes), node.input[i], broadcast_param(scale, codes.ndim, per_axis),
               None if zp is None else broadcast_param(zp, codes.ndim, per_axis))
    return ctx.place(node.input[i], q, "weight", perm, where=f"{node.op_type} (node '{node.name}')")


def _out_spec(ctx, node, s_i: int, zp_i: int) -> tuple[QuantSpec, str]:
    zp = ctx.const(node, zp_i, "y_zero_point")
    dtype = "uint8" if zp is None else array_dtype(np.asarray(zp))
    spec = activation_spec(format_of(dtype), np.asarray(ctx.const(node, s_i, "y_scale"), np.float32), zp, (1,), None)
    return spec, dtype


@converter("QLinearConv")
def _qlinear_conv(ctx, node):
    c = lambda i, what: ctx.const(node, i, what)  # noqa: E731
    x_s, w_s = np.float32(c(1, "x_scale")), np.asarray(c(4, "w_scale"), np.float32)
    x = _act_in(ctx, node, 0, x_s, c(2, "x_zero_point"), None)
    kw = conv_attrs(ctx, node, ctx.shape(node.input[3])[2:])
    ins = [x, _weight(ctx, node, 3, w_s, c(5, "w_zero_point"), 0)]
    if ctx.input(node, 8):
        ins.append(_int32_bias(ctx, node, 8, (x_s * w_s).astype(np.float32)))
    spec, dtype = _out_spec(ctx, node, 6, 7)
    _one(ctx, node, O.Conv2d, ins, dtype=dtype, quant=spec, **kw)


def _int32_bias(ctx, node, i: int, scale: np.ndarray) -> str:
    b = np.asarray(ctx.const(node, i, "bias"))
    if b.dtype != np.int32:
        raise ctx.fail(node, f"bias has type {b.dtype}, expected int32")
    v = QConst(b, "int32", node.input[i], scale.reshape(-1) if scale.size > 1 else scale.reshape(1),
               np.zeros(scale.size, np.int64))
    return ctx.place(node.input[i], v, "bias", where=f"{node.op_type} (node '{node.name}')")


@converter("QLinearMatMul")
def _qlinear_matmul(ctx, node):
    c = lambda i, what: ctx.const(node, i, what)  # noqa: E731
    a = _act_in(ctx, node, 0, c(1, "a_scale"), c(2, "a_zero_point"), -2)
    spec, dtype = _out_spec(ctx, node, 6, 7)
    if isinstance(ctx.values[node.input[3]], Act) or len(ctx.shape(node.input[3])) != 2:
        b = _act_in(ctx, node, 3, c(4, "b_scale"), c(5, "b_zero_point"), -1)
        _one(ctx, node, O.MatMul, [a, b], dtype=dtype, quant=spec)
    else:
        w = _weight(ctx, node, 3, c(4, "b_scale"), c(5, "b_zero_point"), 1, perm=(1, 0))
        _one(ctx, node, O.Linear, [a, w], dtype=dtype, quant=spec)


CENTERED = QuantSpec(format="int16", scale=(1.0,), zero_point=(0,))


def _dynamic_in(ctx, node, i: int, zp_i: int, axis: int) -> str:
    """Integer input ``i``; its zero point may be a run-time tensor from DynamicQuantizeLinear.

    A constant (or absent) zero point goes on the input's spec (scale 1.0). A zero point computed
    at run time by the DynamicQuantizeLinear that produced the input cannot sit on a spec, so an
    explicit ``binary sub`` writes ``x - zero_point`` (exact integers in [-255, 255]) to a tensor
    ``<x>.centered`` of spec int16, scale 1.0, zero point 0, which the op reads instead.
    """
    zp = ctx.input(node, zp_i)
    if zp is None or ctx.is_const(zp):
        return _act_in(ctx, node, i, 1.0, ctx.const(node, zp_i, "zero point"), axis)
    x, z = ctx.act(node.input[i]), ctx.act(zp)
    px, pz = (ctx.g.producer(t) for t in (x, z))
    ox = ctx.g.op(px) if px else None
    oz = ctx.g.op(pz) if pz else None
    if not (ox is not None and oz is not None and ox.op == oz.op == "dynamic_quantize"
            and ox.part == "y" and oz.part == "zero_point" and ox.inputs == oz.inputs):
        raise ctx.fail(node, f"zero point '{zp}' is computed at run time and does not come from the "
                             "DynamicQuantizeLinear that produced the input")
    out = f"{x}.centered"
    if out not in ctx.g.tensors:
        _one(ctx, node, O.Binary, [x, z], ".center", out=out, dtype="int16", quant=CENTERED, fn="sub")
    return out


@converter("MatMulInteger")
def _matmul_integer(ctx, node):
    a = _dynamic_in(ctx, node, 0, 2, -2)
    zp = ctx.const(node, 3, "b_zero_point")
    if isinstance(ctx.values[node.input[1]], Act) or len(ctx.shape(node.input[1])) != 2:
        b = _act_in(ctx, node, 1, 1.0, zp, -1)
        _one(ctx, node, O.MatMul, [a, b], dtype="int32", quant=INT32)
    else:
        w = _weight(ctx, node, 1, 1.0, zp, 1, perm=(1, 0))
        _one(ctx, node, O.Linear, [a, w], dtype="int32", quant=INT32)


@converter("ConvInteger")
def _conv_integer(ctx, node):
    x = _dynamic_in(ctx, node, 0, 2, 1)
    kw = conv_attrs(ctx, node, ctx.shape(node.input[1])[2:])
    w = _weight(ctx, node, 1, 1.0, ctx.const(node, 3, "w_zero_point"), 0)
    _one(ctx, node, O.Conv2d, [x, w], dtype="int32", quant=INT32, **kw)


@converter("DynamicQuantizeLinear")
def _dynamic_quantize(ctx, node):
    x = ctx.act(node.input[0])
    kinds = (("y", "uint8"), ("scale", "float32"), ("zero_point", "uint8"))
    for out, (part, dtype) in zip(node.output, kinds):
        if out:
            quant = QuantSpec(format=format_of(dtype)) if dtype == "uint8" else None
            _one(ctx, node, O.DynamicQuantize, [x], f".{part}", out=out, dtype=dtype, quant=quant, part=part)


@converter("QuantizeLinear")
def _quantize_runtime(ctx, node):
    """QuantizeLinear whose input is a dequantized constant: place codes + dequantize, then quantize."""
    from hwsim.graph.onnx_quant import _quantize

    ctx.act(node.input[0])
    ctx.values[node.input[0]] = Act(ctx.act(node.input[0]))
    _quantize(ctx, node)
