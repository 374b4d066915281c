"""Executor of ``linear_block_int8``: onnxruntime's MatMulNBits at ``accuracy_level`` 4 (MLAS
``CompInt8``, ``QuantizeARow_CompInt8`` and the block dot kernels).

Each row of the activations is cut into blocks of ``block_size`` along the input features; a block
with largest magnitude ``amax`` gets the float32 scale ``amax / 127`` and the codes
``rint(x * (127 / amax))`` (round half to even; all zero when ``amax`` is 0). Each block's integer
dot product with the weight codes minus their zero points is converted to float32, multiplied by
``s_a * s_w`` (float32) and added to the float32 output, block by block; the bias comes last.
onnxruntime's kernels add the blocks in their own vector order (fused multiply-adds): a few ulps.
Weights without a per-block integer spec (a quant config replaced it) are used as real values.
The float reference is the float64 product of the unquantized activations.
"""

from __future__ import annotations

import numpy as np

from hwsim import formats
from hwsim.sim import qspec
from hwsim.sim.registry import register_exec

_F = np.float32


def quantize_blocks(x: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64 codes (..., K), float32 scales (..., ceil(K / block))) of int8 blockwise activations."""
    x = np.asarray(x, _F)
    k = x.shape[-1]
    nb = -(-k // block)
    padded = np.zeros(x.shape[:-1] + (nb * block,), _F)
    padded[..., :k] = x
    blocks = padded.reshape(x.shape[:-1] + (nb, block))
    amax = np.abs(blocks).max(-1)
    scale = (amax / _F(127)).astype(_F)
    with np.errstate(divide="ignore"):
        inv = np.where(amax != 0, _F(127) / amax, _F(0)).astype(_F)
    codes = np.rint((blocks * inv[..., None]).astype(_F)).astype(np.int64)
    return codes.reshape(padded.shape)[..., :k], scale


def _weight_blocks(ctx, op, w: np.ndarray):
    """(centered integer codes (N, K), scales (N, blocks)) of a per-block integer weight, or None."""
    spec = ctx.spec(op.inputs[1])
    if (spec.granularity != "group" or spec.scale is None or spec.group_size != op.block_size
            or spec.axis % 2 != 1 or not formats.get(spec.format).integer_codes):
        return None
    centered = qspec.codes(w, spec) - qspec.codes(np.zeros_like(w), spec)
    return centered, qspec.scale_array(spec.scale).astype(_F).reshape(w.shape[0], -1)


@register_exec("linear_block_int8")
def _linear_block_int8(ctx, op, xs):
    x, w = np.asarray(xs[0]), np.asarray(xs[1])
    bias = np.asarray(xs[2], np.float64) if len(xs) > 2 else 0.0
    if ctx.reference:
        return x.astype(np.float64) @ w.astype(np.float64).T + bias
    qa, sa = quantize_blocks(x, op.block_size)
    wb = _weight_blocks(ctx, op, w)
    out = np.zeros(x.shape[:-1] + (w.shape[0],), _F)
    for b in range(sa.shape[-1]):
        cols = slice(b * op.block_size, (b + 1) * op.block_size)
        if wb is None:
            out = (out + (qa[..., cols] @ w[:, cols].T.astype(np.float64)).astype(_F) * sa[..., b:b + 1]).astype(_F)
        else:
            dot = (qa[..., cols] @ wb[0][:, cols].T).astype(_F)
            out = (out + dot * (sa[..., b:b + 1] * wb[1][:, b])).astype(_F)
    return out + bias
