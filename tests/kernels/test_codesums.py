"""Sums of 8-bit codes along k (hwsim.kernels.codesums) against Python-int sums."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels.codesums import k_sums


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(nb=st.integers(1, 3), k=st.integers(1, 70), n=st.integers(1, 20), dtype=st.sampled_from([np.uint8, np.int8]),
       layout=st.sampled_from(["C", "k inner", "strided"]), seed=st.integers(0, 2**31))
def test_k_sums_equal_python_ints(nb, k, n, dtype, layout, seed):
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 256, (nb, k, n)).astype(np.uint8).view(dtype)
    if layout == "k inner":  # a transposed weight / K^T: k contiguous
        b = np.ascontiguousarray(b.transpose(0, 2, 1)).transpose(0, 2, 1)
    elif layout == "strided":
        b = np.repeat(b, 2, axis=2)[:, :, ::2]
    got = k_sums(b)
    want = [[sum(int(b[i, kk, j]) for kk in range(k)) for j in range(n)] for i in range(nb)]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.array(want, np.int64))
