"""How long this process keeps the memory it frees (glibc's malloc): the one place that decides it.

glibc hands every allocation above its mmap threshold to the kernel as fresh pages and unmaps it
when freed, and gives the top of its heap back once more than its trim threshold is free; the next
array of that size is page-faulted in again, one zeroed 4 KiB page at a time. Two callers pay for it:

- ``solve``'s sensitivity tails allocate arrays of 20-200 MiB per op (24 stacked samples of a
  ResNet-18 activation, patches, Winograd tiles): on this project's 2-core machine (load 10) the
  float32 tail of resnet18's conv1 took 0.66 s of system time beside 1.5 s of user time; with the
  thresholds raised, 0.01 s. Inside :func:`keep_freed_memory` blocks up to 1 GiB come from (and
  return to) the heap and nothing is trimmed.
- ``simulate`` with its float reference keeps every tensor's value to the end of the run and frees
  them together: MobileNetV2 b8 (benchmarks/qdq_zoo.py) then took ~30,000 minor faults per run
  (0.09-0.58 s of system CPU beside ~0.47 s of user CPU; benchmarks/RESULTS.md, "Seventh session:
  mnv2"). :func:`keep_for_reuse` lets the process keep up to the run's estimated peak
  (:func:`hwsim.sim.memory.estimate`, at most a quarter of the memory available) for the next run.

Both put every thread on glibc's main arena (``M_ARENA_MAX`` 1, set once): a thread arena's heap
is at most 64 MiB, so a larger array allocated on a worker thread (the reference's, a tail's) was
mapped and unmapped every time whatever the thresholds said (MobileNetV2 b8: 25,000-36,000 faults
in 7 of 12 runs with the trim threshold raised; 0-6,400 with one arena; benchmarks/RESULTS.md,
"Eighth session"). Threads that already hold an arena keep it, and so does a thread that glibc
moved off the main arena when one of its allocations failed (a MemoryError): it stays on another
arena for good, and there a block over 64 MiB is mapped and unmapped every time, whatever this
module sets (only speed; seen in the test suite's process).

The settings outside any :func:`keep_freed_memory` are, once something asks: mmap threshold the
largest peak :func:`keep_for_reuse` asked for (at least glibc's own ceiling of 32 MiB, at most
1 GiB), trim threshold that peak (at least twice that ceiling, as glibc's own adjustment would
reach); setting either with ``mallopt`` turns glibc's adjustment off, so they are set together.
Leaving the outermost :func:`keep_freed_memory` restores them and gives the free memory back
(``malloc_trim``) unless every entry said otherwise (``give_back=False``).

Nothing is changed where malloc is not glibc's, or where the environment the process started with
(the one glibc read) already sets malloc
(``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_ARENA_MAX``,
``MALLOC_ARENA_TEST`` or ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``): the user's choice stands. Only speed depends on this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from contextlib import contextmanager

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: glibc's largest mmap threshold of its own adjustment (DEFAULT_MMAP_THRESHOLD_MAX, 64-bit)
MMAP_THRESHOLD_BYTES = 32 << 20
#: the trim threshold glibc itself would reach beside that mmap threshold (twice it)
TRIM_FLOOR_BYTES = 2 * MMAP_THRESHOLD_BYTES
#: inside keep_freed_memory: a block up to 1 GiB comes from the heap; nothing is trimmed below 2 GiB
KEEP_BYTES = 1 << 30
_INT_MAX = 2**31 - 1  # mallopt takes an int
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX",
                  "MALLOC_ARENA_TEST")

_lock = threading.Lock()
#: trim_bytes: the largest keep_for_reuse asked (0: none); depth: keep_freed_memory entries open;
#: one_arena: M_ARENA_MAX set; give_back: an open keep_freed_memory entry asked to give back on exit
_state = {"trim_bytes": 0, "depth": 0, "one_arena": False, "give_back": False}


class _Libc:
    """glibc's ``mallopt`` and ``malloc_trim`` with their C signatures."""

    def __init__(self, libc):
        self.mallopt, self.malloc_trim = libc.mallopt, libc.malloc_trim
        self.mallopt.argtypes, self.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        self.malloc_trim.argtypes, self.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int


def _startup_environ() -> dict:
    """The environment this process started with (/proc/self/environ; ``os.environ`` where there is
    none): glibc reads its malloc settings from it once, at start, so a variable set later in
    ``os.environ`` never reached malloc (dask.distributed's nanny sets ``MALLOC_TRIM_THRESHOLD_``
    there for the workers it spawns: in the process that started a cluster it is no user's choice)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
        return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}
    except OSError:
        return dict(os.environ)


@functools.cache
def _libc() -> _Libc | None:
    """glibc's malloc controls, or None (another libc, or the user's own malloc settings)."""
    env = _startup_environ()
    if any(v in env for v in _USER_SETTINGS) or "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl and macOS have no such symbol)
        return _Libc(libc)
    except (OSError, AttributeError):
        return None


def _one_arena(libc: _Libc) -> None:
    """Every thread without an arena yet takes the main one (module docstring); the caller holds _lock."""
    if not _state["one_arena"]:
        libc.mallopt(_M_ARENA_MAX, 1)
        _state["one_arena"] = True


def _set_outside(libc: _Libc) -> None:
    """The settings outside keep_freed_memory (module docstring); the caller holds _lock."""
    _one_arena(libc)
    libc.mallopt(_M_MMAP_THRESHOLD, max(MMAP_THRESHOLD_BYTES, min(_state["trim_bytes"], KEEP_BYTES)))
    libc.mallopt(_M_TRIM_THRESHOLD, min(max(_state["trim_bytes"], TRIM_FLOOR_BYTES), _INT_MAX))


def keep_for_reuse(peak_bytes: int, available_bytes: int | None) -> int:
    """Let this process keep up to ``peak_bytes`` of freed memory (at most a quarter of
    ``available_bytes`` when known) instead of returning it to the system; the amount only grows,
    and a request within glibc's mmap ceiling (32 MiB) changes nothing. Returns the largest amount
    asked so far (0: malloc left as it is); the trim threshold in force is at least twice that ceiling."""
    libc = _libc()
    if libc is None:
        return 0
    want = int(peak_bytes)
    if available_bytes:
        want = min(want, int(available_bytes) // 4)
    want = min(want, _INT_MAX)
    with _lock:
        if want > _state["trim_bytes"] and want > MMAP_THRESHOLD_BYTES:
            _state["trim_bytes"] = want
            if _state["depth"] == 0:  # inside keep_freed_memory more is kept already; its exit sets it
                _set_outside(libc)
        return _state["trim_bytes"]


@contextmanager
def keep_freed_memory(give_back: bool = True):
    """A context in which freed blocks up to 1 GiB stay in the heap (module docstring); nests, and
    may be entered from several threads (the outermost entry and exit act). ``give_back=False``:
    its exit leaves the free memory in the heap (no ``malloc_trim``; glibc trims the heap's top
    beyond the trim threshold as it frees), for a caller whose next step allocates about as much
    again: ``solve`` simulates its candidate plans after its sensitivities, and with the memory
    given back those runs faulted ~500 MiB in again (resnet18: 10-13k faults, 0.1-1.0 s of
    system CPU; benchmarks/RESULTS.md, "Eighth session: footprint"). Any entry asking to give
    back makes the outermost exit give back."""
    libc = _libc()
    with _lock:
        _state["depth"] += 1
        _state["give_back"] = _state.get("give_back", False) or give_back
        if _state["depth"] == 1 and libc is not None:
            _one_arena(libc)
            libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)
            libc.mallopt(_M_TRIM_THRESHOLD, min(2 * KEEP_BYTES, _INT_MAX))
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                give, _state["give_back"] = _state.get("give_back", False), False
                if libc is not None:
                    _set_outside(libc)
                    if give:
                        libc.malloc_trim(0)


def small_pages_for_one_run() -> bool:
    """Stop numpy asking the kernel for transparent huge pages, for a process that runs one command
    (the ``hwsim`` console script; :func:`hwsim.cli.entry`); returns whether it was changed.

    numpy marks every array of 4 MiB or more ``MADV_HUGEPAGE``. Under Linux's default THP defrag
    setting ("madvise") the first fault of each 2 MiB page of such memory may compact memory
    synchronously, and a simulate with its float reference faults in its whole peak once: ``hwsim
    simulate`` of PP-OCRv4's recogniser (quantize_static, batch 8, peak 3.3 GiB while it kept every
    reference value to the end of the run) spent 4.2-6.5 s of system time so, 1.3-1.9 s with
    4 KiB pages (5.6-7.8 s -> 2.9-3.3 s whole process; a cold ``solve resnet18`` 6.8-6.9 -> 6.2-6.3 s;
    benchmarks/RESULTS.md, "Eighteenth session"). A process that runs the simulator again and
    again reuses memory already faulted in (:func:`keep_for_reuse`) and gains from the huge pages
    (MobileNetV2 b8's repeated runs 5-10% faster), so Python callers keep numpy's setting. A
    ``NUMPY_MADVISE_HUGEPAGE`` in the environment (numpy's own switch) is the user's choice and
    stands. Only speed depends on this."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        try:
            from numpy.core.multiarray import _set_madvise_hugepage  # numpy < 2
        except ImportError:
            return False
    _set_madvise_hugepage(False)
    return True
