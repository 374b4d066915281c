"""compute._int_dot with zero zero points multiplies the codes as they are (8-bit stays 8-bit):
the same accumulators as the int64 differences, whatever the accumulator and overflow rule."""

import numpy as np
import pytest

from hwsim import kernel_api
from hwsim.sim import compute


@pytest.mark.parametrize("bits,overflow", [(32, "wrap"), (16, "wrap"), (12, "saturate"), (64, "none")])
@pytest.mark.parametrize("da,db", [(np.int8, np.int8), (np.uint8, np.int8), (np.int16, np.int8)])
def test_zero_zero_points_equal_the_int64_differences(bits, overflow, da, db):
    rng = np.random.default_rng(bits)
    a = rng.integers(np.iinfo(da).min, np.iinfo(da).max, (7, 300), endpoint=True).astype(da)
    b = rng.integers(-128, 127, (300, 5), endpoint=True).astype(db)
    want = kernel_api.int_matmul(a.astype(np.int64) - np.int64(0), b.astype(np.int64) - np.zeros((1, 5), np.int64),
                                 bits, overflow)
    got = compute._int_dot(None, a, np.int64(0), b, np.zeros((1, 5), np.int64), bits, overflow)
    np.testing.assert_array_equal(got, want)
    zb = np.arange(5, dtype=np.int64).reshape(1, 5)  # non-zero zero points are still subtracted
    np.testing.assert_array_equal(compute._int_dot(None, a, np.int64(5), b, zb, bits, overflow),
                                  kernel_api.int_matmul(a.astype(np.int64) - 5, b.astype(np.int64) - zb, bits, overflow))
    if bits < 32:  # the rule acted: the test reaches the overflow paths
        assert not np.array_equal(got, kernel_api.int_matmul(a, b, 64, "none"))


@pytest.mark.parametrize("bits,overflow", [(32, "wrap"), (32, "saturate"), (16, "wrap"), (14, "saturate")])
@pytest.mark.parametrize("da,db,az", [(np.uint8, np.int8, 128), (np.int8, np.int8, -3), (np.uint8, np.uint8, 7),
                                      (np.int8, np.uint8, 0)])
def test_8bit_codes_with_zero_points_equal_the_int64_differences(monkeypatch, bits, overflow, da, db, az):
    """Non-zero zero points with 8-bit codes: the product of the 8-bit codes plus the zero-point
    terms where no sum can leave the accumulator (32 bits), else the int64 differences under the
    rule (16 and 14 bits overflow here); the same accumulators either way."""
    rng = np.random.default_rng(bits + az)
    a = rng.integers(np.iinfo(da).min, np.iinfo(da).max, (9, 517), endpoint=True).astype(da)
    b = rng.integers(np.iinfo(db).min, np.iinfo(db).max, (517, 6), endpoint=True).astype(db)
    zb = np.array([[0, 1, -2, 100, -128, 5]], np.int64) if db == np.int8 else np.array([[0, 1, 2, 100, 255, 128]])
    want = kernel_api.int_matmul(a.astype(np.int64) - az, b.astype(np.int64) - zb, bits, overflow)
    seen = []
    real = kernel_api.int_matmul
    monkeypatch.setattr(kernel_api, "int_matmul", lambda x, y, *r: seen.append((x.dtype, y.dtype)) or real(x, y, *r))
    got = compute._int_dot(None, a, np.int64(az), b, zb, bits, overflow)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64
    if bits == 32:  # the 8-bit codes themselves went to the product
        assert seen == [(np.dtype(da), np.dtype(db))]
    else:  # the differences (int64 where a zero point is not 0)
        assert len(seen) == 1 and np.dtype(np.int64) in seen[0]
    if bits < 32:  # the rule acted
        assert not np.array_equal(got, (a.astype(np.int64) - az) @ (b.astype(np.int64) - zb))
