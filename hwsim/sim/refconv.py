"""The float reference's conv2d in float32, its patches made block by block where they are used.

:func:`hwsim.sim.compute.conv2d_float` with :func:`hwsim.sim.refblas.dot` makes the whole
channels-last patch matrix of the float32 operand (KH*KW times the input: 58 MB for one 3x3 conv
of ResNet-18's first stage at batch 8), then multiplies it in blocks of rows on a pool of threads.
Here each task of that pool copies its own block of rows (:mod:`hwsim.kernels.refpatches`, into a
buffer the thread keeps) and multiplies it while it is in cache: the patch matrix never exists,
the copying runs on the pool's threads, and an input that is a reference product plus its bias
(:class:`~hwsim.sim.refvalues.Biased`) is rounded to float32 as it is copied instead of in a pass
of its own. The blocks, the patch values and the BLAS calls are those of that path
(:func:`hwsim.sim.refblas.row_blocks`), so the values are the same, bit for bit.

3x3 stride-1 convs of :data:`WINOGRAD_MIN_CHANNELS` or more input channels run as Winograd
F(2x2, 3x3) in float32 instead (:func:`winograd`, :mod:`hwsim.kernels.winograd`; also the float32
tails of :mod:`hwsim.solve.tail_cnn`): 16 products of (tiles, C) by (C, O), 2.25x fewer
multiplications than the patches' GEMM.
"""

from __future__ import annotations

import threading

import numpy as np

from hwsim import kernel_api
from hwsim.sim import refblas, refvalues

_local = threading.local()
_NO_BIAS = np.zeros(1)


def applies(op, w_shape, x, dtype) -> bool:
    """True for the convs :func:`conv2d` runs in the reference's product type ``dtype``: one
    group, and patches of more than one tap, a padded or strided 1x1, or an unpadded 1x1 whose
    operand ``x`` is not yet an array of ``dtype`` (a :class:`~hwsim.sim.refvalues.Biased`
    without it made, an array of another type: each task rounds its own rows). An unpadded 1x1
    conv of such an array is one product of the input itself (:func:`hwsim.sim.compute.conv2d_float`)."""
    if op.groups != 1:
        return False
    if not (w_shape[2] == w_shape[3] == 1 and not any(op.padding)) or tuple(op.stride) != (1, 1):
        return True
    if isinstance(x, refvalues.Biased):
        return (x._f32 if np.dtype(dtype) == np.float32 else x._real) is None
    return isinstance(x, np.ndarray) and x.dtype != dtype


def _buffer(size: int, dtype) -> np.ndarray:
    """This thread's patch buffer of ``dtype``, grown to ``size`` elements."""
    bufs = getattr(_local, "patches", None)
    if bufs is None:
        bufs = _local.patches = {}
    buf = bufs.get(np.dtype(dtype))
    if buf is None or buf.size < size:
        buf = bufs[np.dtype(dtype)] = np.empty(size, dtype)
    return buf


def _operand(x, dtype=np.float32) -> tuple[np.ndarray, np.ndarray | None]:
    """(channels-last values (N, H, W, C), per-channel bias or None) whose rounding to ``dtype``
    (of ``float64(v) + bias``, or of ``v``) is the operand of ``x`` in that type."""
    if isinstance(x, refvalues.Biased) and x.axis == 1 and x.bias.size == x.shape[1] and x.y.size:
        yh = x.y.transpose(0, 2, 3, 1)
        if yh.flags.c_contiguous:
            return yh, x.bias
    v = refvalues.as_dtype(x, dtype) if isinstance(x, (refvalues.Biased, refvalues.Product)) else np.asarray(x)
    return np.ascontiguousarray(v.transpose(0, 2, 3, 1)), None


def conv2d(x, w: np.ndarray, op) -> np.ndarray:
    """``conv2d_float(x in w's type, w, op, refblas.dot)`` for a conv :func:`applies` to: ``x``
    (N, C, H, W) an array or a :class:`~hwsim.sim.refvalues.Biased`, ``w`` (O, C, KH, KW) float32
    or float64 (the reference's product type). Returns (N, O, OH, OW) of ``w``'s type, a view of
    channels-last data."""
    from hwsim.kernels.refpatches import _patches_nhwc

    xh, bias = _operand(x, w.dtype)
    o, c, kh, kw = w.shape
    (sh, sw), (dh, dw) = op.stride, op.dilation
    oh, ow = kernel_api._conv_out_hw(x, w, op.stride, op.padding, op.dilation)
    n, k = xh.shape[0], kh * kw * c
    b = w.transpose(0, 2, 3, 1).reshape(o, -1).T  # (K, O), as conv2d_float hands it to refblas.dot
    out = np.empty((n * oh * ow, o), w.dtype)
    with_bias = bias is not None
    bias = bias if with_bias else _NO_BIAS

    def task(i: int, j: int) -> None:
        a = _buffer((j - i) * k, w.dtype)[:(j - i) * k].reshape(j - i, k)
        _patches_nhwc(xh, bias, with_bias, kh, kw, sh, sw, op.padding[0], op.padding[1], dh, dw, oh, ow, i, a)
        np.dot(a, b, out=out[i:j])

    refblas.run_tasks([lambda i=i, j=j: task(i, j) for i, j in refblas.row_blocks(out.shape[0], k, o)])
    return out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)


def depthwise_applies(op, w_shape, x_shape, bias) -> bool:
    """True for the convs :func:`depthwise` runs: one input and one output channel per group,
    with a 1-D bias of one value per channel."""
    return op.groups == x_shape[1] == w_shape[0] > 1 and w_shape[1] == 1 and bias is not None \
        and np.ndim(bias) == 1 and np.size(bias) == w_shape[0]


def depthwise(x, w: np.ndarray, op, bias: np.ndarray) -> refvalues.Biased:
    """The reference's depthwise conv plus its bias, ``Biased(y, bias, 1)`` with ``y`` the taps of
    ``float32(x)`` times ``w`` summed per output in ascending tap order in ``w``'s type (float32,
    the reference's product type: each product and partial sum rounded to float32, as its BLAS
    products are; float64 sums of float32 operands before 2026-11-26, :mod:`hwsim.kernels.refdepthwise`),
    with its float32 operand for the next layer made in the same pass (the same values as
    :meth:`~hwsim.sim.refvalues.Biased.as_float32`). ``x`` (N, C, H, W) an array or a
    :class:`~hwsim.sim.refvalues.Biased`, ``w`` (C, 1, KH, KW) float32 or float64."""
    from hwsim.kernels.refdepthwise import _depthwise_ref, _depthwise_ref_1
    from hwsim.kernels.workqueue import pick

    xh, in_bias = _operand(x)
    oh, ow = kernel_api._conv_out_hw(x, w, op.stride, op.padding, op.dilation)
    wt = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))
    bias = np.ascontiguousarray(bias, np.float64)
    out = np.empty((xh.shape[0], oh, ow, xh.shape[3]), wt.dtype)
    out32 = np.empty(out.shape, np.float32)
    kernel, split = pick(_depthwise_ref, _depthwise_ref_1, out.size * wt.shape[0] * wt.shape[1])
    kernel(xh, _NO_BIAS if in_bias is None else in_bias, in_bias is not None, wt, op.stride[0], op.stride[1],
           op.padding[0], op.padding[1], op.dilation[0], op.dilation[1], bias, out, out32, *split)
    return refvalues.Biased(out.transpose(0, 3, 1, 2), bias, 1, f32=out32.transpose(0, 3, 1, 2))


#: fewest input channels for Winograd: below, its transforms cost more than the multiplications it
#: saves (the AMD EPYC of earlier sessions, 24 x 56 x 56 x 64 -> 64: 170 ms CPU against 142 ms for the
#: patches' GEMM; 128 channels at 28 x 28: 88 against 128 ms; 512 at 7 x 7: 48 against 80 ms. The
#: AVX-512 Xeon, 2026-11-27, batch 8, one thread: 64 x 56 x 56 37 against 27 ms; 128 x 28 x 28 13
#: against 22; 256 x 14 x 14 10 against 18; 512 x 7 x 7 17 against 25)
WINOGRAD_MIN_CHANNELS = 128  # float64 too (8 x 56 x 56 x 64: 68 ms against 67, one CPU, load 6)


def winograd_applies(op, w_shape: tuple) -> bool:
    """Whether a convolution runs as Winograd F(2x2, 3x3): 3x3, stride and dilation 1, one group,
    at least :data:`WINOGRAD_MIN_CHANNELS` input channels. Its float32 error, measured against
    float64 (relative RMS, random weights, ReLU'd inputs): 3-4e-7, against 2.2e-7 for the patches'
    GEMM; both are float32 roundoff (rounding the exact result alone: 2.5e-8)."""
    return (tuple(w_shape[2:]) == (3, 3) and tuple(op.stride) == (1, 1) and tuple(op.dilation) == (1, 1)
            and op.groups == 1 and w_shape[1] >= WINOGRAD_MIN_CHANNELS)


def winograd_weights(w: np.ndarray, dtype=np.float32) -> np.ndarray:
    """G g G^T of the 3x3 kernels of ``w`` (O, C, 3, 3), computed in float64 and rounded once to
    ``dtype`` (float32, or float64): (16, C, O), a view of (16, O, C) memory
    (:func:`hwsim.kernels.winograd._weights`: G g first, then (G g) G^T, which is exact for float32
    weights; solve's float32 tails take it too, for weights with a batch norm folded in
    (:mod:`hwsim.solve.tail_cnn`)."""
    from hwsim.kernels.winograd import _weights

    out = np.empty((16, w.shape[0], w.shape[1]), dtype)
    _weights(np.ascontiguousarray(w, np.float64) if w.dtype != np.float32 else np.ascontiguousarray(w), out)
    return out.transpose(0, 2, 1)


def winograd_conv(x: np.ndarray, u: np.ndarray, bias, pads: tuple) -> np.ndarray:
    """3x3 convolution (stride 1) of float32 ``x`` (N, C, H, W) by Winograd weights ``u``
    (16, C, O): (N, OH, OW, O) channels last, in ``u``'s float type (float64: ``x`` widened first,
    every transform in float64). The transforms are :mod:`hwsim.kernels.winograd`;
    the 16 products run in the float reference's blocks (:func:`hwsim.sim.refblas.matmul`, one
    matrix per task)."""
    from hwsim.kernels.winograd import _input_tiles, _output_tiles

    n, c, h, w = x.shape
    top, left, bottom, right = pads
    oh, ow = h + top + bottom - 2, w + left + right - 2
    th, tw = -(-oh // 2), -(-ow // 2)
    v = np.empty((16, n * th * tw, c), u.dtype)
    _input_tiles(np.ascontiguousarray(x.transpose(0, 2, 3, 1), u.dtype), top, left, th, tw, v)
    m = refblas.matmul(v, u)
    y = np.empty((n, oh, ow, u.shape[-1]), u.dtype)
    _output_tiles(m, np.zeros(1, u.dtype) if bias is None else bias, bias is not None, n, th, tw, y)
    return y


def winograd(x, u: np.ndarray, op) -> np.ndarray:
    """The reference's conv of ``x`` (N, C, H, W; an array or a
    :class:`~hwsim.sim.refvalues.Biased`, rounded to float32) by Winograd weights ``u``
    (:func:`winograd_weights`) for a conv :func:`winograd_applies` to, without its bias: float32
    (N, O, OH, OW), a view of channels-last data."""
    return winograd_conv(refvalues.as_dtype(x, np.float32), u, None, op.padding).transpose(0, 3, 1, 2)
