"""Float32 elementwise and row kernels for solve's float32 tails (public API: hwsim.float32_ops).

Each kernel reads float32 and writes float32, computing in float64 inside, so a value is the
float64 formula rounded once to float32 (up to the approximation error stated per kernel).
"""

import numpy as np
from numba import njit

#: erfc(t) is interpolated on [0, ERFC_T_MAX] in steps of 1 / ERFC_STEPS_PER_UNIT
ERFC_T_MAX = 6.0
ERFC_STEPS_PER_UNIT = 64
#: coefficients per interval: a degree-7 polynomial in the position u in [0, 1) of the interval
ERFC_DEGREE = 7


@njit(cache=True, nogil=True, fastmath={"contract"})
def _gelu_erf(x, out, coef):
    """``out = 0.5 x (1 + erf(x / sqrt 2))`` over flat float32 arrays.

    With t = |x| / sqrt 2 and E = erfc(t): 0.5 x (2 - E) for x >= 0, 0.5 x E for x < 0 (no
    cancellation on either side). E is the piecewise polynomial ``coef`` (one row per interval
    of 1/64, lowest degree first, in u in [0, 1)); beyond t = 6, E < 2.2e-17 is taken as 0,
    as float64 erf does (it returns +-1 there). The Horner steps below are written out for
    ERFC_DEGREE = 7.
    """
    n = coef.shape[0]
    flat = coef.ravel()
    for i in range(x.size):
        v = np.float64(x[i])
        t = abs(v) * 0.7071067811865476
        s = (t if t < ERFC_T_MAX else ERFC_T_MAX) * ERFC_STEPS_PER_UNIT  # NaN -> the end: index in range
        k = min(int(s), n - 1)
        w = s - k
        b = (ERFC_DEGREE + 1) * k
        e = flat[b + 7]
        e = e * w + flat[b + 6]
        e = e * w + flat[b + 5]
        e = e * w + flat[b + 4]
        e = e * w + flat[b + 3]
        e = e * w + flat[b + 2]
        e = e * w + flat[b + 1]
        e = e * w + flat[b]
        e = e if t < ERFC_T_MAX else 0.0
        f = 2.0 - e if v >= 0 else e
        out[i] = np.float32(0.5 * v * f)
