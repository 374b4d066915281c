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
    lo_all, hi_all = _full_columns(kw, sw, pw, dw, w, ow)
    chunk = max(1, _LONG_VALUES // c)
    wtile = _repeated(wr, chunk)
    for _ in prange(threads):
        rows = np.zeros((kh, w * c), wt.dtype)
        tags = np.full(kh, -1, np.int64)  # the input row (b * h + yy) each slot of rows holds
        slot = np.empty(kh, np.int64)  # the slot of tap row i for this item, -1 outside the input
        zero = np.zeros(1, wt.dtype)[0]
        while True:
            item = claim(counter)
            if item >= n * oh:
                break
            acc = outr[item]
            _row_sums(xr, item // oh, item % oh, h, in_bias, with_in_bias, zero, rows, tags, slot, wr, kw, sh, sw, ph, pw,
                     dh, dw, lo_all, hi_all, wtile, chunk, zero, acc)
            _operand32(acc, out_bias, out32r[item])


@njit(inline="always", nogil=True)
def _full_columns(kw, sw, pw, dw, w, ow):
    """(lo, hi): the output columns ``lo <= xo < hi`` whose ``kw`` taps all lie inside an input row
    of ``w`` columns."""
    lo, hi = 0, ow
    for j in range(kw):
        off = j * dw - pw
        lo, hi = max(lo, (sw - 1 - off) // sw), min(hi, (w - 1 - off) // sw + 1)
    return lo, hi


@njit(inline="always", nogil=True)
def _repeated(wr, chunk):
    """The weights ``wr`` (KH*KW, C) repeated for ``chunk`` columns, (KH*KW, chunk * C): at stride 1
    a 3x3 row's inner columns run as loops of chunk * C values (:func:`_taps3x3_runs`), not one loop
    of C per column."""
    k, c = wr.shape
    wtile = np.empty((k, chunk * c), wr.dtype)
    for t in range(chunk):
        wtile[:, t * c:(t + 1) * c] = wr
    return wtile


@njit(inline="always", nogil=True)
def _row_sums(xr, b, y, h, in_bias, with_in_bias, shift, rows, tags, slot, wr, kw, sh, sw, ph, pw, dh, dw, lo_all, hi_all,
             wtile, chunk, zero, acc):
    """``acc`` = output row ``y`` of image ``b`` (OW*C sums in the type of ``rows``), the taps of
    each output summed in ascending order from ``zero``: the input rows it reads rounded into
    ``rows`` (:func:`_round_row`, ``float32(x) - shift`` where there is no ``in_bias``; slot ``slot[i]`` for tap row i, -1 outside the input; a slot whose
    ``tags`` entry says it holds that row already is kept), a 3x3 row's inner columns
    (``lo_all <= xo < hi_all``, :func:`_full_columns`) in one expression each (:func:`_taps3x3_runs`
    at stride 1 with the weights ``wtile`` repeated ``chunk`` times, else :func:`_taps3x3`), the
    other columns tap by tap (:func:`_taps`). ``xr`` is the input as (N*H, W*C) rows. Shared by
    the float reference's kernel and the quantized one (:func:`hwsim.kernels.conv._depthwise_codes`)."""
    kh, c = slot.size, wr.shape[1]
    w, ow = xr.shape[1] // c, acc.size // c
    inside = 0
    for i in range(kh):
        yy = y * sh - ph + i * dh
        slot[i] = -1
        if 0 <= yy < h:
            inside += 1
            slot[i] = yy % kh if dh == 1 else i  # dh == 1: the kh rows of an item differ mod kh
            if tags[slot[i]] != b * h + yy:
                _round_row(xr[b * h + yy], in_bias, with_in_bias, shift, c, rows[slot[i]])
                tags[slot[i]] = b * h + yy
    fast = kh == 3 and kw == 3 and inside == 3 and lo_all < hi_all
    if fast and sw == 1:
        _taps3x3_runs(rows, slot[0], slot[1], slot[2], lo_all, hi_all, pw, dw * c, wtile, chunk, zero, acc)
    elif fast:
        _taps3x3(rows, slot[0], slot[1], slot[2], lo_all, hi_all, sw, pw, dw * c, wr, zero, acc)
    for xo in range(ow):
        if not (fast and lo_all <= xo < hi_all):
            _taps(rows, slot, wr, xo, sw, pw, dw, kw, w, acc)


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
            acc[o + ch] = _nine(rows, s0, s1, s2, b0 + ch, b1 + ch, b2 + ch, wr, ch, zero)


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
            acc[o + q] = _nine(rows, s0, s1, s2, b0 + q, b1 + q, b2 + q, wtile, q, zero)


@njit(inline="always", nogil=True)
def _nine(rows, s0, s1, s2, p0, p1, p2, wts, q, zero):
    """``zero`` plus the nine products of one 3x3 output in tap order, each rounded to the rows'
    type: tap (i, j) reads ``rows[s_i, p_j]`` and weight ``wts[3 i + j, q]``."""
    s = zero + rows[s0, p0] * wts[0, q]
    s += rows[s0, p1] * wts[1, q]
    s += rows[s0, p2] * wts[2, q]
    s += rows[s1, p0] * wts[3, q]
    s += rows[s1, p1] * wts[4, q]
    s += rows[s1, p2] * wts[5, q]
    s += rows[s2, p0] * wts[6, q]
    s += rows[s2, p1] * wts[7, q]
    s += rows[s2, p2] * wts[8, q]
    return s


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
def _round_row(src, in_bias, with_in_bias, shift, c, dst):
    """``dst`` = one input row (W*C values) as the float32 operand, in ``dst``'s type (unsigned
    indices, as :func:`_taps3x3`); without ``in_bias``, ``float32(src) - shift`` (``shift`` of
    ``dst``'s type: 0 for the reference, the zero point for integer codes, exact there)."""
    if with_in_bias:
        cu = np.uint64(c)
        for xx in range(np.uint64(src.size) // cu):
            base = xx * cu
            for ch in range(cu):
                dst[base + ch] = np.float32(np.float64(src[base + ch]) + in_bias[ch])
    else:
        for k in range(np.uint64(src.size)):
            dst[k] = np.float32(src[k]) - shift


_depthwise_ref_1 = serial(_depthwise_ref)
