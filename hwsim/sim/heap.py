"""Keep the memory a simulate run frees for the next run of the process (glibc malloc settings).

The float reference keeps every tensor's value until the run ends (the per-op metrics and
``SimResult.reference`` read them), so its arrays are freed together at the end. glibc's malloc
then gives the top of its heap back to the operating system (its trim threshold: at most 64 MiB
by its own adjustment), and the next run takes those pages again, each page a fault that the
kernel must zero: MobileNetV2 b8 (benchmarks/qdq_zoo.py) took ~30,000 minor faults per default
simulate, 0.09-0.58 s of system CPU beside ~0.47 s of user CPU, the two threads' faults waiting
on each other (2026-11-26, 2 cores; benchmarks/RESULTS.md, "Seventh session: mnv2"). With the
settings here a repeated run (solve's candidate plans, a benchmark, compare-formats) reuses the
process's freed memory: ~0 faults after the first run. ResNet-18 and BERT took no faults either way.

:func:`keep_for_reuse` raises glibc's trim threshold to the run's estimated peak
(:func:`hwsim.sim.memory.estimate`, which counts the reference in float64: above what it takes;
at most a quarter of the memory available), and fixes the mmap threshold at glibc's own
ceiling of 32 MiB (setting one disables glibc's adjustment of both; larger arrays are mapped and
unmapped as before). A process therefore keeps up to that much freed memory after a run; the
estimate of the next run's memory does not count it as free. Nothing is changed where malloc is not
glibc's, or where the environment already sets malloc (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or ``glibc.malloc`` tunables in
``GLIBC_TUNABLES``): the user's choice stands.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: the mmap threshold fixed here: glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
MMAP_THRESHOLD_BYTES = 32 << 20
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")

_lock = threading.Lock()
_state = {"trim_bytes": 0}


@functools.cache
def _mallopt():
    """glibc's ``mallopt``, or None (another libc, or the user's own malloc settings)."""
    if any(v in os.environ for v in _USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl and macOS have no such symbol)
        fn = libc.mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn


def keep_for_reuse(peak_bytes: int, available_bytes: int | None) -> int:
    """Let this process keep up to ``peak_bytes`` of freed memory (at most a quarter of
    ``available_bytes`` when known) instead of returning it to the system; the trim threshold
    only grows. Returns the threshold now in force (0: malloc left as it is)."""
    mallopt = _mallopt()
    if mallopt is None:
        return 0
    want = int(peak_bytes)
    if available_bytes:
        want = min(want, int(available_bytes) // 4)
    want = min(want, 2**31 - 1)  # an int parameter
    with _lock:
        if want > _state["trim_bytes"] and want > MMAP_THRESHOLD_BYTES:
            if not _state["trim_bytes"]:
                mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
            if mallopt(_M_TRIM_THRESHOLD, want):
                _state["trim_bytes"] = want
        return _state["trim_bytes"]
