"""Executors of the MAC ops added for imported ONNX models: conv3d, conv_transpose, lstm, gru, rnn.

conv3d and conv_transpose have an integer path like conv2d's (:mod:`hwsim.sim.compute`): when the
activation and the weight carry integer specs with scales, codes minus zero points are multiplied
and accumulated exactly in int64, the op's accumulator overflow rule is applied to the sums, the
int32 bias is added as codes, and the result is requantized (integer output) or dequantized.
Otherwise they compute in float64 on the (already rounded) operand values.

lstm and gru follow the ONNX operator definitions (gate order iofc / zrh, optional peepholes,
clip, linear_before_reset) in float64 on the operand values as quantized by their specs; the gate
arithmetic itself is not quantized (a quantized LSTM cell's internal formats are not modelled).
"""

from __future__ import annotations

import numpy as np

from hwsim import kernel_api
from hwsim.sim import mlas_math, ortfused, qspec
from hwsim.sim.compute import _acc, _add_bias_int, _finish_int, _int_spec, _pairs_saturate, _scales, _zp
from hwsim.sim.qdq import dynamic_quantize
from hwsim.sim.registry import register_exec


# ------------------------------------------------------------------ conv3d
def im2col_3d(x: np.ndarray, kernel, op) -> np.ndarray:
    """(N, C, D, H, W) -> (N, OD, OH, OW, C*kd*kh*kw) patches, k = (c, kd, kh, kw) in C order."""
    p = op.padding
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[3]), (p[1], p[4]), (p[2], p[5])))
    span = [d * (k - 1) + 1 for d, k in zip(op.dilation, kernel)]
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3, 4))
    (sd, sh, sw), (dd, dh, dw) = op.stride, op.dilation
    win = win[:, :, ::sd, ::sh, ::sw, ::dd, ::dh, ::dw]
    n, c, od, oh, ow = win.shape[:5]
    return win.transpose(0, 2, 3, 4, 1, 5, 6, 7).reshape(n, od, oh, ow, -1)


def conv3d_dot(x: np.ndarray, w: np.ndarray, op, dot=np.dot) -> np.ndarray:
    """Grouped 3-D convolution by im2col: (N, O, OD, OH, OW), ``dot(cols (P, K), w (K, Og))``."""
    o, cg = w.shape[:2]
    og = o // op.groups
    outs = []
    for g in range(op.groups):
        cols = im2col_3d(x[:, g * cg:(g + 1) * cg], w.shape[2:], op)
        res = dot(cols.reshape(-1, cols.shape[-1]), w[g * og:(g + 1) * og].reshape(og, -1).T)
        outs.append(res.reshape(cols.shape[:4] + (og,)))
    return np.concatenate(outs, axis=-1).transpose(0, 4, 1, 2, 3)


def _bias(y, xs):
    return y + xs[2].reshape((1, -1) + (1,) * (y.ndim - 2)) if len(xs) > 2 else y


def _int_operands(ctx, op, xs):
    """(x codes - zp, w codes - zp (per channel along axis 0 or 1), scales, acc bits, overflow) or None."""
    sx, sw = ctx.spec(op.inputs[0]), ctx.spec(op.inputs[1])
    axis = type(op).weight_out_axis
    if ctx.reference or not (_int_spec(sx) and _int_spec(sw, weight=True)) or (
            sw.granularity == "channel" and sw.axis % xs[1].ndim != axis):
        return None
    if _pairs_saturate(ctx, sx, sw):
        ctx.note(f"{op.op} '{op.name}': onnxruntime's int16 pair saturation (pairwise_int16) is modelled in "
                 "conv2d / linear / matmul only; this layer sums its products exactly")
    bits, overflow = _acc(ctx, op)
    s_x, s_w = _scales(sx, sw)
    zw = _zp(sw)
    shape = [1] * xs[1].ndim
    if zw.size > 1:
        shape[axis] = -1
    cx = qspec.codes(xs[0], sx).astype(np.int64) - _zp(sx)[0]
    cw = qspec.codes(xs[1], sw).astype(np.int64) - zw.reshape(shape)
    return cx, cw, s_x, s_w, bits, overflow


def _int_finish(ctx, op, acc, xs, s_x, s_w, bits, overflow):
    acc = kernel_api.apply_overflow(acc.astype(np.int64), bits, overflow)
    acc = _add_bias_int(ctx, op, acc, xs, s_x, s_w, 1, bits, overflow)
    return _finish_int(ctx, op, acc, s_x, s_w, 1)


@register_exec("conv3d")
def _conv3d(ctx, op, xs):
    ints = _int_operands(ctx, op, xs)
    if ints is None:
        return _bias(conv3d_dot(xs[0], xs[1], op), xs)
    cx, cw, s_x, s_w, bits, overflow = ints
    return _int_finish(ctx, op, conv3d_dot(cx, cw, op), xs, s_x, s_w, bits, overflow)


# ------------------------------------------------------------------ conv_transpose
def conv_transpose_2d(x: np.ndarray, w: np.ndarray, op, out_hw) -> np.ndarray:
    """ONNX ConvTranspose by scattering every input pixel's products (exact for integer arrays).

    x (N, C, *spatial), w (C, Og, *kernel) -> (N, Og * groups, *out) with ``out`` = ``out_hw``; any
    number of spatial axes (``op.stride``, ``op.dilation`` and ``op.padding``, begins then ends,
    have one entry per axis).
    """
    n, c = x.shape[:2]
    og, kernel = w.shape[1], w.shape[2:]
    rank = len(kernel)
    cg = c // op.groups
    sizes = x.shape[2:]
    begin = op.padding[:rank]
    reach = [s * (i - 1) + d * (k - 1) + 1 for s, i, d, k in zip(op.stride, sizes, op.dilation, kernel)]
    full = [r + max(0, o + b - r) for r, o, b in zip(reach, out_hw, begin)]
    dtype = np.int64 if x.dtype.kind in "iu" and w.dtype.kind in "iu" else np.float64
    y = np.zeros((n, og * op.groups, *full), dtype)
    letters = "pqr"[:rank]
    for g in range(op.groups):
        xg = x[:, g * cg:(g + 1) * cg].astype(dtype)
        wg = w[g * cg:(g + 1) * cg].astype(dtype)
        prod = np.einsum(f"nc{letters},co{letters.upper()}->no{letters}{letters.upper()}", xg, wg)
        for tap in np.ndindex(*kernel):  # (N, Og, *spatial) products of this kernel tap
            where = tuple(slice(t * d, t * d + s * (i - 1) + 1, s)
                          for t, d, s, i in zip(tap, op.dilation, op.stride, sizes))
            y[(slice(None), slice(g * og, (g + 1) * og)) + where] += prod[(Ellipsis,) + tap]
    return y[(slice(None), slice(None)) + tuple(slice(b, b + o) for b, o in zip(begin, out_hw))]


def _conv_transpose(ctx, op, xs):
    out_hw = ctx.graph.tensors[op.outputs[0]].shape[2:]
    ints = _int_operands(ctx, op, xs)
    if ints is None:
        return _bias(conv_transpose_2d(np.asarray(xs[0], np.float64), np.asarray(xs[1], np.float64), op, out_hw), xs)
    cx, cw, s_x, s_w, bits, overflow = ints
    if s_w.size > 1:  # weight scales index the C_out / groups channels of each group
        s_w = np.tile(s_w, op.groups)
    return _int_finish(ctx, op, conv_transpose_2d(cx, cw, op, out_hw), xs, s_x, s_w, bits, overflow)


register_exec("conv_transpose")(_conv_transpose)
register_exec("conv_transpose3d")(_conv_transpose)


# ------------------------------------------------------------------ lstm / gru
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


ACTIVATIONS = {"Sigmoid": _sigmoid, "Tanh": np.tanh, "Relu": lambda x: np.maximum(x, 0.0),
               "Softsign": lambda x: x / (1 + np.abs(x)), "Softplus": lambda x: np.logaddexp(0.0, x)}


#: onnxruntime's float32 Sigmoid / Tanh, for the kernels hwsim reproduces
ORT_ACTIVATIONS = {"Sigmoid": mlas_math.logistic, "Tanh": mlas_math.tanh}


def _extras(op, xs, dirs, batch, hidden):
    got = dict(zip(op.extras, xs[3:]))
    h0 = got.get("initial_h", np.zeros((dirs, batch, hidden)))
    c0 = got.get("initial_c", np.zeros((dirs, batch, hidden)))
    p = got.get("P", np.zeros((dirs, 3 * hidden)))
    return np.asarray(h0, np.float64), np.asarray(c0, np.float64), np.asarray(p, np.float64)


def _steps(direction: str, d: int, seq: int):
    backward = direction == "reverse" or (direction == "bidirectional" and d == 1)
    return range(seq - 1, -1, -1) if backward else range(seq)


def _clipper(op):
    """``clip`` bounds every gate's whole pre-activation (peephole term included, as onnxruntime does;
    the ONNX text leaves the order open)."""
    if op.clip is None:
        return lambda v: v
    return lambda v: np.clip(v, -op.clip, op.clip)


def lstm_reference(op, xs) -> np.ndarray:
    """Packed (seq + 2, dirs, batch, hidden): Y, then Y_h, then Y_c (ONNX LSTM, layout 0)."""
    x, wr, b = (np.asarray(a, np.float64) for a in xs[:3])
    isz = x.shape[2]
    return lstm_cells(op, x.shape[0], x.shape[1], b, _extras(op, xs, op.dirs, x.shape[1], op.hidden),
                      lambda t, d, h: x[t] @ wr[d, :, :isz].T + h @ wr[d, :, isz:].T)


def lstm_cells(op, seq: int, batch: int, b, extras, gates, dtype=np.float64, activations=None) -> np.ndarray:
    """The LSTM recurrence (ONNX equations, gate order iofc) given ``gates(t, d, h)``, the
    pre-activations of step ``t`` of direction ``d`` without bias; arithmetic in ``dtype``, each gate
    as ``f(clip(pre + peephole * c + bias))`` in onnxruntime's order; ``activations`` replaces
    :data:`ACTIVATIONS` by name."""
    acts = {**ACTIVATIONS, **(activations or {})}
    hsz, dirs = op.hidden, op.dirs
    h0, c0, peep = (np.asarray(v, dtype) for v in extras)
    b = np.asarray(b, dtype)
    clip = _clipper(op)
    out = np.zeros((seq + 2, dirs, batch, hsz), dtype)
    for d in range(dirs):
        f, g, hf = (acts[a] for a in op.activations[3 * d:3 * d + 3])
        bi, bo, bf, bc = np.split(b[d, :4 * hsz] + b[d, 4 * hsz:], 4)
        pi, po, pf = np.split(peep[d], 3)
        h, c = h0[d], c0[d]
        for t in _steps(op.direction, d, seq):
            gi, go, gf, gc = np.split(np.asarray(gates(t, d, h), dtype), 4, axis=-1)
            i = f(clip(gi + pi * c + bi))
            fg = f(clip(gf + pf * c + bf))
            c = fg * c + i * g(clip(gc + bc))
            o = f(clip(go + po * c + bo))
            h = hf(c) * o
            out[t, d] = h
        out[seq, d], out[seq + 1, d] = h, c
    return out


def gru_reference(op, xs) -> np.ndarray:
    """Packed (seq + 1, dirs, batch, hidden): Y, then Y_h (ONNX GRU, layout 0)."""
    x, wr, b = (np.asarray(a, np.float64) for a in xs[:3])
    seq, batch, isz = x.shape
    hsz, dirs = op.hidden, op.dirs
    h0, _, _ = _extras(op, xs, dirs, batch, hsz)
    clip = _clipper(op)
    out = np.zeros((seq + 1, dirs, batch, hsz))
    for d in range(dirs):
        f, g = (ACTIVATIONS[a] for a in op.activations[2 * d:2 * d + 2])
        w, r = wr[d, :, :isz], wr[d, :, isz:]
        wb, rb = b[d, :3 * hsz], b[d, 3 * hsz:]
        rz, rr, rh = np.split(r, 3, axis=0)
        h = h0[d]
        for t in _steps(op.direction, d, seq):
            xw = x[t] @ w.T + wb
            xz, xr, xh = np.split(xw, 3, axis=-1)
            bz, br, bh = np.split(rb, 3)
            z = f(clip(xz + h @ rz.T + bz))
            rg = f(clip(xr + h @ rr.T + br))
            if op.linear_before_reset:
                hh = g(clip(xh + rg * (h @ rh.T + bh)))
            else:
                hh = g(clip(xh + (rg * h) @ rh.T + bh))
            h = (1 - z) * hh + z * h
            out[t, d] = h
        out[seq, d] = h
    return out


def rnn_reference(op, xs) -> np.ndarray:
    """Packed (seq + 1, dirs, batch, hidden): Y, then Y_h (ONNX RNN, layout 0)."""
    x, wr, b = (np.asarray(a, np.float64) for a in xs[:3])
    seq, batch, isz = x.shape
    h0, _, _ = _extras(op, xs, op.dirs, batch, op.hidden)
    clip = _clipper(op)
    out = np.zeros((seq + 1, op.dirs, batch, op.hidden))
    for d in range(op.dirs):
        f = ACTIVATIONS[op.activations[d]]
        w, r = wr[d, :, :isz], wr[d, :, isz:]
        bias = b[d, :op.hidden] + b[d, op.hidden:]
        h = h0[d]
        for t in _steps(op.direction, d, seq):
            h = f(clip(x[t] @ w.T + h @ r.T + bias))
            out[t, d] = h
        out[seq, d] = h
    return out


@register_exec("rnn")
def _rnn(ctx, op, xs):
    return rnn_reference(op, xs)


@register_exec("lstm")
def _lstm(ctx, op, xs):
    return lstm_reference(op, xs)


@register_exec("gru")
def _gru(ctx, op, xs):
    return gru_reference(op, xs)


@register_exec("dynamic_quantize_lstm")
def _dynamic_quantize_lstm(ctx, op, xs):
    """onnxruntime's quantized LSTM step: the hidden state quantized to uint8 (DynamicQuantizeLinear
    over each thread's share of the batch, :func:`state_rows`), its integer product with R's codes
    (int16 pairs with ``ctx.pairwise_int16`` for int8 R), ``C = XW + float32(acc) * (h_scale *
    r_scale)`` in float32, then the gates in float32 with onnxruntime's Sigmoid / Tanh
    (:mod:`hwsim.sim.mlas_math`). The float reference uses R's real values."""
    xw, r = np.asarray(xs[0]), np.asarray(xs[1])
    seq, batch = xw.shape[:2]
    rows = 4 * op.hidden
    extras = _extras(op, xs, op.dirs, batch, op.hidden)
    spec = ctx.spec(op.inputs[1])
    if ctx.reference or not _int_spec(spec, weight=True):
        xw64, r64 = xw.astype(np.float64), r.astype(np.float64)
        return lstm_cells(op, seq, batch, xs[2], extras, lambda t, d, h: xw64[t, :, d * rows:(d + 1) * rows]
                          + h @ r64[d * rows:(d + 1) * rows].T)
    codes = qspec.codes(r, spec).astype(np.int64)
    zp = np.broadcast_to(_zp(spec), (r.shape[0],))
    scale = np.broadcast_to(_scales(spec)[0].astype(np.float32), (r.shape[0],))
    part = state_rows(batch, op.hidden, ctx.ort_threads)
    if state_rows(batch, op.hidden, 1) != state_rows(batch, op.hidden, batch):
        ctx.note(f"{op.op} '{op.name}': batch {batch}: onnxruntime quantizes the hidden state of each intra-op "
                 f"thread's share of the batch with its own scale, so its result depends on its thread count; "
                 f"modelled for {ctx.ort_threads} thread(s) (ort_threads)")
    pairs = ctx.pairwise_int16 and spec.format == "int8"
    if spec.format == "int8" and not pairs:  # the hidden state is uint8 (DynamicQuantizeLinear)
        ortfused.note_host_pairs(ctx)

    def gates(t, d, h):
        sl = slice(d * rows, (d + 1) * rows)
        return np.concatenate([quantized_step(xw[t, i:i + part, sl].astype(np.float32), h[i:i + part], codes[sl],
                                              int(zp[sl][0]), scale[sl], pairs) for i in range(0, batch, part)])

    return lstm_cells(op, seq, batch, xs[2], extras, gates, np.float32, ORT_ACTIVATIONS)


def state_rows(batch: int, hidden: int, threads: int) -> int:
    """Sequences whose hidden states share one dynamic scale: onnxruntime splits the batch over its
    intra-op threads (``ceil(batch / threads)`` each) when ``batch > 4`` or ``batch >= 2`` and
    ``hidden <= 256`` (``UniDirectionalLstm::SetNumThreads``), else quantizes the whole batch."""
    if batch > 4 or (batch >= 2 and hidden <= 256):
        return -(-batch // threads)
    return batch


def quantized_step(xw: np.ndarray, h: np.ndarray, codes: np.ndarray, zp: int, scale: np.ndarray,
                   pairs: bool = False) -> np.ndarray:
    """``xw + float32(acc) * (s_h * scale)`` (float32) with ``acc`` the integer product of ``h``
    (rows, hidden) quantized to uint8 by DynamicQuantizeLinear and ``codes - zp`` (4 * hidden,
    hidden); with ``pairs`` the raw uint8 x int8 products are summed in int16-saturated pairs, as
    x86 VPMADDUBSW does, and the zero points corrected after (as MLAS does)."""
    hq, hs, hz = dynamic_quantize(h)
    a, b = hq.astype(np.int64), codes.T
    if pairs:
        raw = kernel_api.int_matmul(a, b, 32, "wrap", pairwise_int16=True)
        acc = raw - zp * a.sum(-1, keepdims=True) - int(hz) * b.sum(0) + a.shape[-1] * int(hz) * zp
    else:
        acc = (a - int(hz)) @ (b - zp)
    return xw + acc.astype(np.float32) * (np.float32(hs) * scale)
