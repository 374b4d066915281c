"""The dynamic work split (hwsim.kernels.workqueue): every item is claimed exactly once."""

import numpy as np
import pytest
from numba import njit, prange

from hwsim.kernels.workqueue import claim, split


@njit(parallel=True)
def _mark(items, hits, counter, threads):
    for _ in prange(threads):
        while True:
            it = claim(counter)
            if it >= items:
                break
            hits[it] += 1


@pytest.mark.nojit
@pytest.mark.parametrize("items", [0, 1, 7, 5000])
def test_every_item_is_claimed_once(items):
    hits = np.zeros(max(items, 1), np.int64)
    counter, threads = split()
    _mark(items, hits, counter, max(threads, 2))
    np.testing.assert_array_equal(hits[:items], 1)
    assert counter[0] >= items
