"""2-D max pooling over channels-last data, padding ignored, in one pass.

``_max_pool_nhwc(xh, kh, kw, sh, sw, pt, pl, lo, out, counter, threads)``: ``out[b, y, xo, c]``
(N, OH, OW, C) is the maximum of ``xh[b, yy, xx, c]`` (N, H, W, C) over the window's taps inside
the input (``yy = y * sh - pt + i``, ``xx = xo * sw - pl + j``), taken in tap order (i, j)
ascending as a running ``np.fmax`` does: a NaN value is passed over unless every tap of the
window is NaN (then NaN). This is ``np.nanmax`` over a NaN-padded copy, without the copy. A
window starts from ``lo``: NaN for float data (a window with no tap inside the input is NaN), the
type's minimum for integer codes (uint8 / int8; the caller keeps them away from windows without
a tap inside: with a positive scale the largest code is the code of the largest real). One work
item per output row (b, y), claimed in turn (:mod:`hwsim.kernels.workqueue`); the loop over
channels is contiguous.
"""

from numba import njit, prange

from hwsim.kernels.workqueue import claim, serial


@njit(cache=True, nogil=True, parallel=True)
def _max_pool_nhwc(xh, kh, kw, sh, sw, pt, pl, lo, out, counter, threads):
    n, h, w, c = xh.shape
    _, oh, ow, _ = out.shape
    for _ in prange(threads):
        while True:
            row = claim(counter)
            if row >= n * oh:
                break
            b, y = row // oh, row % oh
            for xo in range(ow):
                dst = out[b, y, xo]
                dst[:] = lo
                for i in range(kh):
                    yy = y * sh - pt + i
                    if yy < 0 or yy >= h:
                        continue
                    for j in range(kw):
                        xx = xo * sw - pl + j
                        if xx < 0 or xx >= w:
                            continue
                        src = xh[b, yy, xx]
                        for ch in range(c):
                            m, v = dst[ch], src[ch]
                            dst[ch] = v if (m != m or v > m) else m


_max_pool_nhwc_1 = serial(_max_pool_nhwc)
