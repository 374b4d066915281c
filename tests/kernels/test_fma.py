"""The float32 FMA kernel (hwsim.kernels.fma) against the numpy TwoSum version and an exact oracle."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import fma
from hwsim.sim.mlas_math import fma32_numpy

F32 = st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-2.0 ** 50, max_value=2.0 ** 50)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(F32, F32, F32), min_size=1, max_size=40), st.sampled_from(["arrays", "scalar b", "scalar c"]))
def test_fma_kernel_equals_the_numpy_twosum_version(rows, shape):
    a, b, c = (np.array(col, np.float32) for col in zip(*rows))
    if shape == "scalar b":
        b = b[0]
    elif shape == "scalar c":
        c = np.float32(c[0])
    np.testing.assert_array_equal(fma.fma32(a, b, c), fma32_numpy(a, b, c))


def test_ties_broken_by_the_addend_and_broadcasting():
    """a * a = 1 + 2**-11 + 2**-24 is a float32 tie; 2**-60 decides it (exact oracle: Fractions)."""
    a = np.float32(1 + 2 ** -12)
    c = np.array([0, 2 ** -60, -2 ** -60], np.float32)
    got = fma.fma32(a, a, c)
    exact = [Fraction(float(a)) ** 2 + Fraction(float(x)) for x in c]
    want = [np.float32(1 + 2 ** -11), np.float32(1 + 2 ** -11 + 2 ** -23), np.float32(1 + 2 ** -11)]
    assert [Fraction(float(w)) for w in want] != exact  # none exact: rounding decides
    np.testing.assert_array_equal(got, want)
    assert fma.fma32(np.float32(2), np.float32(3), np.float32(1)).shape == ()
    np.testing.assert_array_equal(fma.fma32(np.ones((2, 3), np.float32), np.float32(2), np.arange(3, dtype=np.float32)),
                                  np.tile(np.float32([2, 3, 4]), (2, 1)))
