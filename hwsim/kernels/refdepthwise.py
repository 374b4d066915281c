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
each work item, one output row (b, y) claimed in turn (:mod:`hwsim.kernels.workqueue`), rounds
the KH input rows it reads into scratch rows of type T (a row the same thread rounded for its
previous item is kept: slot ``yy % KH``, tagged with ``(b, yy)``). A 3x3 kernel's output columns
whose nine taps all lie inside the input (every column but the borders, when all three input rows
exist) sum their nine products in one expression per channel, each sum kept in a register and
written with its float32 operand at once (the channels vectorise; 2026-11-26, 3-5x faster than
summing every tap into the output row in memory); the other outputs add tap by tap into their
row of ``out``, in the same order.
"""

import numpy as np
from numba import njit, prange

from hwsim.kernels.workqueue import claim, serial
from hwsim.kernels.zmm import prefer_zmm


@njit(cache=True, nogil=True, parallel=True)
def _depthwise_ref(xh, in_bias, with_in_bias, wt, sh, sw, ph, pw, dh, dw, out_bias, out, out32, counter, threads):
    prefer_zmm()
    n, h, w, c = xh.shape
    kh, kw, _ = wt.shape
    _, oh, ow, _ = out.shape
    xr, wr = xh.reshape(n * h, w * c), wt.reshape(kh * kw, c)
    outr, out32r = out.reshape(n * oh, ow * c), out32.reshape(n * oh, ow * c)
    # output columns whose kw taps all lie inside the input: lo_all <= xo < hi_all
    lo_all, hi_all = 0, ow
    for j in range(kw):
        off = j * dw - pw
        lo_all, hi_all = max(lo_all, (sw - 1 - off) // sw), min(hi_all, (w - 1 - off) // sw + 1)
    # stride 1: the weights repeated for `chunk` columns, so that a 3x3 row's inner columns run as
    # loops of chunk * C values (not one loop of C per column)
    chunk = max(1, _LONG_VALUES // c)
    wtile = np.empty((kh * kw, chunk * c), wt.dtype)
    for k in range(kh * kw):
        for t in range(chunk):
            wtile[k, t * c:(t + 1) * c] = wr[k]
    for _ in prange(threads):
        rows = np.zeros((kh, w * c), wt.dtype)
        tags = np.full(kh, -1, np.int64)  # the input row (b * h + yy) each slot of rows holds
        slot = np.empty(kh, np.int64)  # the slot of tap row i for this item, -1 outside the input
        zero = np.zeros(1, wt.dtype)[0]
        while True:
            item = claim(counter)
            if item >= n * oh:
                break
            b, y = item // oh, item % oh
            inside = 0
            for i in range(kh):
                yy = y * sh - ph + i * dh
                slot[i] = -1
                if 0 <= yy < h:
                    inside += 1
                    slot[i] = yy % kh if dh == 1 else i  # dh == 1: the kh rows of an item differ mod kh
                    if tags[slot[i]] != b * h + yy:
                        _round_row(xr[b * h + yy], in_bias, with_in_bias, c, rows[slot[i]])
                        tags[slot[i]] = b * h + yy
            acc, dst32 = outr[item], out32r[item]
            fast = kh == 3 and kw == 3 and inside == 3 and lo_all < hi_all
            if fast and sw == 1:
                _taps3x3_runs(rows, slot[0], slot[1], slot[2], lo_all, hi_all, pw, dw * c, wtile, chunk, zero, acc)
            elif fast:
                _taps3x3(rows, slot[0], slot[1], slot[2], lo_all, hi_all, sw, pw, dw * c, wr, zero, acc)
            for xo in range(ow):
                if not (fast and lo_all <= xo < hi_all):
                    _taps(rows, slot, wr, xo, sw, pw, dw, kw, w, acc)
            _operand32(acc, out_bias, dst32)


@njit(inline="always", nogil=True)
def _taps(rows, slot, wr, xo, sw, pw, dw, kw, w, acc):
    """Output column ``xo`` of the output row ``acc`` (its C channels), summed tap by tap in
    memory; unsigned offsets into the rows, no views (a view per tap cost the borders of MobileNetV2's
    112 x 112 x 32 layer 1.8 of its 9 ms, one thread, 2026-11-27)."""
    c = np.uint64(wr.shape[1])
    o = np.uint64(xo) * c
    for ch in range(c):
        acc[o + ch] = 0.0
    for i in range(slot.size):
        if slot[i] < 0:
            continue
        for j in range(kw):
            xx = xo * sw - pw + j * dw
            if 0 <= xx < w:
                si, base, k = slot[i], np.uint64(xx) * c, i * kw + j  # locals: no reload per channel
                for ch in range(c):
                    acc[o + ch] += rows[si, base + ch] * wr[k, ch]


@njit(inline="always", nogil=True)
def _taps3x3(rows, s0, s1, s2, lo, hi, sw, pw, step, wr, zero, acc):
    """Output columns ``lo <= xo < hi`` of one output row ``acc`` (W*C values) of a 3x3 kernel,
    columns whose nine taps all lie inside the input: per channel ``0 + p00 + p01 + ... + p22`` in
    one expression (the same order and roundings as tap by tap), taps read from
    ``rows[s_i, (xo * sw - pw) * C + j * step + ch]``. All indices are unsigned (every column here
    starts at or after the input's first): numba then adds no negative-index wraparound, which kept
    LLVM from vectorising the loads (2 GMAC/s against 14-16 on this machine, 2026-11-26); one store
    per loop (the float32 operand is written by :func:`_operand32`: a second store's alias checks
    stopped the vectoriser too). One loop over the row's columns, indexing ``acc`` itself: a slice
    per column (a call with its own views) cost ~10% of the kernel at C = 32-144 (2026-11-27)."""
    c = np.uint64(wr.shape[1])
    st = np.uint64(step)
    for xo in range(np.uint64(lo), np.uint64(hi)):
        b0 = (xo * np.uint64(sw) - np.uint64(pw)) * c
        b1 = b0 + st
        b2 = b1 + st
        o = xo * c
        for ch in range(c):
            s = zero + rows[s0, b0 + ch] * wr[0, ch]
            s += rows[s0, b1 + ch] * wr[1, ch]
            s += rows[s0, b2 + ch] * wr[2, ch]
            s += rows[s1, b0 + ch] * wr[3, ch]
            s += rows[s1, b1 + ch] * wr[4, ch]
            s += rows[s1, b2 + ch] * wr[5, ch]
            s += rows[s2, b0 + ch] * wr[6, ch]
            s += rows[s2, b1 + ch] * wr[7, ch]
            s += rows[s2, b2 + ch] * wr[8, ch]
            acc[o + ch] = s


@njit(inline="always", nogil=True)
def _taps3x3_runs(rows, s0, s1, s2, lo, hi, pw, step, wtile, chunk, zero, acc):
    """:func:`_taps3x3` at stride 1: columns ``lo <= xo < hi`` in runs of ``chunk`` columns, each
    one loop over its columns' values (``q`` = column * C + channel), tap (i, j) read at ``q``
    shifted by the tap's offset, its weights from ``wtile`` (the C weights repeated ``chunk``
    times): the same nine products per output in the same order. MobileNetV2's 112 x 112 x 32 layer
    (a loop of C = 32 per column before): with :func:`~hwsim.kernels.zmm.prefer_zmm` and the views
    gone from the borders, 9.0 -> ~6 ms one thread (2026-11-27)."""
    c = np.uint64(wtile.shape[1] // chunk)
    st = np.uint64(step)
    for x0 in range(lo, hi, chunk):
        n = np.uint64(min(chunk, hi - x0)) * c
        o = np.uint64(x0) * c
        b0 = np.uint64(x0 - pw) * c
        b1 = b0 + st
        b2 = b1 + st
        for q in range(n):
            s = zero + rows[s0, b0 + q] * wtile[0, q]
            s += rows[s0, b1 + q] * wtile[1, q]
            s += rows[s0, b2 + q] * wtile[2, q]
            s += rows[s1, b0 + q] * wtile[3, q]
            s += rows[s1, b1 + q] * wtile[4, q]
            s += rows[s1, b2 + q] * wtile[5, q]
            s += rows[s2, b0 + q] * wtile[6, q]
            s += rows[s2, b1 + q] * wtile[7, q]
            s += rows[s2, b2 + q] * wtile[8, q]
            acc[o + q] = s


#: values per loop of :func:`_taps3x3_runs` (columns of C channels, at least one column)
_LONG_VALUES = 512


@njit(inline="always", nogil=True)
def _operand32(acc, out_bias, dst32):
    """``dst32`` = ``float32(float64(acc) + out_bias)`` per channel, for one output row (W*C
    values; ``out_bias`` C values), unsigned indices (as :func:`_taps3x3`)."""
    c = np.uint64(out_bias.size)
    for xx in range(np.uint64(acc.size) // c):
        base = xx * c
        for ch in range(c):
            dst32[base + ch] = np.float32(np.float64(acc[base + ch]) + out_bias[ch])


@njit(inline="always", nogil=True)
def _round_row(src, in_bias, with_in_bias, c, dst):
    """``dst`` = one input row (W*C values) as the float32 operand, in ``dst``'s type (unsigned
    indices, as :func:`_taps3x3`)."""
    if with_in_bias:
        cu = np.uint64(c)
        for xx in range(np.uint64(src.size) // cu):
            base = xx * cu
            for ch in range(cu):
                dst[base + ch] = np.float32(np.float64(src[base + ch]) + in_bias[ch])
    else:
        for k in range(np.uint64(src.size)):
            dst[k] = np.float32(src[k])


_depthwise_ref_1 = serial(_depthwise_ref)
