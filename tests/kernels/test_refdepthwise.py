"""The float reference's depthwise kernel (hwsim.kernels.refdepthwise) against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import refdepthwise


def _plain(xh, in_bias, wt, stride, pads, dil, out_hw, out_bias):
    """numpy: round the operand to float32, then per tap (i, j) ascending add the products of
    the taps inside the input to a sum starting at 0, products and sums in ``wt``'s type (numpy
    rounds each to it)."""
    v = (xh.astype(np.float64) + in_bias).astype(np.float32) if in_bias is not None else xh.astype(np.float32)
    v = v.astype(wt.dtype)
    n, h, w, c = v.shape
    (sh, sw), (dh, dw), (oh, ow) = stride, dil, out_hw
    out = np.zeros((n, oh, ow, c), wt.dtype)
    for y in range(oh):
        for xo in range(ow):
            for i in range(wt.shape[0]):
                for j in range(wt.shape[1]):
                    yy, xx = y * sh - pads[0] + i * dh, xo * sw - pads[1] + j * dw
                    if 0 <= yy < h and 0 <= xx < w:
                        out[:, y, xo] += v[:, yy, xx] * wt[i, j]
    return out, (out.astype(np.float64) + out_bias).astype(np.float32)


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 2), sw=st.integers(1, 2),
       pads=st.tuples(st.integers(0, 2), st.integers(0, 2)), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       h=st.integers(3, 6), w=st.integers(3, 6), c=st.integers(1, 6), biased=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), sums=st.sampled_from([np.float32, np.float64]),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**31))
def test_depthwise_ref_equals_numpy(kh, kw, sh, sw, pads, dil, h, w, c, biased, dtype, sums, threads, seed):
    oh = (h + 2 * pads[0] - dil[0] * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pads[1] - dil[1] * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        return
    rng = np.random.default_rng(seed)
    xh = (rng.standard_normal((2, h, w, c)) * 3.0).astype(dtype)
    in_bias = rng.standard_normal(c) if biased else None
    wt = rng.standard_normal((kh, kw, c)).astype(np.float32).astype(sums)
    out_bias = rng.standard_normal(c)
    want, want32 = _plain(xh, in_bias, wt, (sh, sw), pads, dil, (oh, ow), out_bias)
    out, out32 = np.full((2, oh, ow, c), np.nan, sums), np.full((2, oh, ow, c), np.nan, np.float32)
    kernel = refdepthwise._depthwise_ref if threads == 2 else refdepthwise._depthwise_ref_1
    kernel(xh, np.zeros(1) if in_bias is None else in_bias, biased, wt, sh, sw, pads[0], pads[1], dil[0], dil[1],
           out_bias, out, out32, np.zeros(1, np.int64), threads)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(out32, want32)


@pytest.mark.parametrize("stride,pads,dil,c", [((1, 1), (1, 1), (1, 1), 19), ((2, 2), (1, 1), (1, 1), 8),
                                               ((1, 2), (2, 0), (2, 1), 5), ((1, 1), (0, 0), (1, 1), 33)])
@pytest.mark.parametrize("sums", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_ref_3x3_interior(stride, pads, dil, c, sums, threads):
    """3x3 kernels on rows wide enough for interior columns (summed as one expression per channel)
    and borders (tap by tap); an inf weight reaches only the outputs whose taps read the input
    (padding contributes nothing, not 0 * inf), and a NaN input only its neighbours."""
    rng = np.random.default_rng(c)
    h, w = 9, 12
    oh = (h + 2 * pads[0] - dil[0] * 2 - 1) // stride[0] + 1
    ow = (w + 2 * pads[1] - dil[1] * 2 - 1) // stride[1] + 1
    xh = (rng.standard_normal((3, h, w, c)) * 3.0).astype(np.float32)
    xh[1, 4, 5, 0] = np.nan
    in_bias, out_bias = rng.standard_normal(c), rng.standard_normal(c)
    wt = rng.standard_normal((3, 3, c)).astype(np.float32).astype(sums)
    wt[0, 0, c - 1] = np.inf
    want, want32 = _plain(xh, in_bias, wt, stride, pads, dil, (oh, ow), out_bias)
    out, out32 = np.full((3, oh, ow, c), np.nan, sums), np.full((3, oh, ow, c), np.nan, np.float32)
    kernel = refdepthwise._depthwise_ref if threads == 2 else refdepthwise._depthwise_ref_1
    kernel(xh, in_bias, True, wt, stride[0], stride[1], pads[0], pads[1], dil[0], dil[1], out_bias, out, out32,
           np.zeros(1, np.int64), threads)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(out32, want32)
