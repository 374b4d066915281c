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
