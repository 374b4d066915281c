"""Per-tensor integer quantization of real values in one pass: straight to 8-bit codes, or to
the real values on the grid.

``_codes_f32(x, scale, zero_point, qmin, qmax, out)`` / ``_codes_f64(...)`` fill ``out`` (uint8 or
int8, 1-D like ``x``) with ``clip(rint(t) + zero_point, qmin, qmax)``, ``t = x / scale`` divided in
float32 (``x`` rounded to float32 first, as ONNX QuantizeLinear with a float32 scale) or in
float64; ``rint`` rounds half to even. They return the count of NaN values met (a NaN cannot be
quantized to an integer format: the caller refuses it; its code here is meaningless). These are
``hwsim.formats`` integer ``quantize`` (half_even, saturating) followed by its codes, without the
float64 temporaries; tested against it (tests/kernels/test_quantize_codes.py).

``_real_f32`` / ``_real_f64`` take the same arguments with a float64 ``out`` and write the real
values ``(clip(rint(t) + zero_point, qmin, qmax) - zero_point) * scale``: the formats' integer
``quantize`` (half_even, saturating) itself, the same IEEE operations in the same order, for any
integer width (the int16 activations of a solve's plans took the numpy path's six passes).

``_real_channels_f32`` / ``_real_channels_f64`` are the same per channel, on ``x`` viewed as
(outer, channels, inner), writing the codes in the same pass when asked (a weight's codes, which the
integer executors read); ``_channel_max_abs`` is per-channel calibration's max-abs statistic in
one pass (weights per output channel: what every solver choice prepares); ``_finite_range`` the
per-tensor one (activations: max-abs and min-max scales both follow from it).

The per-tensor kernels and ``_add_vector_codes_f32`` run on 512-bit registers where the host has
AVX-512 (:mod:`hwsim.kernels.zmm`; the same operations per element: BERT's 393k-value bias add
0.74-0.82 -> 0.46-0.48 ms, ``_codes_f32`` 0.52 -> 0.34-0.38 ms, 2026-11-27).
"""

import numpy as np
from numba import njit

from hwsim.kernels.zmm import prefer_zmm


@njit(cache=True, nogil=True, inline="always")
def _quotient_f32(x, s):
    """``x / s`` as ONNX QuantizeLinear divides with a float32 scale ``s``: ``x`` rounded to
    float32, the quotient rounded to float32, widened to float64."""
    return np.float64(np.float32(np.float32(x) / s))


@njit(cache=True, nogil=True, inline="always")
def _on_grid(t, zero_point, qmin, qmax):
    """The code of quotient ``t``: ``rint(t) + zero_point`` (half to even) saturated to
    [qmin, qmax], as a float64 (``t`` not NaN). Inlined into every kernel here."""
    return min(max(np.rint(t) + zero_point, qmin), qmax)


@njit(cache=True, nogil=True)
def _codes_f32(x, scale, zero_point, qmin, qmax, out):
    prefer_zmm()
    s = np.float32(scale)
    nans = 0
    for i in range(x.size):
        t = _quotient_f32(x[i], s)
        nans += t != t
        out[i] = _on_grid(t, zero_point, qmin, qmax) if t == t else 0
    return nans


@njit(cache=True, nogil=True)
def _codes_f64(x, scale, zero_point, qmin, qmax, out):
    prefer_zmm()
    nans = 0
    for i in range(x.size):
        t = np.float64(x[i]) / scale
        nans += t != t
        out[i] = _on_grid(t, zero_point, qmin, qmax) if t == t else 0
    return nans


@njit(cache=True, nogil=True)
def _real_f32(x, scale, zero_point, qmin, qmax, out):
    prefer_zmm()
    s = np.float32(scale)
    s64 = np.float64(s)
    nans = 0
    for i in range(x.size):
        t = _quotient_f32(x[i], s)
        nans += t != t
        out[i] = (_on_grid(t, zero_point, qmin, qmax) - zero_point) * s64 if t == t else 0.0
    return nans


@njit(cache=True, nogil=True)
def _real_f64(x, scale, zero_point, qmin, qmax, out):
    prefer_zmm()
    nans = 0
    for i in range(x.size):
        t = np.float64(x[i]) / scale
        nans += t != t
        out[i] = (_on_grid(t, zero_point, qmin, qmax) - zero_point) * scale if t == t else 0.0
    return nans


@njit(cache=True, nogil=True, error_model="numpy")
def _real_channels_f32(x, scales, zero_points, qmin, qmax, out, codes):
    """:func:`_real_f32` per channel: ``x`` and ``out`` (outer, channels, inner), channel ``c``
    with ``scales[c]`` (float32 values) and ``zero_points[c]`` (float64 of integers); ``codes``
    (the same shape, an integer type) receives the codes too, unless it is empty. Channels last
    (inner 1: a MatMul's (K, N) weight) runs as :func:`_channels_last`."""
    prefer_zmm()
    with_codes = codes.size > 0
    if x.shape[2] == 1:
        s32 = scales.astype(np.float32)
        return _channels_last(x, s32, s32.astype(np.float64), zero_points, qmin, qmax, out, codes, with_codes, True)
    nans = 0
    for o in range(x.shape[0]):
        for c in range(x.shape[1]):
            s = np.float32(scales[c])
            s64 = np.float64(s)
            z = zero_points[c]
            for i in range(x.shape[2]):
                t = _quotient_f32(x[o, c, i], s)
                nans += t != t
                q = _on_grid(t, z, qmin, qmax) if t == t else z
                out[o, c, i] = (q - z) * s64
                if with_codes:
                    codes[o, c, i] = q
    return nans


@njit(cache=True, nogil=True, error_model="numpy")
def _real_channels_f64(x, scales, zero_points, qmin, qmax, out, codes):
    """:func:`_real_f64` per channel (layout and ``codes`` as :func:`_real_channels_f32`)."""
    prefer_zmm()
    with_codes = codes.size > 0
    if x.shape[2] == 1:
        return _channels_last(x, scales, scales, zero_points, qmin, qmax, out, codes, with_codes, False)
    nans = 0
    for o in range(x.shape[0]):
        for c in range(x.shape[1]):
            s = scales[c]
            z = zero_points[c]
            for i in range(x.shape[2]):
                t = np.float64(x[o, c, i]) / s
                nans += t != t
                q = _on_grid(t, z, qmin, qmax) if t == t else z
                out[o, c, i] = (q - z) * s
                if with_codes:
                    codes[o, c, i] = q
    return nans


@njit(inline="always", nogil=True, error_model="numpy")
def _channels_last(x, div, mul, zero_points, qmin, qmax, out, codes, with_codes, f32):
    """The per-channel kernels' values for ``x`` (outer, channels, 1): per element of channel
    ``c`` the quotient by ``div[c]`` (:func:`_quotient_f32` with ``f32``, else a float64
    division), its code and ``(code - zero_points[c]) * mul[c]``, in one loop over the channels
    of each row. Callers compile with numba's numpy error model: under the default (Python's),
    a division by an array element checks for zero per element and the loop does not vectorise
    (10 ns an element on a MiniLM (384, 1536) weight against 0.8, 2026-11-27)."""
    rows, n = x.shape[0], np.uint64(x.shape[1])
    x2, out2 = x.reshape(rows, x.shape[1]), out.reshape(rows, x.shape[1])
    codes2 = codes.reshape(rows if with_codes else 0, x.shape[1] if with_codes else 0)
    nans = 0
    for o in range(rows):
        for c in range(n):
            t = _quotient_f32(x2[o, c], div[c]) if f32 else np.float64(x2[o, c]) / div[c]
            nans += t != t
            z = zero_points[c]
            q = _on_grid(t, z, qmin, qmax) if t == t else z
            out2[o, c] = (q - z) * mul[c]
            if with_codes:
                codes2[o, c] = q
    return nans


@njit(cache=True, nogil=True)
def _channel_max_abs(x, out):
    """``out[c]`` = the largest finite ``|x[o, c, i]|`` over ``o`` and ``i`` (0 when none is
    finite): the max-abs statistic of per-channel calibration, NaN and infinities counted as 0
    (``np.nan_to_num`` before the max)."""
    prefer_zmm()
    for c in range(x.shape[1]):
        out[c] = 0.0
    if x.shape[2] == 1:  # channels last: one loop over the channels of each row (it vectorises)
        x2, n = x.reshape(x.shape[0], x.shape[1]), np.uint64(x.shape[1])
        for o in range(x.shape[0]):
            for c in range(n):
                v = abs(np.float64(x2[o, c]))
                m = out[c]
                out[c] = v if v > m and v < np.inf else m
        return
    for o in range(x.shape[0]):
        for c in range(x.shape[1]):
            m = out[c]
            for i in range(x.shape[2]):
                v = abs(np.float64(x[o, c, i]))
                if v > m and v < np.inf:
                    m = v
            out[c] = m


@njit(cache=True, nogil=True)
def _finite_range(x):
    """(smallest, largest) finite value of 1-D ``x`` ((inf, -inf) when none is finite): per-tensor
    calibration's statistic in one pass (``np.nan_to_num`` then min / max, less its zeros)."""
    prefer_zmm()
    los, his = np.full(_LANES, np.inf), np.full(_LANES, -np.inf)
    whole = x.size - x.size % _LANES
    for i0 in range(0, whole, _LANES):  # lane by lane: the lanes' compares and selects vectorise
        for j in range(_LANES):
            v = np.float64(x[i0 + j])
            f = v > -np.inf and v < np.inf
            los[j] = v if f and v < los[j] else los[j]
            his[j] = v if f and v > his[j] else his[j]
    lo, hi = np.inf, -np.inf
    for j in range(_LANES):
        lo, hi = min(lo, los[j]), max(hi, his[j])
    for i in range(whole, x.size):
        v = np.float64(x[i])
        if v < lo and v > -np.inf:
            lo = v
        if v > hi and v < np.inf:
            hi = v
    return lo, hi


#: lanes of :func:`_finite_range`'s running minima and maxima
_LANES = 16


@njit(cache=True, nogil=True)
def _add_vector_codes_f32(codes, zero_point, scale, v, out_scale, out_zero_point, qmin, qmax, out):
    """``out`` = :func:`_codes_f32` of ``a + v[i % C]`` (``C = v.size``) with ``a =
    float64(float32(codes[i] - zero_point) * scale)`` (``codes`` 1-D, a multiple of C long, of at
    most 16 bits, float32 ``scale``: DequantizeLinear's float32 output, as
    :func:`hwsim.kernels.onepass._dequant_f32`) and ``v`` float64, the sum in float64;
    ``out_scale`` float32. The values of those two passes and numpy's add between them, in one
    pass (unsigned indices: the channel loop vectorises). Returns the count of NaN quotients
    (their codes are meaningless)."""
    prefer_zmm()
    s = np.float32(scale)
    so = np.float32(out_scale)
    c = np.uint64(v.size)
    nans = 0
    for r in range(np.uint64(codes.size) // c):
        base = r * c
        for j in range(c):
            a = np.float64(np.float32(codes[base + j] - zero_point) * s)
            t = _quotient_f32(a + v[j], so)
            nans += t != t
            out[base + j] = _on_grid(t, out_zero_point, qmin, qmax) if t == t else 0
    return nans
