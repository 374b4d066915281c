"""Error sums of integer codes against a float reference, in one pass, for the per-layer metrics.

``_coded_sums(ref, codes, zero_point, scale)`` returns ``(sum (ref - y)**2, sum ref**2)`` with
``y = (float64(code) - zero_point) * scale`` (the real value of each code, computed as
``hwsim.sim.qspec.from_codes`` computes it for a per-tensor spec; float "codes" with zero point 0 and scale 1
are real values read as they are: ``(x - 0) * 1 == x``), over two 1-D arrays of the same
length read in memory order (``ref`` float64, or float32 read as float64). The reals ``y`` are never stored: the pass reads 8 + 1 bytes per
element where making ``y`` and then differencing it moves about 40. The float64 sums may be
reassociated (vectorised; on 512-bit registers where the host has AVX-512, :mod:`hwsim.kernels.zmm`:
BERT's 393k-value tensors 0.38 -> 0.22 ms hot, 0.69 -> 0.57 ms from memory, the sums' order eight
lanes wide, 2026-11-27); NaN and inf propagate as in a plain sum. The kernels release the GIL:
simulate's two threads may each run one at once (:mod:`hwsim.sim.metric_jobs`).
"""

import numpy as np
from numba import njit

from hwsim.kernels.zmm import prefer_zmm


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _coded_sums(ref, codes, zero_point, scale):
    prefer_zmm()
    noise = 0.0
    signal = 0.0
    for i in range(ref.size):
        r = np.float64(ref[i])
        d = r - (np.float64(codes[i]) - zero_point) * scale
        noise += d * d
        signal += r * r
    return noise, signal


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _biased_coded_sums(y, bias, codes, zero_point, scale):
    """:func:`_coded_sums` of the reference ``float64(y[i]) + bias[i % C]`` (``C = bias.size``, the
    innermost axis of the memory order, ``y.size`` a multiple of it: a float product plus its
    per-channel bias, not added up front)."""
    prefer_zmm()
    c = bias.size
    return _rows_sums(y.reshape(-1, c), bias, codes.reshape(-1, c), zero_point, scale)  # row views: the inner loop vectorises


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _biased_coded_rows(y2, bias, codes2, zero_point, scale):
    """:func:`_biased_coded_sums` of rows ``y2`` (R, C) and ``codes2`` (R, C) in any row strides:
    codes laid out with room between their rows (an 8-bit GEMM's output padded to whole column
    blocks, then cut to C columns)."""
    prefer_zmm()
    return _rows_sums(y2, bias, codes2, zero_point, scale)


@njit(inline="always", nogil=True, fastmath={"reassoc"})
def _rows_sums(y2, bias, codes2, zero_point, scale):
    c = bias.size
    noise = 0.0
    signal = 0.0
    for i in range(y2.shape[0]):
        yr, cr = y2[i], codes2[i]
        for j in range(c):
            r = np.float64(yr[j]) + bias[j]
            d = r - (np.float64(cr[j]) - zero_point) * scale
            noise += d * d
            signal += r * r
    return noise, signal


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _coded_sums_4d(ref, codes, zero_point, scale):
    """:func:`_coded_sums` of 4-D ``ref`` and ``codes`` of one shape in any memory layouts (a
    residual Add's channels-last reference beside its NCHW codes), read in the order of their
    axes: the caller orders them as ``ref``'s memory order, so ``ref`` is read contiguously."""
    prefer_zmm()
    noise = 0.0
    signal = 0.0
    a, b, c, d = ref.shape
    for i in range(a):
        for j in range(b):
            for k in range(c):
                rr, cr = ref[i, j, k], codes[i, j, k]
                for m in range(d):
                    r = np.float64(rr[m])
                    e = r - (np.float64(cr[m]) - zero_point) * scale
                    noise += e * e
                    signal += r * r
    return noise, signal

