"""``tflite``: TFLite ``MultiplyByQuantizedMultiplier`` with TFLITE_SINGLE_ROUNDING.

The same Q31 multiplier as :mod:`hwsim.requant.gemmlowp` (shift clamped to <= 30), one rounding.
"""

import numpy as np

from hwsim.requant import RequantMode, register
from hwsim.requant.gemmlowp import fixed_point

MODE = register(RequantMode(
    name="tflite", description="TFLite fixed point: Q31 multiplier, single rounding",
    multiplier_dtype=np.float64, int32_registers=True,
    apply=lambda acc3, m, zp, lo, hi: fixed_point(acc3, m, zp, lo, hi, True)))
