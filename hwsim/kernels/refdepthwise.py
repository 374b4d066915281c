"""The float reference's depthwise convolution: float64 sums of float products, channels last.

``_depthwise_f64(xh, wt, sh, sw, ph, pw, dh, dw, out, counter, threads)``: ``out[b, y, xo, c]``
((N, OH, OW, C) float64) = ``0.0 + p_0 + p_1 + ...`` over the taps (i, j) inside the input in
ascending order, each ``p = float64(xh[b, yy, xx, c]) * wt[i, j, c]`` (``xh`` (N, H, W, C) float32
or float64, ``wt`` (KH, KW, C) float64; ``yy = y * sh - ph + i * dh``, ``xx = xo * sw - pw + j *
dw``), every product and partial sum rounded to float64 in that order; padding contributes
nothing. These are the values of :func:`hwsim.kernels.conv._depthwise_nhwc` on float data (the
same operations per output in the same order); here each output's C sums stay in one row of
``out`` (in L1) through all taps, where that kernel runs each tap over a whole output row of
partial sums. One work item per output row (b, y), claimed in turn
(:mod:`hwsim.kernels.workqueue`).
"""

from numba import njit, prange

from hwsim.kernels.workqueue import claim, serial


@njit(cache=True, parallel=True)
def _depthwise_f64(xh, wt, sh, sw, ph, pw, dh, dw, out, counter, threads):
    n, h, w, c = xh.shape
    kh, kw, _ = wt.shape
    _, oh, ow, _ = out.shape
    for _ in prange(threads):
        while True:
            row = claim(counter)
            if row >= n * oh:
                break
            b, y = row // oh, row % oh
            for xo in range(ow):
                dst = out[b, y, xo]
                dst[:] = 0.0
                for i in range(kh):
                    yy = y * sh - ph + i * dh
                    if yy < 0 or yy >= h:
                        continue
                    for j in range(kw):
                        xx = xo * sw - pw + j * dw
                        if xx < 0 or xx >= w:
                            continue
                        src, wrow = xh[b, yy, xx], wt[i, j]
                        for ch in range(c):
                            dst[ch] += src[ch] * wrow[ch]


_depthwise_f64_1 = serial(_depthwise_f64)
