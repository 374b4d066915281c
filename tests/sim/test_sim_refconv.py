"""The float reference's convs of hwsim.sim.refconv give the values of the plain paths bit for bit:
the block-patch conv those of the whole-patch path (compute.conv2d_float on refblas.dot), the
depthwise conv those of rounding its operand to float32, a numpy conv summing the taps in the
weights' type (float32: each product and sum rounded by numpy) and Biased.as_float32."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.graph.ops import Conv2d
from hwsim.sim import compute, refblas, refconv
from hwsim.sim.refvalues import Biased


def _op(stride, pads, dil, groups=1):
    return Conv2d(name="c", inputs=["x", "w"], outputs=["y"], stride=stride, padding=pads, dilation=dil, groups=groups)


def _channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@settings(max_examples=40, deadline=None)
@given(k=st.sampled_from([(1, 1), (3, 3), (2, 3), (7, 7)]), stride=st.sampled_from([(1, 1), (2, 2), (1, 2)]),
       pads=st.sampled_from([(0, 0, 0, 0), (1, 1, 1, 1), (3, 3, 3, 3), (0, 1, 2, 1)]),
       dil=st.sampled_from([(1, 1), (2, 1)]), kind=st.sampled_from(["biased", "f64", "f32", "f64_nchw"]),
       c=st.sampled_from([3, 16]), o=st.sampled_from([8, 40]), big=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_block_patch_conv_equals_whole_patch_conv(k, stride, pads, dil, kind, c, o, big, dtype, seed):
    """In the reference's product type (float32 by default, float64 on request and in solve)."""
    op = _op(stride, pads, dil)
    w = np.random.default_rng(seed).standard_normal((o, c) + k).astype(dtype)
    rng = np.random.default_rng(seed + 1)
    hw = 30 if big else 9  # big: more than refblas._MIN_SPLIT_MACS, several row blocks
    y = rng.standard_normal((2, c, hw, hw + 1))
    if kind == "biased":
        x = Biased(_channels_last(y.astype(np.float32)), rng.standard_normal(c), 1)
        x32 = x.real().astype(dtype)
    else:
        x = {"f64": _channels_last(y), "f32": _channels_last(y.astype(np.float32)), "f64_nchw": y}[kind]
        x32 = np.asarray(x, dtype)
    try:
        want = compute.conv2d_float(x32, w, op, refblas.dot)
    except Exception as exc:  # no output for these shapes: both refuse
        with pytest.raises(type(exc)):
            refconv.conv2d(x, w, op)
        return
    got = refconv.conv2d(x, w, op)
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _depthwise_plain(x32, w, op):
    """numpy: per tap (i, j) ascending, add ``x32 * w[c, 0, i, j]`` (in ``w``'s type, rounded by
    numpy) at the outputs whose tap lies inside the input, to sums starting at 0."""
    from hwsim import kernel_api

    (sh, sw), (dh, dw), (pt, pl) = op.stride, op.dilation, op.padding[:2]
    n, c, h, wd = x32.shape
    oh, ow = kernel_api._conv_out_hw(x32, w, op.stride, op.padding, op.dilation)
    v = x32.astype(w.dtype)
    out = np.zeros((n, c, oh, ow), w.dtype)
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            ys, xs = np.arange(oh) * sh - pt + i * dh, np.arange(ow) * sw - pl + j * dw
            oy, ox = np.nonzero((ys >= 0) & (ys < h))[0], np.nonzero((xs >= 0) & (xs < wd))[0]
            tap = v[:, :, ys[oy][:, None], xs[ox][None, :]] * w[:, 0, i, j][None, :, None, None]
            out[:, :, oy[:, None], ox[None, :]] += tap
    return out


@settings(max_examples=30, deadline=None)
@given(k=st.sampled_from([(3, 3), (5, 5), (1, 1)]), stride=st.sampled_from([(1, 1), (2, 2)]),
       pads=st.sampled_from([(0, 0, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2)]), kind=st.sampled_from(["biased", "f64", "f32"]),
       c=st.sampled_from([8, 96]), big=st.booleans(),
       sums=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_depthwise_equals_direct_conv_then_bias_round(k, stride, pads, kind, c, big, sums, seed):
    op = _op(stride, pads, (1, 1), groups=c)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, 1) + k).astype(np.float32).astype(sums)
    bias = rng.standard_normal(c)
    hw = 40 if big else 7  # big: the threaded kernel (more work than workqueue.PARALLEL_MIN)
    y = rng.standard_normal((2, c, hw, hw))
    if kind == "biased":
        x = Biased(_channels_last(y.astype(np.float32)), rng.standard_normal(c), 1)
        x32 = x.as_float32()
    else:
        x = _channels_last(y) if kind == "f64" else _channels_last(y.astype(np.float32))
        x32 = np.asarray(x, np.float32)
    assert refconv.depthwise_applies(op, w.shape, x.shape, bias)
    want = Biased(_depthwise_plain(x32, w, op), bias, 1)
    got = refconv.depthwise(x, w, op, bias)
    assert got.y.dtype == w.dtype
    np.testing.assert_array_equal(got.real(), want.real())
    np.testing.assert_array_equal(got.as_float32(), want.as_float32())


@settings(max_examples=20, deadline=None)
@given(pads=st.sampled_from([(1, 1, 1, 1), (0, 0, 0, 0), (0, 1, 2, 1)]), kind=st.sampled_from(["biased", "f64", "f32"]),
       hw=st.sampled_from([(7, 7), (6, 9)]), seed=st.integers(0, 2**31))
def test_winograd_is_the_float32_conv_within_float32_roundoff(pads, kind, hw, seed):
    """The reference's Winograd conv (3x3 stride 1, 128+ input channels): its operand is that of
    the patches' path (a Biased rounded to float32), its result within float32 roundoff of the
    float64 conv of that operand (relative RMS 3-4e-7 measured; the patches' GEMM 2.2e-7)."""
    c, o = refconv.WINOGRAD_MIN_CHANNELS, 24
    op = _op((1, 1), pads, (1, 1))
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((o, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    y = np.maximum(rng.standard_normal((2, c) + hw), 0)
    if kind == "biased":
        x = Biased(_channels_last(y.astype(np.float32)), rng.standard_normal(c) * 0.1, 1)
        x32 = x.as_float32()
    else:
        x = _channels_last(y) if kind == "f64" else _channels_last(y.astype(np.float32))
        x32 = np.asarray(x, np.float32)
    assert refconv.winograd_applies(op, w.shape) and not refconv.winograd_applies(op, (o, c - 1, 3, 3))
    got = refconv.winograd(x, refconv.winograd_weights(w), op)
    want = compute.conv2d_float(x32.astype(np.float64), w.astype(np.float64), op, refblas.dot)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.sqrt(np.mean((got - want) ** 2) / np.mean(want ** 2)) < 1.5e-6
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())
