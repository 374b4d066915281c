"""ONNX MAC ops beyond 2-D Conv, MatMul and Gemm -> IR ops (registered into
:data:`hwsim.graph.onnx_ops.CONVERTERS`).

- Conv with a 3-D input (1-D convolution): ``unsqueeze`` to (N, C, 1, L), a ``conv2d`` with a
  (O, I, 1, K) weight, ``squeeze`` back (the 2-D kernels, integer paths and cost apply as they
  are). 4-D input: ``conv2d``. 5-D input: ``conv3d``.
- ConvTranspose with a 4-D input: ``conv_transpose``; 5-D: ``conv_transpose3d``; 3-D input: the 2-D op
  through views; pads
  from ``output_shape`` / ``auto_pad`` as the ONNX spec gives them.
- LSTM / GRU / RNN (layout 0 or 1, any direction): ``lstm`` / ``gru`` / ``rnn`` with W and R concatenated into one
  weight (dirs, gates * hidden, input + hidden), B zeros when absent; the packed output is sliced
  into Y, Y_h (and Y_c). ``sequence_lens`` is accepted when every sequence has the full length;
  ``input_forget`` and activations with parameters are refused.
"""

from __future__ import annotations

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _one, _param, attrs, converter
from hwsim.graph.onnx_values import Const, QConst

_PLAIN_ACTIVATIONS = ("Sigmoid", "Tanh", "Relu", "Softsign", "Softplus")


def _pads_nd(node, a: dict, sizes, kernel, strides, dil) -> tuple[list[int], list[int]]:
    """(begin pads, end pads) of a Conv / pool over ``len(sizes)`` spatial axes."""
    n = len(sizes)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return [0] * n, [0] * n
    if auto == "NOTSET":
        p = list(a.get("pads", [0] * 2 * n))
        return p[:n], p[n:]
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dil):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin, end


def _weight_as_2d(ctx, node, i: int, role: str) -> str:
    """A 3-D (O, I, K) constant placed as (O, I, 1, K) (per-channel scales keep their axis)."""
    name = node.input[i]
    v = ctx.values[name]
    if isinstance(v, QConst):
        zp = None if v.zero_point is None else np.expand_dims(v.zero_point, 2)
        block = None if v.block is None else (v.block[0] + (v.block[0] >= 2), v.block[1])
        v = QConst(np.expand_dims(v.codes, 2), v.dtype, v.src, np.expand_dims(v.scale, 2), zp, block)
        key = f"{v.src}.2d"
    elif isinstance(v, Const):
        v, key = Const(np.expand_dims(np.asarray(v.value, np.float32), 2), v.param), f"{name}.2d"
    else:
        raise ctx.fail(node, f"input {i} ('{name}') is computed at run time; hwsim needs it constant")
    return ctx.place(key, v, role, where=f"{node.op_type} (node '{node.name or node.output[0]}')")


def _as_2d(ctx, node, x: str) -> str:
    return _one(ctx, node, O.Unsqueeze, [x], ".unsqueeze", out=f"{node.output[0]}.x2d", axes=(2,))


@converter("Conv")
def _conv(ctx, node):
    x_shape = ctx.shape(node.input[0])
    kernel = ctx.shape(node.input[1])[2:]
    rank = len(kernel)
    if rank not in (1, 2, 3) or len(x_shape) != rank + 2:
        raise ctx.fail(node, f"{rank}-D convolution of a {len(x_shape)}-D input (hwsim handles 1-D, 2-D and 3-D)")
    a = attrs(node)
    strides = list(a.get("strides", [1] * rank))
    dil = list(a.get("dilations", [1] * rank))
    begin, end = _pads_nd(node, a, x_shape[2:], kernel, strides, dil)
    groups = int(a.get("group", 1))
    bias = [_param(ctx, node, 2, "bias")] if ctx.input(node, 2) else []
    if rank == 3:
        _one(ctx, node, O.Conv3d, [ctx.act(node.input[0]), _param(ctx, node, 1, "weight"), *bias],
             stride=tuple(strides), padding=tuple(begin + end), dilation=tuple(dil), groups=groups)
        return
    if rank == 2:
        _one(ctx, node, O.Conv2d, [ctx.act(node.input[0]), _param(ctx, node, 1, "weight"), *bias],
             stride=tuple(strides), padding=(begin[0], begin[1], end[0], end[1]), dilation=tuple(dil), groups=groups)
        return
    x2 = _as_2d(ctx, node, ctx.act(node.input[0]))
    y2 = _one(ctx, node, O.Conv2d, [x2, _weight_as_2d(ctx, node, 1, "weight"), *bias], out=f"{node.output[0]}.2d",
              stride=(1, strides[0]), padding=(0, begin[0], 0, end[0]), dilation=(1, dil[0]), groups=groups)
    _one(ctx, node, O.Squeeze, [y2], ".squeeze", axes=(2,))


def _transpose_pads(a: dict, sizes, kernel, strides, dil, out_pad) -> tuple[list[int], list[int]]:
    """ConvTranspose pads: explicit, or from ``output_shape`` / ``auto_pad`` (ONNX spec formula)."""
    n = len(sizes)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    out_shape = list(a.get("output_shape", []))[-n:] if a.get("output_shape") else None
    if out_shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        out_shape = [s * st for s, st in zip(sizes, strides)]
    if out_shape is None:
        p = [0] * 2 * n if auto == "VALID" else list(a.get("pads", [0] * 2 * n))
        return p[:n], p[n:]
    begin, end = [], []
    for i in range(n):
        total = strides[i] * (sizes[i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1 - out_shape[i]
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin, end


@converter("ConvTranspose")
def _conv_transpose(ctx, node):
    x_shape = ctx.shape(node.input[0])
    kernel = ctx.shape(node.input[1])[2:]
    rank = len(kernel)
    if rank not in (1, 2, 3) or len(x_shape) != rank + 2:
        raise ctx.fail(node, f"{rank}-D ConvTranspose (hwsim handles 1-D, 2-D and 3-D)")
    a = attrs(node)
    strides = list(a.get("strides", [1] * rank))
    dil = list(a.get("dilations", [1] * rank))
    out_pad = list(a.get("output_padding", [0] * rank))
    begin, end = _transpose_pads(a, x_shape[2:], kernel, strides, dil, out_pad)
    if min(begin) < 0:  # negative end pads (an output_shape past the full output) extend it with zeros
        raise ctx.fail(node, f"negative begin pads {begin}")
    groups = int(a.get("group", 1))
    bias = [_param(ctx, node, 2, "bias")] if ctx.input(node, 2) else []
    if rank in (2, 3):
        _one(ctx, node, O.ConvTranspose if rank == 2 else O.ConvTranspose3d,
             [ctx.act(node.input[0]), _param(ctx, node, 1, "weight"), *bias], stride=tuple(strides),
             padding=tuple(begin + end), output_padding=tuple(out_pad), dilation=tuple(dil), groups=groups)
        return
    x2 = _as_2d(ctx, node, ctx.act(node.input[0]))
    y2 = _one(ctx, node, O.ConvTranspose, [x2, _weight_as_2d(ctx, node, 1, "weight"), *bias],
              out=f"{node.output[0]}.2d", stride=(1, strides[0]), padding=(0, begin[0], 0, end[0]),
              output_padding=(0, out_pad[0]), dilation=(1, dil[0]), groups=groups)
    _one(ctx, node, O.Squeeze, [y2], ".squeeze", axes=(2,))


# ------------------------------------------------------------------ LSTM / GRU
def _real(ctx, node, i: int) -> np.ndarray:
    """A float constant input, or a DequantizeLinear'd one as the float32 values the LSTM / GRU reads."""
    v = ctx.values[node.input[i]]
    if isinstance(v, QConst):
        ctx.g.notes.append(f"{node.op_type} '{node.name or node.output[0]}': quantized input {i} read as the "
                           "float values DequantizeLinear gives (the recurrent weights are not re-quantized)")
        return v.real()
    if not isinstance(v, Const):
        raise ctx.fail(node, f"input {i} ('{node.input[i]}') is computed at run time; hwsim needs it constant")
    return np.asarray(v.value, np.float32)


def _recurrent_weights(ctx, node, gates: int, hidden: int, dirs: int) -> tuple[str, str]:
    """(W|R weight, bias) tensors: W and R (float, or dequantized constants) concatenated."""
    wr = np.concatenate([_real(ctx, node, 1), _real(ctx, node, 2)], axis=2)
    out = node.output[0] or node.name
    ctx.values[f"{out}.WR"] = Const(wr, True)
    wname = ctx.place(f"{node.input[1]}|{node.input[2]}", ctx.values[f"{out}.WR"], "weight")
    if ctx.input(node, 3):
        bname = ctx.place(f"{node.input[3]}.float", Const(_real(ctx, node, 3), True), "bias")
    else:
        bname = ctx.place(f"{out}.B", Const(np.zeros((dirs, 2 * gates * hidden), np.float32)), "const")
    return wname, bname


def _check_activations(ctx, node, a: dict, n: int, dirs: int) -> tuple[str, ...]:
    acts = [s.decode() if isinstance(s, bytes) else s for s in a.get("activations", [])]
    defaults = ["Tanh"] if n == 1 else ["Sigmoid", "Tanh", "Tanh"][:n]  # RNN: Tanh; GRU f, g; LSTM f, g, h
    acts = acts or defaults * dirs
    if len(acts) != n * dirs:
        raise ctx.fail(node, f"{len(acts)} activations for {dirs} direction(s) (ONNX needs {n * dirs})")
    bad = [x for x in acts if x not in _PLAIN_ACTIVATIONS]
    if bad or a.get("activation_alpha") or a.get("activation_beta"):
        raise ctx.fail(node, f"activations {bad or acts} with parameters (hwsim runs {', '.join(_PLAIN_ACTIVATIONS)})")
    return tuple(acts)


def full_lengths(ctx, node, seq: int) -> None:
    """Refuse a ``sequence_lens`` input (input 4) unless every sequence has the full length."""
    if ctx.input(node, 4):
        lens = ctx.values[node.input[4]]
        if not isinstance(lens, Const) or np.any(np.asarray(lens.value) != seq):
            raise ctx.fail(node, "sequence_lens shorter than the sequence (or known only at run time)")


def _recurrent(ctx, node, cls, n_act: int, extras_at: dict[str, int], **kw):
    a = attrs(node)
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    dirs = 2 if direction == "bidirectional" else 1
    hidden = int(a["hidden_size"]) if "hidden_size" in a else ctx.shape(node.input[2])[-1]
    layout = int(a.get("layout", 0))
    acts = _check_activations(ctx, node, a, n_act, dirs)
    x = ctx.act(node.input[0])
    seq, batch = ctx.shape(node.input[0])[:2] if layout == 0 else ctx.shape(node.input[0])[1::-1]
    full_lengths(ctx, node, seq)
    out = node.output[0] or next(o for o in node.output if o)
    if layout:
        x = _one(ctx, node, O.Transpose, [x], ".layout_x", out=f"{out}.x_seq_first", perm=(1, 0, 2))
    wr, b = _recurrent_weights(ctx, node, cls.gates, hidden, dirs)
    ins, extras = [x, wr, b], []
    for name, i in extras_at.items():
        if ctx.input(node, i):
            t = ctx.act(node.input[i]) if name != "P" else _param(ctx, node, i, "weight")
            if layout and name != "P":
                t = _one(ctx, node, O.Transpose, [t], f".layout_{name}", out=f"{out}.{name}_dir_first", perm=(1, 0, 2))
            ins.append(t)
            extras.append(name)
    clip = a.get("clip")
    packed = _one(ctx, node, cls, ins, out=f"{out}.packed", direction=direction, hidden=hidden, activations=acts,
                  clip=None if clip is None else float(clip), extras=tuple(extras), **kw)
    _unpack(ctx, node, packed, seq, layout, cls.packed_rows)


def _unpack(ctx, node, packed: str, seq: int, layout: int, rows: int) -> None:
    """Slice the packed (seq + rows, dirs, batch, hidden) output into Y, Y_h (and Y_c)."""
    spans = [(0, seq)] + [(seq + k, seq + k + 1) for k in range(rows)]
    for k, (lo, hi) in enumerate(spans):
        name = node.output[k] if k < len(node.output) else ""
        if not name:
            continue
        direct = k == 0 and not layout
        y = _one(ctx, node, O.Slice, [packed], f".out{k}", out=name if direct else f"{name}.rows",
                 starts=(lo,), ends=(hi,), axes=(0,), steps=(1,))
        if k == 0 and layout:  # (seq, dirs, batch, hidden) -> (batch, seq, dirs, hidden)
            _one(ctx, node, O.Transpose, [y], ".layout_y", out=name, perm=(2, 0, 1, 3))
        elif k:
            sq = _one(ctx, node, O.Squeeze, [y], f".sq{k}", out=f"{name}.dir_first" if layout else name, axes=(0,))
            if layout:  # (dirs, batch, hidden) -> (batch, dirs, hidden)
                _one(ctx, node, O.Transpose, [sq], f".layout{k}", out=name, perm=(1, 0, 2))


@converter("LSTM")
def _lstm(ctx, node):
    if attrs(node).get("input_forget", 0):
        raise ctx.fail(node, "input_forget=1 (coupled input and forget gates)")
    _recurrent(ctx, node, O.LSTM, 3, {"initial_h": 5, "initial_c": 6, "P": 7})


@converter("RNN")
def _rnn(ctx, node):
    _recurrent(ctx, node, O.RNN, 1, {"initial_h": 5})


@converter("GRU")
def _gru(ctx, node):
    _recurrent(ctx, node, O.GRU, 2, {"initial_h": 5},
               linear_before_reset=bool(attrs(node).get("linear_before_reset", 0)))
