"""Depthwise / small-group convolutions (the direct kernels) against the int64 oracle."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import kernel_api
from tests.kernels import reference as ref


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 4), mult=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       pads=st.tuples(*[st.integers(0, 2)] * 4), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       mode_bits=st.sampled_from([("wrap", 12), ("wrap", 32), ("none", 64), ("saturate", 12)]),
       seed=st.integers(0, 2**31))
def test_depthwise_matches_oracle(c, mult, h, w, kh, kw, sh, sw, pads, dil, mode_bits, seed):
    if h + pads[0] + pads[2] < dil[0] * (kh - 1) + 1 or w + pads[1] + pads[3] < dil[1] * (kw - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (2, c, h, w)).astype(np.uint8)
    wt = rng.integers(-128, 128, (c * mult, 1, kh, kw)).astype(np.int8)
    mode, bits = mode_bits
    got = kernel_api.int_conv2d(x, wt, (sh, sw), pads, dil, c, bits, mode, 17, 0)
    want = ref.int_conv2d(x, wt, (sh, sw), pads, dil, c, bits, mode, 17, 0)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 4), mult=st.integers(1, 2), h=st.integers(1, 8), w=st.integers(1, 8),
       k=st.integers(1, 3), s=st.integers(1, 2), pad=st.integers(0, 2), seed=st.integers(0, 2**31))
def test_float_depthwise_matches_exact_sums(c, mult, h, w, k, s, pad, seed):
    """Small-integer float values: every order of summation is exact, so the sums must be equal."""
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-50, 50, (2, c, h, w)).astype(np.float64)
    wt = rng.integers(-50, 50, (c * mult, 1, k, k)).astype(np.float64)
    got = kernel_api.float_direct_conv2d(x, wt, (s, s), (pad,) * 4, (1, 1), c)
    want = ref.int_conv2d(x.astype(np.int64), wt.astype(np.int64), (s, s), (pad,) * 4, (1, 1), c, 64, "none")
    np.testing.assert_array_equal(got, want.astype(np.float64))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(2, 40), h=st.integers(1, 9), w=st.integers(1, 9), k=st.sampled_from([(1, 1), (3, 3), (5, 5), (2, 3)]),
       s=st.tuples(st.integers(1, 2), st.integers(1, 2)), pads=st.tuples(*[st.integers(0, 2)] * 4),
       dil=st.tuples(st.integers(1, 2), st.integers(1, 2)), signed=st.booleans(), channels_last=st.booleans(),
       per_channel_wzp=st.booleans(), mode_bits=st.sampled_from([("wrap", 12), ("wrap", 32), ("none", 64)]),
       seed=st.integers(0, 2**31))
def test_depthwise_channels_last_kernel_matches_oracle(c, h, w, k, s, pads, dil, signed, channels_last,
                                                       per_channel_wzp, mode_bits, seed):
    """The int32 channels-last depthwise kernel (multiplier 1, 8-bit codes): either input layout,
    uint8 or int8 codes with their zero point, weight zero points per tensor or per channel."""
    kh, kw = k
    if h + pads[0] + pads[2] < dil[0] * (kh - 1) + 1 or w + pads[1] + pads[3] < dil[1] * (kw - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    lo, hi, dt = (-128, 127, np.int8) if signed else (0, 255, np.uint8)
    x = rng.integers(lo, hi, (2, h, w, c), endpoint=True).astype(dt)
    x = x.transpose(0, 3, 1, 2) if channels_last else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    wt = rng.integers(-128, 127, (c, 1, kh, kw), endpoint=True).astype(np.int8)
    zx = int(rng.integers(lo, hi, endpoint=True))
    zw = rng.integers(-128, 127, c, endpoint=True) if per_channel_wzp else int(rng.integers(-128, 127, endpoint=True))
    mode, bits = mode_bits
    got = kernel_api.int_conv2d(x, wt, s, pads, dil, c, bits, mode, zx, zw)
    np.testing.assert_array_equal(got, ref.int_conv2d(x, wt, s, pads, dil, c, bits, mode, zx, zw))


@pytest.mark.nojit
def test_depthwise_channels_last_small_case():
    """One small case of the kernel above, also run without JIT (test_nojit.py)."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 255, (1, 5, 4, 3), endpoint=True).astype(np.uint8).transpose(0, 3, 1, 2)
    wt = rng.integers(-128, 127, (3, 1, 3, 3), endpoint=True).astype(np.int8)
    got = kernel_api.int_conv2d(x, wt, (1, 2), (1, 1, 1, 0), (1, 1), 3, 32, "wrap", 7, 2)
    np.testing.assert_array_equal(got, ref.int_conv2d(x, wt, (1, 2), (1, 1, 1, 0), (1, 1), 3, 32, "wrap", 7, 2))


@settings(max_examples=30, deadline=None)
@given(c=st.integers(2, 20), h=st.integers(1, 8), w=st.integers(1, 8), k=st.integers(1, 3), s=st.integers(1, 2),
       pad=st.integers(0, 2), dtype=st.sampled_from([np.float32, np.float64]), channels_last=st.booleans(),
       seed=st.integers(0, 2**31))
def test_float_depthwise_rounds_taps_in_order(c, h, w, k, s, pad, dtype, channels_last, seed):
    """Random floats (every rounding matters): each output is the float64 sum of its products in
    (kh, kw) ascending order from 0, padding contributing nothing; the oracle is a numpy loop over
    taps with zero-padded input (adding the +-0 products of padding changes no finite sum)."""
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w, c)).astype(dtype).transpose(0, 3, 1, 2)
    x = x if channels_last else np.ascontiguousarray(x)
    wt = rng.standard_normal((c, 1, k, k))
    got = kernel_api.float_direct_conv2d(x, wt, (s, s), (pad,) * 4, (1, 1), c)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    want = np.zeros((2, c, oh, ow))
    for i in range(k):
        for j in range(k):
            want = want + xp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] * wt[:, 0, i, j].reshape(1, c, 1, 1)
    np.testing.assert_array_equal(got, want)
