"""Numba kernels of the formats package (imports numpy and numba only).

Public wrappers live in the format classes; these take flat arrays and plain integers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

POLICY_CODES = {"ieee": 0, "fn": 1, "fnuz": 2, "finite": 3}


@njit(cache=True, nogil=True)
def _float_codes(v, e_bits, m_bits, bias, policy, nan_code):  # pragma: no cover - jitted
    """Codes (uint64) of representable float64 values ``v`` (flat) of a sign+e+m format.

    ``policy``: 0 ieee, 1 fn, 2 fnuz, 3 finite; ``nan_code``: the positive NaN code (unused for
    finite). Values must already be rounded to the format (output of ``FloatFormat._round``).
    """
    out = np.empty(v.size, np.uint64)
    emin = 1 - bias
    sign_shift = e_bits + m_bits
    top = (1 << e_bits) - 1
    for i in range(v.size):
        x = v[i]
        neg = math.copysign(1.0, x) < 0.0
        sbit = (1 << sign_shift) if neg else 0
        if x != x:
            out[i] = nan_code if policy == 2 else nan_code | sbit
            continue
        a = abs(x)
        if math.isinf(a):
            out[i] = sbit | (top << m_bits)
            continue
        if a == 0.0:
            out[i] = 0 if policy == 2 else sbit
            continue
        f, k = math.frexp(a)
        e = k - 1
        if e >= emin:
            mant = int(math.ldexp(a, m_bits - e)) - (1 << m_bits)
            out[i] = sbit | ((e + bias) << m_bits) | mant
        else:
            out[i] = sbit | int(math.ldexp(a, m_bits - emin))
    return out


@njit(cache=True, nogil=True)
def _nearest_centroid(v, cb):  # pragma: no cover - jitted
    """Index of the nearest row of ``cb`` (K, D) for each row of ``v`` (N, D), by squared
    Euclidean distance; ties go to the lowest index."""
    n, d = v.shape
    out = np.empty(n, np.int64)
    for i in range(n):
        best = np.inf
        arg = 0
        for j in range(cb.shape[0]):
            dist = 0.0
            for t in range(d):
                diff = v[i, t] - cb[j, t]
                dist += diff * diff
            if dist < best:
                best = dist
                arg = j
        out[i] = arg
    return out
