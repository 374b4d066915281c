"""hwsim.heap: freed large blocks stay in the heap inside keep_freed_memory (glibc only)."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from hwsim import heap


def _faults_of_second_block(mib: int = 64) -> int:
    """Minor page faults of allocating and touching a ``mib`` MiB array after freeing one."""
    a = np.ones(mib << 18, np.float32)
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(mib << 18, np.float32)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del b
    return after - before


@pytest.mark.skipif(heap._libc() is None, reason="not glibc's malloc")
def test_freed_blocks_are_reused_inside_and_returned_outside():
    outside = _faults_of_second_block()
    with heap.keep_freed_memory():
        with heap.keep_freed_memory():  # nested: the inner exit keeps the setting
            pass
        inside = _faults_of_second_block()
    again = _faults_of_second_block()
    # outside: at least one fault per 2 MiB (transparent huge pages) of the fresh 64 MiB
    assert inside * 10 < min(outside, again) and min(outside, again) >= 32, (inside, outside, again)
