"""The float reference's biased sum (hwsim.kernels.refadd) against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import refadd


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 2100), c=st.integers(1, 5), with_b2=st.booleans(),
       dtype2=st.sampled_from([np.float32, np.float64]), threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**31))
def test_add_biased_equals_numpy(rows, c, with_b2, dtype2, threads, seed):
    rng = np.random.default_rng(seed)
    y1 = (rng.standard_normal(rows * c) * 100).astype(np.float32)
    x2 = (rng.standard_normal(rows * c) * 100).astype(dtype2)
    b1, b2 = rng.standard_normal(c), rng.standard_normal(c)
    real2 = x2.reshape(-1, c) + b2 if with_b2 else x2.reshape(-1, c).astype(np.float64)
    want = ((y1.reshape(-1, c) + b1) + real2).reshape(-1)  # numpy: float64(y) + bias, then the sum
    out = np.full(rows * c, np.nan)
    kernel = refadd._add_biased if threads == 2 else refadd._add_biased_1
    kernel(y1, b1, x2, b2, with_b2, out, np.zeros(1, np.int64), threads)
    np.testing.assert_array_equal(out, want)
