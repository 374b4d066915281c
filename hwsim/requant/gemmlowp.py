"""``gemmlowp``: gemmlowp / TFLite reference fixed point with double rounding.

The float64 multiplier becomes a Q31 integer and a shift (frexp, half away), then
SaturatingRoundingDoublingHighMul and RoundingDivideByPOT (gemmlowp ``fixedpoint.h``). The
accumulator lives in int32 registers.
"""

import numpy as np

from hwsim.errors import InputDataError
from hwsim.requant import RequantMode, register


def fixed_point(acc3, m, zp, lo, hi, single: bool):
    """Shared by gemmlowp (double rounding) and tflite (single rounding)."""
    from hwsim.kernels import requant as _rq  # numba loads on first use, not at CLI start-up

    if acc3.size and (acc3.min() < _rq.INT32_MIN or acc3.max() > _rq.INT32_MAX):
        raise InputDataError("fixed-point requantization needs int32 accumulators; wrap or clip acc first")
    return _rq.requant_fixed(acc3, m, zp, lo, hi, single)


MODE = register(RequantMode(
    name="gemmlowp", description="gemmlowp fixed point: Q31 multiplier, double rounding",
    multiplier_dtype=np.float64, int32_registers=True,
    apply=lambda acc3, m, zp, lo, hi: fixed_point(acc3, m, zp, lo, hi, False)))
