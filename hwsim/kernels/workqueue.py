"""A dynamic split of parallel loops: threads claim work items from a shared counter.

numba's ``prange`` (the OpenMP layer here) gives each thread a fixed share of the iterations, so
on a machine where other processes hold the cores a parallel region lasts as long as the share of
its most delayed thread. A kernel here instead runs ``for _ in prange(threads)`` and each worker
takes items with :func:`claim` until none are left, so a thread that gets less CPU does fewer::

    for _ in prange(threads):
        while True:
            item = claim(counter)  # counter: np.zeros(1, np.int64), fresh per call
            if item >= items:
                break
            ...

Without JIT (NUMBA_DISABLE_JIT=1) ``claim`` is the plain Python below and the loop runs serially.
"""

import os
import threading
import time
from types import FunctionType

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload


def claim(counter):
    """``counter[0] += 1``, returning the value before (one atomic step in compiled code)."""
    v = counter[0]
    counter[0] = v + 1
    return v


@intrinsic
def _atomic_claim(typingctx, counter):
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", arr.data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return sig, codegen


@overload(claim)
def _claim_compiled(counter):
    return lambda counter: _atomic_claim(counter)


#: work (elements, MACs) below which a kernel runs on the calling thread: starting a parallel region
#: costs tens of milliseconds when other processes hold the cores (measured at load 13: requantizing
#: 0.4M elements took as long as 9.6M)
PARALLEL_MIN = 2**22


_LOADAVG = "/proc/loadavg"
_OWN_TASKS = "/proc/self/task"


#: path of a thread's stat file -> a descriptor kept open on it (:func:`own_running` re-reads it with
#: ``pread``: a third of the system calls and no path lookups, 145 -> 72 us for 8 threads, 2026-11-27)
_stat_fds: dict[str, int] = {}
_stat_lock = threading.Lock()


def _close_stat_fds() -> None:
    for fd in _stat_fds.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _stat_fds.clear()


def _forget_stat_fds_in_child() -> None:
    """After ``fork``: the kept descriptors read the parent's threads, not the child's."""
    global _stat_lock
    _stat_lock = threading.Lock()
    _close_stat_fds()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_stat_fds_in_child)


def _read_stat(path: str) -> bytes | None:
    """The contents of the stat file ``path`` through its kept descriptor (opened on first use;
    opened again once if the kept one no longer reads, e.g. a new thread under an ended one's id);
    None when the thread has ended. Called under ``_stat_lock``."""
    for _ in range(2):
        fd = _stat_fds.get(path)
        if fd is None:
            try:
                fd = _stat_fds[path] = os.open(path, os.O_RDONLY)
            except OSError:  # the thread ended meanwhile
                return None
        try:
            stat = os.pread(fd, 4096, 0)
        except OSError:
            stat = b""
        if stat:
            return stat
        os.close(_stat_fds.pop(path))
    return None


def own_running():
    """This process's threads in state R (running or runnable), the calling thread included:
    BLAS and OpenMP workers that still spin after their last call are runnable, and they are not
    another task's use of a CPU. None where /proc/self/task cannot be read."""
    try:
        tids = os.listdir(_OWN_TASKS)
    except OSError:
        return None
    paths = [f"{_OWN_TASKS}/{tid}/stat" for tid in tids]
    n = 0
    with _stat_lock:
        for gone in set(_stat_fds).difference(paths):  # threads that ended since the last reading
            os.close(_stat_fds.pop(gone))
        for path in paths:
            stat = _read_stat(path)
            if stat is None:
                continue
            # "pid (comm) S ...": comm may hold spaces and parentheses, so read after the last ")"
            end = stat.rfind(b")")
            if stat[end + 2:end + 3] == b"R":
                n += 1
    return n


def free_cpus():
    """CPUs no other process is running on at this instant: online CPUs minus the runnable tasks
    that ``/proc/loadavg`` counts (its fourth field, "running/total"), less this process's own
    runnable threads (:func:`own_running`; where it cannot be read, only the calling thread).
    Counting our own threads as others' made a kernel called right after a numpy product (whose
    OpenBLAS workers spin for a while) run on one thread on an idle 2-core machine: FP8 GEMM
    512x4096x4096 0.32-0.34 s against 0.21-0.24 s on both threads (2026-11-26, load 0.4-0.7).
    None where that file is missing (not Linux)."""
    try:
        with open(_LOADAVG) as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    if running <= 1:  # only the caller: no need to list our own threads (hot path, ~0.1 ms)
        return os.cpu_count() or 1
    own = own_running()
    return (os.cpu_count() or 1) - max(0, running - (1 if own is None else max(own, 1)))


#: seconds one reading of :func:`free_cpus` serves :func:`threads_now`. Reading /proc costs
#: 0.15-1 ms (0.22 ms CPU, 0.45 ms wall at load 6.5 on 2 cores, 2026-11-26) and a simulate calls
#: parallel kernels about 60 times (MobileNetV2), often within a few milliseconds of each other;
#: the scheduler's own view of the load changes on its tick (4 ms at 250 Hz).
FREE_CPUS_TTL_S = 0.005
_reading = (-float("inf"), None, None)  # (time.monotonic() of the last reading, free_cpus(), the function read)


def _free_cpus_recent():
    """:func:`free_cpus`, read again only when the last reading is older than
    :data:`FREE_CPUS_TTL_S` (or was taken through another ``free_cpus``, e.g. a test's stand-in).
    Threads may race here; each gets a reading at most that old."""
    global _reading
    now = time.monotonic()
    t, free, fn = _reading
    if fn is free_cpus and 0.0 <= now - t < FREE_CPUS_TTL_S:
        return free
    free = free_cpus()
    _reading = (now, free, free_cpus)
    return free


def threads_now():
    """numba's thread count, less the CPUs other tasks hold right now (at least 1): OpenMP's
    dynamic-threads rule, taken at the call instead of from the load average. Measured at load
    7-9 on 2 cores (512x4096x4096 u8 x u8): two threads used 0.23 s of CPU and one 0.18 s for the
    same product; the worker that is not scheduled holds its work item while the other waits.
    The thread count never changes a result (work items are claimed, every sum is exact or in a
    fixed order). "Right now" is within :data:`FREE_CPUS_TTL_S`. One thread wanted (a thread of
    simulate's two while both run, :mod:`hwsim.sim.lanes`) reads nothing: a default-mode run read
    /proc (:func:`free_cpus`, 0.15-1 ms each) 29 / 22 / 44 times for ResNet-18 / BERT / MobileNetV2
    (the bench_sim --qdq models), 3-12 times now (2026-11-27)."""
    want = numba.get_num_threads()
    if want <= 1:
        return 1
    free = _free_cpus_recent()
    return want if free is None else max(1, min(want, free))


def split(work=PARALLEL_MIN):
    """(counter, threads) for one call of a kernel that claims its work items: one thread when
    ``work`` is under :data:`PARALLEL_MIN`, else :func:`threads_now`."""
    return np.zeros(1, np.int64), threads_now() if work >= PARALLEL_MIN else 1


def serial(kernel):
    """``kernel`` compiled without threads (its ``prange`` runs as ``range``), for small work.
    The twin is a copy of the function named ``<name>_serial``: numba's cache is keyed by the
    function's name and code, not by ``parallel``, so under the same name the two would load
    each other's machine code. A kernel that releases the GIL (``nogil``) has a twin that does too."""
    f = getattr(kernel, "py_func", kernel)
    name = f.__name__ + "_serial"
    twin = FunctionType(f.__code__.replace(co_name=name, co_qualname=f.__qualname__ + "_serial"),
                        f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__, twin.__doc__ = f.__qualname__ + "_serial", f.__doc__
    return njit(cache=True, nogil=bool(getattr(kernel, "targetoptions", {}).get("nogil", False)))(twin)


def pick(kernel, kernel_1, work):
    """(the kernel to call, its (counter, threads)) for ``work``: the threaded ``kernel`` or its
    :func:`serial` twin ``kernel_1``."""
    counter, threads = split(work)
    return (kernel if threads > 1 else kernel_1), (counter, threads)
