"""Keep freed memory in the process while large arrays come and go (glibc's malloc).

glibc hands every allocation above its mmap threshold (128 KiB, raised on the fly up to 32 MiB)
to the kernel as fresh pages and unmaps it when freed, so the next array of that size is
page-faulted in again, one zeroed 4 KiB page at a time. Solve's tails allocate arrays of 20-200
MiB per op (24 stacked samples of a ResNet-18 activation, patches, Winograd tiles): measured on
this project's 2-core machine (load 10), the float32 tail of resnet18's conv1 took 0.66 s of
system time beside 1.5 s of user time; with the thresholds raised, 0.01 s. Inside
:func:`keep_freed_memory` freed blocks stay in the heap for reuse; on the way out the heap is
trimmed (``malloc_trim``) and glibc's documented default thresholds (128 KiB) are set again.
Elsewhere (another C library) it does nothing: only speed depends on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from contextlib import contextmanager

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT = 128 * 1024
_KEEP = 1 << 30  # a block up to 1 GiB comes from (and returns to) the heap

_lock = threading.Lock()
_depth = [0]


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextmanager
def keep_freed_memory():
    """A context in which freed large blocks stay in the heap (see module docstring); nests, and
    may be entered from several threads (the outermost entry and exit act)."""
    libc = _libc()
    with _lock:
        _depth[0] += 1
        if _depth[0] == 1 and libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, _KEEP)
            libc.mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP)
    try:
        yield
    finally:
        with _lock:
            _depth[0] -= 1
            if _depth[0] == 0 and libc is not None:
                libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT)
                libc.malloc_trim(0)
