"""The float reference's sum of two values, each possibly a product plus its per-channel bias.

``_add_biased(y1, b1, x2, b2, with_b2, out, counter, threads)``: over 1-D ``y1``, ``x2``, ``out``
read in one memory order whose innermost axis holds the ``C = b1.size`` channels,
``out[i] = (float64(y1[i]) + b1[i % C]) + v2`` with ``v2 = float64(x2[i]) + b2[i % C]`` when
``with_b2``, else ``float64(x2[i])``: the float64 values of two reference products plus their
biases (:meth:`hwsim.sim.refvalues.Biased.real`), or of one and a plain value, added as numpy
adds them, without making either operand's float64 array first. Work items of 1024 channel rows,
claimed in turn (:mod:`hwsim.kernels.workqueue`).
"""

import numpy as np
from numba import njit, prange

from hwsim.kernels.workqueue import claim, serial

_ROWS = 1024


@njit(cache=True, nogil=True, parallel=True)
def _add_biased(y1, b1, x2, b2, with_b2, out, counter, threads):
    c = b1.size
    y1r, x2r, outr = y1.reshape(-1, c), x2.reshape(-1, c), out.reshape(-1, c)
    rows = y1r.shape[0]
    for _ in prange(threads):
        while True:
            start = claim(counter) * _ROWS
            if start >= rows:
                break
            for i in range(start, min(start + _ROWS, rows)):
                a, b, o = y1r[i], x2r[i], outr[i]
                if with_b2:
                    for j in range(c):
                        o[j] = (np.float64(a[j]) + b1[j]) + (np.float64(b[j]) + b2[j])
                else:
                    for j in range(c):
                        o[j] = (np.float64(a[j]) + b1[j]) + np.float64(b[j])


_add_biased_1 = serial(_add_biased)
