"""The float reference's block patches (hwsim.kernels.refpatches) against numpy slicing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels.refpatches import _patches_nhwc


def _patches(xh, bias, kernel, stride, pads, dil, out_hw, dtype):
    """The plain form: round to ``dtype`` first (plus the bias in float64), zero-pad, then take
    each tap's strided slice; columns (i, j, c)."""
    v = (xh.astype(np.float64) + bias).astype(dtype) if bias is not None else xh.astype(dtype)
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dil, out_hw
    n, h, w, c = v.shape
    big = max(pads) + (max(kh, kw) - 1) * max(dh, dw) + max(sh, sw) * max(oh, ow) + 1
    p = np.zeros((n, h + 2 * big, w + 2 * big, c), dtype)
    p[:, big:big + h, big:big + w] = v
    cols = [p[:, big - pads[0] + i * dh:][:, :sh * oh:sh][:, :oh, big - pads[1] + j * dw:][:, :, :sw * ow:sw][:, :, :ow]
            for i in range(kh) for j in range(kw)]
    return np.concatenate(cols, axis=-1).reshape(n * oh * ow, -1)


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 2), sw=st.integers(1, 2),
       pads=st.tuples(st.integers(0, 2), st.integers(0, 2)), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       h=st.integers(3, 7), w=st.integers(3, 7), c=st.integers(1, 5), biased=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), out_dtype=st.sampled_from([np.float32, np.float64]),
       data=st.data(), seed=st.integers(0, 2**31))
def test_patch_rows_equal_numpy_slices(kh, kw, sh, sw, pads, dil, h, w, c, biased, dtype, out_dtype, data, seed):
    oh = (h + 2 * pads[0] - dil[0] * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pads[1] - dil[1] * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        return
    rng = np.random.default_rng(seed)
    xh = (rng.standard_normal((2, h, w, c)) * 10.0).astype(dtype)
    bias = rng.standard_normal(c) / 3.0 if biased else None
    want = _patches(xh, bias, (kh, kw), (sh, sw), pads, dil, (oh, ow), out_dtype)
    row0 = data.draw(st.integers(0, want.shape[0] - 1))
    rows = data.draw(st.integers(1, want.shape[0] - row0))
    out = np.full((rows, want.shape[1]), np.nan, out_dtype)
    _patches_nhwc(xh, np.zeros(1) if bias is None else bias, biased, kh, kw, sh, sw, pads[0], pads[1], dil[0], dil[1],
                  oh, ow, row0, out)
    np.testing.assert_array_equal(out, want[row0:row0 + rows])
