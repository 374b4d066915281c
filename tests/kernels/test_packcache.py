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


def _no_content_reads(monkeypatch):
    def fail(*a):
        raise AssertionError("a frozen operand was fingerprinted or compared")
    monkeypatch.setattr(packcache, "_fingerprint", fail)
    monkeypatch.setattr(packcache, "_same_bytes", fail)


def test_frozen_is_a_read_only_copy_that_cannot_be_made_writeable():
    b = np.arange(12, dtype=np.float32).reshape(3, 4)
    f = packcache.frozen(b.T)
    np.testing.assert_array_equal(f, b.T)
    assert f.flags.c_contiguous and not f.flags.writeable and f.dtype == b.dtype
    try:
        f.setflags(write=True)
    except ValueError:
        pass
    else:
        raise AssertionError("a frozen array was made writeable")
    assert packcache.frozen(f) is f  # frozen already: no copy
    assert packcache.frozen(np.zeros((0, 3), np.int8)).shape == (0, 3)
    o = np.array([object()])
    assert packcache.frozen(o) is o


def test_a_frozen_operand_is_found_by_identity_from_its_first_sighting(monkeypatch):
    packcache.clear()
    f = packcache.frozen(np.arange(12, dtype=np.int8).reshape(3, 4))
    calls = []
    first = packcache.packed(f, "t", _pack(calls))
    _no_content_reads(monkeypatch)
    assert packcache.packed(f, "t", _pack(calls)) is first
    assert packcache.packed(f.T, "t", _pack(calls)) is not first  # another view: its own pack
    assert packcache.packed(f.T, "t", _pack(calls)) is packcache.packed(f.T, "t", _pack(calls))
    assert packcache.packed(f[1:], "t", _pack(calls))[0].shape == (2, 4)
    packcache.packed(f, "other tag", _pack(calls))
    assert len(calls) == 4
    packcache.clear()


def test_read_only_views_of_writable_memory_are_compared_as_before():
    """Read-only is not frozen: a view of an array someone can still write, or of a bytearray,
    goes by content, and its pack follows every change."""
    packcache.clear()
    base = np.arange(12, dtype=np.int16)
    view = base[:]
    view.flags.writeable = False
    buf = bytearray(np.arange(12, dtype=np.int16).tobytes())
    over = np.frombuffer(buf, np.int16)
    over.flags.writeable = False
    for arr, change in ((view, lambda: base.__setitem__(3, 99)), (over, lambda: buf.__setitem__(6, 7))):
        assert packcache._frozen_root(arr) is None
        for _ in range(2):
            packcache.packed(arr, "t", lambda b: [b.astype(np.int64) * 2])
        change()
        got = packcache.packed(arr, "t", lambda b: [b.astype(np.int64) * 2])
        np.testing.assert_array_equal(got[0], arr.astype(np.int64) * 2)
    packcache.clear()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 3000), steps=st.lists(st.integers(0, 10**6), max_size=5))
def test_frozen_and_writable_twins_each_get_their_own_values(seed, n, steps):
    """A frozen copy of an array and the array itself, changed in place between calls: each pack
    is that of the operand's current values (the frozen one's never change)."""
    packcache.clear()
    b = np.random.default_rng(seed).integers(-100, 100, n).astype(np.int16)
    f = packcache.frozen(b)
    want_f = f.astype(np.int64) * 2
    for s in [None, None] + steps:
        if s is not None:
            b[s % n] += 1 + s % 3
        for arr in (f, b):
            got = packcache.packed(arr, "t", lambda x: [x.astype(np.int64) * 2])
            np.testing.assert_array_equal(got[0], arr.astype(np.int64) * 2)
        np.testing.assert_array_equal(packcache.packed(f, "t", lambda x: [x.astype(np.int64) * 2])[0], want_f)
    packcache.clear()


def test_frozen_entries_go_least_recently_used_too(monkeypatch):
    packcache.clear()
    monkeypatch.setattr(packcache, "LIMIT_BYTES", 4000)
    arrays = [packcache.frozen(np.full(100, i, np.int16)) for i in range(8)]  # 200 B + 800 B pack each
    for b in arrays:
        packcache.packed(b, "t", lambda b: [b.astype(np.int64)])
    assert packcache._held[0] <= 4000 and len(packcache._entries) == 4
    calls = []
    packcache.packed(arrays[-1], "t", _pack(calls))
    packcache.packed(arrays[0], "t", _pack(calls))
    assert len(calls) == 1  # the newest kept, the oldest dropped (with its memory's reference)
    packcache.clear()


def test_derived_values_kept_for_frozen_arrays_only():
    packcache.clear()
    calls = []

    def make(b):
        calls.append(1)
        return int(b.sum())

    f = packcache.frozen(np.arange(10, dtype=np.int8))
    assert packcache.derived(f, "sum", make) == packcache.derived(f, "sum", make) == 45
    assert len(calls) == 1
    w = np.arange(10, dtype=np.int8)
    assert packcache.derived(w, "sum", make) == 45
    w[0] = 5
    assert packcache.derived(w, "sum", make) == 50  # a writable array: made anew every time
    assert len(calls) == 3
    packcache.clear()


def test_eight_bit_bound_is_the_dtype_range():
    from hwsim.kernels.intgemm import abs_bound

    for dt in (np.int8, np.uint8):
        info = np.iinfo(dt)
        assert abs_bound(np.zeros(3, dt)) == max(-int(info.min), int(info.max))
    assert abs_bound(np.array([-7, 3], np.int16)) == 7


def _counted() -> int:
    """What the cache should count: every entry's own bytes, and each frozen operand's memory once."""
    roots = {id(e[0]): len(e[0]) for e in packcache._entries.values() if type(e[0]) is bytes}
    return sum(e[2] for e in packcache._entries.values()) + sum(roots.values())


@settings(max_examples=40, deadline=None)
@given(limit=st.integers(1500, 6000), ops=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", "c"]),
                                                            st.booleans()), min_size=1, max_size=30))
def test_a_frozen_operand_is_counted_once_whatever_is_kept_or_dropped(limit, ops):
    """Several entries (tags, views) over one frozen operand count its memory once, and the count
    stays the sum of what is held as entries come and go beyond the limit."""
    packcache.clear()
    old = packcache.LIMIT_BYTES
    packcache.LIMIT_BYTES = limit
    try:
        arrays = [packcache.frozen(np.full(100, i, np.int16)) for i in range(6)]  # 200 B each
        for i, tag, view in ops:
            b = arrays[i][::2] if view else arrays[i]
            packcache.packed(b, tag, lambda x: [x.astype(np.int64)])  # 4 B of pack per source byte
            assert packcache._held[0] == _counted() <= limit
        packcache.clear()
        assert packcache._held[0] == 0 and not packcache._roots
    finally:
        packcache.LIMIT_BYTES = old
        packcache.clear()
