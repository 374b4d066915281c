"""Binary floating-point formats: fp32, fp16, bf16, the FP8/FP6/FP4 families and generic eXmY.

Everything is derived from (exponent_bits, mantissa_bits, bias, nan_policy). Rounding is bit-exact
and vectorised: with ``E = max(floor(log2|x|), emin)`` (taken with ``np.frexp``, exact) the value
``r = x * 2^(m - E)`` is an exact float64 whose integer rounding gives the result ``r' * 2^(E - m)``;
rounding into the next binade is representable by construction. Overflow is checked *after*
rounding (fp8_e4m3fn: 464 -> 448, 465 -> NaN when not saturating), as in ml_dtypes and ONNX.

NaN/inf policies (``nan_policy``):

``ieee``   top exponent reserved: mantissa 0 is +-inf, others NaN (fp32, fp16, bf16, fp8_e5m2).
``fn``     no inf; only S.1..1.1..1 is NaN (fp8_e4m3fn), so the top binade holds finite values.
``fnuz``   no inf, no -0; the single NaN is the code of -0 (0x80); default bias 2^(e-1).
``finite`` no inf, no NaN: every code is finite (OCP FP6/FP4; spelled ``fn`` in names of fewer
           than 8 bits, like ml_dtypes/ONNX). Always saturates. NaN maps to a zero whose sign bit
           is the inverse of the NaN's sign bit: this is what ml_dtypes 0.6 does, and the ONNX 1.23
           reference evaluator casts through ml_dtypes, so hwsim follows it (the ONNX spec table
           does not cover FP4/FP6 NaN).

Saturation (``saturate``): ``True`` clamps every overflow, +-inf included, to +-max (ONNX Cast
and QuantizeLinear with ``saturate=1``, which clip then cast); ``False`` gives +-inf (ieee) or NaN
(fn, fnuz) like ml_dtypes ``astype``. Default: True for formats of at most 8 bits (ONNX default),
False for wider ones (fp16/bf16/fp32 overflow to inf, as ONNX Cast).

Float64 input is rounded once, directly (single rounding). ml_dtypes first rounds float64 to
float32 (double rounding); :func:`hwsim.formats.cast` has ``via_float32=True`` to reproduce that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.formats._base import Format, MacOperand, round_integer

NAN_POLICIES = ("ieee", "fn", "fnuz", "finite")
_SPECIAL_NAMES = {(8, 23, "ieee"): "fp32", (5, 10, "ieee"): "fp16", (8, 7, "ieee"): "bf16",
                  (11, 52, "ieee"): "fp64"}


def policy_suffix(policy: str, bits: int) -> str:
    """Name suffix of a NaN policy: '', 'fn', 'fnuz'; finite is 'fn' below 8 bits, 'fin' from 8."""
    if policy == "finite":
        return "fn" if bits < 8 else "fin"
    if policy == "fn":
        return "fn" if bits >= 8 else "fnnan"
    return "" if policy == "ieee" else "fnuz"


def policy_from_suffix(suffix: str, bits: int) -> str:
    """Inverse of :func:`policy_suffix`; raises KeyError for an unknown suffix."""
    table = {"": "ieee", "fnuz": "fnuz", "fin": "finite", "fnnan": "fn",
             "fn": "finite" if bits < 8 else "fn"}
    return table[suffix]


@dataclass(frozen=True)
class FloatFormat(Format):
    """Sign + ``exponent_bits`` + ``mantissa_bits`` binary floating point.

    Parameters
    ----------
    exponent_bits : int
        Exponent field width, >= 1 (>= 2 for ieee).
    mantissa_bits : int
        Stored fraction bits (without the hidden bit), >= 0 (>= 1 for ieee and fn, whose NaN
        codes need a mantissa bit).
    bias : int, optional
        Exponent bias; default 2^(e-1) - 1, or 2^(e-1) for fnuz.
    nan_policy : {"ieee", "fn", "fnuz", "finite"}
        Which codes are inf / NaN, see the module docstring.
    saturate : bool, optional
        Default overflow behaviour of ``quantize``; None -> True for <= 8 bits, else False.
        Forced True for ``finite``.
    """

    exponent_bits: int
    mantissa_bits: int
    bias: int | None = None
    nan_policy: str = "ieee"
    saturate: bool | None = None

    def __post_init__(self):
        e, m = self.exponent_bits, self.mantissa_bits
        if self.nan_policy not in NAN_POLICIES:
            raise ConfigError(f"nan_policy must be one of {NAN_POLICIES}, got {self.nan_policy!r}")
        if not (isinstance(e, (int, np.integer)) and isinstance(m, (int, np.integer))):
            raise ConfigError("exponent_bits and mantissa_bits must be integers")
        if e < (2 if self.nan_policy == "ieee" else 1) or m < (0 if self.nan_policy in ("fnuz", "finite") else 1):
            raise ConfigError(f"e{e}m{m} with nan_policy {self.nan_policy!r} lacks finite numbers or "
                              "a NaN code; use more exponent (ieee: >= 2) or mantissa (ieee, fn: >= 1) "
                              "bits, or nan_policy 'fnuz'/'finite'")
        if 1 + e + m > 64:
            raise ConfigError(f"float formats hold at most 64 bits, got 1 + {e} + {m}")
        if self.bias is None:
            object.__setattr__(self, "bias", (1 << (e - 1)) - (0 if self.nan_policy == "fnuz" else 1))
        if self.saturate is None or self.nan_policy == "finite":
            object.__setattr__(self, "saturate", self.nan_policy == "finite" or self.bits <= 8)
        if self.bits != 1 + e + m:  # invariant: sign + exponent + mantissa
            raise ConfigError("float bits must equal 1 + exponent_bits + mantissa_bits")

    # ---- derived constants -------------------------------------------------------------------
    @property
    def name(self) -> str:
        e, m, p = self.exponent_bits, self.mantissa_bits, self.nan_policy
        default_bias = (1 << (e - 1)) - (0 if p == "fnuz" else 1)
        base = _SPECIAL_NAMES.get((e, m, p)) or f"fp{self.bits}_e{e}m{m}{policy_suffix(p, self.bits)}"
        return base if self.bias == default_bias else f"{base}_b{self.bias}"

    @property
    def kind(self) -> str:
        return "float"

    def mac_operand_spec(self) -> MacOperand:
        return MacOperand("float", self.mantissa_bits + 1, self.exponent_bits, True)

    @property
    def can_accumulate(self) -> bool:
        return True

    def covers(self, other: Format) -> float | None:
        """A float holds floats with no wider fields, and integers within its significand."""
        from hwsim.formats.registry import get

        n = get(other.mac_operand)
        if isinstance(n, FloatFormat):
            ok = self.exponent_bits >= n.exponent_bits and self.mantissa_bits >= n.mantissa_bits
            return self.bits - n.bits if ok else None
        if n.integer_codes:
            return self.bits - n.bits if self.mantissa_bits + 1 >= n.bits else None
        return None

    @property
    def scale_rule(self) -> str:
        """fp16 and wider carry real values as they are; narrower floats are max-abs scaled."""
        return "none" if self.bits >= 16 else "max_abs"

    @property
    def default_accumulators(self) -> tuple[str, ...]:
        """Both cases of van Baalen et al. 2023's headline: fp16 and fp32 accumulation."""
        return ("fp16", "fp32")

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def is_float(self) -> bool:
        return True

    @property
    def signed(self) -> bool:
        return True

    @property
    def has_inf(self) -> bool:
        """True if +-inf are representable (ieee only)."""
        return self.nan_policy == "ieee"

    @property
    def has_nan(self) -> bool:
        """True if a NaN code exists (all but ``finite``)."""
        return self.nan_policy != "finite"

    @property
    def has_negative_zero(self) -> bool:
        """False for fnuz, whose -0 code is the NaN."""
        return self.nan_policy != "fnuz"

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal number, 1 - bias."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite binade (the top exponent field is reserved for ieee)."""
        top = (1 << self.exponent_bits) - 1
        return top - (1 if self.nan_policy == "ieee" else 0) - self.bias

    @property
    def max(self) -> float:
        m = self.mantissa_bits
        # fn: the all-ones mantissa of the top binade is NaN, so the largest significand is 1.1..10
        frac_codes = (1 << m) - (2 if self.nan_policy == "fn" else 1)
        return float(np.ldexp(float((1 << m) + frac_codes), self.emax - m))

    @property
    def min_normal(self) -> float:
        """Smallest positive normal number, 2^emin."""
        return float(np.ldexp(1.0, self.emin))

    @property
    def min_subnormal(self) -> float:
        """Smallest positive number, 2^(emin - m)."""
        return float(np.ldexp(1.0, self.emin - self.mantissa_bits))

    @property
    def epsilon(self) -> float:
        """Distance from 1 to the next larger number, 2^-m."""
        return float(np.ldexp(1.0, -self.mantissa_bits))

    @property
    def nan_code(self) -> int | None:
        """Canonical (positive, quiet) NaN code, None for ``finite``."""
        e, m = self.exponent_bits, self.mantissa_bits
        if self.nan_policy == "ieee":
            return (((1 << e) - 1) << m) | (1 << (m - 1))
        if self.nan_policy == "fn":
            return (1 << (e + m)) - 1
        if self.nan_policy == "fnuz":
            return 1 << (e + m)
        return None

    # ---- numerics ----------------------------------------------------------------------------
    def _round(self, t, zero_point, rounding, saturate, rng):
        if zero_point is not None and np.any(np.asarray(zero_point) != 0):
            raise ConfigError(f"{self.name}: float formats take no zero point (use 0 or None)")
        x = np.asarray(t, dtype=np.float64)
        m = self.mantissa_bits
        _, k = np.frexp(x)
        e = np.maximum(k.astype(np.int32) - 1, self.emin)
        y = np.ldexp(round_integer(np.ldexp(x, m - e), rounding, rng), e - m)
        return self._finish(x, y, saturate)

    def _finish(self, x, y, saturate):
        """Apply overflow, NaN and zero rules to rounded values ``y`` of inputs ``x``."""
        sat = self.saturate if saturate is None else bool(saturate)
        sat = sat or self.nan_policy == "finite"
        over = np.abs(y) > self.max  # inf included, NaN excluded
        if sat:
            y = np.where(over, np.copysign(self.max, y), y)
        elif self.nan_policy == "ieee":
            y = np.where(over, np.copysign(np.inf, y), y)
        else:
            y = np.where(over, np.nan, y)
        if self.nan_policy == "finite":
            nan = np.isnan(x)
            if nan.any():  # ml_dtypes: NaN -> zero with the inverted sign bit
                y = np.where(nan, np.where(np.signbit(x), 0.0, -0.0), y)
        elif self.nan_policy == "fnuz":
            y = np.where(y == 0, 0.0, y)  # no negative zero
        return y

    def _to_codes(self, v, zero_point):
        v = np.ascontiguousarray(v, dtype=np.float64)
        nan_code = 0 if self.nan_code is None else self.nan_code
        from hwsim.formats._kernels import POLICY_CODES, _float_codes  # numba: imported on first use

        codes = _float_codes(v.reshape(-1), self.exponent_bits, self.mantissa_bits, self.bias,
                             POLICY_CODES[self.nan_policy], nan_code)
        return codes.reshape(v.shape).astype(self.code_dtype())

    def _from_codes(self, codes, zero_point):
        e_bits, m = self.exponent_bits, self.mantissa_bits
        c = codes.astype(np.int64)
        sign = (c >> (e_bits + m)) & 1
        expf = (c >> m) & ((1 << e_bits) - 1)
        mant = c & ((1 << m) - 1)
        sub = np.ldexp(mant.astype(np.float64), self.emin - m)
        with np.errstate(over="ignore"):  # the reserved top exponent of fp64 overflows; replaced below
            nor = np.ldexp((mant + (1 << m)).astype(np.float64), (expf - self.bias - m).astype(np.int32))
        val = np.where(expf == 0, sub, nor)
        top = expf == (1 << e_bits) - 1
        if self.nan_policy == "ieee":
            val = np.where(top, np.where(mant == 0, np.inf, np.nan), val)
        elif self.nan_policy == "fn":
            val = np.where(top & (mant == (1 << m) - 1), np.nan, val)
        elif self.nan_policy == "fnuz":
            val = np.where(c == (1 << (e_bits + m)), np.nan, val)
        return np.where(sign == 1, -val, val)
