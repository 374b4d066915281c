"""Winograd F(2x2, 3x3) transforms over channels-last float arrays (Lavin & Gray 2016, "Fast
Algorithms for Convolutional Neural Networks", eq. 7-8).

A 4x4 input tile d (rows and columns 2t .. 2t+3 of the padded input) gives the 2x2 outputs
A^T [(G g G^T) * (B^T d B)] A. :func:`_input_tiles` writes B^T d B of every tile and channel,
:func:`_output_tiles` turns the 16 products back into outputs. Both compute each value with the
same operations (in the arrays' float type: float32, or float64 for the float64 re-run of
:mod:`hwsim.solve.tail_cnn`) in the same order as the numpy formulas they replace (B^T first, then
B; A^T first, then A; the bias added last), so their results are identical to those formulas'.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _input_tiles(x, top, left, th, tw, out):
    """Fill ``out`` (16, N*th*tw, C) with B^T d B of each 4x4 tile d of channels-last ``x``
    (N, H, W, C) padded by ``top`` rows and ``left`` columns (positions outside ``x`` read 0);
    tile (b, ty, tx) is row (b*th + ty)*tw + tx, its entry (i, j) is out[4*i + j]."""
    n, h, w, c = x.shape
    d = np.zeros((4, 4, c), x.dtype)
    for b in range(n):
        for ty in range(th):
            for tx in range(tw):
                for i in range(4):
                    yy = 2 * ty + i - top
                    for j in range(4):
                        xx = 2 * tx + j - left
                        if 0 <= yy < h and 0 <= xx < w:
                            for ch in range(c):
                                d[i, j, ch] = x[b, yy, xx, ch]
                        else:
                            for ch in range(c):
                                d[i, j, ch] = 0
                t = (b * th + ty) * tw + tx
                for j in range(4):  # B^T d: column j of the four rows, in place
                    for ch in range(c):
                        r0 = d[0, j, ch] - d[2, j, ch]
                        r1 = d[1, j, ch] + d[2, j, ch]
                        r2 = d[2, j, ch] - d[1, j, ch]
                        r3 = d[1, j, ch] - d[3, j, ch]
                        d[0, j, ch], d[1, j, ch], d[2, j, ch], d[3, j, ch] = r0, r1, r2, r3
                for a in range(4):  # (B^T d) B: row a
                    for ch in range(c):
                        out[4 * a, t, ch] = d[a, 0, ch] - d[a, 2, ch]
                        out[4 * a + 1, t, ch] = d[a, 1, ch] + d[a, 2, ch]
                        out[4 * a + 2, t, ch] = d[a, 2, ch] - d[a, 1, ch]
                        out[4 * a + 3, t, ch] = d[a, 1, ch] - d[a, 3, ch]


@njit(cache=True, nogil=True)
def _output_tiles(m, bias, has_bias, n, th, tw, out):
    """Fill channels-last ``out`` (N, OH, OW, O) from the products ``m`` (16, N*th*tw, O) (tile
    rows as in :func:`_input_tiles`): A^T m A of each tile, plus ``bias`` (O,) when ``has_bias``;
    outputs past OH or OW (the last tiles of an odd size) are dropped."""
    oh, ow, o_n = out.shape[1], out.shape[2], out.shape[3]
    for b in range(n):
        for ty in range(th):
            for tx in range(tw):
                t = (b * th + ty) * tw + tx
                for i in range(2):
                    y = 2 * ty + i
                    if y >= oh:
                        break
                    two = 2 * tx + 1 < ow
                    for o in range(o_n):
                        if i == 0:  # A^T m: row i
                            s0 = m[0, t, o] + m[4, t, o] + m[8, t, o]
                            s1 = m[1, t, o] + m[5, t, o] + m[9, t, o]
                            s2 = m[2, t, o] + m[6, t, o] + m[10, t, o]
                            s3 = m[3, t, o] + m[7, t, o] + m[11, t, o]
                        else:
                            s0 = m[4, t, o] - m[8, t, o] - m[12, t, o]
                            s1 = m[5, t, o] - m[9, t, o] - m[13, t, o]
                            s2 = m[6, t, o] - m[10, t, o] - m[14, t, o]
                            s3 = m[7, t, o] - m[11, t, o] - m[15, t, o]
                        v0 = s0 + s1 + s2  # (A^T m) A: column 0, then 1
                        v1 = s1 - s2 - s3
                        if has_bias:
                            v0 += bias[o]
                            v1 += bias[o]
                        out[b, y, 2 * tx, o] = v0
                        if two:
                            out[b, y, 2 * tx + 1, o] = v1



@njit(cache=True, nogil=True)
def _weights(w, out):
    """Fill ``out`` (16, O, C) with G g G^T of each 3x3 kernel g = ``w[o, c]`` of ``w``
    (O, C, 3, 3): G g first, then (G g) G^T, in float64, each value rounded once to ``out``'s
    type; entry (a, b) is ``out[4*a + b]`` (``out[k].T`` is the (C, O) matrix of the products).
    Every value is a sum of at most nine weights times 0, +-1/4, +-1/2 or 1, exact in float64 for
    float32 weights (so equal to any other summation order, e.g. ``np.einsum("ai,ocij,bj->aboc",
    G, w, G)``) unless a kernel's nonzero weights span more than 2**25 in magnitude."""
    o_n, c_n = w.shape[0], w.shape[1]
    g = np.empty((9, c_n))  # the kernels w[o, c] of one o, tap by tap (the loop over c vectorises)
    row = np.empty((16, c_n), out.dtype)  # out[:, o] made here, then copied row by row: the 16 rows
    for o in range(o_n):  # lie a power of two apart in out, and 16 interleaved writes there thrash the cache
        for c in range(c_n):
            for q in range(9):
                g[q, c] = w[o, c, q // 3, q % 3]
        for c in range(c_n):
            for a in range(4):  # row a of G g (three columns), then of (G g) G^T
                if a == 0:
                    t0, t1, t2 = g[0, c], g[1, c], g[2, c]
                elif a == 1:
                    t0 = 0.5 * (g[0, c] + g[3, c] + g[6, c])
                    t1 = 0.5 * (g[1, c] + g[4, c] + g[7, c])
                    t2 = 0.5 * (g[2, c] + g[5, c] + g[8, c])
                elif a == 2:
                    t0 = 0.5 * (g[0, c] - g[3, c] + g[6, c])
                    t1 = 0.5 * (g[1, c] - g[4, c] + g[7, c])
                    t2 = 0.5 * (g[2, c] - g[5, c] + g[8, c])
                else:
                    t0, t1, t2 = g[6, c], g[7, c], g[8, c]
                row[4 * a, c] = t0
                row[4 * a + 1, c] = 0.5 * (t0 + t1 + t2)
                row[4 * a + 2, c] = 0.5 * (t0 - t1 + t2)
                row[4 * a + 3, c] = t2
        for k in range(16):
            out[k, o, :] = row[k]
