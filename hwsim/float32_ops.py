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
from hwsim.kernels.canon import readonly


def _float32(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise InputDataError(f"{name} must be float32, got {x.dtype}; cast it first")
    return np.ascontiguousarray(x)


@functools.cache
def erfc_coefficients(degree: int = _fo.ERFC_DEGREE) -> np.ndarray:
    """Power coefficients (lowest degree first) of the polynomial P in z of ``degree`` with
    erfc(t) = exp(-t^2) P(z) / (1 + 2 t) on [0, ERFC_T_MAX] (z: see
    :data:`hwsim.kernels.floatops.ERFC_DEGREE`).

    P interpolates erfcx(t) (1 + 2 t) (scipy's scaled erfc, smooth and bounded in z) at the
    Chebyshev points of z by a least-squares Chebyshev fit, converted to powers of z. With the
    exp of the kernel, the relative error of erfc is below 2e-12 on the whole range
    (``tests/kernels/test_floatops.py``), 3e4 times below a float32 ulp; at
    :data:`~hwsim.kernels.floatops.ERFC_DEGREE_F32`, 1.8e-9 (below 3e-8 with the coefficients
    rounded to float32, as that kernel holds them).
    """
    from numpy.polynomial import chebyshev
    from scipy.special import erfcx

    n = 8 * (degree + 1)
    z = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    u = (z + 1) / 2 * (_fo.ERFC_U_MAX + 1) - 1
    t = _fo.ERFC_K * (1 + u) / (1 - u)
    c = chebyshev.chebfit(z, erfcx(t) * (1 + 2 * t), degree)
    return np.ascontiguousarray(chebyshev.cheb2poly(c), dtype=np.float64)


def _out(out, x: np.ndarray) -> np.ndarray:
    """``out`` if given (a float32 array of ``x``'s shape, written in place), else a new one."""
    if out is None:
        return np.empty_like(x)
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != x.shape \
            or not out.flags.c_contiguous:
        raise InputDataError(f"out must be a C-contiguous float32 array of shape {x.shape}")
    return out


#: how :func:`gelu_erf` and :func:`softmax` compute: the float64 formula rounded once, or with
#: their polynomials in float32 arithmetic
ARITHMETICS = ("float64", "float32")


def _arithmetic(fn: str, arithmetic: str) -> None:
    if arithmetic not in ARITHMETICS:
        raise InputDataError(f"{fn}: arithmetic must be one of {', '.join(ARITHMETICS)}, got {arithmetic!r}")


def gelu_erf(x, out=None, arithmetic: str = "float64") -> np.ndarray:
    """``0.5 x (1 + erf(x / sqrt 2))`` (exact GELU) of a float32 array, as float32.

    Equals the float64 formula rounded to float32 to within 1 ulp (erfc to 2e-12 relative, see
    :func:`erfc_coefficients`), except where float64 erf itself cancels (x < -5.9, where it
    returns 0 and this returns the true value, below 1e-15 in magnitude); NaN and infinities as the formula gives them. ``out``: a float32 array of x's
    shape to write into (C-contiguous; not ``x`` itself: the loop then runs unvectorised, 5x
    slower), as for :func:`softmax` and :func:`layernorm`.
    ``arithmetic="float32"``: the same formula with its polynomials in float32 arithmetic
    (:func:`hwsim.kernels.floatops._gelu_erf_f32`), within 6 ulps of the float64 formula
    (mean 0.5 ulp; largest near 0, where erfc is near 1), at 40% of the time; solve's float32
    tails use it (:mod:`hwsim.solve.tail_tf`).
    """
    _arithmetic("gelu_erf", arithmetic)
    x = _float32("x", x)
    out = _out(out, x)
    if arithmetic == "float32":
        _fo._gelu_erf_f32(x.reshape(-1), out.reshape(-1), _erfc_coefficients_f32())
    else:
        _fo._gelu_erf(x.reshape(-1), out.reshape(-1), erfc_coefficients())
    return out


@functools.cache
def _erfc_coefficients_f32() -> np.ndarray:
    return erfc_coefficients(_fo.ERFC_DEGREE_F32).astype(np.float32)


def _rows(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)


def softmax(x, scale=None, out=None, arithmetic: str = "float64") -> np.ndarray:
    """Softmax over the last axis of a float32 array, as float32: exp(x - max) / sum in float64
    (exp to about 1e-12 relative), rounded once; within 1 ulp of the float64 formula.
    ``scale`` (a float32 number): the softmax of ``x * scale`` rounded to float32 first, as a
    float32 multiply before it gives. ``out`` may be ``x`` itself (each row is read whole before
    it is written). ``arithmetic="float32"``: exp in float32 arithmetic
    (:func:`hwsim.kernels.floatops._softmax_rows_f32`), within 3 ulps of the float64 formula
    and values below 1.7e-38 within 1.7e-38 (0 where e^d is under
    :data:`~hwsim.kernels.floatops.EXP_FLOOR_F32`, subnormal-inexact just above it); solve's
    float32 tails use it (:mod:`hwsim.solve.tail_tf`)."""
    _arithmetic("softmax", arithmetic)
    x = _float32("x", x)
    s = np.float32(1.0) if scale is None else np.asarray(scale)
    if s.dtype != np.float32 or s.size != 1:
        raise InputDataError(f"softmax: scale must be one float32 number, got {s.dtype} of size {s.size}")
    out = _out(out, x)
    rows = _fo._softmax_rows_f32 if arithmetic == "float32" else _fo._softmax_rows
    rows(_rows(x), float(s.reshape(-1)[0]), _rows(out))
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
    _fo._layernorm_rows(_rows(x), readonly(gamma), readonly(beta), float(eps), _rows(out))  # one signature
    return out
