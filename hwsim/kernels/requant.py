"""Requantization of integer accumulators to 8/16/32-bit outputs, one kernel per reproduced library.

Every kernel takes ``acc`` as int64 (outer, C, inner), per-channel parameters of length C (axis 1),
the output bounds ``lo``/``hi`` and fills ``out`` (same shape, an integer type holding
[lo, hi]), in memory order, split
into work items of about ``_BLOCK`` elements (channels-last data is (N*H*W, C, 1)).

* ``_requant_exact``: ONNX reference evaluator (QLinearMatMul / QLinearConv):
  ``rint(float64(acc) * float64(m) + zp)``, then clip; ``m`` already computed in the scale dtype.
* ``_requant_ort``: onnxruntime MLAS ``MlasRequantizeOutput``: ``float32(acc) * float32(m)``
  clamped to ``[lo - zp, hi - zp]``, rounded half-even, plus ``zp``.
* ``_requant_fixed``: gemmlowp / TFLite fixed point, ``(q31, shift)`` per channel;
  double rounding (SaturatingRoundingDoublingHighMul then RoundingDivideByPOT) or single rounding
  (TFLITE_SINGLE_ROUNDING). ``acc`` must hold int32 values.
"""

import math

import numpy as np
from numba import njit, prange

from hwsim.kernels.canon import readonly
from hwsim.kernels.workqueue import claim, pick, serial

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


_BLOCK = 16384  # elements per work item


@njit(cache=True, nogil=True)
def _parts(nc, inner):
    """(work items per outer index, channels per item, inner elements per item) of an
    (outer, nc, inner) array: whole channels per item while they are short, else blocks of one."""
    if inner >= _BLOCK:
        return nc * ((inner + _BLOCK - 1) // _BLOCK), 1, _BLOCK
    g = max(1, _BLOCK // inner)
    return (nc + g - 1) // g, g, inner


@njit(cache=True, nogil=True)
def _take(counter, outer, nc, inner):
    """Claims the next work item of an (outer, nc, inner) array (:func:`_parts`) as
    (o, c0, c1, i0, i1), or o = -1 when none is left."""
    per, cg, ib = _parts(nc, inner)
    t = claim(counter)
    if t >= outer * per:
        return -1, 0, 0, 0, 0
    o, r = t // per, t % per
    if ib < inner:
        nib = (inner + ib - 1) // ib
        c, i0 = r // nib, (r % nib) * ib
        return o, c, c + 1, i0, min(i0 + ib, inner)
    c0 = r * cg
    return o, c0, min(c0 + cg, nc), 0, inner


@njit(cache=True, nogil=True, inline="always")
def _span(a, b):
    """``range(a, b)`` in unsigned indices (``0 <= a``): numba then adds no negative-index
    wraparound to the loop's loads and stores, which kept LLVM from vectorising it. A work item's
    bounds come from :func:`_take` at run time; with signed ones the channels-last requantization of
    MiniLM's (1024, 384) outputs ran at 2.5 ns an element against 0.6 (2026-11-27)."""
    return range(np.uint64(a), np.uint64(b))


@njit(cache=True, nogil=True, inline="always")
def _exact1(v, m, z, lo, hi):
    return np.int64(min(max(np.rint(np.float64(v) * m + z), lo), hi))


@njit(cache=True, nogil=True, parallel=True)
def _requant_exact(acc, mult, zp, lo, hi, out, counter, threads):
    outer, nc, inner = acc.shape
    z = zp.astype(np.float64)
    flo, fhi = np.float64(lo), np.float64(hi)
    for _ in prange(threads):
        while True:
            o, c0, c1, i0, i1 = _take(counter, outer, nc, inner)
            if o < 0:
                break
            if inner == 1:  # channels last: the contiguous loop runs over channels
                for c in _span(c0, c1):
                    out[o, c, 0] = _exact1(acc[o, c, 0], mult[c], z[c], flo, fhi)
            else:
                for c in range(c0, c1):
                    for i in _span(i0, i1):
                        out[o, c, i] = _exact1(acc[o, c, i], mult[c], z[c], flo, fhi)


@njit(cache=True, nogil=True, inline="always")
def _ort1(f, m, fmin, fmax):
    """MLAS requantization of ``f`` = float32(acc) before the zero point is added: the product
    rounded to float32, clamped to [lo - zp, hi - zp], rounded half-even (still float32)."""
    return np.rint(min(max(np.float32(f * m), fmin), fmax))


@njit(cache=True, nogil=True, parallel=True)
def _requant_ort(acc, mult, zp, lo, hi, out, counter, threads):
    """A work item whose accumulators all fit int32 (onnxruntime's own do) converts them to
    float32 through int32, and its results to integers through int32 when the clamp bounds fit
    it: both vectorise on AVX2, int64 <-> float32 does not. The values are the same either way."""
    outer, nc, inner = acc.shape
    m, fmin, fmax = np.empty(nc, np.float32), np.empty(nc, np.float32), np.empty(nc, np.float32)
    z = np.empty(nc, np.int32)
    small = True
    for c in range(nc):
        m[c], fmin[c], fmax[c], z[c] = mult[c], lo - zp[c], hi - zp[c], zp[c]
        small = small and max(abs(lo - zp[c]), abs(hi - zp[c])) < 2**30
    for _ in prange(threads):
        while True:
            o, c0, c1, i0, i1 = _take(counter, outer, nc, inner)
            if o < 0:
                break
            lo_v, hi_v = np.int64(0), np.int64(0)
            if inner == 1:  # channels last: the contiguous loops run over channels
                for c in _span(c0, c1):
                    lo_v, hi_v = min(lo_v, acc[o, c, 0]), max(hi_v, acc[o, c, 0])
            else:
                for c in range(c0, c1):
                    for i in _span(i0, i1):
                        lo_v, hi_v = min(lo_v, acc[o, c, i]), max(hi_v, acc[o, c, i])
            fast = small and lo_v >= -(2**31) and hi_v < 2**31
            if fast and inner == 1:
                for c in _span(c0, c1):
                    out[o, c, 0] = np.int32(_ort1(np.float32(np.int32(acc[o, c, 0])), m[c], fmin[c], fmax[c])) + z[c]
            elif fast:
                for c in range(c0, c1):
                    for i in _span(i0, i1):
                        out[o, c, i] = np.int32(_ort1(np.float32(np.int32(acc[o, c, i])), m[c], fmin[c], fmax[c])) + z[c]
            else:
                for c in range(c0, c1):
                    for i in _span(i0, i1):
                        out[o, c, i] = np.int64(_ort1(np.float32(acc[o, c, i]), m[c], fmin[c], fmax[c])) + zp[c]


@njit(cache=True, nogil=True)
def _srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64."""
    if a == INT32_MIN and b == INT32_MIN:
        return np.int64(INT32_MAX)
    ab = a * b
    nudge = np.int64(1 << 30) if ab >= 0 else np.int64(1 - (1 << 30))
    s = ab + nudge
    q = s // (np.int64(1) << 31) if s >= 0 else -((-s) // (np.int64(1) << 31))
    return q


@njit(cache=True, nogil=True)
def _rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT: divide by 2**exponent, round half away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@njit(cache=True, nogil=True)
def _wrap32(v):
    u = v & np.int64(0xFFFFFFFF)
    return u - (np.int64(1) << 32) if u > INT32_MAX else u


@njit(cache=True, nogil=True)
def _mul_fixed(x, q, shift, single):
    """TFLite MultiplyByQuantizedMultiplier (double or single rounding)."""
    if single:
        total = 31 - shift
        return (x * q + (np.int64(1) << (total - 1))) >> total
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return _rdbpot(_srdhm(_wrap32(x << left), q), right)


@njit(cache=True, nogil=True, parallel=True)
def _requant_fixed(acc, q31, shift, zp, lo, hi, single, out, counter, threads):
    outer, nc, inner = acc.shape
    for _ in prange(threads):
        while True:
            o, c0, c1, i0, i1 = _take(counter, outer, nc, inner)
            if o < 0:
                break
            if inner == 1:  # channels last: the contiguous loop runs over channels
                for c in _span(c0, c1):
                    v = _mul_fixed(acc[o, c, 0], q31[c], shift[c], single) + zp[c]
                    out[o, c, 0] = min(max(v, lo), hi)
                continue
            for c in range(c0, c1):
                for i in _span(i0, i1):
                    v = _mul_fixed(acc[o, c, i], q31[c], shift[c], single) + zp[c]
                    out[o, c, i] = min(max(v, lo), hi)


_requant_exact_1, _requant_ort_1, _requant_fixed_1 = (serial(f) for f in (_requant_exact, _requant_ort, _requant_fixed))


def quantize_multiplier(m, single_rounding=False):
    """TFLite ``QuantizeMultiplier``: real multiplier -> (Q31 int, shift), frexp, round half away.

    Parameters
    ----------
    m : float
        Real multiplier (dimensionless, >= 0), as float64.
    single_rounding : bool
        Apply the TFLITE_SINGLE_ROUNDING clamp ``shift <= 30``.

    Returns
    -------
    tuple of int
        ``(q31, shift)`` with ``m ~= q31 * 2**(shift - 31)``.
    """
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    x = q * 2.0**31
    fl = math.floor(x)
    q_fixed = fl + (1 if x - fl >= 0.5 else 0)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single_rounding and shift > 30:
        return 2**31 - 1, 30
    return int(q_fixed), int(shift)


def _out_dtype(lo, hi):
    """The narrowest integer type holding [lo, hi] (the outputs, clamped there)."""
    for dt in (np.uint8, np.int8, np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return dt
    return np.int64


def _input(x, dtype):
    """Per-channel multipliers or zero points as the kernels take them: ``dtype``, contiguous,
    read-only (one compiled signature whatever the caller passes; float32 multipliers are
    exact in float64, and both kernels read them as float64 or round them to float32 as before)."""
    return readonly(np.ascontiguousarray(x, dtype))


def requant_fixed(acc3, mults, zp, lo, hi, single):
    """Wrapper: per-channel float64 multipliers -> Q31 + shift, then :func:`_requant_fixed`;
    an array of the narrowest integer type holding [lo, hi]."""
    pairs = [quantize_multiplier(float(m), single) for m in mults]
    q31 = np.array([p[0] for p in pairs], np.int64)
    shift = np.array([p[1] for p in pairs], np.int64)
    out = np.empty(acc3.shape, _out_dtype(lo, hi))
    kernel, split = pick(_requant_fixed, _requant_fixed_1, acc3.size)
    kernel(acc3, readonly(q31), readonly(shift), _input(zp, np.int64), lo, hi, single, out, *split)
    return out


def requant_float(acc3, mults, zp, lo, hi, ort):
    """Wrapper of :func:`_requant_exact` (``ort`` False) or :func:`_requant_ort` (``ort`` True);
    an array of the narrowest integer type holding [lo, hi]."""
    out = np.empty(acc3.shape, _out_dtype(lo, hi))
    kernel, split = pick(*((_requant_ort, _requant_ort_1) if ort else (_requant_exact, _requant_exact_1)), acc3.size)
    kernel(acc3, _input(mults, np.float64), _input(zp, np.int64), lo, hi, out, *split)
    return out
