"""Table lookups of 8-bit codes (hwsim.kernels.codelut, hwsim.sim.codetable.read) against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import codelut
from hwsim.sim import codetable


def _numpy(table, codes):
    """The plain oracle: every element's index computed in Python ints, then numpy indexing."""
    idx = codes[0].view(np.uint8).astype(np.int64)
    if len(codes) == 2:
        idx = idx * 256 + codes[1].view(np.uint8).astype(np.int64)
    return table[idx]


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 9), min_size=1, max_size=4), inputs=st.sampled_from([1, 2]),
       code_types=st.tuples(st.sampled_from([np.uint8, np.int8]), st.sampled_from([np.uint8, np.int8])),
       table_type=st.sampled_from([np.uint8, np.int8]), transposed=st.booleans(), mixed=st.booleans(),
       seed=st.integers(0, 2**31))
def test_read_equals_numpy_indexing(shape, inputs, code_types, table_type, transposed, mixed, seed):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 256, 256 ** inputs).astype(np.uint8).view(table_type)
    codes = [rng.integers(0, 256, shape).astype(np.uint8).view(code_types[i]) for i in range(inputs)]
    if transposed:  # not C-contiguous: the kernel in the transposed memory order
        codes = [c.T for c in codes]
    if mixed and inputs == 2:  # memory orders that differ: numpy's path
        codes[1] = np.ascontiguousarray(codes[1])
    got = codetable.read(table, codes)
    want = _numpy(table, codes)
    assert got.dtype == table.dtype and got.shape == want.shape
    if not (mixed and inputs == 2):
        assert (got.T if transposed else got).flags.c_contiguous  # the first input's memory order
    np.testing.assert_array_equal(got, want)


@pytest.mark.nojit
def test_kernels_cover_every_code():
    """Each of the 256 codes (and 65,536 pairs) reads its own entry: a table of distinct entries."""
    t1 = np.arange(256, dtype=np.int64)[::-1].copy()
    a = np.arange(256, dtype=np.uint8)
    out = np.empty(256, np.int64)
    codelut._lookup1(t1, a, out)
    np.testing.assert_array_equal(out, t1[a.astype(np.int64)])
    t2 = np.arange(65536, dtype=np.int64) * 3
    a2, b2 = np.repeat(a, 256), np.tile(a, 256)
    out2 = np.empty(65536, np.int64)
    codelut._lookup2(t2, a2, b2, out2)
    np.testing.assert_array_equal(out2, t2[a2.astype(np.int64) * 256 + b2])
