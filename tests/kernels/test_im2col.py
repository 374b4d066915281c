"""im2col (both column orders) against a plain-numpy loop over output positions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import kernel_api


def _reference(x, kh, kw, stride, pads, dil, c0, cg, fill, channels_last):
    n, _, h, w = x.shape
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    xp = np.full((n, x.shape[1], h + pads[0] + pads[2], w + pads[1] + pads[3]), fill, x.dtype)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    out = np.empty((n, oh, ow, cg * kh * kw), x.dtype)
    for y in range(oh):
        for xo in range(ow):
            patch = xp[:, c0:c0 + cg, y * stride[0]:y * stride[0] + dil[0] * (kh - 1) + 1:dil[0],
                       xo * stride[1]:xo * stride[1] + dil[1] * (kw - 1) + 1:dil[1]]  # (n, cg, kh, kw)
            out[:, y, xo] = (patch.transpose(0, 2, 3, 1) if channels_last else patch).reshape(n, -1)
    return out


@pytest.mark.nojit
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 6), h=st.integers(1, 7), w=st.integers(1, 7), k=st.integers(1, 3),
       stride=st.integers(1, 2), pad=st.integers(0, 2), dil=st.integers(1, 2), channels_last=st.booleans(),
       fill=st.integers(0, 255), seed=st.integers(0, 2**31))
def test_im2col_matches_reference(n, c, h, w, k, stride, pad, dil, channels_last, fill, seed):
    if h + 2 * pad < dil * (k - 1) + 1 or w + 2 * pad < dil * (k - 1) + 1:
        return
    x = np.random.default_rng(seed).integers(0, 256, (n, c, h, w)).astype(np.uint8)
    c0, cg = (1, c - 1) if c > 1 else (0, c)
    got = kernel_api.im2col(x, (k, k), (stride,) * 2, (pad,) * 4, (dil,) * 2, (c0, cg), np.uint8, fill, channels_last)
    want = _reference(x, k, k, (stride,) * 2, (pad,) * 4, (dil,) * 2, c0, cg, fill, channels_last)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 6), h=st.integers(1, 7), w=st.integers(1, 7),
       layout=st.sampled_from(["nchw", "nhwc"]), seed=st.integers(0, 2**31))
def test_1x1_channels_last_patches_are_the_input(n, c, h, w, layout, seed):
    """A 1x1 conv without stride or padding (the patch copy is skipped) and, next to it, the same
    with padding (the general path), for a channel group, from either memory layout."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, h, w, c)).astype(np.uint8).transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x) if layout == "nchw" else x
    c0 = int(rng.integers(0, c))
    cg = c - c0
    for pad in (0, 1):
        got = kernel_api.im2col(x, (1, 1), (1, 1), (pad,) * 4, (1, 1), (c0, cg), np.uint8, 9, True)
        np.testing.assert_array_equal(got, _reference(x, 1, 1, (1, 1), (pad,) * 4, (1, 1), c0, cg, 9, True))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 6), h=st.integers(2, 7), w=st.integers(2, 7), k=st.integers(1, 3),
       stride=st.integers(1, 2), pad=st.integers(0, 1), layout=st.sampled_from(["nchw", "nhwc"]),
       seed=st.integers(0, 2**31))
def test_patches_written_into_a_buffer(n, c, h, w, k, stride, pad, layout, seed):
    """``out``: the patches land at the start of a larger reused buffer (a view of it), from a
    channels-last input read without a copy or an NCHW one; a buffer too small is refused."""
    from hwsim.errors import ShapeError

    if h + 2 * pad < k or w + 2 * pad < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32).transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x) if layout == "nchw" else x
    buf = np.full(n * h * w * c * k * k * 4 + 7, np.nan, np.float32)
    args = ((k, k), (stride,) * 2, (pad,) * 4, (1, 1), None, np.float32, 0, True)
    got = kernel_api.im2col(x, *args, buf)
    assert np.shares_memory(got, buf)
    want = _reference(x, k, k, (stride,) * 2, (pad,) * 4, (1, 1), 0, c, 0, True)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ShapeError):
        kernel_api.im2col(x, *args, buf[:got.size - 1])


def test_threaded_and_serial_copies_equal_the_reference():
    """Both compiled variants of each patch copy (threads; the serial twin that workqueue.pick
    takes for small patches or busy CPUs) give the reference's patches."""
    from hwsim.kernels import conv

    x = np.random.default_rng(5).integers(-128, 128, (2, 5, 9, 8)).astype(np.int8)
    k, s, p, oh, ow = 3, 2, 1, 5, 4
    want = {last: _reference(x, k, k, (s, s), (p,) * 4, (1, 1), 1, 4, -7, last).reshape(2 * oh * ow, -1)
            for last in (False, True)}
    for fn, last in ((conv._im2col, False), (conv._im2col_1, False), (conv._im2col_nhwc, True),
                     (conv._im2col_nhwc_1, True)):
        out = np.zeros((2 * oh * ow, 4 * k * k), np.int8)
        if last:  # bytes, as conv.im2col passes them
            fn(np.ascontiguousarray(x[:, 1:5].transpose(0, 2, 3, 1)).view(np.uint8), k, k, s, s, p, p, 1, 1, oh, ow,
               np.full(4, -7, np.int8).view(np.uint8), out.view(np.uint8))
        else:
            fn(x.view(np.uint8), 1, 4, k, k, s, s, p, p, 1, 1, oh, ow, np.int8(-7).view(np.uint8), out.view(np.uint8))
        np.testing.assert_array_equal(out, want[last])


@pytest.mark.nojit
@settings(max_examples=30, deadline=None)
@given(x_dtype=st.sampled_from(["u1", "i1", "i2", "u2", "f4", "f8", "i8"]),
       out_dtype=st.sampled_from(["same", "i8", "f8"]), channels_last=st.booleans(), pad=st.integers(0, 2),
       seed=st.integers(0, 2**31))
def test_every_dtype_and_a_converting_copy(x_dtype, out_dtype, channels_last, pad, seed):
    """The kernels copy bits (one compiled kernel per item size or one for all): every dtype,
    a negative or fractional fill, and patches of another dtype than the input (converted)."""
    rng = np.random.default_rng(seed)
    xdt = np.dtype(x_dtype)
    odt = xdt if out_dtype == "same" else np.dtype(out_dtype)
    lo, hi = (-100, 100) if xdt.kind in "if" and xdt != np.uint16 else (0, 200)
    x = rng.integers(lo, hi, (2, 5, 6, 5)).astype(xdt) if xdt.kind != "f" else \
        (rng.standard_normal((2, 5, 6, 5)) * 50).astype(xdt)
    fill = -1.5 if odt.kind == "f" else (-7 if odt.kind == "i" else 7)
    got = kernel_api.im2col(x, (3, 2), (2, 1), (pad, 1, pad, 0), (1, 2), (1, 3), odt, fill, channels_last)
    want = _reference(x.astype(odt), 3, 2, (2, 1), (pad, 1, pad, 0), (1, 2), 1, 3, fill, channels_last)
    assert got.dtype == odt
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape, dtype", [((3, 37, 41, 70), np.int64), ((2, 50, 50, 33), np.float64),
                                          ((1, 9, 9, 5), np.int32)])
def test_nchw_into_is_the_transposed_copy(shape, dtype):
    """conv.nchw_into (a blocked copy for big arrays, numpy's below) writes what numpy's
    transposing copy writes; channel and pixel counts that are no multiples of the block."""
    from hwsim.kernels import conv

    rng = np.random.default_rng(len(shape) + shape[-1])
    src = rng.integers(-10**12, 10**12, shape).astype(dtype)
    out = np.full((shape[0], shape[3], shape[1], shape[2]), 7, dtype)
    assert conv.nchw_into(src, out) is out
    np.testing.assert_array_equal(out, np.ascontiguousarray(src.transpose(0, 3, 1, 2)))
