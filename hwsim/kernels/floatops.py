"""Float32 elementwise and row kernels for solve's float32 tails (public API: hwsim.float32_ops).

Each kernel reads float32 and writes float32, computing in float64 inside, so a value is the
float64 formula rounded once to float32 (up to the approximation error stated per kernel).
"""

import numpy as np
from numba import njit

#: erfc(t) is interpolated on [0, ERFC_T_MAX] in steps of 1 / ERFC_STEPS_PER_UNIT
ERFC_T_MAX = 6.0
ERFC_STEPS_PER_UNIT = 64
#: coefficients per interval: a degree-7 polynomial in the position u in [0, 1) of the interval
ERFC_DEGREE = 7


#: elements per block of :func:`_gelu_erf` (its coefficient buffers: 9 x 256 float64, in L1)
_GELU_BLOCK = 256


@njit(cache=True, nogil=True, fastmath={"contract"})
def _gelu_erf(x, out, coef):
    """``out = 0.5 x (1 + erf(x / sqrt 2))`` over flat float32 arrays.

    With t = |x| / sqrt 2 and E = erfc(t): 0.5 x (2 - E) for x >= 0, 0.5 x E for x < 0 (no
    cancellation on either side). E is the piecewise polynomial ``coef`` (one row per interval
    of 1 / ERFC_STEPS_PER_UNIT, lowest degree first, in u in [0, 1)); beyond t = ERFC_T_MAX,
    E < 2.2e-17 is taken as 0, as float64 erf does (it returns +-1 there). Per block of
    elements, a first loop gathers each element's coefficients, a second evaluates them (that
    loop vectorises; a gather inside it kept the whole loop scalar, 1.35x slower). The Horner
    steps are written out for ERFC_DEGREE = 7.
    """
    n = coef.shape[0]
    flat = coef.ravel()
    width = ERFC_DEGREE + 1
    cs = np.empty((width, _GELU_BLOCK))
    ws = np.empty(_GELU_BLOCK)
    for start in range(0, x.size, _GELU_BLOCK):
        m = min(_GELU_BLOCK, x.size - start)
        for j in range(m):
            t = abs(np.float64(x[start + j])) * 0.7071067811865476
            s = (t if t < ERFC_T_MAX else ERFC_T_MAX) * ERFC_STEPS_PER_UNIT  # NaN -> the end: index in range
            k = min(int(s), n - 1)
            ws[j] = s - k
            for q in range(width):
                cs[q, j] = flat[width * k + q]
        for j in range(m):
            v = np.float64(x[start + j])
            w = ws[j]
            e = cs[7, j]
            e = e * w + cs[6, j]
            e = e * w + cs[5, j]
            e = e * w + cs[4, j]
            e = e * w + cs[3, j]
            e = e * w + cs[2, j]
            e = e * w + cs[1, j]
            e = e * w + cs[0, j]
            e = e if abs(v) * 0.7071067811865476 < ERFC_T_MAX else 0.0
            f = 2.0 - e if v >= 0 else e
            out[start + j] = np.float32(0.5 * v * f)


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
def _layernorm_rows(x, gamma, beta, eps, out):
    """LayerNorm of each row of float32 ``x`` (rows, n): (x - mean) / sqrt(var + eps) * gamma
    + beta in float64 (var the mean of squared deviations, two passes), rounded once."""
    n = x.shape[1]
    for r in range(x.shape[0]):
        s = 0.0
        for j in range(n):
            s += np.float64(x[r, j])
        mu = s / n
        q = 0.0
        for j in range(n):
            d = np.float64(x[r, j]) - mu
            q += d * d
        inv = 1.0 / np.sqrt(q / n + eps)
        for j in range(n):
            out[r, j] = np.float32((np.float64(x[r, j]) - mu) * inv * np.float64(gamma[j]) + np.float64(beta[j]))
