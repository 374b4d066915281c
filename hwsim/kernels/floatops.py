"""Float32 elementwise and row kernels for solve's float32 tails (public API: hwsim.float32_ops).

Each kernel reads float32 and writes float32, computing in float64 inside, so a value is the
float64 formula rounded once to float32 (up to the approximation error stated per kernel);
``_gelu_erf_f32`` computes mostly in float32 (8 lanes instead of 4), within a few ulps.
"""

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.extending import intrinsic

from hwsim.kernels.fma import _fma_f32
from hwsim.kernels.zmm import prefer_zmm

#: erfc(t) is computed on [0, ERFC_T_MAX] (beyond, it is below 2.2e-17 and taken as 0)
ERFC_T_MAX = 6.0
#: erfc(t) = exp(-t^2) P(z) / (1 + 2 t), P a polynomial of this degree in
#: z = 2 (u + 1) / (ERFC_U_MAX + 1) - 1, u = (t - ERFC_K) / (t + ERFC_K) (z in [-1, 1])
ERFC_DEGREE = 16
ERFC_K = 3.0
ERFC_U_MAX = (ERFC_T_MAX - ERFC_K) / (ERFC_T_MAX + ERFC_K)
_INV_SQRT2 = 0.7071067811865476

@njit(cache=True, nogil=True, inline="always")
def _erfc(t, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16):
    """erfc(t) for t >= 0 (or NaN) as ``exp(-t^2) P(z) / (1 + 2 t)``, ``c0..c16`` the power
    coefficients of P, lowest first (ERFC_DEGREE; Horner's steps written out so that loops calling
    it vectorise, the coefficients held in registers); 0 from ERFC_T_MAX on and for NaN. Inlined
    into the float64 kernels that need erfc (:func:`_gelu_erf`, :func:`hwsim.kernels.referf._erf`),
    which compile it with their own fastmath flags."""
    inside = t < ERFC_T_MAX
    t = t if inside else ERFC_T_MAX  # NaN -> the end: finite z
    z = ((t - ERFC_K) / (t + ERFC_K) + 1.0) * (2.0 / (ERFC_U_MAX + 1.0)) - 1.0
    e = c16
    e = e * z + c15
    e = e * z + c14
    e = e * z + c13
    e = e * z + c12
    e = e * z + c11
    e = e * z + c10
    e = e * z + c9
    e = e * z + c8
    e = e * z + c7
    e = e * z + c6
    e = e * z + c5
    e = e * z + c4
    e = e * z + c3
    e = e * z + c2
    e = e * z + c1
    e = e * z + c0
    e = _exp_nonpositive(-(t * t)) * e / (1.0 + 2.0 * t)
    return e if inside else 0.0


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _gelu_erf(x, out, coef):
    """``out = 0.5 x (1 + erf(x / sqrt 2))`` over flat float32 arrays.

    With t = |x| / sqrt 2 and E = erfc(t): 0.5 x (2 - E) for x >= 0, 0.5 x E for x < 0 (no
    cancellation on either side). E = exp(-t^2) P(z) / (1 + 2 t) with ``coef`` the power
    coefficients of P, lowest first (see ERFC_DEGREE; exp by :func:`_exp_nonpositive`); beyond
    t = ERFC_T_MAX, E < 2.2e-17 is taken as 0, as float64 erf does (it returns +-1 there). The
    same arithmetic for every element, no table lookups, the coefficients held in registers
    (the Horner steps are written out for ERFC_DEGREE = 16), so the loop vectorises
    (error_model "numpy": numba's zero-division check would keep the divisions scalar).
    """
    c0, c1, c2, c3, c4, c5, c6, c7, c8 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6], coef[7], coef[8]
    c9, c10, c11, c12, c13, c14, c15, c16 = coef[9], coef[10], coef[11], coef[12], coef[13], coef[14], coef[15], coef[16]
    for j in range(x.size):
        v = np.float64(x[j])
        t = abs(v) * _INV_SQRT2
        e = _erfc(t, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16)
        f = 2.0 - e if v >= 0 else e
        out[j] = np.float32(0.5 * v * f)


#: degree of P (as :data:`ERFC_DEGREE`) for :func:`_gelu_erf_f32`: relative error 1.8e-9 (3e-8 with float32 coefficients)
ERFC_DEGREE_F32 = 11
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


def _bits_f32_python(bits):
    """The float32 whose IEEE-754 bits are the int32 ``bits`` (plain Python, for NUMBA_DISABLE_JIT)."""
    return np.array(bits, np.int32).view(np.float32)[()]


@intrinsic
def _bits_f32_llvm(typingctx, bits):
    """The float32 whose IEEE-754 bits are the int32 ``bits``: a bitcast of the register, so loops
    over it vectorise."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


_bits_f32 = _bits_f32_python if config.DISABLE_JIT else _bits_f32_llvm


def _f32_bits_python(v):
    """The IEEE-754 bits of the float32 ``v`` as an int32 (plain Python, for NUMBA_DISABLE_JIT)."""
    return np.array(v, np.float32).view(np.int32)[()]


@intrinsic
def _f32_bits_llvm(typingctx, v):
    """The IEEE-754 bits of the float32 ``v`` as an int32: a bitcast of the register."""
    if v != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


_f32_bits = _f32_bits_python if config.DISABLE_JIT else _f32_bits_llvm


def _square_error_python(a, p):
    """``a * a - p`` for float32 ``a`` and ``p = float32(a * a)``, exactly (plain Python, for
    NUMBA_DISABLE_JIT: a * a is exact in float64, and so is the difference)."""
    return np.float32(np.float64(a) * np.float64(a) - np.float64(p))


@njit(cache=True, nogil=True, inline="always")
def _square_error_llvm(a, p):
    """``a * a - p`` for float32 ``a`` and ``p = float32(a * a)``, exactly: one fused multiply-add
    (the error of a float32 product is a float32 number)."""
    return _fma_f32(a, a, -p)


_square_error = _square_error_python if config.DISABLE_JIT else _square_error_llvm
#: :func:`_order_key` of -inf (the start of a row's maximum)
_KEY_NEG_INF = np.int32(-2139095041)


@njit(cache=True, nogil=True, inline="always")
def _order_key(bits):
    """An int32 that orders as the float32 of IEEE-754 ``bits`` does (NaN aside; -0 below +0): the
    bits with the 31 below the sign flipped where the sign is set. Its own inverse, so
    ``_bits_f32(_order_key(max of keys))`` is the largest value. A maximum of int32 keys vectorises;
    ``max(m, v)`` of float32 values (a select that must keep NaN's order) did not under numba
    0.68's LLVM: a scalar chain of ~4 cycles per value, half of a softmax (2026-11-27)."""
    return np.int32(bits ^ ((bits >> np.int32(31)) & np.int32(0x7FFFFFFF)))


@njit(cache=True, nogil=True, inline="always")
def _pow2_f32(k):
    """2^-k as float32 for an integer 0 <= k <= 126, made from its exponent bits (exact; a shift
    and a bitcast, so loops over it vectorise). Until 2026-11-27 a product of the powers
    2^-(2^i) of k's bits (the same values: both exact), 7 selects and multiplies per value."""
    return _bits_f32(np.int32((np.int32(127) - np.int32(k)) << np.int32(23)))


#: ln 2 in two float32 parts for :func:`_exp_sum_f32` (Cody and Waite): the first has 12
#: significant bits, so k * _LN2_HI is exact for |k| < 2^12
_LN2_HI = np.float32(0.693145751953125)
_LN2_LO = np.float32(_LN2 - 0.693145751953125)


@njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _exp_sum_f32(d, c):
    """exp(d + c) as float32 for float32 d in [EXP_FLOOR_F32, 0] and a correction c of at most
    an ulp of d (the rounding error of d, so that d + c is the exact argument), in float32
    arithmetic: 2^k e^r with k = round(d / ln 2) and r = (d - k ln2_hi) - k ln2_lo + c (Cody and
    Waite: the first difference is exact), e^r by its degree-7 Taylor polynomial (|r| <= 0.35,
    remainder < 6e-9), 2^k exact (:func:`_pow2_f32`); within 2 float32 ulps of exp(d + c). The
    exp of GELU's exp(-x^2 / 2) (:func:`_gelu_erf_f32`) and of the float32 softmax
    (:func:`_softmax_rows_f32`). Until 2026-11-27 the range reduction ran in float64 on the exact
    argument: the same accuracy at 8 lanes per 512-bit instruction instead of 16."""
    half, one = np.float32(0.5), np.float32(1.0)
    kf = np.floor(d * np.float32(_LOG2E) + half)
    r = (d - kf * _LN2_HI) - kf * _LN2_LO + c
    q = np.float32(1.0 / 5040.0)
    q = q * r + np.float32(1.0 / 720.0)
    q = q * r + np.float32(1.0 / 120.0)
    q = q * r + np.float32(1.0 / 24.0)
    q = q * r + np.float32(1.0 / 6.0)
    q = q * r + half
    q = q * r + one
    q = q * r + one
    return q * _pow2_f32(np.int32(-kf))


#: exp(d) of :func:`_softmax_rows_f32` for d below this is taken as 0: e^d < 1.7e-38, near the
#: smallest normal float32, and the softmax value e^d / sum (sum >= 1) is smaller still
EXP_FLOOR_F32 = -87.0


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _gelu_erf_f32(x, out, c):
    """``out = 0.5 x (1 + erf(x / sqrt 2))`` over flat float32 arrays, in float32 arithmetic
    where it loses nothing that matters, 16 lanes per 512-bit instruction instead of 8.

    As :func:`_gelu_erf` (E = erfc(t), t = |x| / sqrt 2, 0.5 x (2 - E) or 0.5 x E), except that
    P has degree ERFC_DEGREE_F32 (float32 coefficients ``c``, lowest first) and runs in float32,
    and exp(-t^2) = exp(-x^2 / 2) by :func:`_exp_sum_f32` of x^2 split exactly into two float32
    numbers (a rounded t^2 would cost up to 36 * 2^-24 relative). Within 6 float32 ulps of
    the float64 formula (mean 0.3-0.5 ulp; measured and asked in tests/kernels/test_floatops.py),
    the same NaN, infinities and signed zeros. Until 2026-11-27 exp(-t^2) came from t^2 and its
    range reduction in float64, 1.6x the time of the whole kernel now (the same
    accuracy: on 58M values both at most 6 ulps, ~1010 values at 5-6).
    """
    prefer_zmm()
    c0, c1, c2, c3, c4, c5 = c[0], c[1], c[2], c[3], c[4], c[5]
    c6, c7, c8, c9, c10, c11 = c[6], c[7], c[8], c[9], c[10], c[11]
    zscale = np.float32(2.0 / (ERFC_U_MAX + 1.0))
    one, two, k32 = np.float32(1.0), np.float32(2.0), np.float32(ERFC_K)
    a_max = np.float32(ERFC_T_MAX / _INV_SQRT2)
    for j in range(x.size):
        xv = x[j]
        a = abs(xv)
        inside = a < a_max
        a = a if inside else a_max  # NaN -> the end: finite z
        sq = a * a  # a^2 = sq + lo exactly (lo by one fused multiply-add); -a^2 / 2 = -sq / 2 - lo / 2
        ex = _exp_sum_f32(-(sq * np.float32(0.5)), -(_square_error(a, sq) * np.float32(0.5)))
        t32 = a * np.float32(_INV_SQRT2)
        z = ((t32 - k32) / (t32 + k32) + one) * zscale - one
        e = c11
        e = e * z + c10
        e = e * z + c9
        e = e * z + c8
        e = e * z + c7
        e = e * z + c6
        e = e * z + c5
        e = e * z + c4
        e = e * z + c3
        e = e * z + c2
        e = e * z + c1
        e = e * z + c0
        e = ex * e / (one + two * t32)
        e = e if inside else np.float32(0.0)
        f = two - e if xv >= 0 else e
        out[j] = np.float32(0.5) * xv * f


#: exp(d) for d below this is taken as 0 (softmax: e^d / sum, sum >= 1, is then below the
#: smallest float32 subnormal 1.4e-45 = e^-103.3 and rounds to 0)
EXP_FLOOR = -110.0


@njit(cache=True, nogil=True, fastmath={"contract"})
def _exp_nonpositive(d):
    """exp(d) for d <= 0 to about 1e-12 relative: exp(d / 256) by its degree-12 Taylor
    polynomial (|d / 256| <= 0.43: remainder < 3e-15), squared 8 times; 0 below EXP_FLOOR, NaN
    for NaN. Arithmetic only, so loops over it vectorise."""
    keep = d > EXP_FLOOR or d != d
    r = (d if keep else 0.0) * 0.00390625
    p = 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p if keep else 0.0


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _softmax_rows(x, scale, out):
    """Softmax over each row of ``v = float32(x * scale)`` (float32 ``x`` (rows, n), ``scale`` a
    float32 value as float64; 1.0 leaves x as it is) into ``out``: exp(v - max) / sum in float64
    (the sums in any order: float64, far below a float32 ulp), each value rounded once."""
    n = x.shape[1]
    e = np.empty(n)
    for r in range(x.shape[0]):
        for j in range(n):
            e[j] = np.float64(np.float32(np.float64(x[r, j]) * scale))
        m = -np.inf
        for j in range(n):
            v = e[j]
            m = v if v > m or v != v else m
        s = 0.0
        for j in range(n):
            e[j] = _exp_nonpositive(e[j] - m)
        for j in range(n):
            s += e[j]
        for j in range(n):
            out[r, j] = np.float32(e[j] / s)


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _inv_sum_f32(e):
    """1 / sum of a float32 row, summed in float64 in any order (its own kernel: see
    :func:`_mean_inv_std`; the caller's ``e * (1 / sum)`` then stays a multiply)."""
    s = 0.0
    for j in range(e.size):
        s += np.float64(e[j])
    return 1.0 / s


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _softmax_rows_f32(x, scale, out):
    """:func:`_softmax_rows` with exp in float32 arithmetic (:func:`_exp_sum_f32`, 16 lanes per
    512-bit instruction instead of 8): v = float32(x * scale) (a float32 multiply), v - max as a
    float32 sum d + c (exact, Knuth's TwoSum), exp(d + c) as float32 (0 below EXP_FLOOR_F32),
    their sum in float64, each value float32(e * (1 / sum)) in float64. Within 3 float32 ulps of the float64 formula, except values below 1.7e-38, which
    are within 1.7e-38 (0 where e^d is under the floor, 2^k subnormal just above it); NaN and
    infinities as the formula gives them."""
    prefer_zmm()
    n = x.shape[1]
    e = np.empty(n, np.float32)
    s32 = np.float32(scale)
    for r in range(x.shape[0]):
        mk, nan = _KEY_NEG_INF, False
        for j in range(n):
            v = x[r, j] * s32
            e[j] = v
            mk = max(mk, _order_key(_f32_bits(v)))  # the largest value but NaN (int32 keys: the loop vectorises)
            nan |= v != v
        m = _bits_f32(_order_key(mk))  # +0 where the largest values are -0 and +0: the same exp(v - m) either way
        if nan or not -np.inf < m < np.inf:  # a NaN, +inf, or only -inf: x - max has a NaN, so has the sum
            for j in range(n):
                out[r, j] = np.nan
            continue
        floor = np.float32(EXP_FLOOR_F32)
        for j in range(n):
            v = e[j]
            d = v - m  # v - m = d + c exactly (Knuth's TwoSum)
            back = d - v
            c = (v - (d - back)) + (-m - back)
            ok = d > floor
            ex = _exp_sum_f32(d if ok else np.float32(0.0), c if ok else np.float32(0.0))
            e[j] = ex if ok else np.float32(0.0)
        inv = _inv_sum_f32(e)
        for j in range(n):
            out[r, j] = np.float32(np.float64(e[j]) * inv)


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _mean_inv_std(xr, eps):
    """(mean, 1 / sqrt(var + eps)) of a float32 row in float64, var the mean of squared deviations
    (two passes; the sums in any order). Its own kernel so that ``reassoc`` stays on these sums:
    with it on the caller's multiply by the result, LLVM folds ``d * (1 / s)`` into ``d / s``
    (a 512-bit division per 8 values: 70% of a LayerNorm's time until 2026-11-27)."""
    n = xr.size
    s = 0.0
    for j in range(n):
        s += np.float64(xr[j])
    mu = s / n
    q = 0.0
    for j in range(n):
        d = np.float64(xr[j]) - mu
        q += d * d
    return mu, 1.0 / np.sqrt(q / n + eps)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _layernorm_rows(x, gamma, beta, eps, out):
    """LayerNorm of each row of float32 ``x`` (rows, n): (x - mean) * (1 / sqrt(var + eps))
    * gamma + beta in float64 (mean and 1 / sqrt by :func:`_mean_inv_std`), rounded once."""
    prefer_zmm()
    n = x.shape[1]
    for r in range(x.shape[0]):
        xr, orow = x[r], out[r]
        mu, inv = _mean_inv_std(xr, eps)
        for j in range(n):
            orow[j] = np.float32((np.float64(xr[j]) - mu) * inv * np.float64(gamma[j]) + np.float64(beta[j]))
