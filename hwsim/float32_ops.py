"""Float32 versions of float ops for solve's float32 tails (:func:`hwsim.solve.tail.float32_outputs`).

The simulator computes a float op in float64 from float32 inputs and rounds the result to
float32. The functions here take and return float32 arrays and compute each value in float64
inside a numba kernel (:mod:`hwsim.kernels.floatops`), so they equal the simulator's op up to the
approximation error each one states (far below one float32 ulp), at a fraction of its time.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from hwsim.errors import InputDataError
from hwsim.kernels import floatops as _fo


def _float32(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise InputDataError(f"{name} must be float32, got {x.dtype}; cast it first")
    return np.ascontiguousarray(x)


@functools.cache
def erfc_table() -> np.ndarray:
    """Piecewise degree-7 polynomials of erfc on [0, ERFC_T_MAX], one row per interval of
    1 / ERFC_STEPS_PER_UNIT, lowest degree first, in the position u in [0, 1) of the interval.

    Each piece is the Hermite interpolant of erfc and its first three derivatives at the two
    ends (erfc from scipy; erfc' = -c exp(-t^2), erfc'' = 2 t c exp(-t^2),
    erfc''' = c (2 - 4 t^2) exp(-t^2), c = 2 / sqrt(pi)). Its relative error is below 2e-13 on
    the whole range (``tests/kernels/test_floatops.py``), 3e5 times below a float32 ulp.
    """
    from scipy.special import erfc

    deg = _fo.ERFC_DEGREE
    half = (deg + 1) // 2  # derivatives matched at each end
    h = 1.0 / _fo.ERFC_STEPS_PER_UNIT
    t = np.arange(round(_fo.ERFC_T_MAX * _fo.ERFC_STEPS_PER_UNIT) + 1) * h
    c, ex = 2 / math.sqrt(math.pi), np.exp(-t * t)
    d = np.stack([erfc(t), -c * ex, 2 * t * c * ex, c * (2 - 4 * t * t) * ex], -1)[:, :half]
    scaled = d * h ** np.arange(half)  # derivatives in u: h^j erfc^(j)
    low = scaled[:-1] / np.array([math.factorial(j) for j in range(half)])  # Taylor at u = 0
    # p^(i)(1) = sum_j coef_j perm(j, i) must equal scaled[1:, i] (the next node)
    lo = np.array([[math.perm(j, i) for j in range(half)] for i in range(half)], float)
    hi = np.array([[math.perm(j, i) for j in range(half, deg + 1)] for i in range(half)], float)
    high = np.linalg.solve(hi, (scaled[1:] - low @ lo.T).T).T
    return np.ascontiguousarray(np.concatenate([low, high], -1))


def _out(out, x: np.ndarray) -> np.ndarray:
    """``out`` if given (a float32 array of ``x``'s shape, written in place), else a new one."""
    if out is None:
        return np.empty_like(x)
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != x.shape \
            or not out.flags.c_contiguous:
        raise InputDataError(f"out must be a C-contiguous float32 array of shape {x.shape}")
    return out


def gelu_erf(x, out=None) -> np.ndarray:
    """``0.5 x (1 + erf(x / sqrt 2))`` (exact GELU) of a float32 array, as float32.

    Equals the float64 formula rounded to float32 to within 1 ulp, except where float64 erf
    itself cancels (x < -5.9, where it returns 0 and this returns the true value, below 1e-15 in
    magnitude); NaN and infinities as the formula gives them. ``out``: a float32 array of x's
    shape to write into (C-contiguous), as for :func:`softmax` and :func:`layernorm`.
    """
    x = _float32("x", x)
    out = _out(out, x)
    _fo._gelu_erf(x.reshape(-1), out.reshape(-1), erfc_table())
    return out


def _rows(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)


def softmax(x, scale=None, out=None) -> np.ndarray:
    """Softmax over the last axis of a float32 array, as float32: exp(x - max) / sum in float64
    (exp to about 1e-12 relative), rounded once; within 1 ulp of the float64 formula.
    ``scale`` (a float32 number): the softmax of ``x * scale`` rounded to float32 first, as a
    float32 multiply before it gives."""
    x = _float32("x", x)
    s = np.float32(1.0) if scale is None else np.asarray(scale)
    if s.dtype != np.float32 or s.size != 1:
        raise InputDataError(f"softmax: scale must be one float32 number, got {s.dtype} of size {s.size}")
    out = _out(out, x)
    _fo._softmax_rows(_rows(x), float(s.reshape(-1)[0]), _rows(out))
    return out


def layernorm(x, gamma, beta, eps: float, out=None) -> np.ndarray:
    """LayerNorm over the last axis of a float32 array, as float32: (x - mean) / sqrt(var + eps)
    * gamma + beta in float64 (var the mean of squared deviations), rounded once; within 1 ulp of
    the float64 formula. ``gamma`` and ``beta``: float32, one value per element of the last axis."""
    x, gamma, beta = _float32("x", x), _float32("gamma", gamma), _float32("beta", beta)
    n = x.shape[-1] if x.ndim else 1
    if gamma.shape != (n,) or beta.shape != (n,):
        raise InputDataError(f"layernorm: gamma {gamma.shape} and beta {beta.shape} must both be ({n},), "
                             "one value per element of the last axis")
    out = _out(out, x)
    _fo._layernorm_rows(_rows(x), gamma, beta, float(eps), _rows(out))
    return out
