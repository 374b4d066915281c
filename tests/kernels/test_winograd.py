"""Winograd F(2x2, 3x3) transform kernels against plain-numpy formulas (B^T d B and A^T m A over
strided slices, the transforms as matrices in Lavin & Gray 2016, eq. 7-8): equal bit for bit, in
float32 (the float32 tails) and float64 (their float64 re-run)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels.winograd import _input_tiles, _output_tiles

_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])


def _ref_input(x, top, left, th, tw):
    """(16, N*th*tw, C): B^T d B of each zero-padded 4x4 tile of channels-last x (N, H, W, C), the
    sums taken in the order of the matrix rows (in x's float type)."""
    n, h, w, c = x.shape
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), x.dtype)
    xp[:, top:top + h, left:left + w] = x[:, :2 * th + 2 - top, :2 * tw + 2 - left]
    d = [xp[:, k:k + 2 * th:2] for k in range(4)]
    rows = [_combine(_BT[a], d) for a in range(4)]  # B^T d
    v = [_combine(_BT[b], [r[:, :, k:k + 2 * tw:2] for k in range(4)]) for r in rows for b in range(4)]
    return np.stack(v).reshape(16, -1, c)


def _ref_output(m, bias, n, th, tw, oh, ow):
    """(N, OH, OW, O): A^T m A (+ bias) of each tile's products m (16, N*th*tw, O), cropped."""
    m = m.reshape(4, 4, n, th, tw, -1)
    y = np.empty((n, th, 2, tw, 2, m.shape[-1]), m.dtype)
    for i in range(2):
        s = [_combine(_AT[i], [m[a, b] for a in range(4)]) for b in range(4)]  # A^T m
        for j in range(2):
            y[:, :, i, :, j] = _combine(_AT[j], s)
    if bias is not None:
        y += bias
    return y.reshape(n, 2 * th, 2 * tw, -1)[:, :oh, :ow]


def _combine(coefs, terms):
    """sum of coef * term over the nonzero coefficients (each +-1), left to right, in the terms' type."""
    out = None
    for k, t in zip(coefs, terms):
        if k == 0:
            continue
        out = (t if k > 0 else -t) if out is None else (out + t if k > 0 else out - t)
    return out


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float64: the tails' float64 re-run
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 5), o=st.integers(1, 5), h=st.integers(1, 8), w=st.integers(1, 8),
       pads=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans(), seed=st.integers(0, 2**31))
def test_transforms_equal_the_numpy_formulas(dtype, n, c, o, h, w, pads, bias, seed):
    top, left, bottom, right = pads
    oh, ow = h + top + bottom - 2, w + left + right - 2
    if oh < 1 or ow < 1:
        return
    th, tw = -(-oh // 2), -(-ow // 2)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    v = np.full((16, n * th * tw, c), np.nan, dtype)
    _input_tiles(x, top, left, th, tw, v)
    np.testing.assert_array_equal(v, _ref_input(x, top, left, th, tw))
    m = rng.standard_normal((16, n * th * tw, o)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if bias else None
    y = np.full((n, oh, ow, o), np.nan, dtype)
    _output_tiles(m, np.zeros(1, dtype) if b is None else b, b is not None, n, th, tw, y)
    np.testing.assert_array_equal(y, _ref_output(m, b, n, th, tw, oh, ow))


_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


@settings(max_examples=40, deadline=None)
@given(o=st.integers(1, 9), c=st.integers(1, 9), scale=st.sampled_from([1e-3, 1.0, 1e3]), seed=st.integers(0, 2**31))
def test_weights_equal_the_numpy_formula(o, c, scale, seed):
    """G g G^T of float32 kernels, float64 sums (exact) rounded once: the einsum of the float32 tails."""
    from hwsim.kernels.winograd import _weights

    w = (np.random.default_rng(seed).standard_normal((o, c, 3, 3)) * scale).astype(np.float32)
    out = np.full((16, o, c), np.nan, np.float32)
    _weights(w, out)
    want = np.einsum("ai,ocij,bj->aboc", _G, w.astype(np.float64), _G).reshape(16, o, c).astype(np.float32)
    np.testing.assert_array_equal(out, want)
