"""One-pass conversions of activations the simulator makes on every op (numpy took two to four
passes and as many temporaries for each).

``_round_f32(x, out)``: ``out[i] = float64(float32(x[i]))``, an activation rounded to float32 as
ONNX DequantizeLinear with a float32 scale outputs it (``x.astype(float32).astype(float64)``:
round half to even, NaN and infinities kept, subnormals kept).

``_grid_codes(x, scale, zero_point, out)``: ``out[i] = int64(rint(x[i] / scale)) + zero_point``,
the integer codes of float64 values on a per-tensor integer grid (``np.rint(x / scale).astype(
np.int64) + zero_point`` with a float64 ``scale``: the same IEEE division and half-even rounding).
Returns the count of quotients it cannot convert (NaN, infinite or beyond int64), for which
numpy's own conversion is left to decide; the caller then takes the numpy path.
``_dequant_f32(codes, zero_point, scale, out)``: ``out[i] = float64(float32(codes[i] - zero_point) *
scale)`` with a float32 ``scale``: DequantizeLinear's float32 output, for codes of at most 16 bits
(``code - zero_point`` is exact in float32 and the float32 product is the exact product rounded
once: the values of ``x.astype(float32).astype(float64)`` for ``x`` the float64 reals
``(code - zero_point) * scale``, which are exact).

``_channel_affine(x, inner, mean, inv, beta, out)``: inference batch normalisation of float64 ``x``
viewed flat as (outer, C, inner) (``inner`` = 1: channels last), ``out = (x - mean[c]) * inv[c] +
beta[c]``, each step rounded as numpy's three broadcast passes round it (no fused multiply-add).

Tested against those numpy expressions (tests/kernels/test_onepass.py).
"""

import numpy as np
from numba import njit

#: quotients at or beyond this magnitude do not convert to int64 exactly (2**63)
_INT64_LIMIT = 9.223372036854775808e18


@njit(cache=True, nogil=True)
def _round_f32(x, out):
    for i in range(x.size):
        out[i] = np.float64(np.float32(x[i]))


@njit(cache=True, nogil=True)
def _grid_codes(x, scale, zero_point, out):
    bad = 0
    for i in range(x.size):
        t = np.rint(x[i] / scale)
        if not abs(t) < _INT64_LIMIT:  # NaN too
            bad += 1
            out[i] = 0
        else:
            out[i] = np.int64(t) + zero_point
    return bad


@njit(cache=True, nogil=True)
def _channel_affine(x, inner, mean, inv, beta, out):
    c = mean.size
    for o in range(x.size // (c * inner)):
        for j in range(c):
            m, s, b = mean[j], inv[j], beta[j]
            base = (o * c + j) * inner
            for i in range(base, base + inner):
                out[i] = (x[i] - m) * s + b


@njit(cache=True, nogil=True)
def _dequant_f32(codes, zero_point, scale, out):
    for i in range(codes.size):
        out[i] = np.float64(np.float32(codes[i] - zero_point) * scale)
