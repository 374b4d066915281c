"""Max pooling (hwsim.kernels.maxpool) against np.nanmax over NaN-padded sliding windows."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import kernel_api
from hwsim.kernels import maxpool


def _nanmax_windows(x, kernel, stride, pads, out_hw):
    """The plain form: a float64 copy padded with NaN (enough for every window), np.nanmax of
    each sliding window."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    n, c, h, w = x.shape
    hp, wp = max(h + pads[0], (oh - 1) * sh + kh), max(w + pads[1], (ow - 1) * sw + kw)
    xp = np.full((n, c, hp, wp), np.nan)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        return np.nanmax(win, axis=(-2, -1))


def _case(data):
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    pads = (data.draw(st.integers(0, kh)), data.draw(st.integers(0, kw)))  # a pad of kh: windows with no tap inside
    h, w = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    oh = (h + 2 * pads[0] - kh) // sh + 1 + data.draw(st.integers(0, 1))  # ceil mode: one more window
    ow = (w + 2 * pads[1] - kw) // sw + 1 + data.draw(st.integers(0, 1))
    return (kh, kw), (sh, sw), pads, (h, w), (max(oh, 1), max(ow, 1))


def _layout(x, channels_last):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if channels_last else x


@pytest.mark.nojit
@settings(max_examples=120, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32]), nan_frac=st.sampled_from([0.0, 0.3, 1.0]),
       channels_last=st.booleans(), seed=st.integers(0, 2**31))
def test_float_max_pool_is_nanmax_of_padded_windows(data, dtype, nan_frac, channels_last, seed):
    kernel, stride, pads, (h, w), out_hw = _case(data)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    x[rng.random(x.shape) < nan_frac] = np.nan  # NaN as data, passed over like padding
    got = kernel_api.max_pool2d(_layout(x, channels_last), kernel, stride, pads + (0, 0), out_hw)
    assert got.dtype == dtype and got.shape == (2, 3) + out_hw
    np.testing.assert_array_equal(got, _nanmax_windows(x, kernel, stride, pads, out_hw).astype(dtype))


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.int8]), seed=st.integers(0, 2**31))
def test_code_max_pool_is_nanmax_where_windows_hold_a_tap(data, dtype, seed):
    kernel, stride, pads, hw, out_hw = _case(data)
    inside = kernel_api.max_pool_windows_inside(hw, kernel, stride, pads + (0, 0), out_hw)
    want = _nanmax_windows(np.zeros((1, 1) + hw), kernel, stride, pads, out_hw)
    assert inside == bool(np.isfinite(want).all())  # the predicate says which windows hold a tap
    if not inside:
        return
    info = np.iinfo(dtype)
    x = np.random.default_rng(seed).integers(info.min, info.max + 1, (2, 4) + hw).astype(dtype)
    got = kernel_api.max_pool2d(x, kernel, stride, pads + (0, 0), out_hw)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _nanmax_windows(x.astype(np.float64), kernel, stride, pads, out_hw))


def test_threaded_kernel_equals_serial(rng):
    """Both compiled variants (work items claimed by 2 threads; the serial twin) give the
    nanmax result, NaN data included."""
    x = rng.standard_normal((3, 40, 17, 16))
    x[rng.random(x.shape) < 0.1] = np.nan
    want = _nanmax_windows(x, (3, 3), (2, 2), (1, 1), (9, 8))
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for fn, threads in ((maxpool._max_pool_nhwc, 2), (maxpool._max_pool_nhwc_1, 1)):
        out = np.empty((3, 9, 8, 40))
        fn(xh, 3, 3, 2, 2, 1, 1, np.nan, out, np.zeros(1, np.int64), threads)
        np.testing.assert_array_equal(out.transpose(0, 3, 1, 2), want)
