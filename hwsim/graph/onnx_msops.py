"""com.microsoft MAC ops of onnxruntime's weight quantizers -> IR ops (registered into
:data:`hwsim.graph.onnx_ops.CONVERTERS` under ``com.microsoft.<op>``).

- ``MatMulNBits`` (onnxruntime's ``MatMulNBitsQuantizer``, most int4 LLM exports): B holds ``bits``-bit
  unsigned codes packed little-end first, one row of ``ceil(K / block_size)`` blocks per output
  feature; ``scales`` and ``zero_points`` (packed codes, default ``2^(bits-1)``) per block. It
  becomes a ``linear`` whose weight is the (N, K) codes with a per-group QuantSpec (format
  ``uint<bits>``, one scale and zero point per block of ``block_size`` along K): the cost model
  prices the real weight bits and the simulator multiplies the activations by the dequantized
  weights, as onnxruntime's default (``accuracy_level`` 0: float32) kernel does.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _one, attrs, converter
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
    if int(a.get("accuracy_level", 0)) >= 4:
        ctx.g.notes.append(f"MatMulNBits '{node.name or node.output[0]}': accuracy_level "
                           f"{int(a['accuracy_level'])} lets onnxruntime quantize A to int8 per block; hwsim "
                           "multiplies float32 A by the dequantized weights (the accuracy_level 0 result)")
    w = _nbits_weight(ctx, node, k, n, bits, block)
    ins = [x, ctx.place(node.input[1], w, "weight", where=f"MatMulNBits (node '{node.name or node.output[0]}')")]
    if ctx.input(node, 5):
        bias = np.asarray(ctx.const(node, 5, "bias"), np.float32).reshape(-1)
        ins.append(ctx.place(node.input[5], Const(bias, True), "bias"))
    _one(ctx, node, O.Linear, ins)
