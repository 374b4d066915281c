"""E8M0, the OCP MX scale type (``float8_e8m0fnu`` in ml_dtypes, FLOAT8E8M0 in ONNX).

An unsigned 8-bit exponent with bias 127 and no mantissa: code ``c`` in 0..254 is ``2^(c - 127)``
(2^-127 .. 2^127), code 255 is NaN. There is no zero, no sign and no infinity (OCP Microscaling
Formats v1.0, section 5.4.1). :class:`~hwsim.formats.block.BlockFormat` uses it as the shared
scale; this class makes it a tensor format of its own, for ONNX ``Cast`` to and from FLOAT8E8M0.

Rounding follows ONNX ``Cast`` (opset 24, ``round_mode``) on the float32 value, whose sign is
dropped: ``up`` (default: the next power of two at or above |x|), ``down`` (the power of two at
or below, i.e. the float32 exponent), ``nearest`` (up when the float32 significand is >= 1.5, as
ONNX's guard-bit rule gives for normal numbers). float32 zero and subnormals have exponent field 0:
``down`` gives code 0 (2^-127) and ``up`` gives code 1 for any non-zero subnormal, 2^-127
itself included (ONNX's rule reads its fraction bit; kept for bit-exactness with ONNX, so code 0
does not survive a round trip under ``up``). NaN and +-inf
give NaN. ``saturate`` (default True) keeps a value that would round past 2^127 at 2^127;
without it, it becomes NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.formats._base import Format

ROUND_MODES = ("up", "down", "nearest")
_NAN = 255


@dataclass(frozen=True)
class E8M0Format(Format):
    """E8M0 (module docstring). No parameters."""

    @property
    def name(self) -> str:
        return "e8m0"

    @property
    def kind(self) -> str:
        return "e8m0"

    @property
    def bits(self) -> int:
        return 8

    @property
    def is_float(self) -> bool:
        return True

    @property
    def signed(self) -> bool:
        return False

    @property
    def max(self) -> float:
        return float(np.ldexp(1.0, 127))

    @property
    def has_zero(self) -> bool:
        return False

    @property
    def scale_rule(self) -> str:
        return "none"  # powers of two carried as they are

    def mac_operand_spec(self):
        raise ConfigError("e8m0 is the MX scale type (unsigned powers of two, no zero), not a MAC operand: "
                          "use it through an MX format (e.g. mxfp8_e4m3, mxint8) for weights or activations")

    def codes_of(self, x, rounding: str = "up", saturate: bool = True) -> np.ndarray:
        """E8M0 codes (uint8) of real values ``x`` (float32 semantics, module docstring)."""
        if rounding not in ROUND_MODES:
            raise ConfigError(f"e8m0 rounding {rounding!r} is not supported; use one of {', '.join(ROUND_MODES)}")
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, hence NaN
            x32 = np.abs(np.asarray(x, dtype=np.float64).astype(np.float32))
        special = ~np.isfinite(x32)
        frac, exp = np.frexp(np.where(special, 0, x32).astype(np.float64))  # x = frac * 2^exp, frac in [0.5, 1)
        field = np.where(x32 >= np.float32(2.0**-126), exp + 126, 0).astype(np.int64)
        field = np.where(special, 0, field)  # float32 exponent field
        if rounding == "up":  # any fraction bit set: the float32 value is not 2^(field - 127)
            step = np.where(field == 0, x32 > 0, x32 > np.ldexp(1.0, (field - 127).astype(np.int32)))
        elif rounding == "nearest":  # guard bit, and for subnormals also a lower bit
            step = np.where(field == 0, x32 > np.float32(2.0**-127), frac >= 0.75)
        else:
            step = np.zeros(x32.shape, bool)
        code = field + step
        code = np.where(code > 254, 254 if saturate else _NAN, code)
        return np.where(special, _NAN, code).astype(np.uint8)

    def quantize(self, x, scale=None, zero_point=None, axis=None, group_size=None,
                 rounding: str = "up", saturate: bool | None = None, seed=None) -> np.ndarray:
        """Values (float64) of :meth:`codes_of`; ``half_even`` is read as ``nearest``."""
        if zero_point is not None or scale is not None:
            raise ConfigError("e8m0 takes no scale or zero point (it is the scale)")
        rounding = "nearest" if rounding == "half_even" else rounding
        return self._from_codes(self.codes_of(x, rounding, saturate is not False).astype(np.int64), None)

    def encode(self, x, scale=None, zero_point=None, axis=None, group_size=None,
               rounding: str = "up", saturate: bool | None = None, seed=None) -> np.ndarray:
        if zero_point is not None or scale is not None:
            raise ConfigError("e8m0 takes no scale or zero point (it is the scale)")
        rounding = "nearest" if rounding == "half_even" else rounding
        return self.codes_of(x, rounding, saturate is not False)

    def _from_codes(self, codes, zero_point):
        codes = np.asarray(codes, np.int64)
        if np.any((codes < 0) | (codes > _NAN)):
            raise InputDataError("e8m0 codes must lie in [0, 255]")
        return np.where(codes == _NAN, np.nan, np.ldexp(1.0, (np.minimum(codes, 254) - 127).astype(np.int32)))
