"""im2col for integer 2-D convolution (NCHW input, OIHW weights).

A convolution is run as a matrix multiply whose reduction index is k = (c, kh, kw) in C order
within a group, so "k ascending" in :mod:`hwsim.kernels.intgemm` means channel-major, then kernel
row, then kernel column.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def _im2col(x, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out):
    """Fill ``out`` (N*oh*ow, cg*kh*kw) from channels ``c0 .. c0+cg`` of ``x``; padding is 0.

    ``ph``/``pw`` are the top/left pads; positions outside ``x`` read as zero.
    """
    n, _, h, w = x.shape
    for row in prange(n * oh * ow):
        b = row // (oh * ow)
        y = (row // ow) % oh
        xo = row % ow
        col = 0
        for c in range(cg):
            for i in range(kh):
                yy = y * sh - ph + i * dh
                for j in range(kw):
                    xx = xo * sw - pw + j * dw
                    if 0 <= yy < h and 0 <= xx < w:
                        out[row, col] = x[b, c0 + c, yy, xx]
                    else:
                        out[row, col] = 0
                    col += 1


def im2col(x, c0, cg, kernel, stride, pads, dilation, out_hw):
    """Wrapper of :func:`_im2col`; returns an int64 array (N*OH*OW, cg*KH*KW).

    Parameters
    ----------
    x : np.ndarray
        Integer input (N, C, H, W), zero point already subtracted.
    c0, cg : int
        First input channel and channel count of the group.
    kernel, stride, pads, dilation, out_hw : tuple of int
        (KH, KW), (SH, SW), (top, left), (DH, DW), (OH, OW).
    """
    n = x.shape[0]
    (kh, kw), (oh, ow) = kernel, out_hw
    out = np.empty((n * oh * ow, cg * kh * kw), np.int64)
    _im2col(x, c0, cg, kh, kw, stride[0], stride[1], pads[0], pads[1],
            dilation[0], dilation[1], oh, ow, out)
    return out
