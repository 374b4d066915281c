"""im2col for integer 2-D convolution (NCHW input, OIHW weights).

A convolution is run as a matrix multiply whose reduction index is k = (c, kh, kw) in C order
within a group, so "k ascending" in :mod:`hwsim.kernels.intgemm` means channel-major, then kernel
row, then kernel column.
"""

import numpy as np
from numba import njit, prange

from hwsim.kernels.canon import as_bits
from hwsim.kernels.intgemm import F32_EXACT, MODE_SATURATE, MODE_WRAP, _accumulate, _wrap, wrap_array
from hwsim.kernels.refdepthwise import _LONG_VALUES, _full_columns, _repeated, _row_sums
from hwsim.kernels.requant import _ort1
from hwsim.kernels.workqueue import claim, pick, serial
from hwsim.kernels.zmm import prefer_zmm


@njit(cache=True, nogil=True, parallel=True)
def _im2col(x, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, fill, out):
    """Fill ``out`` (N*oh*ow, cg*kh*kw) from channels ``c0 .. c0+cg`` of ``x``, column order
    k = (c, kh, kw). ``ph``/``pw`` are the top/left pads; positions outside ``x`` read as ``fill``.
    The wrapper passes :func:`~hwsim.kernels.canon.as_bits` views: one compile per item size.
    """
    n, _, h, w = x.shape
    for row in prange(n * oh * ow):
        b = row // (oh * ow)
        y = (row // ow) % oh
        xo = row % ow
        for c in range(cg):
            for i in range(kh):
                yy = y * sh - ph + i * dh
                for j in range(kw):
                    xx = xo * sw - pw + j * dw
                    col = (c * kh + i) * kw + j
                    if 0 <= yy < h and 0 <= xx < w:
                        out[row, col] = x[b, c0 + c, yy, xx]
                    else:
                        out[row, col] = fill


@njit(cache=True, nogil=True, parallel=True)
def _im2col_nhwc(xh, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, fill, out):
    """Fill ``out`` (N*oh*ow, kh*kw*cb) from channels-last ``xh`` (N, H, W, cb), C-contiguous:
    column order (kh, kw, c), each kernel position one contiguous run of the cb elements of a pixel
    (or of ``fill`` (cb,)), a kernel row wholly inside the input (dilation 1) one run of kw*cb. The
    wrapper passes bytes (uint8 views, cb = channels x item size), so one compiled kernel serves
    every dtype."""
    n, h, w, cb = xh.shape
    xr = xh.reshape(-1)
    run = np.uint64(kw * cb)
    for row in prange(n * oh * ow):
        b = row // (oh * ow)
        y = (row // ow) % oh
        xo = row % ow
        x0 = xo * sw - pw
        whole = dw == 1 and 0 <= x0 and x0 + kw <= w  # the kw positions of a kernel row: kw*cb consecutive bytes
        ur = np.uint64(row)
        for i in range(kh):
            yy = y * sh - ph + i * dh
            if whole and 0 <= yy < h:  # one run, unsigned indices (the copy vectorises): ResNet-18 b8's
                src = np.uint64(((b * h + yy) * w + x0) * cb)  # uint8 patches 143 -> 81 ms on one thread at
                # load 4.7 (the 7x7 stem, C = 3: 83 -> 35 ms), 2026-11-27
                dst = np.uint64(i * kw * cb)
                for q in range(run):
                    out[ur, dst + q] = xr[src + q]
                continue
            for j in range(kw):
                xx = xo * sw - pw + j * dw
                base = (i * kw + j) * cb
                if 0 <= yy < h and 0 <= xx < w:
                    for c in range(cb):
                        out[row, base + c] = xh[b, yy, xx, c]
                else:
                    for c in range(cb):
                        out[row, base + c] = fill[c]


# the same copies without threads, for small patches or busy CPUs (workqueue.pick, as the GEMMs):
# at load 8, resnet18's 8x256x14x14 3x3 patches took 7 ms CPU on two threads, 0.14 ms on one
_im2col_1, _im2col_nhwc_1 = serial(_im2col), serial(_im2col_nhwc)


def im2col(x, c0, cg, kernel, stride, pads, dilation, out_hw, dtype=np.int64, fill=0, channels_last=False,
           out=None):
    """Wrapper of :func:`_im2col`; returns an array of ``dtype`` (N*OH*OW, cg*KH*KW).

    Parameters
    ----------
    x : np.ndarray
        Input (N, C, H, W): integer codes (zero point already subtracted, or ``fill`` = the zero
        point) or float values.
    c0, cg : int
        First input channel and channel count of the group.
    kernel, stride, pads, dilation, out_hw : tuple of int
        (KH, KW), (SH, SW), (top, left), (DH, DW), (OH, OW).
    dtype : numpy dtype
        Element type of the patches (values are copied, never rounded: pass a type that holds them).
    fill : int or float
        Value of padded positions.
    channels_last : bool
        Columns in (kh, kw, c) order instead of (c, kh, kw) (MLAS's NHWC im2col).
    out : np.ndarray, optional
        A contiguous 1-D buffer of ``dtype`` with room for the patches: they are written to its
        start and returned as a view (a buffer reused across calls saves first-touch page faults).
    """
    n = x.shape[0]
    (kh, kw), (oh, ow) = kernel, out_hw
    shape = (n * oh * ow, cg * kh * kw)
    out = np.empty(shape, dtype) if out is None else out[:shape[0] * shape[1]].reshape(shape)
    if channels_last and (kh, kw, oh, ow) == (1, 1) + x.shape[2:] and tuple(stride) == (1, 1):
        # a 1x1 conv without stride or padding: the patches are the channels-last input itself
        out[...] = x[:, c0:c0 + cg].transpose(0, 2, 3, 1).reshape(n * oh * ow, cg)
        return out
    if channels_last:  # one channels-last copy of the group (none if it is one), then contiguous runs
        xh = x[:, c0:c0 + cg].transpose(0, 2, 3, 1)
        if xh.dtype != out.dtype or not xh.flags.c_contiguous:
            xh = np.empty((n,) + x.shape[2:] + (cg,), dtype)
            xh[...] = x[:, c0:c0 + cg].transpose(0, 2, 3, 1)
        copy, _ = pick(_im2col_nhwc, _im2col_nhwc_1, out.size)
        copy(xh.view(np.uint8), kh, kw, stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1],
             oh, ow, np.full(cg, fill, out.dtype).view(np.uint8), out.view(np.uint8))
        return out
    if x.dtype != out.dtype:  # the group converted once: the kernel copies bits
        x, c0 = x[:, c0:c0 + cg].astype(out.dtype), 0
    copy, _ = pick(_im2col, _im2col_1, out.size)
    copy(as_bits(x), c0, cg, kh, kw, stride[0], stride[1], pads[0], pads[1],
         dilation[0], dilation[1], oh, ow, as_bits(np.array(fill, out.dtype))[()], as_bits(out))
    return out


@njit(cache=True, nogil=True)
def _to_channels_first(src, dst):
    """``dst[b, ch, q] = src[b, q, ch]`` for ``src`` (N, P, C) and ``dst`` (N, C', P), ch < C',
    in blocks of 32 x 32 so that both sides stay in cache."""
    n, p, c = src.shape
    c = min(c, dst.shape[1])
    for b in range(n):
        for p0 in range(0, p, 32):
            p1 = min(p0 + 32, p)
            for c0 in range(0, c, 32):
                for ch in range(c0, min(c0 + 32, c)):
                    for q in range(p0, p1):
                        dst[b, ch, q] = src[b, q, ch]


def nchw_into(src, out):
    """Write channels-last ``src`` (N, H, W, C) into ``out`` (N, C, H, W) (C-contiguous, of
    ``src``'s type): numpy's transposing copy reads or writes with a stride of C elements, here
    32 x 32 blocks do (ResNet-18 b8's stem output, 8 x 112 x 112 x 64 int64, one thread: 45 -> 18 ms,
    2026-11-27). Other layouts or types (a group's channels of ``out``): numpy's copy."""
    n, h, w, c = src.shape
    if out.flags.c_contiguous and out.dtype == src.dtype and out.shape == (n, c, h, w) and src.flags.c_contiguous \
            and src.size >= 1 << 16:
        _to_channels_first(src.reshape(n, h * w, c), out.reshape(n, c, h * w))
    else:
        out[...] = src.transpose(0, 3, 1, 2)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _direct_conv(x, w, sh, sw, ph, pw, dh, dw, groups, bits, mode, out):
    """Direct grouped convolution: ``out`` (N, O, OH, OW) int64 from ``x`` (N, C, H, W) and ``w``
    (O, C/groups, KH, KW), both int64 with zero points subtracted; padding contributes 0.

    Per output, k = (c, kh, kw) ascending, one accumulator step per product: saturating steps
    clamp every partial sum; otherwise the exact int64 sum (products of |x|, |w| < 2**31, at most
    2**31 of them, are summed without int64 overflow by the caller's bound) is wrapped once at
    the end, which equals wrapping every step. Skipped padding products are 0 and leave every
    accumulator rule unchanged. int64 overflow of the sum is the caller's bound, as for the
    sequential kernel of :mod:`hwsim.kernels.intgemm`. For groups with few channels (depthwise), where a GEMM per group
    would be all overhead.
    """
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    _, _, oh, ow = out.shape
    og = o // groups
    lo = -(np.int64(1) << (bits - 1)) if bits < 64 else np.iinfo(np.int64).min
    hi = (np.int64(1) << (bits - 1)) - 1 if bits < 64 else np.iinfo(np.int64).max
    for idx in prange(n * o):
        b = idx // o
        oc = idx % o
        c0 = (oc // og) * cg
        for y in range(oh):
            for xo in range(ow):
                acc = np.int64(0)
                for ci in range(cg):
                    for i in range(kh):
                        yy = y * sh - ph + i * dh
                        if yy < 0 or yy >= h:
                            continue
                        for j in range(kw):
                            xx = xo * sw - pw + j * dw
                            if xx < 0 or xx >= wd:
                                continue
                            v = x[b, c0 + ci, yy, xx] * w[oc, ci, i, j]
                            if mode == MODE_SATURATE:
                                acc = _accumulate(acc, v, bits, mode, lo, hi)
                            else:
                                acc += v
                out[b, oc, y, xo] = _wrap(acc, bits) if mode == MODE_WRAP else acc


@njit(cache=True, nogil=True, parallel=True)
def _direct_conv_taps(x, w, sh, sw, ph, pw, dh, dw, groups, out):
    """The exact int64 sums of :func:`_direct_conv` (or float64 sums, taps in order), kernel tap by kernel tap: each output plane
    accumulates one weight times a shifted input row at a time (a loop over output columns that
    vectorises). Integer addition is associative, so the sums equal the k-ascending ones; only
    saturating accumulators need :func:`_direct_conv`'s per-output order."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    _, _, oh, ow = out.shape
    og = o // groups
    for idx in prange(n * o):
        b = idx // o
        oc = idx % o
        c0 = (oc // og) * cg
        plane = out[b, oc]
        plane[:, :] = 0
        for ci in range(cg):
            for i in range(kh):
                for j in range(kw):
                    wv = w[oc, ci, i, j]
                    off = j * dw - pw
                    lo = max(0, (-off + sw - 1) // sw)  # first xo with xo*sw + off >= 0
                    hi = min(ow, (wd - 1 - off) // sw + 1) if wd - 1 - off >= 0 else 0
                    if wv == 0 or lo >= hi:
                        continue
                    for y in range(oh):
                        yy = y * sh - ph + i * dh
                        if yy < 0 or yy >= h:
                            continue
                        src = x[b, c0 + ci, yy]
                        row = plane[y]
                        for xo in range(lo, hi):
                            row[xo] += src[xo * sw + off] * wv


def direct_conv_float(x, w, stride, pads, dilation, groups, out_hw):
    """float64 grouped convolution by :func:`_direct_conv_taps` (per output, taps summed in
    (c, kh, kw) ascending order); ``x`` (N, C, H, W), ``w`` (O, C/groups, KH, KW)."""
    out = np.empty((x.shape[0], w.shape[0]) + tuple(out_hw), np.float64)
    _direct_conv_taps(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(w, np.float64), stride[0], stride[1],
                      pads[0], pads[1], dilation[0], dilation[1], groups, out)
    return out


def direct_conv(x, w, stride, pads, dilation, groups, bits, mode, out_hw):
    """Wrapper of :func:`_direct_conv`; ``x``, ``w`` int64 with zero points subtracted.

    Returns an int64 array (N, O, OH, OW).
    """
    out = np.empty((x.shape[0], w.shape[0]) + tuple(out_hw), np.int64)
    x, w = np.ascontiguousarray(x, np.int64), np.ascontiguousarray(w, np.int64)
    if mode == MODE_SATURATE:
        _direct_conv(x, w, stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1], groups, bits, mode, out)
        return out
    _direct_conv_taps(x, w, stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1], groups, out)
    return wrap_array(out, bits) if mode == MODE_WRAP else out


@njit(cache=True, nogil=True, parallel=True)
def _depthwise_nhwc(xh, zx, wt, sh, sw, ph, pw, dh, dw, out, epi, counter, threads):
    """Depthwise convolution (one input channel per output channel), channels-last:
    ``out[b, y, xo, c]`` ((N, OH, OW, C)) = sum over taps (i, j) inside the input, ascending, of
    ``(xh[b, yy, xx, c] - zx) * wt[i, j, c]``, starting from 0; padding contributes nothing.
    The sums are taken in the type of ``wt`` (KH, KW, C): int32 for 8-bit codes (exact while
    KH*KW * 255 * max|wt| < 2**31; the caller checks), float64 for the float reference (each
    product and partial sum rounded in taps order, as a per-output loop would). The loop over
    channels is contiguous and vectorises; one work item per output row (b, y), claimed in turn
    (:mod:`hwsim.kernels.workqueue`). With ``epi`` = (bias int32, mult, fmin, fmax float32,
    zp int32), all (C,), not None, ``out`` receives 8-bit codes instead: onnxruntime's
    requantization (:func:`hwsim.kernels.requant._ort1`) of each int32 row sum plus its bias,
    in the same pass (the caller bounds the sums within int32)."""
    n, h, wd, c = xh.shape
    kh, kw, _ = wt.shape
    _, oh, ow, _ = out.shape
    t = wt.dtype.type
    z = t(zx)
    for _ in prange(threads):
        acc = np.empty((ow, c), wt.dtype)
        while True:
            row = claim(counter)
            if row >= n * oh:
                break
            b, y = row // oh, row % oh
            acc[:] = 0
            for i in range(kh):
                yy = y * sh - ph + i * dh
                if yy < 0 or yy >= h:
                    continue
                for j in range(kw):
                    wrow = wt[i, j]
                    for xo in range(ow):
                        xx = xo * sw - pw + j * dw
                        if xx < 0 or xx >= wd:
                            continue
                        src, dst = xh[b, yy, xx], acc[xo]
                        for ch in range(c):
                            dst[ch] += (t(src[ch]) - z) * wrow[ch]
            if epi is None:
                for xo in range(ow):
                    for ch in range(c):
                        out[b, y, xo, ch] = acc[xo, ch]
            else:
                bias, m, fmin, fmax, zp = epi
                for xo in range(ow):
                    src, dst = acc[xo], out[b, y, xo]
                    for ch in range(c):
                        dst[ch] = np.int32(_ort1(np.float32(src[ch] + bias[ch]), m[ch], fmin[ch], fmax[ch])) + zp[ch]


_depthwise_nhwc_1 = serial(_depthwise_nhwc)


def depthwise_nhwc(x, zx, w, stride, pads, dilation, out_hw):
    """Wrapper of :func:`_depthwise_nhwc` for ``x`` (N, C, H, W) in any memory layout (no copy
    when the data is channels-last) and ``w`` (C, 1, KH, KW): uint8/int8 codes ``x`` with
    integer weights minus their zero points give exact int64 sums; float ``x`` and ``w`` (``zx``
    0) give float64 sums. Returns (N, C, OH, OW), a view of channels-last data."""
    flt = x.dtype.kind == "f"
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wt = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), np.float64 if flt else np.int32)
    out = np.empty((x.shape[0],) + tuple(out_hw) + (x.shape[1],), np.float64 if flt else np.int64)
    kernel, split = pick(_depthwise_nhwc, _depthwise_nhwc_1, out.size * wt.shape[0] * wt.shape[1])
    kernel(xh, zx, wt, stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1], out, None, *split)
    return out.transpose(0, 3, 1, 2)


@njit(cache=True, nogil=True, parallel=True)
def _depthwise_codes(xh, zx, wt, sh, sw, ph, pw, dh, dw, out, bias, mult, fmin, fmax, zp, counter, threads):
    """:func:`_depthwise_nhwc` with ``epi`` (8-bit codes out), its sums taken in float32 on the
    rows of the float reference's kernel (:mod:`hwsim.kernels.refdepthwise`: an input row made once
    per work item that needs it, here ``float32(x - zx)``; a 3x3 row's inner columns as runs of
    products, borders tap by tap) and the requantization as one loop over each output row. Exact:
    every product and partial sum is an integer of magnitude below 2**24 (the caller checks
    KH*KW * max|x - zx| * max|w| < 2**24), so float32 holds it as int32 does; the row sum plus its
    bias is then requantized as :func:`_depthwise_nhwc` does. ``wt`` (KH, KW, C) float32;
    ``bias`` int32, ``mult``, ``fmin``, ``fmax`` float32, ``zp`` int32, all (C,). A work item is
    :data:`_DW_ROWS` consecutive output rows (their input rows are shared). MobileNetV2 b8's ten
    depthwise shapes, one thread: 36.5 -> 25.5 ms (2026-11-27)."""
    c = xh.shape[3]
    kh, kw, _ = wt.shape
    ow = out.shape[2]
    chunk = max(1, _LONG_VALUES // c)
    wtile = _repeated(wt.reshape(kh * kw, c), chunk)
    span = min(chunk, ow) * c  # the epilogue's per-channel parameters repeated for a run of columns
    tiles = (np.empty(span, np.int32), np.empty(span, np.float32), np.empty(span, np.float32),
             np.empty(span, np.float32), np.empty(span, np.int32))
    for q in range(span):
        ch = q % c
        tiles[0][q], tiles[1][q], tiles[2][q], tiles[3][q], tiles[4][q] = bias[ch], mult[ch], fmin[ch], fmax[ch], zp[ch]
    for _ in prange(threads):
        _depthwise_codes_items(xh, np.float32(zx), wt, wtile, chunk, sh, sw, ph, pw, dh, dw, out, tiles, counter)


#: output rows per work item of :func:`_depthwise_codes`
_DW_ROWS = 8
#: no per-channel bias on the codes' rows (:func:`hwsim.kernels.refdepthwise._row_sums`)
_NO_BIAS = np.zeros(1)


@njit(cache=True, nogil=True)
def _depthwise_codes_items(xh, zf, wt, wtile, chunk, sh, sw, ph, pw, dh, dw, out, tiles, counter):
    """One thread's work items of :func:`_depthwise_codes` (a function of its own: its loops get
    512-bit vectors, which a ``prange`` body does not). The rows are ``float32(x) - zf``, exact
    (``zf`` the zero point as float32)."""
    prefer_zmm()
    n, h, w, c = xh.shape
    kh, kw, _ = wt.shape
    _, oh, ow, _ = out.shape
    xr, wr, outr = xh.reshape(n * h, w * c), wt.reshape(kh * kw, c), out.reshape(n * oh, ow * c)
    tb, tm, tlo, thi, tz = tiles
    span = tb.size
    lo_all, hi_all = _full_columns(kw, sw, pw, dw, w, ow)
    rows = np.zeros((kh, w * c), np.float32)
    tags = np.full(kh, -1, np.int64)
    slot = np.empty(kh, np.int64)
    acc = np.empty(ow * c, np.float32)
    zero = np.float32(0.0)
    blocks = -(-(n * oh) // _DW_ROWS)
    while True:
        blk = claim(counter)
        if blk >= blocks:
            break
        for item in range(blk * _DW_ROWS, min((blk + 1) * _DW_ROWS, n * oh)):
            _row_sums(xr, item // oh, item % oh, h, _NO_BIAS, False, zf, rows, tags, slot, wr, kw, sh, sw, ph, pw, dh, dw,
                     lo_all, hi_all, wtile, chunk, zero, acc)
            dst8 = outr[item]
            for o in range(0, ow * c, span):
                ou = np.uint64(o)
                for q in range(np.uint64(min(span, ow * c - o))):
                    v = np.float32(np.int32(acc[ou + q]) + tb[q])
                    dst8[ou + q] = np.int32(_ort1(v, tm[q], tlo[q], thi[q])) + tz[q]


_depthwise_codes_1 = serial(_depthwise_codes)



def depthwise_nhwc_codes(x, zx, w, stride, pads, dilation, out_hw, bias, mult, zp, lo, hi):
    """:func:`depthwise_nhwc` of 8-bit codes ``x`` by integer ``w`` (C, 1, KH, KW) (zero points
    subtracted) with the bias (C,) added and onnxruntime's requantization (``mult`` float32,
    ``zp`` per channel, output range [lo, hi] within uint8 or int8) in the kernel's own pass:
    8-bit codes (N, C, OH, OW), a view of channels-last data. The caller bounds every
    ``|sum + bias|`` below 2**31."""
    c = x.shape[1]
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wt = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), np.int32)
    per = lambda v, dt: np.ascontiguousarray(np.broadcast_to(np.asarray(v).reshape(-1), (c,)), dt)  # noqa: E731
    zp32 = per(zp, np.int32)
    epi = (per(bias, np.int32), per(mult, np.float32), (lo - zp32).astype(np.float32), (hi - zp32).astype(np.float32), zp32)
    out = np.empty((x.shape[0],) + tuple(out_hw) + (c,), np.uint8 if lo >= 0 else np.int8)
    taps, span = wt.shape[0] * wt.shape[1], max(abs(int(np.iinfo(x.dtype).min) - zx), abs(int(np.iinfo(x.dtype).max) - zx))
    if taps * span * (int(np.abs(wt).max()) if wt.size else 0) < F32_EXACT:  # float32 sums are exact
        kernel, split = pick(_depthwise_codes, _depthwise_codes_1, out.size * taps)
        kernel(xh, zx, wt.astype(np.float32), stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1], out,
               *epi, *split)
        return out.transpose(0, 3, 1, 2)
    kernel, split = pick(_depthwise_nhwc, _depthwise_nhwc_1, out.size * wt.shape[0] * wt.shape[1])
    kernel(xh, zx, wt, stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1], out, epi, *split)
    return out.transpose(0, 3, 1, 2)
