"""Small discrete weight formats: ternary, binary, signed binary, powers of two.

Each is a sorted table of unscaled values (derived from the parameters) and rounds to the nearest
table entry; ties follow the rounding mode (see :func:`round_to_table`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.formats._base import Format, MacOperand


def round_to_table(t, table, rounding, rng):
    """Round each ``t`` to an entry of the sorted 1-D ``table`` (float64), clamping outside it.

    Ties (``t`` exactly between two entries): ``half_even`` picks the entry whose index among the
    sorted magnitudes (0, m1, m2, ...) is even (ternary: 0.5 -> 0, like integer rounding),
    ``half_away`` the larger magnitude, ``half_up`` the larger value, ``toward_zero`` the smaller
    magnitude (also off ties: the entry between ``t`` and zero), ``stochastic`` the upper entry with
    probability (t - lo) / (hi - lo). NaN input raises :class:`InputDataError`.
    """
    t = np.asarray(t, dtype=np.float64)
    if np.isnan(t).any():
        raise InputDataError("cannot quantize NaN to a discrete format")
    table = np.asarray(table, dtype=np.float64)
    tc = np.clip(t, table[0], table[-1])
    hi_i = np.clip(np.searchsorted(table, tc, side="left"), 1, len(table) - 1)
    lo_i = hi_i - 1
    lo, hi = table[lo_i], table[hi_i]
    d_lo, d_hi = tc - lo, hi - tc
    if rounding == "stochastic":
        up = rng.random(t.shape) * (hi - lo) < d_lo
    elif rounding == "toward_zero":
        up = np.where(tc >= 0, d_hi == 0, lo < 0)
        up = np.where((tc < 0) & (d_lo == 0), False, up)
    else:
        tie = d_lo == d_hi
        if rounding == "half_even":  # even index among the magnitudes 0 < m1 < m2 ...
            mags = np.unique(np.abs(table))
            mag_index = np.searchsorted(mags, np.abs(table))
            tie_up = mag_index[hi_i] % 2 == 0
        elif rounding == "half_away":
            tie_up = np.abs(hi) > np.abs(lo)
        else:  # half_up
            tie_up = np.ones(t.shape, bool)
        up = np.where(tie, tie_up, d_hi < d_lo)
    return np.where(up, hi, lo)


class _TableFormat(Format):
    """A format whose codes index a sorted table of values (``values``)."""

    @property
    def values(self) -> np.ndarray:
        """Sorted representable unscaled values, one per code (code i -> values[i])."""
        raise NotImplementedError

    @property
    def max(self) -> float:
        return float(np.max(np.abs(self.values)))

    @property
    def signed(self) -> bool:
        return bool(self.values[0] < 0)

    def _round(self, t, zero_point, rounding, saturate, rng):
        if zero_point is not None and np.any(np.asarray(zero_point) != 0):
            raise ConfigError(f"{self.name}: takes no zero point")
        return round_to_table(t, self.values, rounding, rng)

    def _to_codes(self, v, zero_point):
        return np.searchsorted(self.values, v).astype(self.code_dtype())

    def _from_codes(self, codes, zero_point):
        if np.any(codes >= len(self.values)):
            raise InputDataError(f"{self.name}: codes >= {len(self.values)} are unused")
        return self.values[codes]


class SignWeights:
    """Policy shared by the {-1, 0, +1}-valued weight formats (ternary, binary, signed binary):
    mean-abs scales (TWN / XNOR-Net), and a MAC that only negates, masks or adds (an int2 operand)."""

    def mac_operand_spec(self) -> MacOperand:
        return MacOperand(self.kind, 1, 0, True)

    @property
    def scale_rule(self) -> str:
        return "mean_abs"

    @property
    def mac_operand(self) -> str:
        return "int2"


@dataclass(frozen=True)
class TernaryFormat(SignWeights, _TableFormat):
    """Ternary weights {-1, 0, +1} (2-bit codes 0, 1, 2 -> -1, 0, +1; code 3 unused).

    ``quantize(x, scale)`` rounds x/scale to the nearest of the three values, i.e. threshold
    scale/2 (pick ``scale`` to set the threshold, e.g. TWN's 0.7 * mean|w| -> scale 1.4 * mean|w|).
    """

    @property
    def name(self) -> str:
        return "ternary"

    @property
    def kind(self) -> str:
        return "ternary"

    @property
    def bits(self) -> int:
        return 2

    @property
    def values(self) -> np.ndarray:
        return np.array([-1.0, 0.0, 1.0])


@dataclass(frozen=True)
class BinaryFormat(SignWeights, _TableFormat):
    """Binary weights {-1, +1} (1-bit codes 0 -> -1, 1 -> +1). x = 0 rounds to +1 (sign(0) = +1)."""

    @property
    def name(self) -> str:
        return "binary"

    @property
    def has_zero(self) -> bool:
        return False

    @property
    def kind(self) -> str:
        return "binary"

    @property
    def bits(self) -> int:
        return 1

    @property
    def values(self) -> np.ndarray:
        return np.array([-1.0, 1.0])

    def _round(self, t, zero_point, rounding, saturate, rng):
        t = np.asarray(t, dtype=np.float64)
        if rounding == "stochastic":
            return super()._round(t, zero_point, rounding, saturate, rng)
        if np.isnan(t).any():
            raise InputDataError("cannot quantize NaN to binary")
        return np.where(t >= 0, 1.0, -1.0)


@dataclass(frozen=True)
class Pow2Format(_TableFormat):
    """Power-of-two weights: 0 or +-2^k, k in [-(2^(b-1) - 2), 0], with ``bits`` = b >= 2.

    Code layout: MSB = sign, low b-1 bits = exponent code c. c = 0 is the value 0 (the code with
    sign 1 and c = 0, "-0", is unused and decodes to 0); c >= 1 is +-2^(c - (2^(b-1) - 1)), so the
    largest magnitude is 1 (scale it) and the smallest 2^-(2^(b-1) - 2). pow2_4: {0, +-2^-6..2^0}.
    Rounding is to the nearest value in the linear domain (tie between 2^k and 2^(k+1) at 1.5*2^k).
    """

    bits: int = 4

    def __post_init__(self):
        if not isinstance(self.bits, (int, np.integer)) or not 2 <= self.bits <= 8:
            raise ConfigError(f"pow2 bits must be in [2, 8] (sign + exponent code), got {self.bits!r}")

    @property
    def name(self) -> str:
        return f"pow2_{self.bits}"

    @property
    def kind(self) -> str:
        return "pow2"

    def mac_operand_spec(self) -> MacOperand:
        return MacOperand("pow2", 1, 0, True, shift=self.exponent_codes - 1)

    @property
    def weight_granularity(self) -> str:
        return "channel"

    @property
    def mac_operand(self) -> str:
        return f"int{self.bits + 1}"

    @property
    def exponent_codes(self) -> int:
        """Number of non-zero magnitudes, 2^(b-1) - 1."""
        return (1 << (self.bits - 1)) - 1

    @property
    def values(self) -> np.ndarray:
        mags = np.ldexp(1.0, np.arange(1, self.exponent_codes + 1) - self.exponent_codes)
        return np.concatenate([-mags[::-1], [0.0], mags])

    def _to_codes(self, v, zero_point):
        v = np.asarray(v, dtype=np.float64)
        a = np.abs(v)
        _, k = np.frexp(np.where(a > 0, a, 1.0))
        c = np.where(a > 0, k - 1 + self.exponent_codes, 0)
        return ((np.signbit(v) & (a > 0)).astype(np.int64) << (self.bits - 1) | c).astype(np.uint8)

    def _from_codes(self, codes, zero_point):
        c = codes & ((1 << (self.bits - 1)) - 1)
        mag = np.where(c == 0, 0.0, np.ldexp(1.0, (c - self.exponent_codes).astype(np.int32)))
        return np.where(codes >> (self.bits - 1) == 1, -mag, mag)
