"""A per-channel bias added in float64 and the sum rounded to float32, in one pass.

``_add_bias_f32(y, bias, out)``: ``out[i] = float32(float64(y[i]) + bias[i % C])`` over 1-D ``y``
(float32 or float64) in a memory order whose innermost axis holds the ``C = bias.size`` channels
(``y.size`` a multiple of C):
the float reference's conv / linear output plus its bias, as the next layer's float32 operand,
without making the float64 sum array first (the same values as ``(y + bias).astype(float32)``).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _add_bias_f32(y, bias, out):
    c = bias.size
    y2, out2 = y.reshape(-1, c), out.reshape(-1, c)
    for i in range(y2.shape[0]):
        yr, orow = y2[i], out2[i]
        for j in range(c):
            orow[j] = np.float32(np.float64(yr[j]) + bias[j])
