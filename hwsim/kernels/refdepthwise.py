"""The float reference's depthwise convolution: sums in the type of the weights (float32 for the
default float32 reference, float64 possible) of float32 operands, channels last, with the
operand's and the output's float32 roundings in the same pass.

``_depthwise_ref(xh, in_bias, with_in_bias, wt, sh, sw, ph, pw, dh, dw, out_bias, out, out32,
counter, threads)``, ``xh`` (N, H, W, C) float32 or float64, ``wt`` (KH, KW, C) float32 or
float64 (the sums' type T), ``out`` (N, OH, OW, C) of type T:

- the operand is ``v = float32(float64(xh) + in_bias[c])`` with ``with_in_bias`` (a reference
  product plus its bias, :meth:`hwsim.sim.refvalues.Biased.as_float32`), else ``float32(xh)``;
- ``out[b, y, xo, c]`` = ``0 + p_0 + p_1 + ...`` over the taps (i, j) inside the input in
  ascending order, ``p = T(v[b, yy, xx, c]) * wt[i, j, c]``
  (``yy = y * sh - ph + i * dh``, ``xx = xo * sw - pw + j * dw``), every product and partial sum
  rounded to T in that order (no fused multiply-add); padding contributes nothing. In float64
  every product is exact (two float32 factors); in float32 each is rounded, as the reference's
  float32 BLAS products are;
- ``out32[b, y, xo, c] = float32(float64(out[b, y, xo, c]) + out_bias[c])``: the output plus the
  op's bias as the next layer's float32 operand.

These are the values of rounding the operand to float32 in a pass of its own, summing the taps
per output in that order, and :func:`hwsim.kernels.biasround._add_bias_f32` on its output. Here
each work item, one output row (b, y) claimed in turn (:mod:`hwsim.kernels.workqueue`), first
rounds the KH input rows it reads into a scratch row of type T, and keeps each output's C sums in
one row of ``out`` (in L1) through all taps.
"""

import numpy as np
from numba import njit, prange

from hwsim.kernels.workqueue import claim, serial


@njit(cache=True, nogil=True, parallel=True)
def _depthwise_ref(xh, in_bias, with_in_bias, wt, sh, sw, ph, pw, dh, dw, out_bias, out, out32, counter, threads):
    n, h, w, c = xh.shape
    kh, kw, _ = wt.shape
    _, oh, ow, _ = out.shape
    for _ in prange(threads):
        rows = np.zeros((kh, w, c), wt.dtype)
        while True:
            item = claim(counter)
            if item >= n * oh:
                break
            b, y = item // oh, item % oh
            for i in range(kh):
                yy = y * sh - ph + i * dh
                if 0 <= yy < h:
                    for xx in range(w):
                        src, dst = xh[b, yy, xx], rows[i, xx]
                        if with_in_bias:
                            for ch in range(c):
                                dst[ch] = np.float32(np.float64(src[ch]) + in_bias[ch])
                        else:
                            for ch in range(c):
                                dst[ch] = np.float32(src[ch])
            for xo in range(ow):
                acc = out[b, y, xo]
                acc[:] = 0.0
                for i in range(kh):
                    yy = y * sh - ph + i * dh
                    if yy < 0 or yy >= h:
                        continue
                    for j in range(kw):
                        xx = xo * sw - pw + j * dw
                        if xx < 0 or xx >= w:
                            continue
                        src, wrow = rows[i, xx], wt[i, j]
                        for ch in range(c):
                            acc[ch] += src[ch] * wrow[ch]
                dst32 = out32[b, y, xo]
                for ch in range(c):
                    dst32[ch] = np.float32(np.float64(acc[ch]) + out_bias[ch])


_depthwise_ref_1 = serial(_depthwise_ref)
