"""Two's complement and unsigned integer formats (``int8``, ``uint4``, ``intN``, ``uintN``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.formats._base import Format, MacOperand, round_integer


@dataclass(frozen=True)
class IntFormat(Format):
    """Integer format of ``bits`` bits.

    Parameters
    ----------
    bits : int
        Code width, 1..32 for unsigned, 2..32 for signed. A signed 1-bit two's complement
        integer holds only {-1, 0}; it is rejected: use ``binary`` for {-1, +1} or ``uint1``.
    signed : bool
        Two's complement if True, else unsigned.
    narrow_range : bool
        Signed only: drop the most negative code so the range is symmetric, [-(2^(b-1)-1),
        2^(b-1)-1] (e.g. int8 -> [-127, 127]). Name suffix ``_narrow``.

    Notes
    -----
    ``quantize`` follows ONNX QuantizeLinear: ``q = clip(round(x / scale) + zero_point, lo, hi)``
    (rounding first, then the zero point, then saturation; always saturating) and returns
    ``(q - zero_point) * scale``. Codes are the two's complement bit patterns of ``q``
    (``q & (2^bits - 1)``), so int8 -1 -> 0xFF.
    """

    bits: int
    signed: bool = True
    narrow_range: bool = False

    def __post_init__(self):
        lo = 2 if self.signed else 1
        if not isinstance(self.bits, (int, np.integer)) or not lo <= self.bits <= 32:
            raise ConfigError(f"{'signed' if self.signed else 'unsigned'} integer bits must be in "
                              f"[{lo}, 32], got {self.bits!r} (for 1-bit +-1 weights use 'binary')")
        if self.narrow_range and not self.signed:
            raise ConfigError("narrow_range applies to signed integers only; drop it for uint")

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}int{self.bits}{'_narrow' if self.narrow_range else ''}"

    @property
    def kind(self) -> str:
        return "int"

    def mac_operand_spec(self) -> MacOperand:
        return MacOperand("int", self.bits, 0, self.signed)

    @property
    def integer_codes(self) -> bool:
        return True

    @property
    def can_accumulate(self) -> bool:
        return True

    def covers(self, other: Format) -> float | None:
        """An integer holds integers of fewer bits (one more bit for an unsigned into a signed)."""
        from hwsim.formats.registry import get

        n = get(other.mac_operand)
        if not n.integer_codes:
            return None
        need = n.bits + (0 if n.signed or not self.signed else 1)
        return self.bits - need if self.bits >= need else None

    @property
    def scale_rule(self) -> str:
        return "max_abs" if self.signed else "min_max"

    @property
    def weight_granularity(self) -> str:
        return "channel"

    @property
    def qmin(self) -> int:
        """Smallest integer code value."""
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + (1 if self.narrow_range else 0)

    @property
    def qmax(self) -> int:
        """Largest integer code value."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max(self) -> float:
        return float(self.qmax)

    @property
    def min(self) -> float:
        return float(self.qmin)

    @property
    def num_values(self) -> int:
        """Number of distinct representable integers."""
        return self.qmax - self.qmin + 1

    def _round(self, t, zero_point, rounding, saturate, rng):
        t = np.asarray(t)
        if np.isnan(t).any():
            raise InputDataError(f"{self.name}: cannot quantize NaN to an integer format")
        r = round_integer(t.astype(np.float64), rounding, rng)
        zp = 0 if zero_point is None else np.asarray(zero_point).astype(np.float64)
        q = np.clip(r + zp, self.qmin, self.qmax)
        return q - zp

    def _to_codes(self, v, zero_point):
        zp = 0 if zero_point is None else np.asarray(zero_point).astype(np.int64)
        q = np.asarray(v).astype(np.int64) + zp
        return (q & ((1 << self.bits) - 1)).astype(self.code_dtype())

    def _from_codes(self, codes, zero_point):
        c = codes.astype(np.int64)
        if self.signed:
            c = np.where(c >= (1 << (self.bits - 1)), c - (1 << self.bits), c)
        if np.any(c < self.qmin):
            raise InputDataError(f"{self.name}: code {1 << (self.bits - 1)} is unused in narrow range")
        zp = 0 if zero_point is None else np.asarray(zero_point).astype(np.int64)
        return (c - zp).astype(np.float64)
