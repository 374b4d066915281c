"""onnxruntime's float32 Sigmoid and Tanh on x86-64 (MLAS ``MlasComputeLogistic`` /
``MlasComputeTanh``, the FMA3 kernels of AVX2 hosts), in numpy.

Both are Eigen's rational approximations: the input clamped to [-18, 18] (logistic) or [-9, 9]
(tanh), ``p(x^2) * x / q(x^2)`` with the polynomials evaluated by Horner's rule in fused
multiply-adds, the logistic then ``+ 0.5`` and clamped to [0, 1]. A fused multiply-add is
emulated by one float64 multiply-add rounded to float32 (exact product; the double rounding this
adds differs from a true FMA only when the float64 sum lands on a float32 tie). Checked against
onnxruntime's Sigmoid and Tanh ops in tests/sim/test_ms_quant_ops.py. Used where hwsim reproduces
an onnxruntime kernel that calls them (DynamicQuantizeLSTM's gates).
"""

from __future__ import annotations

import numpy as np

_F = np.float32
#: MlasLogisticConstants: alpha_9 .. alpha_1, beta_10 .. beta_0 (onnxruntime core/mlas/lib/logistic.cpp)
_LOGISTIC_P = tuple(_F(v) for v in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                                    8.51377133304701e-03, 2.48287947061529e-01))
_LOGISTIC_Q = tuple(_F(v) for v in (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
                                    1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01))
#: MlasTanhConstants: alpha_13 .. alpha_1, beta_6 .. beta_0 (onnxruntime core/mlas/lib/tanh.cpp)
_TANH_P = tuple(_F(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                4.89352455891786e-03))
_TANH_Q = tuple(_F(v) for v in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                4.89352518554385e-03))


def _fma(a: np.ndarray, b: np.ndarray, c) -> np.ndarray:
    return (a.astype(np.float64) * b.astype(np.float64) + np.float64(c)).astype(_F)


def fma32(a, b, c) -> np.ndarray:
    """float32 fused multiply-add ``round_f32(a * b + c)`` of float32 values, correctly rounded
    (half-even), as VFMADD computes it: the numba kernel :func:`hwsim.kernels.fma.fma32`, or
    :func:`fma32_numpy` without JIT (the same values; a test compares the two)."""
    import numba

    if numba.config.DISABLE_JIT:
        return fma32_numpy(a, b, c)
    from hwsim.kernels import fma as _kfma  # numba loads on first use

    return _kfma.fma32(a, b, c)


def fma32_numpy(a, b, c) -> np.ndarray:
    """:func:`fma32` in numpy. The product of two float32 values is exact in float64;
    the float64 sum ``s`` may round, and its error ``e`` is recovered exactly (Knuth's TwoSum).
    Rounding ``s`` to float32 is then the right answer except where ``s`` lies exactly halfway
    between two float32 values and ``e`` is not 0: there the exact sum is on ``e``'s side of the
    tie, so ``s`` is moved one float64 step that way first (it cannot cross another float32
    value or halfway point: those are float64 values at least that far apart)."""
    p = np.asarray(a, _F).astype(np.float64) * np.asarray(b, _F).astype(np.float64)
    c = np.asarray(c, _F).astype(np.float64)
    s = p + c
    bp = s - c
    e = (p - bp) + (c - (s - bp))  # TwoSum: p + c == s + e exactly
    r = s.astype(_F)
    other = np.nextafter(r, np.where(s > r, _F(np.inf), _F(-np.inf)))
    tie = (e != 0) & (s == (r.astype(np.float64) + other.astype(np.float64)) / 2)
    if np.any(tie):
        s = np.where(tie, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
        r = s.astype(_F)
    return r


def _ratio(x: np.ndarray, bound: float, p_coef: tuple, q_coef: tuple) -> np.ndarray:
    x = np.clip(np.asarray(x, _F), _F(-bound), _F(bound))
    x2 = x * x
    p = _fma(x2, np.full_like(x2, p_coef[0]), p_coef[1])
    for c in p_coef[2:]:
        p = _fma(p, x2, c)
    q = _fma(x2, np.full_like(x2, q_coef[0]), q_coef[1])
    for c in q_coef[2:]:
        q = _fma(q, x2, c)
    return (p * x) / q


def logistic(x: np.ndarray) -> np.ndarray:
    """MlasComputeLogistic: float32 sigmoid as onnxruntime computes it."""
    return np.clip(_ratio(x, 18.0, _LOGISTIC_P, _LOGISTIC_Q) + _F(0.5), _F(0), _F(1))


def tanh(x: np.ndarray) -> np.ndarray:
    """MlasComputeTanh: float32 tanh as onnxruntime computes it."""
    return _ratio(x, 9.0, _TANH_P, _TANH_Q)
