"""Integer matrix-multiply kernels with a P-bit accumulator.

Summation order, for every kernel here: for each output element, k ascending (k = 0, 1, ..., K-1).
Only the saturating accumulator and the int16-pair mode depend on that order; a wrapping
accumulator equals the exact sum modulo 2**P whatever the order.

Exact sums of operands that fit int16 (8-bit codes, codes minus zero points) run on the AVX2 or
AVX-512 VNNI multiply-add kernels of :mod:`hwsim.kernels.simdgemm` where the host has them; otherwise they
use BLAS (a stacked ``np.matmul`` in the wrapper): operands are centred (``x - c``),
converted to float32 and multiplied in K chunks short enough that every partial sum is an integer
of magnitude <= 2**24 (float64 and 2**53 when products are too wide); chunks are added in int64,
and the centring is undone with row and column sums. Integer-valued floats below those bounds are
exact whatever order or FMA use BLAS picks. Operands wider than that (int32 x int32) use the
sequential int64 loop.
"""

import numpy as np
from numba import njit, prange

from hwsim.kernels import simdgemm

MODE_NONE, MODE_WRAP, MODE_SATURATE = 0, 1, 2
F32_EXACT = 2**24
F64_EXACT = 2**53


@njit(cache=True, nogil=True)
def _wrap(v, bits):
    """Two's-complement wrap of int64 ``v`` to ``bits`` bits (2 <= bits <= 64)."""
    if bits >= 64:
        return v
    span = np.int64(1) << bits
    half = np.int64(1) << (bits - 1)
    u = v & (span - 1)
    return u - span if u >= half else u


@njit(cache=True, nogil=True)
def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(cache=True, nogil=True)
def _pack_a(a, ca, ap, rows):
    """(M, K) integer -> ``ap`` (nchunk, M, chunk) float holding ``a - ca``; ``rows`` = row sums."""
    m, k = a.shape
    nchunk, _, chunk = ap.shape
    for i in range(m):
        s = np.int64(0)
        for q in range(nchunk):
            for r in range(min(chunk, k - q * chunk)):
                v = np.int64(a[i, q * chunk + r]) - ca
                ap[q, i, r] = v
                s += v
        rows[i] = s


@njit(cache=True, nogil=True)
def _pack_b(b, cb, bp, cols, narrow):
    """(K, N) integer -> ``bp`` (nchunk*chunk, N) float holding ``b - cb``; ``cols`` = col sums.

    With ``narrow`` (8-bit ``b``) row by row in int32 with column partial sums flushed every
    4096 rows (no int32 overflow), so the inner loop vectorises.
    """
    k, n = b.shape
    part = np.zeros(n, np.int32)
    c32 = np.int32(cb) if narrow else np.int32(0)
    for kk in range(k):
        if narrow:
            for j in range(n):
                v = np.int32(b[kk, j]) - c32
                bp[kk, j] = v
                part[j] += v
        else:
            for j in range(n):
                v = np.int64(b[kk, j]) - cb
                bp[kk, j] = v
                cols[j] += v
        if kk % 4096 == 4095 or kk == k - 1:
            for j in range(n):
                cols[j] += part[j]
                part[j] = 0


@njit(cache=True, nogil=True)
def _reduce(parts, rows, cols, ca, cb, k, bits, mode, out):
    """``out`` = sum of chunk products + centring terms, wrapped to ``bits`` if ``mode`` is wrap."""
    nchunk, m, n = parts.shape
    kcc = np.int64(k) * ca * cb
    for i in range(m):
        base = cb * rows[i] + kcc
        for j in range(n):
            v = base + ca * cols[j]
            for q in range(nchunk):
                v += np.int64(parts[q, i, j])
            out[i, j] = _wrap(v, bits) if mode == MODE_WRAP else v


@njit(cache=True, nogil=True)
def _accumulate(acc, v, bits, mode, lo, hi):
    s = acc + v
    if mode == MODE_SATURATE:
        return _clamp(s, lo, hi)
    if mode == MODE_WRAP:
        return _wrap(s, bits)
    return s


@njit(cache=True, nogil=True, parallel=True)
def _loop_matmul(a, b, bits, mode, pairwise):
    """Sequential int64 ``a @ b``, k ascending, accumulator of ``bits`` bits.

    With ``pairwise`` the products of k = 2t and 2t+1 are added and saturated to int16 first
    (x86 VPMADDUBSW); an odd last k is a pair with a zero.
    """
    m, k = a.shape
    n = b.shape[1]
    lo = -(np.int64(1) << (bits - 1)) if bits < 64 else np.iinfo(np.int64).min
    hi = (np.int64(1) << (bits - 1)) - 1 if bits < 64 else np.iinfo(np.int64).max
    out = np.zeros((m, n), np.int64)
    step = 2 if pairwise else 1
    for i in prange(m):
        acc = np.zeros(n, np.int64)
        for k0 in range(0, k, step):
            a0 = np.int64(a[i, k0])
            a1 = np.int64(a[i, k0 + 1]) if (pairwise and k0 + 1 < k) else np.int64(0)
            for j in range(n):
                v = a0 * np.int64(b[k0, j])
                if pairwise:
                    if k0 + 1 < k:
                        v += a1 * np.int64(b[k0 + 1, j])
                    v = _clamp(v, np.int64(-32768), np.int64(32767))
                acc[j] = _accumulate(acc[j], v, bits, mode, lo, hi)
        out[i, :] = acc
    return out


@njit(cache=True, nogil=True)
def _col_bounds(b, bmin, bmax):
    k, n = b.shape
    for kk in range(k):
        lo = np.int64(b[kk, 0])
        hi = lo
        for j in range(1, n):
            v = np.int64(b[kk, j])
            lo = min(lo, v)
            hi = max(hi, v)
        bmin[kk], bmax[kk] = lo, hi


@njit(cache=True, nogil=True, parallel=True)
def _pair_excess(a, b, bmin, bmax, out):
    """``out[i, j]`` = sum over pairs t of ``p - clamp(p, -32768, 32767)``, where
    ``p = a[i, 2t] * b[2t, j] + a[i, 2t+1] * b[2t+1, j]`` (an odd last k pairs with 0).

    So ``sum_t clamp(p) = a @ b - out`` exactly: the int16-saturated pair sum of VPMADDUBSW
    from the exact (BLAS) product. A pair is visited only if it can saturate for some j:
    ``p <= max(a0 * bmax[2t], a0 * bmin[2t]) + max(a1 * bmax[2t+1], a1 * bmin[2t+1])`` (and the
    same with min for the lower bound), with ``bmin``/``bmax`` the extremes of each row of ``b``;
    when both bounds are inside int16 no j saturates and the pair adds 0.
    """
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        for k0 in range(0, k, 2):
            a0 = np.int64(a[i, k0])
            hi = max(a0 * bmax[k0], a0 * bmin[k0])
            lo = min(a0 * bmax[k0], a0 * bmin[k0])
            a1 = np.int64(0)
            if k0 + 1 < k:
                a1 = np.int64(a[i, k0 + 1])
                hi += max(a1 * bmax[k0 + 1], a1 * bmin[k0 + 1])
                lo += min(a1 * bmax[k0 + 1], a1 * bmin[k0 + 1])
            if hi <= 32767 and lo >= -32768:
                continue
            for j in range(n):
                p = a0 * np.int64(b[k0, j])
                if k0 + 1 < k:
                    p += a1 * np.int64(b[k0 + 1, j])
                if p > 32767:
                    out[i, j] += p - 32767
                elif p < -32768:
                    out[i, j] += p + 32768


def wrap_array(v, bits):
    """Two's-complement wrap of an int64 array to ``bits`` bits (2 <= bits <= 64)."""
    if bits >= 64:
        return v
    half = np.int64(1) << (bits - 1)
    if v.size and -half <= v.min() and v.max() < half:  # two read passes instead of four with temporaries
        return v
    return ((v + half) & ((np.int64(1) << bits) - 1)) - half


def pairwise_matmul(a, b):
    """int64 sum over pairs t of clamp16(a[:, 2t] b[2t] + a[:, 2t+1] b[2t+1]) (VPMADDUBSW pairs;
    an odd last k pairs with 0): the AVX2 kernel itself when ``a`` is in [0, 255] and ``b`` in
    [-128, 127] (what the instruction multiplies), else the exact product minus :func:`pair_excess`."""
    a, b = _native(a), _native(b)
    if a.size and b.size and simdgemm.available() and _within(a, 0, 255) and _within(b, -128, 127):
        return simdgemm.maddubs(a.astype(np.uint8, copy=False), b.astype(np.int8, copy=False))
    return exact_matmul(a, b) - pair_excess(a, b)


def _within(x, lo, hi) -> bool:
    """True if every value of ``x`` is in [lo, hi] (from the dtype alone when it says so)."""
    info = np.iinfo(x.dtype)
    return (lo <= info.min and info.max <= hi) or (lo <= int(x.min()) and int(x.max()) <= hi)


def _narrowest(x: np.ndarray, bound: int) -> np.ndarray:
    """Integer ``x`` with ``|x| <= bound`` as int8 or int16 when its type is wider and the bound
    fits (the same values): the SIMD tiles read 8-bit operands on VPDPBUSD and int16 ones as they
    are, where int64 codes (what ``qspec.codes`` gives a 4-bit or 16-bit format) were packed from
    int64 on the int16 route: a 4-bit weight's int64 codes times int8 activations, one thread,
    1024 x 384 x 384 3.78 -> 2.34 ms, 1024 x 1536 x 384 14.5 -> 6.0 (2026-11-27)."""
    if bound <= 127 and x.dtype.itemsize > 1:
        return x.astype(np.int8)
    if bound <= 32767 and x.dtype.itemsize > 2:
        return x.astype(np.int16)
    return x


def _sixteen_bit(a: np.ndarray, bound: int) -> np.ndarray | None:
    """Integer ``a`` (``|a| <= bound``) as int16 or uint16 when its values fit one (the same
    values; 16-bit arrays as they are), else None. Only a bound above 32767 costs a pass over
    ``a``: -32768 codes (a symmetric int16 format's lowest) or uint16 values. Measured: MiniLM-L6's
    16-bit activation codes held -32768 in 14 of 74 products of its solve's two plans, which then
    left the VPDPBUSD tiles for float BLAS chunks (1024 x 384 x 384, one thread: 11 against 4.5 ms)."""
    if a.dtype.itemsize == 2:
        return a
    if bound <= 32767:
        return a.astype(np.int16)
    if bound > 65535 or not a.size:
        return None
    lo, hi = int(a.min()), int(a.max())
    if -32768 <= lo and hi <= 32767:
        return a.astype(np.int16)
    return a.astype(np.uint16) if lo >= 0 and hi <= 65535 else None


def _dot_byte_planes(a: np.ndarray, b: np.ndarray, bound_b: int) -> np.ndarray:
    """Exact int64 ``a @ b`` of 16-bit ``a`` and 8-bit ``b`` as two 8-bit products on the VPDPBUSD
    tiles (:func:`byte_planes`, :func:`from_planes`). 16-bit activations times int8 weights
    (MiniLM-L6's w8a16 layers, one thread, 1024 rows): 1024x384x384 7.2 -> 4.3 ms, x384x1536
    30.9 -> 17.9, x1536x384 26.6 -> 11.7 against the int16 route (VPDPWSSD). Requires
    :func:`simdgemm.wide`."""
    hi, lo = byte_planes(a)
    return from_planes(simdgemm.madd16(hi, b, 255, bound_b), simdgemm.madd16(lo, b, 255, bound_b))


def byte_planes(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) of int16 or uint16 ``a`` with ``a = 256 hi + lo`` exactly: ``hi = a >> 8`` (int8, or
    uint8 for uint16 ``a``), ``lo = a & 255`` (uint8). A Python int splits the same way
    (``v >> 8``, ``v & 255``: a padding value stays consistent with the planes it pads)."""
    return (a >> 8).astype(np.int8 if a.dtype.kind == "i" else np.uint8), (a & 0xFF).astype(np.uint8)


def from_planes(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``256 hi + lo`` of the int64 results of a linear map of the two :func:`byte_planes`, in
    ``hi``'s array (which this overwrites)."""
    hi <<= 8
    hi += lo
    return hi


def abs_bound(x) -> int:
    """A bound on |x|: the dtype's for 8-bit arrays (no pass over them), else the values' (0 if empty)."""
    if x.dtype.itemsize == 1:
        return _BOUND_8BIT[x.dtype.kind]
    return max(-int(x.min()), int(x.max())) if x.size else 0


#: |x| bounds of 8-bit integer types by dtype kind (np.iinfo costs ~3 us a call; simulate asks for
#: hundreds of bounds a run)
_BOUND_8BIT = {"i": 128, "u": 255, "b": 1}


def value_bound(x) -> int:
    """max |x| over the values of integer ``x`` (0 if empty): :func:`abs_bound` at its tightest."""
    return max(-int(x.min()), int(x.max())) if x.size else 0


def pair_excess(a, b):
    """What int16 pair saturation removes from ``a @ b`` (:func:`_pair_excess`); int64 (M, N)."""
    a, b = _native(a), _native(b)
    bmin, bmax = np.zeros(b.shape[0], np.int64), np.zeros(b.shape[0], np.int64)
    out = np.zeros((a.shape[0], b.shape[1]), np.int64)
    if out.size and a.shape[1]:
        _col_bounds(b, bmin, bmax)
        _pair_excess(a, b, bmin, bmax, out)
    return out


def plan_exact(a_min, a_max, b_min, b_max, k):
    """Centres and chunk length for :func:`exact_matmul`.

    Parameters
    ----------
    a_min, a_max, b_min, b_max : int
        Value ranges of the operands.
    k : int
        Reduction length.

    Returns
    -------
    tuple or None
        ``(ca, cb, chunk, use_f32)``, or None when even float64 chunks of 1 are not exact.
    """
    # Proof of exactness. With a' = a - ca, b' = b - cb: |a'| <= ra, |b'| <= rb, so every product is
    # an integer with |a'b'| <= ra * rb = prod, and every partial sum of a chunk of L terms, in
    # whatever order or FMA grouping BLAS uses, is an integer of magnitude <= L * prod. float32
    # represents every integer of magnitude <= 2**24 exactly, and a sum or FMA of two exactly
    # represented values whose exact result is such an integer is that integer (round-to-nearest
    # of a representable value is itself). So with L <= 2**24 // prod every intermediate is exact
    # by induction over the additions; likewise float64 with 2**53. 8-bit x 8-bit: ca, cb centre
    # the ranges so ra, rb <= 128, prod <= 16384, L = 1024 (int8 x int8 uncentred: 2**24 //
    # (128 * 128) = 1024 as well). Chunk results are added in int64 by _reduce.
    ca, cb = (a_min + a_max) // 2, (b_min + b_max) // 2
    ra = max(a_max - ca, ca - a_min, 1)
    rb = max(b_max - cb, cb - b_min, 1)
    prod = ra * rb
    if F32_EXACT // prod >= min(k, 256):
        return ca, cb, int(min(k, F32_EXACT // prod)), True
    if F64_EXACT // prod >= 1:
        return ca, cb, int(min(k, F64_EXACT // prod)), False
    return None


def _native(x):
    """int8/uint8 arrays as they are (fast path), anything else as int64 (fewer compilations)."""
    return x if x.dtype in (np.int8, np.uint8) else np.ascontiguousarray(x, np.int64)


def exact_matmul(a, b, bits=64, wrap=False, bounds=None):
    """Exact int64 ``a @ b`` of 2-D integer arrays, optionally wrapped to ``bits`` bits;
    ``bounds`` (optional): (bound on |a|, bound on |b|) known to the caller (no pass over the
    operands to find them).

    The chunk products are one stacked ``np.matmul`` called here rather than ``np.dot`` inside
    numba: numba reaches BLAS through SciPy's build, measured 3x slower than NumPy's on this
    machine.
    """
    b = _native(b)
    (m, k), n = a.shape, b.shape[1]
    if m * n == 0 or k == 0:
        return np.zeros((m, n), np.int64)
    if simdgemm.available():  # ``a`` as it is: madd16 packs it to int16 with numpy (not via an int64 copy)
        ra, rb = bounds if bounds is not None else (abs_bound(a), abs_bound(b))
        b8 = _narrowest(b, rb)
        wide_a = a.dtype.itemsize > 1 and ra > 127  # 8-bit arrays (a plane's patches) stay one product
        a16 = _sixteen_bit(a, ra) if wide_a and simdgemm.wide() and b8.dtype.itemsize == 1 else None
        if a16 is not None:  # 16-bit a by 8-bit b: two 8-bit products, whatever madd16 would take
            out = _dot_byte_planes(a16, b8, rb)
            return wrap_array(out, bits) if wrap else out
        if simdgemm.fits(ra, rb):
            out = simdgemm.madd16(_narrowest(a, ra), b8, ra, rb)
            return wrap_array(out, bits) if wrap else out
    a = _native(a)
    plan = plan_exact(int(a.min()), int(a.max()), int(b.min()), int(b.max()), k)
    mode = MODE_WRAP if wrap else MODE_NONE
    if plan is None:
        return loop_matmul(a, b, bits, mode, False)
    out = np.zeros((m, n), np.int64)
    ca, cb, chunk, use_f32 = plan
    nchunk = (k + chunk - 1) // chunk
    ftype = np.float32 if use_f32 else np.float64
    ap = np.zeros((nchunk, m, chunk), ftype)
    bp = np.zeros((nchunk * chunk, n), ftype)
    rows, cols = np.zeros(m, np.int64), np.zeros(n, np.int64)
    _pack_a(a, np.int64(ca), ap, rows)
    _pack_b(b, np.int64(cb), bp, cols, b.dtype.itemsize == 1)
    parts = np.matmul(ap, bp.reshape(nchunk, chunk, n))
    _reduce(parts, rows, cols, np.int64(ca), np.int64(cb), k, bits, mode, out)
    return out


def exact_bmm(a, b, bits=64, wrap=False):
    """Exact int64 ``a[i] @ b[i]`` of a stack of integer matrices, ``a`` (B, M, K) by ``b`` (B, K,
    N), optionally wrapped to ``bits`` bits, as one stacked float product (one call instead of a
    GEMM per matrix: attention's products are many small ones); None when a float64 sum could
    be inexact (then one matrix at a time, :func:`exact_matmul`).

    Exact by :func:`plan_exact`'s argument with no centring and one chunk: every partial sum,
    in whatever order, is an integer of magnitude <= K max|a| max|b|; at most 2**24 in float32
    and 2**53 in float64 each is represented, so each addition is exact.
    """
    bound = a.shape[-1] * abs_bound(a) * abs_bound(b)
    if bound > F64_EXACT:
        return None
    ftype = np.float32 if bound <= F32_EXACT else np.float64
    out = np.matmul(a.astype(ftype), b.astype(ftype)).astype(np.int64)
    return wrap_array(out, bits) if wrap else out


def loop_matmul(a, b, bits, mode, pairwise):
    """Sequential kernel wrapper; ``mode`` is one of MODE_NONE, MODE_WRAP, MODE_SATURATE."""
    return _loop_matmul(np.ascontiguousarray(a, np.int64), np.ascontiguousarray(b, np.int64),
                        bits, mode, bool(pairwise))
