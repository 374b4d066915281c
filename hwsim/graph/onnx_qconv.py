"""QLinearConv and ConvInteger, 1-D, 2-D and 3-D -> conv2d / conv3d with integer QuantSpecs, or with
their scales and zero points as run-time inputs (:mod:`hwsim.graph.onnx_qlinear` has the shared
pieces; the contract is in :mod:`hwsim.graph.onnx`).

A 1-D convolution runs as a 2-D one over a height of 1, as the float Conv does
(:mod:`hwsim.graph.onnx_macs`): the input is unsqueezed at axis 2 (its spec unchanged), the weight
placed as (O, I, 1, K), and the output squeezed back.
"""

from __future__ import annotations

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_macs import _pads_nd
from hwsim.graph.onnx_ops import _one, attrs, converter
from hwsim.graph.onnx_qlinear import (INT32, _act_in, _int32_bias, _integer_in, _out_spec, _runtime_op,
                                      _runtime_out, _runtime_params, _weight, _weight_runtime)
from hwsim.graph.onnx_values import format_of
from hwsim.graph.quant import FP32, QuantSpec


def _layout(ctx, node, w_index: int) -> tuple[type, dict, int]:
    """(IR op class, its attributes, spatial rank) of the conv ``node`` with its weight at ``w_index``."""
    x_shape, kernel = ctx.shape(node.input[0]), ctx.shape(node.input[w_index])[2:]
    rank = len(kernel)
    if rank not in (1, 2, 3) or len(x_shape) != rank + 2:
        raise ctx.fail(node, f"{rank}-D convolution of a {len(x_shape)}-D input (hwsim handles 1-D, 2-D and 3-D)")
    a = attrs(node)
    strides = [int(v) for v in a.get("strides", [1] * rank)]
    dil = [int(v) for v in a.get("dilations", [1] * rank)]
    begin, end = _pads_nd(node, a, x_shape[2:], kernel, strides, dil)
    groups = int(a.get("group", 1))
    if rank == 3:
        return O.Conv3d, dict(stride=tuple(strides), padding=tuple(begin + end), dilation=tuple(dil), groups=groups), 3
    if rank == 2:
        return O.Conv2d, dict(stride=tuple(strides), padding=(begin[0], begin[1], end[0], end[1]),
                              dilation=tuple(dil), groups=groups), 2
    return O.Conv2d, dict(stride=(1, strides[0]), padding=(0, begin[0], 0, end[0]), dilation=(1, dil[0]),
                          groups=groups), 1


def _view(ctx, node, t: str, rank: int) -> str:
    """Tensor ``t`` as the conv reads it: itself, or for a 1-D conv unsqueezed at axis 2 with the same
    type and spec (integer codes without a spec get their format first)."""
    if rank != 1:
        return t
    tensor = ctx.g.tensors[t]
    if tensor.quant == FP32 and format_of(tensor.dtype) is not None:
        ctx.g.set_quant(t, QuantSpec(format=format_of(tensor.dtype)))
    return _one(ctx, node, O.Unsqueeze, [t], f".{t}.2d", out=f"{node.output[0]}.{t}.2d", dtype=tensor.dtype,
                quant=ctx.g.tensors[t].quant, axes=(2,))


def _out(node, rank: int) -> str:
    return node.output[0] + (".2d" if rank == 1 else "")


def _squeeze(ctx, node, rank: int) -> None:
    """A 1-D conv's output: the 2-D result squeezed back, with its type and spec."""
    if rank == 1:
        y = ctx.g.tensors[_out(node, 1)]
        _one(ctx, node, O.Squeeze, [y.name], ".squeeze", dtype=y.dtype, quant=y.quant, axes=(2,))


@converter("QLinearConv")
def _qlinear_conv(ctx, node):
    op_cls, kw, rank = _layout(ctx, node, 3)
    bias = ctx.input(node, 8)
    if _runtime_params(ctx, node, 3, 8):
        dtype, spec = _runtime_out(ctx, node, 7)
        ins = [_view(ctx, node, ctx.act(node.input[i]), rank) for i in (0, 3)] + ([8] if bias else [])
        _runtime_op(ctx, node, op_cls, ins, dtype, spec, out=_out(node, rank), **kw)
    else:
        c = lambda i, what: ctx.const(node, i, what)  # noqa: E731
        x_s, w_s = np.float32(c(1, "x_scale")), np.asarray(c(4, "w_scale"), np.float32)
        x = _view(ctx, node, _act_in(ctx, node, 0, x_s, c(2, "x_zero_point"), None), rank)
        ins = [x, _weight(ctx, node, 3, w_s, c(5, "w_zero_point"), 0, as_2d=rank == 1)]
        if bias:
            ins.append(_int32_bias(ctx, node, 8, (x_s * w_s).astype(np.float32)))
        spec, dtype = _out_spec(ctx, node, 6, 7)
        _one(ctx, node, op_cls, ins, out=_out(node, rank), dtype=dtype, quant=spec, **kw)
    _squeeze(ctx, node, rank)


@converter("ConvInteger")
def _conv_integer(ctx, node):
    op_cls, kw, rank = _layout(ctx, node, 1)
    if _weight_runtime(ctx, node):
        ins = [_view(ctx, node, ctx.act(node.input[i]), rank) for i in (0, 1)]
        _runtime_op(ctx, node, op_cls, ins, "int32", INT32, out=_out(node, rank), **kw)
    else:
        w = _weight(ctx, node, 1, 1.0, ctx.const(node, 3, "w_zero_point"), 0, as_2d=rank == 1)
        _integer_in(ctx, node, 0, 2, 1, w, op_cls, view=lambda t: _view(ctx, node, t, rank), out=_out(node, rank),
                    **kw)
    _squeeze(ctx, node, rank)
