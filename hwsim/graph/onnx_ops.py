"""ONNX float ops -> IR ops: one converter per ONNX op type, in the registry :data:`CONVERTERS`.

A converter reads the node's inputs from the :class:`~hwsim.graph.onnx_ctx.Importer` (constants
as numpy arrays, run-time tensors as IR tensor names) and adds IR ops whose outputs are the
node's ONNX output names. Parameters the IR needs as attributes (reshape targets, slice bounds,
axes, clip bounds) must be constants once shapes are bound; otherwise the node is reported.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import helper

from hwsim.graph import ops as O
from hwsim.graph.onnx_ctx import Importer
from hwsim.graph.onnx_values import Act, Codes, Const, QConst

Converter = Callable[[Importer, onnx.NodeProto], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*op_types: str):
    def deco(fn: Converter) -> Converter:
        for t in op_types:
            CONVERTERS[t] = fn
        return fn
    return deco


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _one(ctx: Importer, node, op_cls, inputs, suffix: str = "", out: str | None = None,
         dtype: str | None = None, quant=None, **kw) -> str:
    """Add one IR op for ``node`` (output ``out`` or the node's first output) and return its output."""
    return ctx.add(op_cls(name=ctx.op_name(node, suffix), inputs=tuple(inputs),
                          outputs=(out or node.output[0],), **kw), dtype=dtype, quant=quant)


def _ints(a) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(a).ravel())


# ------------------------------------------------------------------ elementwise
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "max", "Min": "min"}
_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Erf": "erf", "Sqrt": "sqrt", "Exp": "exp",
          "Neg": "neg", "Reciprocal": "reciprocal", "Abs": "abs", "Log": "log", "HardSwish": "hardswish"}


@converter(*_BINARY)
def _binary(ctx, node):
    if len(node.input) != 2:
        raise ctx.fail(node, f"{len(node.input)} inputs (hwsim handles 2)")
    _one(ctx, node, O.Binary, [ctx.act(n) for n in node.input], fn=_BINARY[node.op_type])


@converter(*_UNARY)
def _unary(ctx, node):
    _one(ctx, node, O.Unary, [ctx.act(node.input[0])], fn=_UNARY[node.op_type])


@converter("Identity", "Dropout")
def _identity(ctx, node):
    if len(node.output) > 1 and node.output[1] and ctx.consumers.get(node.output[1]):
        raise ctx.fail(node, "the dropout mask output is used")
    ctx.values[node.output[0]] = ctx.values[node.input[0]]


@converter("Gelu")
def _gelu(ctx, node):
    fn = "gelu_tanh" if attrs(node).get("approximate", b"none") in (b"tanh", "tanh") else "gelu"
    _one(ctx, node, O.Unary, [ctx.act(node.input[0])], fn=fn)


@converter("Clip")
def _clip(ctx, node):
    a = attrs(node)
    lo = ctx.const(node, 1, "min", a.get("min"))
    hi = ctx.const(node, 2, "max", a.get("max"))
    lo = None if lo is None else float(np.asarray(lo))
    hi = None if hi is None else float(np.asarray(hi))
    x = ctx.act(node.input[0])
    if lo == 0.0 and hi == 6.0:
        _one(ctx, node, O.Unary, [x], fn="relu6")
    elif lo == 0.0 and (hi is None or math.isinf(hi)):
        _one(ctx, node, O.Unary, [x], fn="relu")
    else:
        _one(ctx, node, O.Unary, [x], fn="clip", lo=lo, hi=hi)


@converter("HardSigmoid")
def _hardsigmoid(ctx, node):
    a = attrs(node)
    alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
    x = ctx.act(node.input[0])
    if np.float32(alpha) == np.float32(1 / 6) and np.float32(beta) == np.float32(0.5):  # exactly (the attribute is a float32)
        _one(ctx, node, O.Unary, [x], fn="hardsigmoid")
        return
    scaled = _one(ctx, node, O.Binary, [x, _scalar(ctx, node, "alpha", alpha)], ".mul",
                  out=f"{node.output[0]}.mul", fn="mul")
    shifted = _one(ctx, node, O.Binary, [scaled, _scalar(ctx, node, "beta", beta)], ".add",
                   out=f"{node.output[0]}.add", fn="add")
    _one(ctx, node, O.Unary, [shifted], fn="clip", lo=0.0, hi=1.0)


def _scalar(ctx, node, what: str, value: float) -> str:
    name = f"{node.output[0]}.{what}.const"
    ctx.values[name] = Const(np.asarray(value, np.float32))
    return ctx.act(name)


@converter("Softmax")
def _softmax(ctx, node):
    opset = _opset(ctx)
    axis = attrs(node).get("axis", -1 if opset >= 13 else 1)
    rank = len(ctx.shape(node.input[0]))
    if opset < 13 and axis % rank != rank - 1:
        raise ctx.fail(node, f"opset-{opset} Softmax over axis {axis} of a rank-{rank} tensor (flattening softmax)")
    _one(ctx, node, O.Softmax, [ctx.act(node.input[0])], axis=axis)


def _opset(ctx) -> int:
    return next((o.version for o in ctx.model.opset_import if o.domain in ("", "ai.onnx")), 1)


# ------------------------------------------------------------------ norms
@converter("LayerNormalization")
def _layernorm(ctx, node):
    a = attrs(node)
    rank = len(ctx.shape(node.input[0]))
    if a.get("axis", -1) % rank != rank - 1:
        raise ctx.fail(node, f"normalizes from axis {a.get('axis')} (hwsim handles the last axis only)")
    if len([o for o in node.output if o]) > 1:
        raise ctx.fail(node, "mean / inv_std_dev outputs are used (training graph)")
    ins = [ctx.act(node.input[0]), _param(ctx, node, 1, "weight")]
    if ctx.input(node, 2):
        ins.append(_param(ctx, node, 2, "bias"))
    else:
        d = ctx.shape(node.input[0])[-1]
        ctx.values[f"{node.output[0]}.beta"] = Const(np.zeros(d, np.float32))
        ins.append(ctx.place(f"{node.output[0]}.beta", ctx.values[f"{node.output[0]}.beta"], "const"))
    _one(ctx, node, O.LayerNorm, ins, eps=float(a.get("epsilon", 1e-5)))


@converter("BatchNormalization")
def _batchnorm(ctx, node):
    if attrs(node).get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        raise ctx.fail(node, "training-mode batch norm")
    ins = [ctx.act(node.input[0]), _param(ctx, node, 1, "weight"), _param(ctx, node, 2, "bias"),
           _param(ctx, node, 3, "buffer"), _param(ctx, node, 4, "buffer")]
    _one(ctx, node, O.BatchNorm, ins, eps=float(attrs(node).get("epsilon", 1e-5)))


def _param(ctx, node, i: int, role: str, perm=None) -> str:
    """Input ``i`` placed as a parameter tensor (a float or quantized constant)."""
    name = node.input[i]
    v = ctx.values[name]
    if not isinstance(v, (Const, QConst, Codes)):
        raise ctx.fail(node, f"input {i} ('{name}') is computed at run time; hwsim needs it constant")
    if isinstance(v, Const) and v.value.dtype.kind == "f":
        v = Const(np.asarray(v.value, np.float32), v.param)
    return ctx.place(getattr(v, "src", name), v, role, perm,
                     where=f"{node.op_type} (node '{node.name or node.output[0]}')")


# ------------------------------------------------------------------ compute
def _pads(ctx, node, a: dict, kernel, strides, dilations) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", "VALID"):
        p = a.get("pads", [0, 0, 0, 0]) if auto == "NOTSET" else [0, 0, 0, 0]
        return (p[0], p[1], p[2], p[3])
    h, w = ctx.shape(node.input[0])[2:]
    pads = []
    for size, k, s, d in zip((h, w), kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2) if auto == "SAME_UPPER" else (total - total // 2, total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def conv_attrs(ctx, node, kernel) -> dict:
    a = attrs(node)
    if len(kernel) != 2:
        raise ctx.fail(node, f"{len(kernel)}-D convolution (hwsim handles 2-D, NCHW)")
    strides = tuple(a.get("strides", (1, 1)))
    dil = tuple(a.get("dilations", (1, 1)))
    return dict(stride=strides, dilation=dil, groups=int(a.get("group", 1)),
                padding=_pads(ctx, node, a, kernel, strides, dil))


@converter("Conv")
def _conv(ctx, node):
    kernel = ctx.shape(node.input[1])[2:]
    kw = conv_attrs(ctx, node, kernel)
    ins = [ctx.act(node.input[0]), _param(ctx, node, 1, "weight")]
    if ctx.input(node, 2):
        ins.append(_param(ctx, node, 2, "bias"))
    _one(ctx, node, O.Conv2d, ins, **kw)


@converter("MatMul")
def _matmul(ctx, node):
    a, b = node.input[0], node.input[1]
    if not isinstance(ctx.values[b], Act) and len(ctx.shape(b)) == 2:
        ins = [ctx.act(a), _param(ctx, node, 1, "weight", perm=(1, 0))]
        add = _bias_add(ctx, node, ctx.shape(b)[1])
        if add is not None:
            ctx.fused.add(add.output[0])
            bias = next(n for n in add.input if n != node.output[0])
            ins.append(ctx.place(bias, Const(np.asarray(ctx.values[bias].value, np.float32), True), "bias"))
        _one(ctx, node, O.Linear, ins, out=None if add is None else add.output[0])
    else:
        _one(ctx, node, O.MatMul, [ctx.act(a), ctx.act(b)])


def _bias_add(ctx, node, n: int):
    """The Add that adds a constant (n,) bias to this MatMul's output, if it is the only reader."""
    out = node.output[0]
    readers = ctx.consumers.get(out, [])
    if len(readers) != 1 or readers[0].op_type != "Add" or out in ctx.graph_outputs:
        return None
    add = readers[0]
    other = [i for i in add.input if i != out]
    if len(other) != 1 or not isinstance(ctx.values.get(other[0]), Const):
        return None
    v = ctx.values[other[0]]
    return add if v.param and v.value.shape == (n,) else None


@converter("Gemm")
def _gemm(ctx, node):
    a = attrs(node)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    x = ctx.act(node.input[0])
    out = node.output[0]
    if a.get("transA", 0):
        x = _one(ctx, node, O.Transpose, [x], ".transA", out=f"{out}.transA", perm=(1, 0))
    b = node.input[1]
    scaled = alpha != 1.0 or ctx.input(node, 2) is not None and not _bias_fits(ctx, node, b, a)
    mm_out = f"{out}.matmul" if scaled else out
    if isinstance(ctx.values[b], Act):
        bt = ctx.act(b)
        if a.get("transB", 0):
            bt = _one(ctx, node, O.Transpose, [bt], ".transB", out=f"{out}.transB", perm=(1, 0))
        y = _one(ctx, node, O.MatMul, [x, bt], out=mm_out)
    else:
        ins = [x, _param(ctx, node, 1, "weight", perm=None if a.get("transB", 0) else (1, 0))]
        if not scaled and ctx.input(node, 2):
            ins.append(_bias(ctx, node, beta))
        y = _one(ctx, node, O.Linear, ins, out=mm_out)
    if not scaled:
        return
    if alpha != 1.0:
        y = _one(ctx, node, O.Binary, [y, _scalar(ctx, node, "alpha", alpha)], ".alpha",
                 out=out if ctx.input(node, 2) is None else f"{out}.alpha", fn="mul")
    if ctx.input(node, 2):
        cv = ctx.values[node.input[2]]
        if isinstance(cv, Const) and cv.value.dtype.kind == "f":
            ctx.values[f"{out}.C.const"] = Const((cv.value * np.float32(beta)).astype(np.float32), cv.param)
            c, beta = ctx.act(f"{out}.C.const"), 1.0
        else:
            c = ctx.act(node.input[2])
        if beta != 1.0:
            c = _one(ctx, node, O.Binary, [c, _scalar(ctx, node, "beta", beta)], ".beta", out=f"{out}.beta", fn="mul")
        _one(ctx, node, O.Binary, [y, c], ".bias", fn="add")


def _bias_fits(ctx, node, b, a) -> bool:
    """True when C is a constant vector over the output features (it becomes the linear bias)."""
    vb, vc = ctx.values[b], ctx.values[node.input[2]]
    if isinstance(vb, Act) or not isinstance(vc, (Const, QConst)):
        return False
    if isinstance(vc, QConst) and float(a.get("beta", 1.0)) != 1.0:
        return False
    n = ctx.shape(b)[0 if a.get("transB", 0) else 1]
    return ctx.shape(node.input[2]) in ((n,), (1, n))


def _bias(ctx, node, beta: float) -> str:
    name = node.input[2]
    v = ctx.values[name]
    if isinstance(v, Const):
        data = np.asarray(v.value, np.float32).reshape(-1) * np.float32(beta)
        key = name if beta == 1.0 and v.value.ndim == 1 else f"{node.output[0]}.bias"
        return ctx.place(key, Const(data, True), "bias")
    if v.codes.ndim != 1:
        v = QConst(v.codes.reshape(-1), v.dtype, v.src, v.scale.reshape(-1), None if v.zero_point is None
                   else v.zero_point.reshape(-1))
    return ctx.place(v.src, v, "bias", where=f"Gemm (node '{node.name}')")


# ------------------------------------------------------------------ pooling and reductions
@converter("MaxPool", "AveragePool")
def _pool(ctx, node):
    a = attrs(node)
    kernel = tuple(a["kernel_shape"])
    if len(kernel) != 2:
        raise ctx.fail(node, f"{len(kernel)}-D pooling (hwsim handles 2-D)")
    if any(d != 1 for d in a.get("dilations", (1, 1))):
        raise ctx.fail(node, "dilated pooling")
    if len([o for o in node.output if o]) > 1:
        raise ctx.fail(node, "the Indices output is used")
    strides = tuple(a.get("strides", (1, 1)))
    pads = _pads(ctx, node, a, kernel, strides, (1, 1))
    ceil = bool(a.get("ceil_mode", 0))  # the IR's Pool applies the ONNX/PyTorch ceil rule
    _one(ctx, node, O.Pool, [ctx.act(node.input[0])], kind="max" if node.op_type == "MaxPool" else "avg",
         kernel=kernel, stride=strides, padding=pads, ceil_mode=ceil,
         count_include_pad=bool(a.get("count_include_pad", 0)))


@converter("GlobalAveragePool")
def _gap(ctx, node):
    rank = len(ctx.shape(node.input[0]))
    if rank == 4:
        _one(ctx, node, O.GlobalAvgPool, [ctx.act(node.input[0])])
    else:  # 1-D / 3-D: a mean over every spatial axis
        _one(ctx, node, O.Reduce, [ctx.act(node.input[0])], fn="mean", axes=tuple(range(2, rank)), keepdims=True)


@converter("GlobalMaxPool")
def _gmp(ctx, node):
    rank = len(ctx.shape(node.input[0]))
    _one(ctx, node, O.Reduce, [ctx.act(node.input[0])], fn="max", axes=tuple(range(2, rank)), keepdims=True)


@converter("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin")
def _reduce(ctx, node):
    a = attrs(node)
    axes = ctx.const(node, 1, "axes", a.get("axes"))
    rank = len(ctx.shape(node.input[0]))
    if axes is None or np.asarray(axes).size == 0:
        if a.get("noop_with_empty_axes", 0):
            ctx.values[node.output[0]] = ctx.values[node.input[0]]
            return
        axes = range(rank)
    _one(ctx, node, O.Reduce, [ctx.act(node.input[0])], fn=node.op_type[len("Reduce"):].lower(),
         axes=_ints(axes), keepdims=bool(a.get("keepdims", 1)))
