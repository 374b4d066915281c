"""Ternary, binary, signed binary, power-of-two and VQ formats."""

import numpy as np
import pytest

import hwsim.formats as F
from hwsim.errors import ConfigError, InputDataError
from tests.formats import reference as R


def test_ternary_threshold_and_codes():
    f = F.get("ternary")
    x = np.array([-3.0, -0.6, -0.5, -0.4, 0.0, 0.4, 0.5, 0.6, 3.0])
    np.testing.assert_array_equal(f.quantize(x), [-1, -1, 0, 0, 0, 0, 0, 1, 1])  # ties -> 0 (even)
    np.testing.assert_array_equal(f.quantize(x, rounding="half_away"), [-1, -1, -1, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(f.encode(x), [0, 0, 1, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(f.quantize(x, scale=2.0), [-2, 0, 0, 0, 0, 0, 0, 0, 2])


def test_binary():
    f = F.get("binary")
    x = np.array([-2.0, -1e-9, 0.0, 1e-9, 5.0])
    np.testing.assert_array_equal(f.quantize(x), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(f.encode(x), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(f.decode(np.array([0, 1])), [-1, 1])


@pytest.mark.parametrize("bits", [2, 3, 4, 5])
def test_pow2_codes_and_rounding(bits):
    f = F.Pow2Format(bits)
    vals = f.values
    n = f.exponent_codes
    assert len(vals) == 2 * n + 1 and vals[-1] == 1.0 and vals[n + 1] == 2.0 ** (1 - n)
    codes = f.encode(vals)
    assert codes.max() < 1 << bits
    np.testing.assert_array_equal(f.decode(codes), vals)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, 500)
    got = f.quantize(x)
    want = [np.copysign(R.nearest_in_table(abs(v), np.unique(np.abs(vals))), v) for v in x]
    np.testing.assert_array_equal(np.abs(got), np.abs(want))


def test_pow2_layout_documented():
    f = F.get("pow2_4")
    assert f.encode(np.array([0.0, 1.0, -1.0, 0.5, 2.0 ** -6])).tolist() == [0, 7, 15, 6, 1]


def test_signed_binary_regions():
    f = F.get("signed_binary")
    w = np.array([[0.9, -0.2, 0.6], [-0.8, 0.1, -0.7]])
    np.testing.assert_array_equal(f.quantize(w), [[1, 0, 1], [-1, 0, -1]])
    codes, signs = f.encode(w)
    assert signs.tolist() == [1, -1] and codes.tolist() == [[1, 0, 1], [1, 0, 1]]
    np.testing.assert_array_equal(f.decode(codes, signs), f.quantize(w))
    # per-column regions along axis 1, per-region scale
    q = f.quantize(w, scale=np.array([1.0, 0.1, 2.0]), axis=1)
    # column sums 0.1, -0.1, -0.1 -> signs +1, -1, -1
    np.testing.assert_array_equal(q, [[1, -0.1, 0], [0, 0, 0]])
    with pytest.raises(ConfigError):
        f.decode(codes)


def test_vq_deterministic_and_reconstructs():
    f = F.get("vq_d2_b6")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32))
    a, b = f.quantize(x, seed=3), f.quantize(x, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape
    err = np.mean((a - x) ** 2) / np.mean(x ** 2)
    assert err < 0.1  # 64 centroids in 2-D: SQNR > 10 dB
    codes, cb = f.encode(x, seed=3)
    assert codes.shape == (64, 16) and codes.dtype == np.uint8 and cb.shape == (64, 2)
    np.testing.assert_array_equal(f.decode(codes, cb), a)
    # more centroids than distinct vectors: exact reconstruction
    small = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(f.quantize(small), small)


def test_vq_rejects_bad_shapes():
    with pytest.raises(InputDataError):
        F.get("vq_d4_b8").quantize(np.ones((3, 6)))


@pytest.mark.parametrize("dim,bits", [(1, 3), (2, 6), (4, 8), (8, 4)])
def test_assign_kernel_matches_reference(dim, bits):
    f = F.VQFormat(dim, bits)
    rng = np.random.default_rng(dim)
    v = rng.standard_normal((300, dim))
    cb = rng.standard_normal((1 << bits, dim))
    cb[1] = cb[0]  # duplicate centroid: ties go to the lowest index
    v[:5] = cb[0]
    np.testing.assert_array_equal(f.assign(v, cb), R.nearest_centroid_reference(v, cb))
    v = np.round(rng.standard_normal((200, dim)))  # many exact ties on a coarse grid
    cbi = np.round(rng.standard_normal((1 << bits, dim)) * 2) / 2
    np.testing.assert_array_equal(f.assign(v, cbi), R.nearest_centroid_reference(v, cbi))


def test_assign_kernel_in_python_mode():
    from hwsim.formats._kernels import _nearest_centroid

    rng = np.random.default_rng(9)
    v, cb = rng.standard_normal((50, 2)), rng.standard_normal((8, 2))
    np.testing.assert_array_equal(_nearest_centroid.py_func(v, cb), R.nearest_centroid_reference(v, cb))
