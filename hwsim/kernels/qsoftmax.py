"""onnxruntime's QLinearSoftmax on 8-bit codes, one row at a time (:func:`hwsim.sim.ortfused.qlinear_softmax`).

``_rows(c, table, offset, y_scale, zy, qmin, qmax, out)``: for each row of ``c`` (rows, d) of codes,
``t[k] = table[c[k] + offset - max(c)]`` (float32), ``total`` their float32 sum in element order,
and ``out[k] = clip(rint(float32(t[k] * y_scale) / total) + zy, qmin, qmax)`` (float32 products,
quotients and rounding half to even, as the numpy formula there computes them). One pass per row
instead of numpy's one call per column for the ordered sum.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _rows(c, table, offset, y_scale, zy, qmin, qmax, out):
    rows, d = c.shape
    for r in range(rows):
        m = np.int64(c[r, 0])
        for k in range(1, d):
            m = max(m, np.int64(c[r, k]))
        base = offset - m
        total = np.float32(0.0)
        for k in range(d):
            total = total + table[np.int64(c[r, k]) + base]
        for k in range(d):
            t = table[np.int64(c[r, k]) + base]
            v = np.float64(np.rint((t * y_scale) / total)) + zy
            out[r, k] = min(max(v, qmin), qmax)
