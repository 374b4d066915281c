"""The packed-operand cache (hwsim.kernels.packcache): found by content only, never stale."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import packcache


def _pack(calls):
    def make(b):
        calls.append(1)
        return [b.astype(np.int64) * 2]
    return make


def test_kept_from_the_second_sighting_and_shared_by_equal_arrays():
    packcache.clear()
    calls, b = [], np.arange(12, dtype=np.int8).reshape(3, 4)
    first = packcache.packed(b, "t", _pack(calls))
    second = packcache.packed(b, "t", _pack(calls))
    third = packcache.packed(b.copy(), "t", _pack(calls))
    assert len(calls) == 2 and third is second and first is not second
    packcache.packed(b, "other tag", _pack(calls))
    packcache.packed(b.astype(np.int16), "t", _pack(calls))  # same values, other dtype
    packcache.packed(b.reshape(4, 3), "t", _pack(calls))  # same bytes, other shape
    assert len(calls) == 5


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 5000), steps=st.lists(st.integers(0, 10**6), max_size=6))
def test_a_pack_is_never_stale(seed, n, steps):
    """Whatever in-place changes happen between calls (one element, even one the fingerprint does
    not sample), the result is the pack of the current values."""
    packcache.clear()
    b = np.random.default_rng(seed).integers(-100, 100, n).astype(np.int16)
    for s in [None, None] + steps:
        if s is not None:
            b[s % n] += 1 + s % 3
        got = packcache.packed(b, "t", lambda b: [b.astype(np.int64) * 2])
        np.testing.assert_array_equal(got[0], b.astype(np.int64) * 2)


def test_least_recently_used_entries_go_beyond_the_limit(monkeypatch):
    packcache.clear()
    monkeypatch.setattr(packcache, "LIMIT_BYTES", 4000)
    arrays = [np.full(100, i, np.int16) for i in range(8)]  # 200 B copy + 800 B pack each
    for b in arrays + arrays:
        packcache.packed(b, "t", lambda b: [b.astype(np.int64)])
    assert packcache._held[0] <= 4000 and len(packcache._entries) == 4
    calls = []
    packcache.packed(arrays[-1], "t", _pack(calls))
    packcache.packed(arrays[0], "t", _pack(calls))
    assert len(calls) == 1  # the newest is kept, the oldest was dropped
    packcache.clear()
