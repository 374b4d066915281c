"""Low-precision float matrix multiply with a modelled accumulator.

Inputs are float64 arrays whose values are representable in a narrow format (fp4 .. fp32), so
every product ``a[i, k] * b[k, j]`` is exact in float64. An accumulator step is
``acc = round_fmt(acc + p)`` with one rounding of the exact sum (fused): the float64 sum and its
TwoSum error are rounded together, the error breaking exact ties. ``round_fmt`` is round half to
even, subnormals kept, overflow to +-inf (fp32, fp16, bf16).

Orders (per output element):

* sequential: k = 0, 1, ..., K-1 into one accumulator starting at 0;
* pairwise: level 0 adds products (2t, 2t+1) with one rounding, an odd last product is rounded
  alone; each further level adds neighbours (2t, 2t+1) of the previous level, an odd last one
  moves up unchanged;
* blocked: sequential within blocks of ``block_k`` consecutive k (each from 0), then the block
  sums added sequentially in block order into an accumulator starting at 0.

The exact accumulator is Shewchuk's exact summation (``math.fsum``), rounded once to float64.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from hwsim.kernels import simdgemm

FMT_FP32, FMT_FP16, FMT_BF16 = 0, 1, 2
ORDER_SEQ, ORDER_PAIR, ORDER_BLOCK = 0, 1, 2
# (precision bits incl. the hidden one, exponent of the smallest subnormal, overflow threshold)
_P = np.array([24.0, 11.0, 8.0])
_QMIN = np.array([-149.0, -24.0, -133.0])
_THR = np.array([(2 - 2.0**-24) * 2.0**127, 65520.0, (2 - 2.0**-8) * 2.0**127])
MAX_PARTIALS = 128


@njit(cache=True, nogil=True)
def _round_fmt(s, err, fmt):
    """Round ``s + err`` (``err`` tiny: a TwoSum error) to format ``fmt``; result as float64."""
    if s == 0.0 or not np.isfinite(s):
        return s
    p, qmin, thr = int(_P[fmt]), int(_QMIN[fmt]), _THR[fmt]
    a = abs(s)
    e_mag = err if s > 0 else -err
    if a > thr or (a == thr and e_mag >= 0.0):
        return math.copysign(np.inf, s)
    _, e = math.frexp(a)
    q = max(e - p, qmin)
    sc = math.ldexp(a, -q)
    fl = math.floor(sc)
    frac = sc - fl
    if frac > 0.5 or (frac == 0.5 and (e_mag > 0.0 or (e_mag == 0.0 and fl % 2.0 == 1.0))):
        fl += 1.0
    return math.copysign(math.ldexp(fl, q), s)


@njit(cache=True, nogil=True)
def _add_round(acc, p, fmt):
    """One accumulator step: ``round_fmt(acc + p)`` with a single rounding."""
    s = acc + p
    bb = s - acc
    err = (acc - (s - bb)) + (p - bb)
    return _round_fmt(s, err, fmt)


@njit(cache=True, nogil=True)
def _round_array(x, fmt, out):
    for i in range(x.size):
        out[i] = _round_fmt(x[i], 0.0, fmt)


def round_array(x, fmt):
    """Round each value of ``x`` to format ``fmt`` (FMT_*; half to even, overflow to inf).

    Returns float64 of the shape of ``x``.
    """
    x = np.ascontiguousarray(x, np.float64)
    out = np.empty(x.size)
    _round_array(x.reshape(-1), fmt, out)
    return out.reshape(x.shape)


@njit(cache=True, nogil=True, parallel=True)
def _seq_blocked(a, b, fmt, block, out):
    """Sequential (``block >= K``) or blocked accumulation; ``out`` (M, N) float64."""
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        acc = np.zeros(n)
        part = np.zeros(n)
        for k0 in range(0, k, block):
            part[:] = 0.0
            for kk in range(k0, min(k, k0 + block)):
                aik = a[i, kk]
                for j in range(n):
                    part[j] = _add_round(part[j], aik * b[kk, j], fmt)
            for j in range(n):
                acc[j] = _add_round(acc[j], part[j], fmt)
        out[i, :] = acc


TILE_M, TILE_N = 8, 64


@njit(cache=True, nogil=True, parallel=True)
def _seq_fp32(a, b, out):
    """Sequential float32 accumulation (k ascending); valid when every product is exact in float32.

    ``a`` (M, K) and ``b`` (K, N) float32 with M a multiple of TILE_M and N of TILE_N. Each
    8 x 64 output tile keeps its accumulators in registers/L1 (constant trip counts let LLVM
    vectorise); the per-element order is unchanged.
    """
    m, k = a.shape
    n = b.shape[1]
    nti = m // TILE_M
    for t in prange(nti * (n // TILE_N)):  # row tiles fastest: a B panel is reused from L2
        i0, j0 = (t % nti) * TILE_M, (t // nti) * TILE_N
        acc = np.zeros((TILE_M, TILE_N), np.float32)
        for kk in range(k):
            bk = b[kk, j0:j0 + TILE_N]
            for r in range(TILE_M):
                air = a[i0 + r, kk]
                for j in range(TILE_N):
                    acc[r, j] += air * bk[j]
        out[i0:i0 + TILE_M, j0:j0 + TILE_N] = acc


def _pad_to(x, rows, cols):
    """``x`` zero-padded to a multiple of ``rows`` x ``cols`` (no copy when already aligned)."""
    pr, pc = -x.shape[0] % rows, -x.shape[1] % cols
    return np.pad(x, ((0, pr), (0, pc))) if pr or pc else x


def seq_fp32(a, b):
    """Wrapper of :func:`_seq_fp32` for any shape: pads, runs, crops; returns float64. On AVX2
    hosts the FMA register tile of :mod:`hwsim.kernels.simdgemm` (8 lanes, or 16 with AVX-512;
    same per-element order and roundings: the products are exact) runs instead, at about the
    speed of float32 BLAS."""
    if simdgemm.available():
        return simdgemm.seq_fp32(a, b).astype(np.float64)
    m, n = a.shape[0], b.shape[1]
    ap = _pad_to(np.ascontiguousarray(a, np.float32), TILE_M, 1)
    bp = _pad_to(np.ascontiguousarray(b, np.float32), 1, TILE_N)
    out = np.empty((ap.shape[0], bp.shape[1]), np.float32)
    _seq_fp32(ap, bp, out)
    return out[:m, :n].astype(np.float64)


@njit(cache=True, nogil=True, parallel=True)
def _pairwise(a, b, fmt, out):
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        buf = np.empty(k)
        for j in range(n):
            cnt = 0
            for t in range(0, k - 1, 2):
                buf[cnt] = _add_round(a[i, t] * b[t, j], a[i, t + 1] * b[t + 1, j], fmt)
                cnt += 1
            if k % 2 == 1:
                buf[cnt] = _round_fmt(a[i, k - 1] * b[k - 1, j], 0.0, fmt)
                cnt += 1
            while cnt > 1:
                for t in range(0, cnt - 1, 2):
                    buf[t // 2] = _add_round(buf[t], buf[t + 1], fmt)
                if cnt % 2 == 1:
                    buf[cnt // 2] = buf[cnt - 1]
                cnt = (cnt + 1) // 2
            out[i, j] = buf[0] if k > 0 else 0.0


@njit(cache=True, nogil=True)
def _fsum_add(partials, n, x):
    """Add ``x`` to Shewchuk's non-overlapping ``partials[:n]``; returns the new count."""
    i = 0
    for t in range(n):
        y = partials[t]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            partials[i] = lo
            i += 1
        x = hi
    partials[i] = x
    return i + 1


@njit(cache=True, nogil=True)
def _fsum_result(partials, n):
    """Correctly rounded float64 value of ``sum(partials[:n])`` (CPython ``math.fsum`` ending)."""
    if n == 0:
        return 0.0
    n -= 1
    hi = partials[n]
    lo = 0.0
    while n > 0:
        x = hi
        n -= 1
        y = partials[n]
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            break
    if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        if y == x - hi:
            hi = x
    return hi


@njit(cache=True, nogil=True, parallel=True)
def _exact_dot(a, b, out):
    """Exactly summed ``a @ b`` rounded once to float64 (Shewchuk / fsum)."""
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        partials = np.empty(MAX_PARTIALS)
        for j in range(n):
            cnt = 0
            for kk in range(k):
                cnt = _fsum_add(partials, cnt, a[i, kk] * b[kk, j])
            out[i, j] = _fsum_result(partials, cnt)


_DEBRUIJN = 0x03F79D71B4CB0A89
_CTZ_TABLE = np.zeros(64, np.int64)
for _i in range(64):
    _CTZ_TABLE[((((1 << _i) * _DEBRUIJN) & (2**64 - 1)) >> 58)] = _i


@njit(cache=True, nogil=True)
def _ctz(v):
    """Trailing zeros of a positive int64 (de Bruijn multiply; wraps like uint64)."""
    low = np.uint64(v & -v)
    return _CTZ_TABLE[np.int64((low * np.uint64(_DEBRUIJN)) >> np.uint64(58))]


@njit(cache=True, nogil=True)
def _bitlen(v):
    """Number of bits of a positive int64 (position of the highest set bit + 1)."""
    return math.frexp(np.float64(v))[1]


@njit(cache=True, nogil=True)
def _stats_subnormal(u, mbits, bias):
    """Scalar pass over the subnormals of ``u`` (see :func:`_stats_bits`)."""
    bits, lo_key, hi_exp = 0, 10**6, -(10**6)
    body = (np.int64(1) << (mbits + (11 if mbits == 52 else 8))) - 1
    for t in range(u.size):
        w = np.int64(u[t]) & body
        if w != 0 and (w >> mbits) == 0:
            tz = _ctz(w)
            bits = max(bits, _bitlen(w) - tz)
            lo_key = min(lo_key, 1 + tz)
            hi_exp = max(hi_exp, 1 - mbits + _bitlen(w))
    return bits, lo_key - bias - mbits, hi_exp - bias


@njit(cache=True, nogil=True)
def _stats_bits(u, mbits, bias):
    """Over the non-zero finite floats whose bit patterns are ``u`` (IEEE, ``mbits`` mantissa bits,
    exponent ``bias``): (max significant bits, min exponent of the last set bit, max e with
    |x| < 2**e).

    Serial on purpose: a numba thread pool spinning next to BLAS threads slows both. Trailing
    zeros come from the exponent of ``float64(mant & -mant)``, read through an array view, so
    both loops vectorise.
    """
    hidden = np.int64(1) << mbits
    body = (np.int64(1) << (mbits + (11 if mbits == 52 else 8))) - 1
    buf = np.empty(1024)
    view = buf.view(np.int64)
    ebs = np.empty(1024, np.int64)
    min_tz, lo_key, max_eb, n_sub = 10**6, 10**6, -(10**6), 0
    for s0 in range(0, u.size, 1024):
        cnt = min(1024, u.size - s0)
        for t in range(cnt):
            w = np.int64(u[s0 + t]) & body
            e_b = w >> mbits
            normal = e_b > 0
            n_sub += (w != 0) and not normal
            mant = (w & (hidden - 1)) | hidden
            buf[t] = np.float64(mant & -mant) if normal else 2.0**60
            ebs[t] = e_b if normal else 10**6
            max_eb = max(max_eb, e_b)
        for t in range(cnt):
            tz = (view[t] >> 52) - 1023
            min_tz = min(min_tz, tz)
            lo_key = min(lo_key, ebs[t] + tz)
    bits = mbits + 1 - min_tz if min_tz < 60 else 0
    lsb = lo_key - bias - mbits if min_tz < 60 else 10**6
    top = max_eb + 1 - bias if min_tz < 60 else -(10**6)
    if n_sub:
        sb, sl, st = _stats_subnormal(u, mbits, bias)
        bits, lsb, top = max(bits, sb), min(lsb, sl), max(top, st)
    return bits, lsb, top


def _stats(x):
    """:func:`_stats_bits` of a contiguous float32 or float64 array (exact; a scalar pass)."""
    x = np.ascontiguousarray(x).reshape(-1)
    if x.dtype == np.float32:
        return _stats_bits(x.view(np.int32), 23, 127)
    return _stats_bits(x.astype(np.float64, copy=False).view(np.int64), 52, 1023)


_BIG = 2**63 - 1  # above every float64 pattern with the sign cleared


@njit(cache=True, nogil=True)
def _scan_bits(u, mbits, ebits):
    """Over float bit patterns ``u`` (int32 or int64) with ``mbits`` mantissa and ``ebits``
    exponent bits, sign cleared: (the largest, the smallest normal, the smallest non-zero, the OR
    of the normals' patterns); ``_BIG`` where there is none. Independent min/max/or reductions,
    so LLVM vectorises the loop: 7.5 ms for 16M float32 here, where :func:`_stats_bits` took
    42-60 ms (2026-11-26, load 4-7)."""
    body = (np.int64(1) << (mbits + ebits)) - 1
    hidden = np.int64(1) << mbits
    big = np.int64(_BIG)
    max_w, min_norm, min_nz, or_n = np.int64(0), big, big, np.int64(0)
    for t in range(u.size):
        w = u[t] & body
        normal = w >= hidden
        max_w = max(max_w, w)
        min_nz = min(min_nz, w if w != 0 else big)
        min_norm = min(min_norm, w if normal else big)
        or_n |= w if normal else hidden
    return max_w, min_norm, min_nz, or_n


class Scan(NamedTuple):
    """What one pass over an operand tells (:func:`scan`), over its non-zero values: ``finite``;
    ``bits`` the most significant bits of one value; ``lsb`` a lower bound of the least exponent
    of a last set bit (the least exponent plus the fewest trailing zeros; :func:`_stats` has the
    exact value); ``top`` the least e with every ``|x| < 2**e``. (0, 10**6, -10**6) without
    non-zero values, as :func:`_stats_bits`."""
    finite: bool
    bits: int
    lsb: int
    top: int


def scan(x) -> Scan:
    """:class:`Scan` of a float32 or float64 array (other float types are read as float64), in one
    pass at memory speed; subnormals, where present, in a second exact scalar pass."""
    x = np.ascontiguousarray(x).reshape(-1)
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    mbits, ebits, bias = (23, 8, 127) if x.dtype == np.float32 else (52, 11, 1023)
    u = x.view(np.int32 if x.dtype == np.float32 else np.int64)
    max_w, min_norm, min_nz, or_n = (int(v) for v in _scan_bits(u, mbits, ebits))
    finite = (max_w >> mbits) < (1 << ebits) - 1
    bits, lsb, top = 0, 10**6, -(10**6)
    if min_norm < _BIG:
        mant = (or_n & ((1 << mbits) - 1)) | (1 << mbits)
        tz = (mant & -mant).bit_length() - 1
        bits, lsb, top = mbits + 1 - tz, (min_norm >> mbits) + tz - bias - mbits, (max_w >> mbits) + 1 - bias
    if min_nz < (1 << mbits):  # subnormals
        sb, sl, st = _stats_subnormal(u, mbits, bias)
        bits, lsb, top = max(bits, sb), min(lsb, sl), max(top, st)
    return Scan(finite, bits, lsb, top)


def _holds(a, b, sa, sb, rule) -> bool:
    """``rule(bits_a, lsb_a, top_a, bits_b, lsb_b, top_b)`` on the exact stats of ``a`` and ``b``.
    Tried first on the scans ``sa``, ``sb`` (:func:`scan` where None), whose ``lsb`` is a lower
    bound: every rule here only holds more easily for a larger lsb, so where it holds on the
    bound it holds; where not, it is decided on the exact :func:`_stats`."""
    sa, sb = sa or scan(a), sb or scan(b)
    if rule(*sa[1:], *sb[1:]):
        return True
    if not rule(sa.bits, 10**6, sa.top, sb.bits, 10**6, sb.top):
        return False  # fails whatever the lsbs are
    return rule(*_stats(a), *_stats(b))


@njit(cache=True, nogil=True, parallel=True)
def _mx(a, sa, b, sb, block, fmt, out):
    """MX dot: exact block dots (fsum) times both scales, accumulated over blocks in ``fmt``
    (blocks in ascending k; ``fmt`` < 0 means exact over all products)."""
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        blk, tot = np.empty(MAX_PARTIALS), np.empty(MAX_PARTIALS)
        for j in range(n):
            acc, ct = 0.0, 0
            for q in range(sa.shape[1]):
                cb = 0
                for kk in range(q * block, min(k, q * block + block)):
                    cb = _fsum_add(blk, cb, a[i, kk] * b[kk, j])
                scale = sa[i, q] * sb[q, j]
                if fmt < 0:
                    for t in range(cb):
                        ct = _fsum_add(tot, ct, blk[t] * scale)
                else:
                    acc = _add_round(acc, _fsum_result(blk, cb) * scale, fmt)
            out[i, j] = _fsum_result(tot, ct) if fmt < 0 else acc


def products_exact_in_f32(a, b, sa=None, sb=None):
    """True when every ``a[i, k] * b[k, j]`` is exactly representable in float32 (``sa``, ``sb``:
    the operands' :func:`scan` where the caller has it)."""
    return _holds(a, b, sa, sb, lambda ba, la, ta, bb, lb, tb: ba + bb <= 24 and la + lb >= -149 and ta + tb <= 128)


def blas_is_exact(a, b, sa=None, sb=None):
    """True when float64 BLAS computes ``a @ b`` exactly (all partial sums representable)."""
    lk = math.ceil(math.log2(max(a.shape[1], 1)))
    return _holds(a, b, sa, sb, lambda ba, la, ta, bb, lb, tb: ba + bb <= 53 and (ta + tb + lk) - (la + lb) <= 53)


def float_matmul(a, b, fmt, order, block, scans=(None, None)):
    """Wrapper: float32/float64 (M, K) @ (K, N), accumulator ``fmt`` (-1 = exact), ``order``;
    ``scans`` the operands' :func:`scan` where the caller has them.

    Exact sums use float64 BLAS when :func:`blas_is_exact` proves it exact, else fsum.
    """
    out = np.empty((a.shape[0], b.shape[1]))
    if fmt < 0 and blas_is_exact(a, b, *scans):
        return np.matmul(a.astype(np.float64), b.astype(np.float64), out=out)
    if fmt == FMT_FP32 and order == ORDER_SEQ and products_exact_in_f32(a, b, *scans):
        return seq_fp32(a, b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    if fmt < 0:
        _exact_dot(a, b, out)
    elif order == ORDER_PAIR:
        _pairwise(a, b, fmt, out)
    else:
        _seq_blocked(a, b, fmt, block if order == ORDER_BLOCK else max(a.shape[1], 1), out)
    return out


def mx_matmul(a, sa, b, sb, block, fmt):
    """Wrapper of :func:`_mx`; ``sa`` (M, K/block), ``sb`` (K/block, N) power-of-two scales."""
    out = np.empty((a.shape[0], b.shape[1]))
    f64 = [np.ascontiguousarray(x, np.float64) for x in (a, sa, b, sb)]
    _mx(f64[0], f64[1], f64[2], f64[3], block, fmt, out)
    return out
