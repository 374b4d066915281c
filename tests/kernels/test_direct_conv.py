"""Depthwise / small-group convolutions (the direct kernels) against the int64 oracle."""

import numpy as np
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
