"""Requantization of integer accumulators to 8/16/32-bit outputs, one kernel per reproduced library.

Every kernel takes ``acc`` as int64 (outer, C, inner), per-channel parameters of length C (axis 1),
the output bounds ``lo``/``hi`` and fills ``out`` (same shape, int64), in memory order, split
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

from hwsim.kernels.workqueue import claim, split

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


_BLOCK = 16384  # elements per work item


@njit(cache=True)
def _parts(nc, inner):
    """(work items per outer index, channels per item, inner elements per item) of an
    (outer, nc, inner) array: whole channels per item while they are short, else blocks of one."""
    if inner >= _BLOCK:
        return nc * ((inner + _BLOCK - 1) // _BLOCK), 1, _BLOCK
    g = max(1, _BLOCK // inner)
    return (nc + g - 1) // g, g, inner


@njit(cache=True)
def _span(t, per, nc, inner, cg, ib):
    """Work item ``t`` (of ``outer * per``, :func:`_parts`) as (o, c0, c1, i0, i1)."""
    o, r = t // per, t % per
    if ib < inner:
        nib = (inner + ib - 1) // ib
        c, i0 = r // nib, (r % nib) * ib
        return o, c, c + 1, i0, min(i0 + ib, inner)
    c0 = r * cg
    return o, c0, min(c0 + cg, nc), 0, inner


@njit(cache=True, parallel=True)
def _requant_exact(acc, mult, zp, lo, hi, out, counter, threads):
    outer, nc, inner = acc.shape
    per, cg, ib = _parts(nc, inner)
    for _ in prange(threads):
        while True:
            t = claim(counter)
            if t >= outer * per:
                break
            o, c0, c1, i0, i1 = _span(t, per, nc, inner, cg, ib)
            for c in range(c0, c1):
                m = np.float64(mult[c])
                z = np.float64(zp[c])
                for i in range(i0, i1):
                    d = np.float64(acc[o, c, i]) * m
                    d = d + z
                    r = np.rint(d)
                    out[o, c, i] = np.int64(min(max(r, np.float64(lo)), np.float64(hi)))


@njit(cache=True, parallel=True)
def _requant_ort(acc, mult, zp, lo, hi, out, counter, threads):
    outer, nc, inner = acc.shape
    per, cg, ib = _parts(nc, inner)
    m, fmin, fmax = np.empty(nc, np.float32), np.empty(nc, np.float32), np.empty(nc, np.float32)
    for c in range(nc):
        m[c], fmin[c], fmax[c] = mult[c], lo - zp[c], hi - zp[c]
    for _ in prange(threads):
        while True:
            t = claim(counter)
            if t >= outer * per:
                break
            o, c0, c1, i0, i1 = _span(t, per, nc, inner, cg, ib)
            for c in range(c0, c1):
                for i in range(i0, i1):
                    f = np.float32(np.float32(acc[o, c, i]) * m[c])
                    f = min(max(f, fmin[c]), fmax[c])
                    out[o, c, i] = np.int64(np.rint(f)) + zp[c]


@njit(cache=True)
def _srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64."""
    if a == INT32_MIN and b == INT32_MIN:
        return np.int64(INT32_MAX)
    ab = a * b
    nudge = np.int64(1 << 30) if ab >= 0 else np.int64(1 - (1 << 30))
    s = ab + nudge
    q = s // (np.int64(1) << 31) if s >= 0 else -((-s) // (np.int64(1) << 31))
    return q


@njit(cache=True)
def _rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT: divide by 2**exponent, round half away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@njit(cache=True)
def _wrap32(v):
    u = v & np.int64(0xFFFFFFFF)
    return u - (np.int64(1) << 32) if u > INT32_MAX else u


@njit(cache=True)
def _mul_fixed(x, q, shift, single):
    """TFLite MultiplyByQuantizedMultiplier (double or single rounding)."""
    if single:
        total = 31 - shift
        return (x * q + (np.int64(1) << (total - 1))) >> total
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return _rdbpot(_srdhm(_wrap32(x << left), q), right)


@njit(cache=True, parallel=True)
def _requant_fixed(acc, q31, shift, zp, lo, hi, single, out, counter, threads):
    outer, nc, inner = acc.shape
    per, cg, ib = _parts(nc, inner)
    for _ in prange(threads):
        while True:
            t = claim(counter)
            if t >= outer * per:
                break
            o, c0, c1, i0, i1 = _span(t, per, nc, inner, cg, ib)
            for c in range(c0, c1):
                for i in range(i0, i1):
                    v = _mul_fixed(acc[o, c, i], q31[c], shift[c], single) + zp[c]
                    out[o, c, i] = min(max(v, lo), hi)


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


def requant_fixed(acc3, mults, zp, lo, hi, single):
    """Wrapper: per-channel float64 multipliers -> Q31 + shift, then :func:`_requant_fixed`."""
    pairs = [quantize_multiplier(float(m), single) for m in mults]
    q31 = np.array([p[0] for p in pairs], np.int64)
    shift = np.array([p[1] for p in pairs], np.int64)
    out = np.empty(acc3.shape, np.int64)
    _requant_fixed(acc3, q31, shift, zp, lo, hi, single, out, *split())
    return out


def requant_float(acc3, mults, zp, lo, hi, ort):
    """Wrapper of :func:`_requant_exact` (``ort`` False) or :func:`_requant_ort` (``ort`` True)."""
    out = np.empty(acc3.shape, np.int64)
    (_requant_ort if ort else _requant_exact)(acc3, mults, zp, lo, hi, out, *split())
    return out
