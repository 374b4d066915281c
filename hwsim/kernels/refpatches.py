"""Rows of the float reference's convolution patches, for one block of a GEMM.

``_patches_nhwc(xh, bias, with_bias, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row0, out)`` fills
``out`` (R, KH*KW*C), float32 or float64 (the reference's product type), with rows ``row0 .. row0 + R`` of the channels-last patch matrix of
``xh`` (N, H, W, C): row = (b, y, xo) in C order, column = (i, j, c) in C order,
``out[r, (i*KW + j)*C + c] = v(xh[b, yy, xx, c])`` with ``yy = y * sh - ph + i * dh``,
``xx = xo * sw - pw + j * dw``, and 0 where (yy, xx) lies outside the input. ``v(t)`` is
``float64(t) + bias[c]`` with ``with_bias`` (a reference product plus its bias,
:meth:`hwsim.sim.refvalues.Biased.real`), else ``t``, rounded to ``out``'s type as it is copied
(:meth:`~hwsim.sim.refvalues.Biased.as_float32` for float32). These are the rows
:func:`hwsim.kernels.conv._im2col_nhwc` makes from that operand. Runs on the calling thread without the GIL, so that each thread of a pool
copies one block and multiplies it (BLAS) while it is in cache (:mod:`hwsim.sim.refconv`).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _patches_nhwc(xh, bias, with_bias, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, row0, out):
    n, h, w, c = xh.shape
    cu = np.uint64(c)
    # (b, y, xo) of the row, stepped row by row (no divisions per row); every index into xh and
    # out unsigned: numba then adds no negative-index wraparound and the channel loops vectorise
    # (MobileNetV2's first conv, 8x3x224x224 3x3/2: 22 -> 7 ms; a 1x1 of 8x112x112x16: 2.3 -> 1.4 ms, 2026-11-27)
    b, y, xo = row0 // (oh * ow), (row0 // ow) % oh, row0 % ow
    # a row of taps wholly inside the input with dw == 1 is kw * C consecutive values of xh and of
    # out: copied as one run (ResNet-18's 7x7 stem, C = 3: 18 -> 7 ms for batch 8, 2026-11-27)
    run = np.uint64(kw * c)
    bias_run = np.zeros(kw * c)
    if with_bias:
        for q in range(kw * c):
            bias_run[q] = bias[q % c]
    xr = xh.reshape(-1)
    for r in range(np.uint64(out.shape[0])):
        x0 = xo * sw - pw
        whole = dw == 1 and 0 <= x0 and x0 + kw <= w
        for i in range(kh):
            yy = y * sh - ph + i * dh
            if whole and 0 <= yy < h:
                src = np.uint64((b * h + yy) * w * c + x0 * c)
                dst = np.uint64(i * kw * c)
                if with_bias:
                    for q in range(run):
                        out[r, dst + q] = np.float64(xr[src + q]) + bias_run[q]  # rounded to out's type
                else:
                    for q in range(run):
                        out[r, dst + q] = xr[src + q]
                continue
            for j in range(kw):
                xx = xo * sw - pw + j * dw
                base = np.uint64((i * kw + j) * c)
                if 0 <= yy < h and 0 <= xx < w:
                    ub, uy, ux = np.uint64(b), np.uint64(yy), np.uint64(xx)
                    if with_bias:
                        for ch in range(cu):
                            out[r, base + ch] = np.float64(xh[ub, uy, ux, ch]) + bias[ch]  # rounded to out's type
                    else:
                        for ch in range(cu):
                            out[r, base + ch] = xh[ub, uy, ux, ch]
                else:
                    for ch in range(cu):
                        out[r, base + ch] = 0.0
        xo += 1
        if xo == ow:
            xo = 0
            y += 1
            if y == oh:
                y = 0
                b += 1
