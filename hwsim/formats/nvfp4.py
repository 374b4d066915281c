"""NVFP4, the 4-bit block format of NVIDIA Blackwell: E2M1 elements, an E4M3 scale per 16.

Spec (NVIDIA, "Introducing NVFP4 for efficient and accurate low-precision inference", 2025; the
PTX ISA ``.e2m1x2`` with ``.ue4m3`` block scales, ``scale_vec::4X``; TensorRT-Model-Optimizer's
``NVFP4QTensor``):

- blocks of 16 consecutive elements along the reduction axis (``axis``, default the last);
- an optional per-tensor fp32 scale ``g`` (``scale=``): ``x' = float32(x) / float32(g)``;
- per block ``s = e4m3(amax(|x'|) / 6)``, computed in float32, rounded to nearest even and
  saturated to 448 (FP8 E4M3 "fn": no inf, 448 is the largest finite);
- elements ``q = e2m1(x' / s)`` (division in float32), rounded to nearest even and saturating at
  +-6; the value is ``q * s * g``;
- a block whose scale rounds to 0 (amax / 6 below half the smallest E4M3 subnormal, 2^-10) is
  all zeros; a block holding inf or NaN is NaN.

Storage: 4 bits per element + 8 per 16 = 4.5 bits (the fp32 tensor scale is amortised away).
Calibration (:attr:`scale_rule` ``max_abs``): ``g = amax(|x|) / (6 * 448)`` so that the block
scales use the whole E4M3 range, the recipe of NVIDIA's post-training quantization.
Everything else (MAC operand = the E2M1 element, cost fallbacks) is inherited from
:class:`~hwsim.formats.block.BlockFormat`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.errors import ConfigError
from hwsim.formats._base import Format, check_rounding
from hwsim.formats.block import BlockFormat
from hwsim.formats.floating import FloatFormat

_E2M1 = FloatFormat(2, 1, None, "finite")
_E4M3 = FloatFormat(4, 3, None, "fn")


@dataclass(frozen=True)
class NVFP4Format(BlockFormat):
    """NVFP4 (module docstring). No parameters: element E2M1, block 16, E4M3 scale."""

    element: Format = field(default=_E2M1)
    block_size: int = 16
    scale_bits: int = 8

    def __post_init__(self):
        if (self.element, self.block_size, self.scale_bits) != (_E2M1, 16, 8):
            raise ConfigError("nvfp4 is fixed: E2M1 elements, blocks of 16, an E4M3 scale per block")

    @property
    def name(self) -> str:
        return "nvfp4"

    @property
    def scale_format(self) -> FloatFormat:
        """Format of the per-block scale: FP8 E4M3 (fn)."""
        return _E4M3

    @property
    def max(self) -> float:
        """Largest magnitude without a tensor scale: 448 (scale) x 6 (element) = 2688."""
        return self.scale_format.max * self.element.max

    @property
    def scale_rule(self) -> str:
        return "max_abs"

    # ---- numerics ----------------------------------------------------------------------------
    def _round_blocks(self, x, axis, rounding, seed):
        """(element values, block scales, n) of float32 values ``x`` (module docstring)."""
        blocks, n = self._blocks(x, axis)
        blocks = blocks.astype(np.float32)
        finite = np.isfinite(blocks).all(axis=-1)
        amax = np.max(np.abs(np.where(np.isfinite(blocks), blocks, 0)), axis=-1)
        raw = np.minimum(amax / np.float32(6.0), np.float32(self.scale_format.max))
        s = self.scale_format.quantize(raw, saturate=True).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(s[..., None] > 0, blocks / s[..., None], np.float32(0.0))
        t = np.where(finite[..., None], t, np.float32(0.0))
        q = self.element.quantize(t, rounding=rounding, saturate=True, seed=seed)
        q = np.where(finite[..., None], q, np.nan)
        return q, np.where(finite, s, np.nan), n

    def _tensor_scale(self, x, scale, zero_point, group_size, rounding):
        check_rounding(rounding)
        if zero_point is not None or group_size not in (None, self.block_size):
            raise ConfigError("nvfp4 takes no zero_point and a fixed block of 16; drop zero_point/group_size")
        x = np.asarray(x, dtype=np.float64).astype(np.float32)
        if scale is None:
            return x, None
        g = np.asarray(scale, dtype=np.float64)
        if g.size != 1:
            raise ConfigError("nvfp4: the tensor scale is one fp32 value (per-tensor granularity)")
        g = g.reshape(()).astype(np.float32)
        return x / g, g

    def quantize(self, x, scale=None, zero_point=None, axis=-1, group_size=None,
                 rounding: str = "half_even", saturate: bool | None = None, seed=None) -> np.ndarray:
        """NVFP4 round trip along ``axis`` (default last); ``scale`` is the optional fp32 tensor scale."""
        x, g = self._tensor_scale(x, scale, zero_point, group_size, rounding)
        q, s, n = self._round_blocks(x, axis, rounding, seed)
        y = self._unblock(q * s[..., None].astype(np.float64), n, axis)
        return y if g is None else y * np.float64(g)

    def encode(self, x, scale=None, zero_point=None, axis=-1, group_size=None,
               rounding: str = "half_even", saturate: bool | None = None, seed=None):
        """(element codes uint8 shaped like ``x``, E4M3 block-scale codes uint8 with ``axis``
        replaced by the number of blocks and moved last). A NaN block has scale code 0x7F."""
        x, _ = self._tensor_scale(x, scale, zero_point, group_size, rounding)
        q, s, n = self._round_blocks(x, axis, rounding, seed)
        codes = self.element._to_codes(np.nan_to_num(q), None)
        scale_codes = self.scale_format.encode(s)
        return self._unblock(codes, n, axis), scale_codes

    def decode(self, codes, scale_codes=None, zero_point=None, axis=-1, group_size=None, scale=None):
        """Values (float64) of element ``codes`` with E4M3 ``scale_codes`` (and tensor ``scale``)."""
        if scale_codes is None:
            raise ConfigError("nvfp4: decode needs scale_codes (the second output of encode)")
        blocks, n = self._blocks(np.asarray(codes), axis)
        v = self.element._from_codes(blocks.astype(np.int64), None)
        s = self.scale_format.decode(np.asarray(scale_codes))
        y = self._unblock(v * s[..., None], n, axis)
        return y if scale is None else y * float(np.float32(scale))
