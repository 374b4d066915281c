"""com.microsoft MAC ops of onnxruntime's weight quantizers -> IR ops (registered into
:data:`hwsim.graph.onnx_ops.CONVERTERS` under ``com.microsoft.<op>``).

- ``MatMulNBits`` (onnxruntime's ``MatMulNBitsQuantizer``, most int4 LLM exports): B holds ``bits``-bit
  unsigned codes packed little-end first, one row of ``ceil(K / block_size)`` blocks per output
  feature; ``scales`` and ``zero_points`` (packed codes, default ``2^(bits-1)``) per block. It
  becomes a ``linear`` whose weight is the (N, K) codes with a per-group QuantSpec (format
  ``uint<bits>``, one scale and zero point per block of ``block_size`` along K): the cost model
  prices the real weight bits and the simulator multiplies the activations by the dequantized
  weights, as onnxruntime's default (``accuracy_level`` 0: float32) kernel does. With
  ``accuracy_level`` 4 it is a ``linear_block_int8``: the activations quantized to int8 per block
  inside the op, as onnxruntime's ``CompInt8`` kernels do (:mod:`hwsim.sim.blockint8`).
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _one, _param, attrs, converter
from hwsim.graph.onnx_values import Const, QConst


def unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first ``count`` ``bits``-bit unsigned codes of each row of ``packed`` (uint8 bytes,
    lowest bits first, as onnxruntime packs MatMulNBits weights and zero points)."""
    per = 8 // bits
    rows = packed.reshape(packed.shape[0], -1).astype(np.uint8)
    shifts = (np.arange(per, dtype=np.uint8) * bits)
    codes = (rows[:, :, None] >> shifts) & np.uint8((1 << bits) - 1)
    return codes.reshape(rows.shape[0], -1)[:, :count]


def _nbits_weight(ctx, node, k: int, n: int, bits: int, block: int) -> QConst:
    """The (N, K) codes, per-block scales and zero points of a MatMulNBits node as a QConst."""
    blocks = math.ceil(k / block)
    b = ctx.const(node, 1, "B")
    if b.dtype != np.uint8 or b.size != n * blocks * math.ceil(block * bits / 8):
        raise ctx.fail(node, f"B has type {b.dtype} and {b.size} bytes; expected uint8 "
                             f"[{n}, {blocks}, {math.ceil(block * bits / 8)}]")
    codes = unpack_bits(b.reshape(n, blocks, -1), bits, blocks * block).reshape(n, blocks * block)[:, :k]
    scale = np.asarray(ctx.const(node, 2, "scales"))
    if scale.dtype != np.float32 or scale.size != n * blocks:
        raise ctx.fail(node, f"scales have type {scale.dtype} and {scale.size} values; expected float32 [{n * blocks}]")
    zp = ctx.const(node, 3, "zero_points")
    if zp is None:
        zp = np.full((n, blocks), 1 << (bits - 1), np.int64)
    elif zp.dtype == np.uint8:
        zp = unpack_bits(zp.reshape(n, -1), bits, blocks).astype(np.int64)
    else:  # float zero points (same type as the scales): codes minus a real offset
        raise ctx.fail(node, f"zero_points of type {zp.dtype} (float offsets per block); hwsim takes packed "
                             "uint8 zero-point codes")
    scale, zp = scale.reshape(n, blocks), zp.reshape(n, blocks)
    codes = _positive_scales(codes.astype(np.int64), scale, zp, bits, block)
    dtype = "uint8" if bits == 8 else f"uint{bits}"
    return QConst(codes.astype(np.uint8), dtype, node.input[1], np.abs(scale) + (scale == 0), zp, (1, block))


def _positive_scales(codes: np.ndarray, scale: np.ndarray, zp: np.ndarray, bits: int, block: int) -> np.ndarray:
    """Codes for the scales' magnitudes (``zp`` updated in place): onnxruntime's symmetric quantizer
    writes negative scales (``absmax / -8``), and ``(q - z) * s == ((M - q) - (M - z)) * -s`` with
    ``M = 2^bits - 1`` keeps every value exact. A block of scale 0 (all zeros) gets codes ``z``."""
    top = (1 << bits) - 1
    per = np.repeat(scale, block, axis=1)[:, :codes.shape[1]]
    zper = np.repeat(zp, block, axis=1)[:, :codes.shape[1]]
    out = np.where(per < 0, top - codes, codes)
    out = np.where(per == 0, np.where(zper > top, top, zper), out)
    zp[:] = np.where(scale < 0, top - zp, zp)
    return out


def int8_activations(accuracy_level: int, bits: int, block: int) -> bool:
    """Whether onnxruntime runs MatMulNBits with int8 activations (MLAS ``CompInt8``):
    ``accuracy_level`` 4 where its kernels exist. Measured on onnxruntime 1.32, x86 AVX2: every
    2-, 4- and 8-bit block size but 2-bit blocks of 16, which fall back to float32."""
    return accuracy_level >= 4 and not (bits == 2 and block < 32)


@converter("com.microsoft.MatMulNBits")
def _matmul_nbits(ctx, node):
    a = attrs(node)
    k, n = int(a["K"]), int(a["N"])
    bits, block = int(a.get("bits", 4)), int(a["block_size"])
    if bits not in (2, 4, 8):
        raise ctx.fail(node, f"bits={bits} (hwsim reads 2-, 4- and 8-bit codes)")
    x = ctx.act(node.input[0])
    if ctx.g.tensors[x].dtype != "float32":
        raise ctx.fail(node, f"input A has type {ctx.g.tensors[x].dtype}; hwsim runs MatMulNBits on float32 inputs")
    if ctx.input(node, 4):
        g_idx = np.asarray(ctx.const(node, 4, "g_idx"))
        if not np.array_equal(g_idx.ravel(), np.arange(k) // block):
            raise ctx.fail(node, "g_idx reorders the rows of B across blocks (act-order); hwsim takes "
                                 "consecutive blocks of block_size")
    w = _nbits_weight(ctx, node, k, n, bits, block)
    ins = [x, ctx.place(node.input[1], w, "weight", where=f"MatMulNBits (node '{node.name or node.output[0]}')")]
    if ctx.input(node, 5):
        bias = np.asarray(ctx.const(node, 5, "bias"), np.float32).reshape(-1)
        ins.append(ctx.place(node.input[5], Const(bias, True), "bias"))
    if int8_activations(int(a.get("accuracy_level", 0)), bits, block):
        _one(ctx, node, O.BlockInt8Linear, ins, block_size=block)
    else:
        _one(ctx, node, O.Linear, ins)


# ------------------------------------------------------------------ DynamicQuantizeLSTM
def _per_row(ctx, node, i: int, what: str, dirs: int, rows: int) -> np.ndarray:
    """A DynamicQuantizeLSTM scale or zero point ([dirs] or [dirs, 4 * hidden]) as (dirs, rows)."""
    v = np.asarray(ctx.const(node, i, what))
    if v.shape not in ((dirs,), (dirs, rows)):
        raise ctx.fail(node, f"{what} has shape {v.shape}; expected ({dirs},) or ({dirs}, {rows})")
    return np.broadcast_to(v.reshape(dirs, -1), (dirs, rows))


def _lstm_weight(ctx, node, i: int, dirs: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes (dirs, K, rows), scale (dirs, rows), zero point (dirs, rows)) of W (i=1) or R (i=2)."""
    codes = np.asarray(ctx.const(node, i, "W" if i == 1 else "R"))
    if codes.dtype not in (np.int8, np.uint8) or codes.ndim != 3 or codes.shape[0] != dirs or codes.shape[2] != rows:
        raise ctx.fail(node, f"input {i} has type {codes.dtype} and shape {codes.shape}; expected int8 / uint8 "
                             f"({dirs}, K, {rows})")
    j = 8 if i == 1 else 10
    scale = _per_row(ctx, node, j, f"input {j} (scale)", dirs, rows).astype(np.float32)
    zp = _per_row(ctx, node, j + 1, f"input {j + 1} (zero point)", dirs, rows)
    if np.any(zp != zp[:, :1]):  # onnxruntime's kernel reads one zero point per direction
        raise ctx.fail(node, f"zero points of input {i} differ within a direction; onnxruntime uses the first")
    return codes, scale, zp.astype(codes.dtype)


@converter("com.microsoft.DynamicQuantizeLSTM")
def _dynamic_quantize_lstm(ctx, node):
    """DynamicQuantizeLSTM as onnxruntime computes it: the input projection of the whole sequence
    (DynamicQuantizeLinear of X, integer product with W, times ``x_scale * w_scale``) as the
    standard nodes of DynamicQuantizeMatMul, then a ``dynamic_quantize_lstm`` op whose every step
    quantizes the hidden state to uint8 for the integer product with R."""
    from hwsim.graph.onnx_macs import _check_activations, _real, _unpack, full_lengths
    from hwsim.graph.onnx_qlinear import _expand, _mk

    a = attrs(node)
    if a.get("input_forget", 0):
        raise ctx.fail(node, "input_forget=1 (coupled input and forget gates)")
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    dirs = 2 if direction == "bidirectional" else 1
    hidden = int(a["hidden_size"])
    acts = _check_activations(ctx, node, a, 3, dirs)
    seq, batch, isz = ctx.shape(node.input[0])
    full_lengths(ctx, node, seq)
    rows = 4 * hidden
    w, ws, wz = _lstm_weight(ctx, node, 1, dirs, rows)
    r, rs, rz = _lstm_weight(ctx, node, 2, dirs, rows)
    p = (node.name or node.output[0]) + "."
    ctx.values[p + "W"] = Const(w.transpose(1, 0, 2).reshape(isz, dirs * rows))  # (K, dirs x rows) columns
    ctx.values[p + "Wz"] = Const(wz.reshape(-1) if np.any(wz != wz.flat[0]) else wz.reshape(-1)[:1].reshape(()))
    ctx.values[p + "Ws"] = Const(ws.reshape(-1))
    _expand(ctx, node, [_mk("DynamicQuantizeLinear", [node.input[0]], [p + "xq", p + "xs", p + "xz"]),
                        _mk("MatMulInteger", [p + "xq", p + "W", p + "xz", p + "Wz"], [p + "acc"]),
                        _mk("Cast", [p + "acc"], [p + "accf"], to=1),
                        _mk("Mul", [p + "xs", p + "Ws"], [p + "s"]),
                        _mk("Mul", [p + "accf", p + "s"], [p + "xw"])])
    rq = QConst(r.transpose(0, 2, 1).reshape(dirs * rows, hidden), str(r.dtype), node.input[2],
                rs.reshape(-1, 1), rz.reshape(-1, 1).astype(np.int64))
    where = f"DynamicQuantizeLSTM (node '{node.name or node.output[0]}')"
    ins = [ctx.act(p + "xw"), ctx.place(node.input[2], rq, "weight", where=where)]
    if ctx.input(node, 3):
        ins.append(ctx.place(f"{node.input[3]}.float", Const(_real(ctx, node, 3), True), "bias"))
    else:
        ins.append(ctx.place(p + "B", Const(np.zeros((dirs, 2 * rows), np.float32)), "const"))
    extras = []
    for name, i in (("initial_h", 5), ("initial_c", 6), ("P", 7)):
        if ctx.input(node, i):
            ins.append(ctx.act(node.input[i]) if name != "P" else _param(ctx, node, i, "weight"))
            extras.append(name)
    clip = a.get("clip")
    packed = _one(ctx, node, O.DynamicQuantizeLSTM, ins, out=p + "packed", direction=direction, hidden=hidden,
                  activations=acts, clip=None if clip is None else float(clip), extras=tuple(extras))
    _unpack(ctx, node, packed, seq, 0, 2)


# ------------------------------------------------------------------ QAttention
@converter("com.microsoft.QAttention")
def _qattention(ctx, node):
    """QAttention as the standard nodes of onnxruntime's kernel: the QKV projection as MatMulInteger
    (input and weight codes, their zero points), times ``input_scale * weight_scale``, plus the bias;
    then the attention of :func:`_attention`."""
    from hwsim.graph.onnx_qlinear import _mk

    p = (node.name or node.output[0]) + "."
    zp = [n or "" for n in (ctx.input(node, 6), ctx.input(node, 7))]
    mm_ins = [node.input[0], node.input[1]] + (zp if any(zp) else [])
    proj = [_mk("MatMulInteger", mm_ins, [p + "acc"]), _mk("Cast", [p + "acc"], [p + "accf"], to=1),
            _mk("Mul", [node.input[3], node.input[4]], [p + "s"]), _mk("Mul", [p + "accf", p + "s"], [p + "y0"]),
            _mk("Add", [p + "y0", node.input[2]], [p + "qkv"])]
    _attention(ctx, node, proj, mask_at=5, past_at=8)


@converter("com.microsoft.Attention")
def _float_attention(ctx, node):
    """onnxruntime's float Attention (what its transformer optimizer writes, and what quantize_dynamic
    turns into QAttention): ``input @ weights + bias``, then the attention of :func:`_attention`.
    ``qkv_hidden_sizes`` with unequal parts and ``attention_bias`` are refused naming the node."""
    from hwsim.graph.onnx_qlinear import _mk

    sizes = list(attrs(node).get("qkv_hidden_sizes", []))
    if sizes and len(set(sizes)) != 1:
        raise ctx.fail(node, f"qkv_hidden_sizes {sizes} (Q, K and V of different widths)")
    if ctx.input(node, 5) or ctx.input(node, 6):
        raise ctx.fail(node, "attention_bias / past_sequence_length inputs")
    p = (node.name or node.output[0]) + "."
    bias = ctx.input(node, 2)
    proj = [_mk("MatMul", [node.input[0], node.input[1]], [p + "y0" if bias else p + "qkv"])]
    if bias:
        proj.append(_mk("Add", [p + "y0", bias], [p + "qkv"]))
    _attention(ctx, node, proj, mask_at=3, past_at=4)


def _attention(ctx, node, proj: list, mask_at: int, past_at: int) -> None:
    """Import ``proj`` (nodes writing ``<p>qkv``, (batch, seq, 3 x hidden)) and, per head,
    ``softmax(Q K^T * scale + mask) V`` in float32 as onnxruntime's attention computes it (mask:
    key lengths / end and start positions, or a raw 2-D / 3-D key mask, masked keys ->
    ``mask_filter_value``; ``unidirectional``: the causal mask). Past / present, rotary and other
    mask_index forms are refused naming the node."""
    from hwsim.graph.onnx_qlinear import _expand, _mk

    a = attrs(node)
    heads = int(a["num_heads"])
    batch, seq, _ = ctx.shape(node.input[0])
    hidden3 = ctx.shape(node.input[1])[1]
    if hidden3 % (3 * heads):
        raise ctx.fail(node, f"weight has {hidden3} columns, not 3 x num_heads ({heads}) x head size")
    if a.get("do_rotary", 0) or a.get("past_present_share_buffer", 0):
        raise ctx.fail(node, "do_rotary / past_present_share_buffer (hwsim runs the plain attention)")
    if ctx.input(node, past_at) or (len(node.output) > 1 and node.output[1]):
        raise ctx.fail(node, "past / present (the key-value cache inputs and outputs)")
    hd = hidden3 // (3 * heads)
    p = (node.name or node.output[0]) + "."
    c = lambda name, v: ctx.values.__setitem__(p + name, Const(np.asarray(v))) or p + name  # noqa: E731
    nodes = proj + [
        _mk("Reshape", [p + "qkv", c("qkv_shape", np.array([batch, seq, 3, heads, hd], np.int64))], [p + "r"]),
        _mk("Transpose", [p + "r"], [p + "t"], perm=[2, 0, 3, 1, 4])]
    for i, part in enumerate("qkv"):
        nodes += [_mk("Slice", [p + "t", c(f"{part}0", np.array([i], np.int64)), c(f"{part}1", np.array([i + 1], np.int64)),
                                c("axis0", np.array([0], np.int64))], [p + part + "5"]),
                  _mk("Squeeze", [p + part + "5", c("axes0", np.array([0], np.int64))], [p + part])]
    scale = float(a.get("scale", 0.0)) or 1.0 / math.sqrt(hd)
    nodes += [_mk("Transpose", [p + "k"], [p + "kt"], perm=[0, 1, 3, 2]),
              _mk("MatMul", [p + "q", p + "kt"], [p + "qk"]),
              _mk("Mul", [p + "qk", c("scale", np.float32(scale))], [p + "scores"])]
    scores = p + "scores"
    mask = _attention_mask(ctx, node, a, c, nodes, batch, seq, ctx.input(node, mask_at))
    if mask is not None:
        nodes.append(_mk("Add", [scores, mask], [p + "masked"]))
        scores = p + "masked"
    nodes += [_mk("Softmax", [scores], [p + "probs"], axis=-1), _mk("MatMul", [p + "probs", p + "v"], [p + "ctx"]),
              _mk("Transpose", [p + "ctx"], [p + "ctx_t"], perm=[0, 2, 1, 3]),
              _mk("Reshape", [p + "ctx_t", c("out_shape", np.array([batch, seq, heads * hd], np.int64))],
                  [node.output[0]])]
    _expand(ctx, node, nodes)


def _key_length_mask(node, mask: str, c, batch: int, seq: int, starts: bool) -> list:
    """Nodes writing ``<p>keep`` (batch, seq): key ``j`` is kept when ``j < end[b]`` (and ``j >=
    start[b]`` with start positions), as onnxruntime reads a 1-D mask_index."""
    from hwsim.graph.onnx_qlinear import _mk

    p = (node.name or node.output[0]) + "."
    ar = c("positions", np.arange(seq, dtype=np.int32))
    nodes = [_mk("Slice", [mask, c("e0", np.array([0], np.int64)), c("e1", np.array([batch], np.int64))], [p + "end"]),
             _mk("Reshape", [p + "end", c("col", np.array([batch, 1], np.int64))], [p + "end_col"]),
             _mk("Less", [ar, p + "end_col"], [p + "before_end" if starts else p + "keep"])]
    if starts:
        nodes += [_mk("Slice", [mask, c("s0", np.array([batch], np.int64)),
                                c("s1", np.array([2 * batch], np.int64))], [p + "start"]),
                  _mk("Reshape", [p + "start", c("col", np.array([batch, 1], np.int64))], [p + "start_col"]),
                  _mk("GreaterOrEqual", [ar, p + "start_col"], [p + "after_start"]),
                  _mk("And", [p + "before_end", p + "after_start"], [p + "keep"])]
    return nodes


def _attention_mask(ctx, node, a: dict, c, nodes: list, batch: int, seq: int, mask_index: str | None) -> str | None:
    """Append the nodes of the additive mask (``mask_filter_value`` where masked, 0 elsewhere,
    broadcast over heads) and return its name; None without a mask."""
    from hwsim.graph.onnx_qlinear import _mk

    p = (node.name or node.output[0]) + "."
    fill = np.float32(a.get("mask_filter_value", -10000.0))
    parts = []
    if mask_index:
        shape = ctx.shape(mask_index)
        if shape in ((batch,), (2 * batch,)):  # key lengths (end positions), then start positions
            nodes += _key_length_mask(node, mask_index, c, batch, seq, shape == (2 * batch,))
        elif shape in ((batch, seq), (batch, seq, seq)):
            nodes.append(_mk("Greater", [mask_index, c("zero", np.int32(0))], [p + "keep"]))
        else:
            raise ctx.fail(node, f"mask_index of shape {shape}; hwsim takes key lengths ({batch},), end and start "
                                 f"positions ({2 * batch},) or a raw key mask ({batch}, {seq}) / ({batch}, {seq}, {seq})")
        target = [batch, 1, seq, seq] if len(shape) == 3 else [batch, 1, 1, seq]
        nodes += [_mk("Where", [p + "keep", c("pass", np.float32(0)), c("fill", fill)], [p + "m"]),
                  _mk("Reshape", [p + "m", c("m_shape", np.array(target, np.int64))], [p + "mask_key"])]
        parts.append(p + "mask_key")
    if a.get("unidirectional", 0):
        causal = np.where(np.arange(seq)[None, :] > np.arange(seq)[:, None], fill, np.float32(0)).astype(np.float32)
        parts.append(c("causal", causal))
    if len(parts) == 2:  # a position masked twice holds the fill value once, as onnxruntime writes it
        nodes.append(_mk("Min", parts, [p + "mask"]))
        return p + "mask"
    return parts[0] if parts else None
