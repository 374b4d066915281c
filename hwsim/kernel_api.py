"""Bit-accurate integer and low-precision float arithmetic: the public API over hwsim.kernels.

Each function validates its arguments (raising :mod:`hwsim.errors` exceptions that say what to
change), packs arrays and calls a private numba kernel. Integer results are int64 unless an ONNX op
fixes the type. Reduction order everywhere is k ascending; for convolutions k = (c, kh, kw) in C
order within a group. Accumulator overflow modes:

``"wrap"``      two's complement modulo 2**acc_bits (equals the exact sum wrapped once);
``"saturate"``  clamp to [-2**(acc_bits-1), 2**(acc_bits-1) - 1] after every addition;
``"none"``      exact int64 (the caller guarantees the sum fits in 63 bits).
"""

import numpy as np

from hwsim.errors import ConfigError, InputDataError, ShapeError
from hwsim.kernels import conv as _conv
from hwsim.kernels.codesums import k_sums
from hwsim.kernels import floatgemm as _fg
from hwsim.kernels import intgemm as _ig
from hwsim.kernels import simdgemm as _sg
from hwsim import requant as _requant

OVERFLOW_MODES = {"none": _ig.MODE_NONE, "wrap": _ig.MODE_WRAP, "saturate": _ig.MODE_SATURATE}
ACCUMULATORS = {"fp32": _fg.FMT_FP32, "fp16": _fg.FMT_FP16, "bf16": _fg.FMT_BF16, "exact": -1}
ORDERS = {"sequential": _fg.ORDER_SEQ, "pairwise": _fg.ORDER_PAIR, "blocked": _fg.ORDER_BLOCK}


def _choice(name, value, valid):
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not supported; use one of {sorted(valid)}")
    return valid[value] if isinstance(valid, dict) else value


def _int_array(name, x):
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise InputDataError(f"{name} must have an integer dtype, got {x.dtype}; cast it first")
    return x


def _acc_bits(bits):
    if not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 64:
        raise ConfigError(f"acc_bits={bits!r} must be an integer in [2, 64]")
    return int(bits)


_bound = _ig.abs_bound


def _matmul2d(a, b, bits, mode, pairwise):
    """Dispatch a validated 2-D integer product to the exact (BLAS) or sequential kernel."""
    k = a.shape[1]
    if pairwise:
        # int16 pairs: no partial sum of |clamped pair| <= min(32768, 2 |a| |b|) leaves the accumulator
        safe = (k + 1) // 2 * min(32768, 2 * _bound(a) * _bound(b)) < 2 ** (bits - 1)
        if mode == _ig.MODE_SATURATE and not safe:
            return _ig.loop_matmul(a, b, bits, mode, pairwise)
        out = _ig.pairwise_matmul(a, b)
        return apply_overflow(out, bits, "wrap") if mode == _ig.MODE_WRAP and not safe else out
    ba, bb = _bound(a), _bound(b)
    safe = k * ba * bb < 2 ** (bits - 1)
    if mode == _ig.MODE_SATURATE and not safe:
        return _ig.loop_matmul(a, b, bits, mode, pairwise)
    if mode == _ig.MODE_SATURATE or safe:  # no partial sum can overflow
        mode = _ig.MODE_NONE
    return _ig.exact_matmul(a, b, bits, wrap=mode == _ig.MODE_WRAP, bounds=(ba, bb))


def apply_overflow(acc, bits, overflow):
    """One more accumulator step's overflow rule on an int64 array (after a bias add or a
    correction term): ``"wrap"`` to ``bits`` two's complement, ``"saturate"`` clamps, ``"none"``
    leaves it. The one copy of the rule the simulator and the QLinear functions share."""
    mode = _choice("overflow", overflow, OVERFLOW_MODES)
    if mode == _ig.MODE_WRAP and bits < 64:
        return _ig.wrap_array(acc, bits)
    if mode == _ig.MODE_SATURATE and bits < 64:
        return np.clip(acc, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return acc


def int_matmul(a, b, acc_bits=32, overflow="wrap", pairwise_int16=False):
    """Integer matrix product with a ``acc_bits``-bit accumulator.

    Parameters
    ----------
    a : np.ndarray
        Integer array (..., M, K).
    b : np.ndarray
        Integer array (K, N).
    acc_bits : int
        Accumulator width in bits, 2..64.
    overflow : {"wrap", "saturate", "none"}
        Accumulator overflow rule (module docstring); summation is k ascending.
    pairwise_int16 : bool
        Add the products of k = 2t and 2t+1 and saturate the pair to int16 before accumulating,
        as x86 VPMADDUBSW (onnxruntime u8*s8 on AVX2 without VNNI). Never on by default.

    Returns
    -------
    np.ndarray
        int64 array (..., M, N).
    """
    a, b = _int_array("a", a), _int_array("b", b)
    mode = _choice("overflow", overflow, OVERFLOW_MODES)
    bits = _acc_bits(acc_bits)
    if a.ndim < 2 or b.ndim != 2 or a.shape[-1] != b.shape[0]:
        raise ShapeError(f"int_matmul needs a (..., M, K) and b (K, N); got {a.shape}, {b.shape}")
    a2 = np.ascontiguousarray(a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1]))
    out = _matmul2d(a2, np.ascontiguousarray(b), bits, mode, pairwise_int16)
    return out.reshape(a.shape[:-1] + (b.shape[1],))


def int_matmul_stack(a, b, acc_bits=32, overflow="wrap"):
    """:func:`int_matmul` of each matrix pair of two stacks (attention's per-head products).

    Parameters
    ----------
    a, b : np.ndarray
        Integer arrays (B, M, K) and (B, K, N).
    acc_bits, overflow
        As :func:`int_matmul` (no int16 pairs: take those one matrix at a time).

    Returns
    -------
    np.ndarray
        int64 array (B, M, N): ``out[i] == int_matmul(a[i], b[i], acc_bits, overflow)``.
    """
    a, b = _int_array("a", a), _int_array("b", b)
    mode = _choice("overflow", overflow, OVERFLOW_MODES)
    bits = _acc_bits(acc_bits)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"int_matmul_stack needs a (B, M, K) and b (B, K, N); got {a.shape}, {b.shape}")
    if not a.size or not b.size:
        return np.zeros((a.shape[0], a.shape[1], b.shape[2]), np.int64)
    safe = a.shape[2] * _bound(a) * _bound(b) < 2 ** (bits - 1)
    if mode != _ig.MODE_SATURATE or safe:  # wrapping the exact sum once equals wrapping every step
        out = _ig.exact_bmm(a, b, bits, wrap=mode == _ig.MODE_WRAP and not safe)
        if out is not None:
            return out
    return np.stack([_matmul2d(np.ascontiguousarray(a[i]), np.ascontiguousarray(b[i]), bits, mode, False)
                     for i in range(a.shape[0])])


def _pair(name, v, n):
    t = tuple(int(x) for x in np.atleast_1d(v))
    if len(t) != n or min(t) < (0 if name == "padding" else 1):
        raise ShapeError(f"{name} must be {n} {'non-negative' if name == 'padding' else 'positive'}"
                         f" integers, got {v!r}")
    return t


def _sub_zero_point(name, x, zp, axis_len):
    """``x - zp`` as int64, ``zp`` a scalar or a 1-D array over axis 0 (length ``axis_len``)."""
    return x.astype(np.int64) - _zero_point(name, zp, axis_len, x.ndim)


def _zero_point(name, zp, axis_len, ndim):
    """Zero point ``zp`` (a scalar or a 1-D array over axis 0, length ``axis_len``) as int64,
    shaped to broadcast over an array of ``ndim`` dimensions; a ShapeError names any other shape."""
    zp = _int_array(f"{name}_zero_point", zp).astype(np.int64)
    if zp.size > 1:
        if zp.ndim != 1 or zp.size != axis_len:
            raise ShapeError(f"{name}_zero_point must be a scalar or have {axis_len} elements")
        return zp.reshape((-1,) + (1,) * (ndim - 1))
    return zp.reshape(())


#: groups with at most this many (input x output) channels run as a direct convolution, not a GEMM
#: per group (depthwise: 1)
_DIRECT_MAX_CHANNELS = 16


def _narrow(x, fill=0, wide=False):
    """``x`` as uint8 or int8 (or, ``wide``, uint16 or int16) when its values and ``fill`` fit
    one of them, else None."""
    got = _narrow_span(x, fill, wide)
    return None if got is None else got[0]


def _narrow_span(x, fill=0, wide=False):
    """(``x`` as :func:`_narrow` makes it, lo, hi) with [lo, hi] the span of ``x``'s values and
    ``fill``, or None where :func:`_narrow` gives None."""
    if not x.size:
        return None
    lo, hi = min(int(x.min()), fill), max(int(x.max()), fill)
    for dt in (np.uint8, np.int8) + ((np.uint16, np.int16) if wide else ()):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return x.astype(dt, copy=False), lo, hi
    return None


def _narrow_weight(w, zero_point):
    """8-bit weight codes ``w`` as they are when every zero point is 0 (``w - 0`` needs no int64
    copy), else None; a zero point of the wrong shape is refused as :func:`_sub_zero_point` does."""
    if w.dtype.itemsize != 1 or np.any(_zero_point("w", zero_point, w.shape[0], w.ndim)):
        return None
    return w


def _conv_narrow(x, zx, wc, stride, padding, dilation, groups, bits, mode, out_hw, x_span):
    """Convolution of 8- or 16-bit codes ``x`` (zero point ``zx``, values and ``zx`` within
    ``x_span`` = (lo, hi)) by ``wc`` (weights minus their zero points: int64, or 8-bit codes whose
    zero points are 0): patches of ``x``'s type padded with ``zx``, ``(x - zx) @ w = x @ w - zx *
    colsum(w)`` exactly in int64, wrapped once (a wrap of the exact sum equals wrapping every
    step). The sum is exact, so k's order is free: channels-last patches, k = (kh, kw, c), the
    faster copy. The patches hold only values of ``x`` and ``zx``: their bound is ``x_span``'s
    (no pass over them)."""
    n, (oh, ow) = x.shape[0], out_hw
    o, cg = wc.shape[0], wc.shape[1]
    og = o // groups
    out = np.empty((n, o, oh, ow), np.int64)
    rx = max(-x_span[0], x_span[1])
    planes = None
    for g in range(groups):
        wg = np.ascontiguousarray(wc[g * og:(g + 1) * og].transpose(0, 2, 3, 1).reshape(og, -1).T)
        narrow = wg if wg.dtype.itemsize == 1 else _narrow(wg)
        wmax = _ig.value_bound(wg)
        if x.dtype.itemsize == 2 and narrow is not None and _ig.simdgemm.wide():
            # 16-bit codes as two byte planes (x = 256 hi + lo) on the 8-bit tiles, split before the
            # patches (9x fewer values than the patches of a 3x3 conv): ResNet-18 b8's 64-channel 3x3
            # with int16 activations 56 -> 27 ms, one thread (2026-11-27); the same exact sums
            planes = planes or _ig.byte_planes(x)
            parts = []
            for plane, fill in zip(planes, (zx >> 8, zx & 0xFF)):
                cols = _conv.im2col(plane, g * cg, cg, wc.shape[2:], stride, padding[:2], dilation, out_hw,
                                    plane.dtype, fill, channels_last=True)
                parts.append(_ig.exact_matmul(cols, narrow, bounds=(255, wmax)))
            res = _ig.from_planes(*parts)
        else:
            cols = _conv.im2col(x, g * cg, cg, wc.shape[2:], stride, padding[:2], dilation, out_hw, x.dtype, zx,
                                channels_last=True)
            res = _ig.exact_matmul(cols, wg if narrow is None else narrow, bounds=(rx, wmax))
        if zx:
            res -= zx * wg.sum(0, dtype=np.int64)
        bound = cols.shape[1] * max(abs(x_span[0] - zx), abs(x_span[1] - zx)) * wmax
        if mode == _ig.MODE_WRAP and bound >= 2 ** (bits - 1):  # else no sum can leave the accumulator
            res = apply_overflow(res, bits, "wrap")
        _conv.nchw_into(res.reshape(n, oh, ow, og), out[:, g * og:(g + 1) * og])
    return out


def _conv_out_hw(x, w, stride, padding, dilation):
    span_h = x.shape[2] + padding[0] + padding[2] - dilation[0] * (w.shape[2] - 1) - 1
    span_w = x.shape[3] + padding[1] + padding[3] - dilation[1] * (w.shape[3] - 1) - 1
    oh, ow = span_h // stride[0] + 1, span_w // stride[1] + 1
    if oh < 1 or ow < 1:
        raise ShapeError(f"convolution of {x.shape} by {w.shape} leaves no output; add padding")
    return oh, ow


def im2col(x, kernel, stride, padding, dilation, channels=None, dtype=np.float64, fill=0, channels_last=False,
           out=None):
    """Convolution patches of ``x`` (N, C, H, W): an array (N, OH, OW, cg * KH * KW) of ``dtype``.

    ``channels`` = (first, count) selects a channel group (default all); ``padding`` is ONNX
    (top, left, bottom, right), padded positions hold ``fill``; columns are k = (c, kh, kw), or
    (kh, kw, c) with ``channels_last``. Values are copied, not rounded: ``dtype`` must hold them.
    ``out``: a contiguous 1-D buffer of ``dtype`` to write them into (see
    :func:`hwsim.kernels.conv.im2col`).
    """
    stride, dilation = _pair("stride", stride, 2), _pair("dilation", dilation, 2)
    padding = _pair("padding", padding, 4)
    oh, ow = _conv_out_hw(x, np.empty((1, 1) + tuple(kernel)), stride, padding, dilation)
    c0, cg = channels or (0, x.shape[1])
    x = x if channels_last else np.ascontiguousarray(x)  # channels-last patches read either layout without a copy
    if out is not None and (out.dtype != np.dtype(dtype) or out.ndim != 1 or not out.flags.c_contiguous
                            or out.size < x.shape[0] * oh * ow * cg * kernel[0] * kernel[1]):
        raise ShapeError(f"im2col: out must be a contiguous 1-D {np.dtype(dtype)} buffer with room for the patches")
    cols = _conv.im2col(x, c0, cg, kernel, stride, padding[:2], dilation, (oh, ow), dtype, fill, channels_last, out)
    return cols.reshape(x.shape[0], oh, ow, -1)


def int_conv2d(x, w, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
               acc_bits=32, overflow="wrap", x_zero_point=0, w_zero_point=0):
    """Integer 2-D convolution (NCHW input, OIHW weights) with a ``acc_bits``-bit accumulator.

    Parameters
    ----------
    x : np.ndarray
        Integer input (N, C, H, W).
    w : np.ndarray
        Integer weights (O, C / groups, KH, KW).
    stride, dilation : tuple of int
        (SH, SW) and (DH, DW), in elements.
    padding : tuple of int
        (top, left, bottom, right) in elements, ONNX ``pads`` order; padded positions hold the
        zero point, i.e. contribute 0 after it is subtracted.
    groups : int
        Channel groups; C and O must be multiples of it.
    acc_bits, overflow
        As in :func:`int_matmul`; k = (c, kh, kw) ascending.
    x_zero_point, w_zero_point : int or np.ndarray
        Subtracted before multiplying; ``w_zero_point`` may be per output channel (O,).

    Returns
    -------
    np.ndarray
        int64 array (N, O, OH, OW).
    """
    x, w = _int_array("x", x), _int_array("w", w)
    mode, bits = _choice("overflow", overflow, OVERFLOW_MODES), _acc_bits(acc_bits)
    stride, dilation = _pair("stride", stride, 2), _pair("dilation", dilation, 2)
    padding = _pair("padding", padding, 4)
    if x.ndim != 4 or w.ndim != 4 or groups < 1 or x.shape[1] % groups or w.shape[0] % groups \
            or w.shape[1] * groups != x.shape[1]:
        raise ShapeError(f"int_conv2d needs x (N, C, H, W), w (O, C/groups, KH, KW) with groups "
                         f"dividing C and O; got {x.shape}, {w.shape}, groups={groups}")
    oh, ow = _conv_out_hw(x, w, stride, padding, dilation)
    if mode != _ig.MODE_SATURATE and np.size(x_zero_point) == 1 and not small_groups(groups, w.shape):
        zx = int(_int_array("x_zero_point", x_zero_point).reshape(-1)[0]) if np.size(x_zero_point) else 0
        got = _narrow_span(x, zx, wide=True)
        if got is not None:
            wn = _narrow_weight(w, w_zero_point)
            return _conv_narrow(got[0], zx, _sub_zero_point("w", w, w_zero_point, w.shape[0]) if wn is None else wn,
                                stride, padding, dilation, groups, bits, mode, (oh, ow), got[1:])
    wc = _sub_zero_point("w", w, w_zero_point, w.shape[0])
    if mode != _ig.MODE_SATURATE and np.size(x_zero_point) == 1 and groups == x.shape[1] == w.shape[0] > 1 \
            and x.size and wc.size:
        out = _depthwise_narrow(x, int(np.asarray(x_zero_point).reshape(-1)[0]), wc, stride, padding, dilation, (oh, ow))
        if out is not None:
            return apply_overflow(out, bits, "wrap") if mode == _ig.MODE_WRAP else out
    xc = _sub_zero_point("x", x, x_zero_point, 1)
    n, og, cg = x.shape[0], w.shape[0] // groups, w.shape[1]
    if small_groups(groups, w.shape):
        return _conv.direct_conv(xc, wc, stride, padding[:2], dilation, groups, bits, mode, (oh, ow))
    out = np.empty((n, w.shape[0], oh, ow), np.int64)
    for g in range(groups):
        cols = _conv.im2col(xc, g * cg, cg, w.shape[2:], stride, padding[:2], dilation, (oh, ow))
        wg = np.ascontiguousarray(wc[g * og:(g + 1) * og].reshape(og, -1).T)
        res = _matmul2d(cols, wg, bits, mode, False)
        _conv.nchw_into(res.reshape(n, oh, ow, og), out[:, g * og:(g + 1) * og])
    return out


def _depthwise_narrow(x, zx, wc, stride, padding, dilation, out_hw):
    """Exact int64 depthwise conv (channel multiplier 1) of 8-bit codes ``x`` minus ``zx`` by
    ``wc`` (weights minus zero points) on the channels-last int32 kernel, or None when the
    operands are too wide for its int32 sums."""
    xn = _narrow(x, zx)
    wmax = int(np.abs(wc).max())
    if xn is None or wc.shape[2] * wc.shape[3] * 255 * wmax >= 2**31:
        return None
    return _conv.depthwise_nhwc(xn, zx, wc, stride, padding[:2], dilation, out_hw)


def qdepthwise_codes(x, x_zero_point, w, w_zero_point, bias, multiplier, y_zero_point, y_range,
                     stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1)):
    """8-bit codes of a quantized depthwise convolution (channel multiplier 1) with the bias and
    onnxruntime's requantization done in the convolution's own pass (no accumulator array):
    ``requantize(int_conv2d(x, w, ..., groups=C) + bias, multiplier, y_zero_point,
    "onnxruntime")`` saturated to ``y_range``.

    Parameters
    ----------
    x : np.ndarray
        uint8/int8 codes (N, C, H, W), any memory layout (channels-last data is read in place).
    x_zero_point : int
        Per tensor.
    w : np.ndarray
        Integer weights (C, 1, KH, KW); ``w_zero_point`` scalar or per channel.
    bias : np.ndarray or None
        Integer (C,).
    multiplier, y_zero_point
        float32 ``s_x * s_w / s_y`` and the output zero point, scalar or per channel.
    y_range : tuple of int
        (lo, hi) of the codes, within uint8 (uint8 codes) or int8.
    stride, padding, dilation
        As :func:`int_conv2d`.

    Returns
    -------
    np.ndarray or None
        (N, C, OH, OW) codes (a view of channels-last data); None where this kernel does not
        give that result (``x`` not 8-bit codes, not depthwise, sums that could leave int32):
        the caller then takes :func:`int_conv2d` and :func:`requantize`.
    """
    lo, hi = (int(v) for v in y_range)
    c = x.shape[1]
    if x.ndim != 4 or x.dtype.itemsize != 1 or w.shape[:2] != (c, 1) or not x.size \
            or not (-128 <= lo <= hi <= 127 or 0 <= lo <= hi <= 255):
        return None
    stride, dilation, padding = _pair("stride", stride, 2), _pair("dilation", dilation, 2), _pair("padding", padding, 4)
    wc = _sub_zero_point("w", _int_array("w", w), w_zero_point, c)
    zx = int(x_zero_point)
    b = np.zeros(c, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    bound = wc.shape[2] * wc.shape[3] * max(abs(int(np.iinfo(x.dtype).min) - zx), abs(int(np.iinfo(x.dtype).max) - zx)) \
        * int(np.abs(wc).max()) + int(np.abs(b).max())
    if bound >= 2**31:
        return None
    oh, ow = _conv_out_hw(x, wc, stride, padding, dilation)
    return _conv.depthwise_nhwc_codes(x, zx, wc, stride, padding[:2], dilation, (oh, ow), b,
                                      np.asarray(multiplier, np.float32), y_zero_point, lo, hi)


def small_groups(groups, w_shape) -> bool:
    """True when a grouped conv has few channels per group (depthwise) and runs as a direct
    convolution rather than a GEMM per group."""
    return groups > 1 and w_shape[1] * (w_shape[0] // groups) <= _DIRECT_MAX_CHANNELS


def float_direct_conv2d(x, w, stride, padding, dilation, groups):
    """float64 grouped 2-D convolution of few-channel groups (:func:`small_groups`), NCHW / OIHW,
    ONNX ``padding`` (zeros); per output the taps are summed in (c, kh, kw) ascending order."""
    stride, dilation = _pair("stride", stride, 2), _pair("dilation", dilation, 2)
    padding = _pair("padding", padding, 4)
    oh, ow = _conv_out_hw(x, w, stride, padding, dilation)
    if groups == x.shape[1] == w.shape[0] and x.size and np.asarray(x).dtype.kind == "f":  # channel multiplier 1
        return _conv.depthwise_nhwc(x, 0, w, stride, padding[:2], dilation, (oh, ow))
    return _conv.direct_conv_float(x, w, stride, padding[:2], dilation, groups, (oh, ow))


def max_pool2d(x, kernel, stride, padding, out_hw):
    """2-D max pooling of ``x`` (N, C, H, W; float, uint8 or int8, any memory layout: no copy when
    it is channels-last) with ONNX ``padding`` (top, left, ...) ignored, as ``np.nanmax`` over a
    NaN-padded copy gives it (:mod:`hwsim.kernels.maxpool`). Returns (N, C, OH, OW) of ``x``'s
    type, a view of channels-last data. Integer data needs a tap inside the input in every window
    (:func:`max_pool_windows_inside`). Threaded from :data:`~hwsim.kernels.workqueue.PARALLEL_MIN`
    outputs (not taps: the pass is memory-bound): ResNet-18's 3x3/2 pool of 8 x 64 x 112 x 112
    float64 took 6.4-9 ms on one thread and 12.5 ms on two (2026-11-27, Xeon, load 2.2), and the
    threaded kernel's first compile costs 1.4-2.2 s CPU (benchmarks/RESULTS.md, "Ninth session: cold")."""
    from hwsim.kernels import maxpool as _mp
    from hwsim.kernels.workqueue import pick

    x = np.asarray(x)
    if x.ndim != 4 or x.dtype.kind not in "fiu":
        raise ShapeError(f"max_pool2d: x must be a 4-D numeric array, got shape {x.shape} of {x.dtype}")
    (kh, kw), (sh, sw), (oh, ow) = _pair("kernel", kernel, 2), _pair("stride", stride, 2), _pair("out_hw", out_hw, 2)
    pt, pl = _pair("padding", padding, 4)[:2]
    lo = np.nan if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    out = np.empty((x.shape[0], oh, ow, x.shape[1]), x.dtype)
    kernel_fn, split = pick(_mp._max_pool_nhwc, _mp._max_pool_nhwc_1, out.size)
    kernel_fn(xh, kh, kw, sh, sw, pt, pl, x.dtype.type(lo), out, *split)
    return out.transpose(0, 3, 1, 2)


def max_pool_windows_inside(in_hw, kernel, stride, padding, out_hw) -> bool:
    """True when every window of a 2-D pooling holds at least one tap inside the input."""
    for n, k, s, p, o in zip(in_hw, kernel, stride, padding[:2], out_hw):
        if o and (p >= k or (o - 1) * s - p >= n):
            return False
    return True


def _channel_param(name, v, nc, dtype):
    v = np.asarray(v)
    if v.size not in (1, nc) or v.ndim > 1:
        raise ShapeError(f"{name} must be a scalar or 1-D with {nc} elements, got shape {v.shape}")
    return np.ascontiguousarray(np.broadcast_to(v.reshape(-1).astype(dtype), (nc,)))


def requantize(acc, multiplier, zero_point=0, mode="exact", out_dtype=np.uint8, axis=-1):
    """Requantize integer accumulators: ``saturate(round(acc * multiplier) + zero_point)``.

    Parameters
    ----------
    acc : np.ndarray
        Integer accumulators (any shape); int32 values for ``gemmlowp``/``tflite``.
    multiplier : float or np.ndarray
        Real multiplier ``in_scale * w_scale / out_scale`` (dimensionless), scalar or 1-D per
        channel along ``axis``. Pass it already computed in the arithmetic being reproduced.
    zero_point : int or np.ndarray
        Output zero point, scalar or per channel.
    mode : {"exact", "onnxruntime", "gemmlowp", "tflite"}
        ``exact``: ``rint(float64(acc) * float64(multiplier) + zero_point)``, half-even (ONNX
        reference evaluator). ``onnxruntime``: ``float32(acc) * float32(multiplier)``, half-even
        (MLAS ``MlasRequantizeOutput``). ``gemmlowp``: float64 multiplier -> Q31 and shift
        (frexp, half away), SaturatingRoundingDoublingHighMul then RoundingDivideByPOT (double
        rounding). ``tflite``: the same Q31 multiplier with TFLITE_SINGLE_ROUNDING.
    out_dtype : numpy integer dtype
        Output type; results saturate to its range.
    axis : int
        Channel axis of ``acc`` for per-channel parameters.

    Returns
    -------
    np.ndarray
        Array of ``out_dtype``, shape of ``acc``.
    """
    acc = _int_array("acc", acc).astype(np.int64, copy=False)
    rq = _requant.get(mode)
    info = np.iinfo(out_dtype)
    if info.bits > 32:
        raise ConfigError(f"out_dtype={np.dtype(out_dtype)} must be an integer type of <= 32 bits")
    if acc.ndim == 0:
        acc, axis = acc.reshape(1), 0
    axis = axis % acc.ndim
    nc = acc.shape[axis] if max(np.size(multiplier), np.size(zero_point)) > 1 else 1
    acc3, restore = _channel_view(acc, axis if nc > 1 else None)
    zp = _channel_param("zero_point", zero_point, nc, np.int64)
    mult = np.asarray(multiplier)
    if mult.dtype.kind != "f" or not np.all(np.isfinite(mult)) or np.any(mult < 0):
        raise InputDataError("multiplier must be finite non-negative floats")
    lo, hi = int(info.min), int(info.max)
    m = _channel_param("multiplier", mult.astype(rq.multiplier_dtype or mult.dtype), nc, np.float64)
    return restore(rq.apply(acc3, m, zp, lo, hi)).astype(out_dtype, copy=False)


def qgemm_codes(a, b, a_zero_point, b_zero_point, bias, multiplier, y_zero_point, y_range,
                pairwise_int16=False):
    """8-bit codes of a quantized GEMM, requantized in the GEMM's epilogue (from the registers,
    no accumulator array): ``requantize(sum_k (a - a_zp)(b - b_zp) + bias, multiplier,
    y_zero_point, "onnxruntime")`` saturated to ``y_range``, the same values :func:`int_matmul`
    and :func:`requantize` give (MLAS ``MlasRequantizeOutput``).

    Parameters
    ----------
    a, b : np.ndarray
        Codes (M, K) and (K, N), uint8 or int8 (uint8 x int8 with ``pairwise_int16``).
    a_zero_point : int
        Per tensor.
    b_zero_point : int or np.ndarray
        Scalar or per column (N,).
    bias : np.ndarray or None
        Integer (N,), added to the accumulator.
    multiplier : float or np.ndarray
        ``s_a * s_b / s_y`` already in float32, scalar or per column.
    y_zero_point : int or np.ndarray
        Scalar or per column.
    y_range : tuple of int
        (lo, hi) of the output codes, within uint8 (then uint8 codes) or int8.
    pairwise_int16 : bool
        As :func:`int_matmul`: raw code products saturated in int16 pairs (VPMADDUBSW), the
        zero-point terms added exactly afterwards (MLAS u8 x s8 on AVX2 without VNNI).

    Returns
    -------
    np.ndarray or None
        (M, N) codes; None where the fused kernel cannot give that result (no AVX2 kernels,
        other operand types, K longer than one exact int32 chunk, per-column ``b`` zero points
        that are not all zero, or accumulators that could leave int32): the caller then takes
        :func:`int_matmul` and :func:`requantize`.
    """
    each = _qgemm_each(a[None], b[None], a_zero_point, b_zero_point, bias, multiplier, y_zero_point, y_range,
                       pairwise_int16, True)
    return None if each is None else each[0]


def qgemm_codes_stack(a, b, a_zero_point, b_zero_point, bias, multiplier, y_zero_point, y_range,
                      pairwise_int16=False):
    """:func:`qgemm_codes` of each matrix of stacks ``a`` (B, M, K) and ``b`` (B, K, N) (attention's
    per-head products; one zero point, multiplier and range for all): (B, M, N) codes, or None
    where :func:`qgemm_codes` declines any one matrix. The checks and the zero-point terms are
    made once for the stack, each ``b[i]`` packed anew (an activation: attention's K^T or V) unless
    the stack is one matrix broadcast (a weight, kept by :mod:`hwsim.kernels.packcache`)."""
    if not a.shape[0]:
        return np.empty((0, a.shape[1], b.shape[2]), np.uint8)
    return _qgemm_each(a, b, a_zero_point, b_zero_point, bias, multiplier, y_zero_point, y_range, pairwise_int16,
                       b.strides[0] == 0)


def _qgemm_each(a, b, a_zero_point, b_zero_point, bias, multiplier, y_zero_point, y_range, pairwise_int16, keep):
    """The codes (B, M, N) of :func:`qgemm_codes` for each matrix of stacks ``a`` (B, M, K), ``b``
    (B, K, N), or None where it declines (for any matrix: the bound below is the largest over them);
    ``keep``: ``b`` is a weight (:func:`hwsim.kernels.simdgemm.requant_product_stack`)."""
    (nb, m, k), n = a.shape, b.shape[2]
    lo, hi = (int(v) for v in y_range)
    pairs_ok = a.dtype == np.uint8 and b.dtype == np.int8
    if not (_sg.available() and a.dtype.itemsize == 1 and b.dtype.itemsize == 1 and 0 < k <= _sg.MAX_K_FUSED and m * n
            and (pairs_ok or not pairwise_int16) and (-128 <= lo <= hi <= 127 or 0 <= lo <= hi <= 255)):
        return None
    az, bz = int(a_zero_point), np.asarray(b_zero_point, np.int64).reshape(-1)
    if bz.size > 1 and np.any(bz):
        return None  # - bz[j] * rowsum(a)[i] is not a row term plus a column term
    bz = int(bz[0]) if bz.size else 0
    col = np.full((nb, n), k * az * bz, np.int64)  # (B, N): the column term less az * colsum(b)
    if bias is not None:
        col = col + np.asarray(bias, np.int64).reshape(1, -1)
    row = -bz * a.sum(2, dtype=np.int64) if bz else None  # (B, M)
    raw = (k + 1) // 2 * 2**15 if pairwise_int16 else k * _bound(a) * _bound(b)
    fixed = raw + (int(np.abs(col).max()) if col.size else 0) + abs(bz) * k * _bound(a)
    sums_az = az  # the product subtracts az * colsum(b), from the sums kept with packed b
    if fixed + abs(az) * k * _bound(b) >= 2**31:  # |az * colsum(b)| <= |az| k max|b|: bound it exactly
        col, sums_az = col - az * k_sums(b), 0
        if raw + (int(np.abs(col).max()) if col.size else 0) + abs(bz) * k * _bound(a) >= 2**31:
            return None
    mult = np.broadcast_to(np.asarray(multiplier, np.float32).reshape(-1), (n,))
    zp = np.broadcast_to(np.asarray(y_zero_point, np.int64).reshape(-1), (n,))
    return _sg.requant_product_stack(a, b, pairwise_int16, col, row, mult, zp, lo, hi, sums_az, keep)


def _channel_view(x, axis):
    """``x`` as an (outer, C, inner) array in its own memory order (a view when ``x`` is a
    transpose of a contiguous array, e.g. NCHW axes over channels-last data), C the length of
    ``axis`` (1 when None), and a function taking an array shaped like that view back to ``x``'s
    shape with ``x``'s memory layout."""
    order = sorted(range(x.ndim), key=lambda d: -x.strides[d] if x.shape[d] > 1 else 0)
    xp = np.ascontiguousarray(x.transpose(order))
    if axis is None:
        x3 = xp.reshape(1, 1, -1)
    else:
        pos = order.index(axis)
        x3 = xp.reshape(int(np.prod(xp.shape[:pos])), xp.shape[pos], -1)
    back = np.argsort(order)
    return x3, lambda y: y.reshape(xp.shape).transpose(back)


def _per_tensor(**params):
    for name, v in params.items():
        if np.size(v) != 1:
            raise ShapeError(f"{name} must be per tensor (one element), got shape {np.shape(v)}")


def _zp_matmul(a, b, azp, bzp, bits, mode, pairwise):
    """``sum_k (a - azp)(b - bzp)``; with ``pairwise`` MLAS-style: raw products, then zp terms."""
    if not pairwise:
        return int_matmul(a.astype(np.int64) - azp, b.astype(np.int64) - bzp, bits, mode)
    raw = int_matmul(a, b, bits, mode, pairwise_int16=True)
    k = a.shape[-1]
    corr = -bzp * a.astype(np.int64).sum(-1, keepdims=True) - azp * b.astype(np.int64).sum(0)
    return apply_overflow(raw + corr + k * azp * bzp, _acc_bits(bits), mode)


def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point,
                   requant="exact", acc_bits=32, overflow="wrap", pairwise_int16=False):
    """ONNX QLinearMatMul: ``requant((a - a_zp) @ (b - b_zp), a_scale * b_scale / y_scale)``.

    Parameters
    ----------
    a : np.ndarray
        uint8/int8 (..., M, K); ``a_scale``/``a_zero_point`` per tensor.
    b : np.ndarray
        uint8/int8 (K, N); ``b_scale``/``b_zero_point`` per tensor or per column (N,).
    y_scale, y_zero_point
        Output scale (per tensor) and zero point; the output dtype is ``y_zero_point``'s.
    requant : {"exact", "onnxruntime", "gemmlowp", "tflite"}
        See :func:`requantize`; ``exact`` is bit-exact with onnx.reference, ``onnxruntime``
        with onnxruntime's CPU provider.
    acc_bits, overflow
        Accumulator, as in :func:`int_matmul`.
    pairwise_int16 : bool
        Model MLAS u8*s8 on AVX2 without VNNI: raw ``a*b`` k-pairs saturated to int16, zero-point
        terms added afterwards. Off by default (VNNI, ARM and the ONNX spec do not saturate).

    Returns
    -------
    np.ndarray
        (..., M, N) of ``y_zero_point``'s dtype.
    """
    a, b = _int_array("a", a), _int_array("b", b)
    _per_tensor(a_scale=a_scale, a_zero_point=a_zero_point, y_scale=y_scale,
                y_zero_point=y_zero_point)
    n = b.shape[-1] if b.ndim else 0
    azp = int(_int_array("a_zero_point", a_zero_point).reshape(-1)[0])
    bzp = _channel_param("b_zero_point", _int_array("b_zero_point", b_zero_point), n, np.int64)
    acc = _zp_matmul(a, b, azp, bzp, acc_bits, overflow, pairwise_int16)
    mult = _requant.get(requant).multiplier(a_scale, b_scale, y_scale)
    y_zero_point = _int_array("y_zero_point", y_zero_point)
    return requantize(acc, mult, y_zero_point.reshape(-1)[0], requant, y_zero_point.dtype, -1)


def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
                 bias=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
                 requant="exact", acc_bits=32, overflow="wrap"):
    """ONNX QLinearConv (2-D, NCHW / OIHW), explicit pads; resolve ``auto_pad`` before calling.

    Parameters
    ----------
    x, x_scale, x_zero_point
        uint8/int8 input (N, C, H, W) with per-tensor scale and zero point.
    w, w_scale, w_zero_point
        uint8/int8 weights (O, C/group, KH, KW); scale and zero point per tensor or per output
        channel (O,).
    y_scale, y_zero_point
        Output scale and zero point (per tensor); the output dtype is ``y_zero_point``'s.
    bias : np.ndarray, optional
        int32 (O,), added to the accumulator after the k loop (then the overflow rule applies).
    strides, pads, dilations, group
        ONNX attributes; ``pads`` = (top, left, bottom, right).
    requant, acc_bits, overflow
        As in :func:`qlinear_matmul`.

    Returns
    -------
    np.ndarray
        (N, O, OH, OW) of ``y_zero_point``'s dtype.
    """
    _per_tensor(x_scale=x_scale, x_zero_point=x_zero_point, y_scale=y_scale,
                y_zero_point=y_zero_point)
    acc = int_conv2d(x, w, strides, pads, dilations, group, acc_bits, overflow,
                     x_zero_point, w_zero_point)
    if bias is not None:
        bias = _channel_param("bias", _int_array("bias", bias), acc.shape[1], np.int64)
        acc = apply_overflow(acc + bias[:, None, None], _acc_bits(acc_bits), overflow)
    mult = _requant.get(requant).multiplier(x_scale, w_scale, y_scale)
    y_zero_point = _int_array("y_zero_point", y_zero_point)
    return requantize(acc, mult, y_zero_point.reshape(-1)[0], requant, y_zero_point.dtype, 1)


def matmul_integer(a, b, a_zero_point=0, b_zero_point=0):
    """ONNX MatMulInteger: ``(a - a_zero_point) @ (b - b_zero_point)`` as int32 (wraps).

    ``a_zero_point`` is a scalar or per row of ``a`` (M,); ``b_zero_point`` scalar or per column
    (N,). Returns int32 (..., M, N).
    """
    a, b = _int_array("a", a), _int_array("b", b)
    if a.ndim < 2 or b.ndim != 2:
        raise ShapeError(f"matmul_integer needs a (..., M, K), b (K, N); got {a.shape}, {b.shape}")
    azp = _channel_param("a_zero_point", _int_array("a_zero_point", a_zero_point), a.shape[-2],
                         np.int64)
    bzp = _channel_param("b_zero_point", _int_array("b_zero_point", b_zero_point), b.shape[1],
                         np.int64)
    a64, b64 = a.astype(np.int64) - azp[:, None], b.astype(np.int64) - bzp
    return int_matmul(a64, b64, 32, "wrap").astype(np.int32)


def conv_integer(x, w, x_zero_point=0, w_zero_point=0, strides=(1, 1), pads=(0, 0, 0, 0),
                 dilations=(1, 1), group=1):
    """ONNX ConvInteger (2-D): int32 output (N, O, OH, OW), wrapping; see :func:`int_conv2d`."""
    return int_conv2d(x, w, strides, pads, dilations, group, 32, "wrap",
                      x_zero_point, w_zero_point).astype(np.int32)


def _not_finite(name):
    return InputDataError(f"{name} must be a finite float array (values of a narrow format)")


def _float_values(name, x):
    """Contiguous float32/float64 view or copy of ``x``; rejects non-float data."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise _not_finite(name)
    return np.ascontiguousarray(x, x.dtype if x.dtype in (np.float32, np.float64) else np.float64)


def _float_array(name, x):
    """:func:`_float_values`, also rejecting non-finite data."""
    x = _float_values(name, x)
    if not np.isfinite(x).all():
        raise _not_finite(name)
    return x


def float_matmul(a, b, accumulator="fp32", order="sequential", block_k=32):
    """Matrix product of low-precision float values with exact products and a modelled accumulator.

    Parameters
    ----------
    a, b : np.ndarray
        Float arrays (M, K) and (K, N) whose values are already representable in a narrow format
        (fp4..fp32, e.g. fp8 values stored as float32); finite.
    accumulator : {"fp32", "fp16", "bf16", "exact"}
        Format of the running sum; each addition rounds once, half to even, overflow to inf.
        ``exact`` sums exactly and rounds once to float64.
    order : {"sequential", "pairwise", "blocked"}
        Summation order along k (see :mod:`hwsim.kernels.floatgemm`); ignored for ``exact``.
    block_k : int
        Block length in elements for ``blocked``.

    Returns
    -------
    np.ndarray
        float64 (M, N), every value representable in ``accumulator``.
    """
    fmt = _choice("accumulator", accumulator, ACCUMULATORS)
    order_code = _choice("order", order, ORDERS)
    a, b = _float_values("a", a), _float_values("b", b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ShapeError(f"float_matmul needs a (M, K) and b (K, N); got {a.shape} and {b.shape}")
    if not isinstance(block_k, (int, np.integer)) or block_k < 1:
        raise ConfigError(f"block_k={block_k!r} must be a positive integer")
    scans = _fg.scan(a), _fg.scan(b)  # one pass each: finiteness and the exactness stats
    for name, sc in zip("ab", scans):
        if not sc.finite:
            raise _not_finite(name)
    return _fg.float_matmul(a, b, fmt, order_code, int(block_k), scans)


def _mx_scales(name, s, shape):
    s = _float_array(name, s)
    if s.shape != shape:
        raise ShapeError(f"{name} must have shape {shape} (one scale per 32 elements along K)")
    if np.any(s <= 0) or np.any(np.frexp(s)[0] != 0.5):
        raise InputDataError(f"{name} must hold positive powers of two (E8M0 scales)")
    return s


def mx_matmul(a_elems, a_scales, b_elems, b_scales, accumulator="fp32"):
    """OCP MX block matrix product (block of 32 along K).

    Parameters
    ----------
    a_elems, b_elems : np.ndarray
        Element values (M, K) and (K, N), already representable in the element format.
    a_scales, b_scales : np.ndarray
        Power-of-two block scales (M, ceil(K/32)) and (ceil(K/32), N).
    accumulator : {"fp32", "fp16", "bf16", "exact"}
        Each block dot is exact; ``scale_a * scale_b * dot`` is added block by block in k order
        into this format (one rounding per block); ``exact`` sums everything exactly.

    Returns
    -------
    np.ndarray
        float64 (M, N).
    """
    fmt = _choice("accumulator", accumulator, ACCUMULATORS)
    a, b = _float_array("a_elems", a_elems), _float_array("b_elems", b_elems)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ShapeError(f"mx_matmul needs a (M, K) and b (K, N); got {a.shape} and {b.shape}")
    nb = -(-a.shape[1] // 32)
    sa = _mx_scales("a_scales", a_scales, (a.shape[0], nb))
    sb = _mx_scales("b_scales", b_scales, (nb, b.shape[1]))
    return _fg.mx_matmul(a, sa, b, sb, 32, fmt)
