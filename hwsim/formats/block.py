"""OCP Microscaling (MX v1.0) block formats: blocks of 32 elements sharing an E8M0 scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.formats._base import Format, MacOperand, check_rounding
from hwsim.formats.floating import FloatFormat
from hwsim.formats.integer import IntFormat


@dataclass(frozen=True)
class BlockFormat(Format):
    """``block_size`` elements of ``element`` format sharing one power-of-two scale.

    Parameters
    ----------
    element : FloatFormat or IntFormat
        Element format. An integer element is a fixed-point number with ``bits - 2`` fraction
        bits (MXINT8: two's complement with implicit scale 2^-6, symmetric range +-1.984375).
    block_size : int
        Elements per block (OCP MX: 32).
    scale_bits : int
        Bits of the shared E8M0 scale (8: exponents -127..127, code 0xFF is NaN).
    """

    element: Format
    block_size: int = 32
    scale_bits: int = 8

    def __post_init__(self):
        if not isinstance(self.element, (FloatFormat, IntFormat)):
            raise ConfigError("MX block elements must be a float or signed int format")
        if isinstance(self.element, IntFormat) and not self.element.signed:
            raise ConfigError("MX integer elements must be signed")
        if self.block_size < 1 or self.scale_bits < 2:
            raise ConfigError("block_size must be >= 1 and scale_bits >= 2")

    @property
    def name(self) -> str:
        el = self.element
        base = f"mxint{el.bits}" if isinstance(el, IntFormat) else \
            f"mxfp{el.bits}_e{el.exponent_bits}m{el.mantissa_bits}"
        extra = "" if self.block_size == 32 else f"_k{self.block_size}"
        return base + extra + ("" if self.scale_bits == 8 else f"_s{self.scale_bits}")

    @property
    def kind(self) -> str:
        return "block"

    def mac_operand_spec(self) -> MacOperand:
        inner = self.element.mac_operand_spec()
        return MacOperand(inner.kind, inner.sig_bits, inner.exp_bits, True, self.block_size)

    @property
    def scale_rule(self) -> str:
        return "none"  # the shared block scales are the scale

    @property
    def mac_operand(self) -> str:
        return self.element.name

    @property
    def default_accumulators(self) -> tuple[str, ...]:
        """OCP MX v1.0 defines the dot product result in FP32."""
        return ("fp32",)

    @property
    def bits(self) -> int:
        return self.element.bits

    @property
    def bits_per_element(self) -> float:
        return self.element.bits + self.scale_bits / self.block_size

    @property
    def is_float(self) -> bool:
        return self.element.is_float

    @property
    def signed(self) -> bool:
        return True

    @property
    def element_emax(self) -> int:
        """Exponent of the largest power of two of the element format (OCP ``emax_elem``)."""
        if isinstance(self.element, FloatFormat):
            return self.element.emax
        return 0

    @property
    def element_unit(self) -> float:
        """Value of one integer-element step: 2^-(bits-2) (1 for float elements)."""
        return float(np.ldexp(1.0, 2 - self.element.bits)) if isinstance(self.element, IntFormat) else 1.0

    @property
    def max(self) -> float:
        """Largest element magnitude before the shared scale (mxfp4_e2m1 -> 6, mxint8 -> 1.984375)."""
        return self.element.max * self.element_unit

    @property
    def scale_emin(self) -> int:
        """Smallest shared exponent, -(2^(scale_bits-1) - 1) (E8M0: -127)."""
        return -((1 << (self.scale_bits - 1)) - 1)

    @property
    def scale_emax(self) -> int:
        """Largest shared exponent, 2^(scale_bits-1) - 1 (E8M0: 127)."""
        return (1 << (self.scale_bits - 1)) - 1

    # ---- numerics ----------------------------------------------------------------------------
    def _blocks(self, x, axis):
        """Move ``axis`` last and zero-pad it to whole blocks: (..., nblocks, block_size)."""
        axis = -1 if axis is None else axis  # per-tensor specs pass None: blocks run along the last axis
        x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
        n = x.shape[-1]
        pad = (-n) % self.block_size
        if pad:
            x = np.concatenate([x, np.zeros(x.shape[:-1] + (pad,))], axis=-1)
        return x.reshape(x.shape[:-1] + (-1, self.block_size)), n

    def _unblock(self, y, n, axis):
        y = y.reshape(y.shape[:-2] + (-1,))[..., :n]
        return np.moveaxis(y, -1, -1 if axis is None else axis)

    def shared_exponents(self, blocks):
        """Shared exponent per block: floor(log2(amax)) - emax_elem, clamped to the scale range.

        ``floor(log2)`` comes from ``np.frexp`` (exact: a block max of 7.9999995 stays in binade
        2, where float32 ``log2`` would round to 3). All-zero blocks get the smallest exponent;
        blocks holding inf or NaN get NaN (E8M0 code 0xFF), as OCP MX v1.0 specifies.
        """
        amax = np.max(np.abs(blocks), axis=-1)
        _, k = np.frexp(np.where(np.isfinite(amax), amax, 0.0))
        e = np.where(amax > 0, k.astype(np.float64) - 1 - self.element_emax, self.scale_emin)
        e = np.clip(e, self.scale_emin, self.scale_emax)
        return np.where(np.isfinite(amax), e, np.nan)

    def _round_blocks(self, x, axis, rounding, seed):
        blocks, n = self._blocks(x, axis)
        e = self.shared_exponents(blocks)
        t = np.ldexp(blocks, -np.nan_to_num(e)[..., None].astype(np.int32)) / self.element_unit
        q = self.element._round(t, None, rounding, True, np.random.default_rng(seed))
        q = np.where(np.isnan(e)[..., None], np.nan, q * self.element_unit)
        return q, e, n

    def quantize(self, x, scale=None, zero_point=None, axis=-1, group_size=None,
                 rounding: str = "half_even", saturate: bool | None = None, seed=None) -> np.ndarray:
        """MX round trip along ``axis`` (default last): per block of ``block_size`` a shared
        power-of-two scale, elements rounded with ``rounding`` and always saturated.

        ``scale`` is an optional extra per-tensor scale (x / scale is blocked, the result is
        multiplied back); ``zero_point`` and ``group_size`` are not used by MX formats.
        """
        x, s = self._check(x, scale, zero_point, group_size, rounding)
        q, e, n = self._round_blocks(x, axis, rounding, seed)
        y = self._unblock(np.ldexp(q, np.nan_to_num(e)[..., None].astype(np.int32)), n, axis)
        return y if s is None else y * s

    def encode(self, x, scale=None, zero_point=None, axis=-1, group_size=None,
               rounding: str = "half_even", saturate: bool | None = None, seed=None):
        """Element codes and shared scale codes.

        Returns
        -------
        codes : ndarray
            Element codes (uint8), same shape as ``x``.
        scale_codes : ndarray of uint8
            E8M0 codes (exponent + 127; 0xFF = NaN), shape of ``x`` with ``axis`` replaced by the
            number of blocks and moved last.
        """
        x, s = self._check(x, scale, zero_point, group_size, rounding)
        q, e, n = self._round_blocks(x, axis, rounding, seed)
        codes = self.element._to_codes(q / self.element_unit, None)
        bias = self.scale_emax
        scale_codes = np.where(np.isnan(e), 2 * bias + 1, np.nan_to_num(e) + bias).astype(np.uint8)
        return self._unblock(codes, n, axis), scale_codes

    def decode(self, codes, scale_codes=None, zero_point=None, axis=-1, group_size=None):
        """Values (float64) of element ``codes`` with the shared E8M0 ``scale_codes``."""
        codes = np.asarray(codes)
        if scale_codes is None:
            raise ConfigError(f"{self.name}: decode needs scale_codes (the second output of encode)")
        blocks, n = self._blocks(codes, axis)
        v = self.element._from_codes(blocks.astype(np.int64), None) * self.element_unit
        sc = np.asarray(scale_codes).astype(np.int64)
        e = sc - self.scale_emax
        v = np.ldexp(v, e[..., None].astype(np.int32))
        v = np.where((sc == 2 * self.scale_emax + 1)[..., None], np.nan, v)
        return self._unblock(v, n, axis)

    def _check(self, x, scale, zero_point, group_size, rounding):
        check_rounding(rounding)
        if zero_point is not None or group_size not in (None, self.block_size):
            raise ConfigError(f"{self.name}: MX formats take no zero_point and a fixed block of "
                              f"{self.block_size}; drop zero_point/group_size")
        x = np.asarray(x, dtype=np.float64)
        if scale is None:
            return x, None
        s = np.asarray(scale, dtype=np.float64)
        if s.ndim:
            raise ConfigError(f"{self.name}: only a scalar extra scale is supported")
        return x / s, s
