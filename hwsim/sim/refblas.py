"""Float products of the float reference on BLAS, in row blocks shared out to threads on demand.

OpenBLAS splits one product statically between its threads and joins them at the end: when
other processes hold the cores, the product waits for its slowest thread. On this project's
2-core machine at load 9 (2026-11-26), float32 (128, 3072) x (3072, 768) took 276 ms on
OpenBLAS's 2 threads and 50 ms on one; a stack of BERT-base attention products,
(12, 128, 64) x (12, 64, 128), 134-360 ms against 3-5 ms. Here each block of rows
(:func:`row_blocks`: a quarter of them, 256 to :data:`ROWS_PER_TASK`; one matrix of a stack;
:data:`COLS_PER_TASK` columns of the right operand in :func:`wide_dot` when the left has no more
rows than one block) is one single-threaded BLAS call, and a pool of one Python thread per CPU
takes blocks as it frees up (numpy releases the GIL inside BLAS).

The blocks do not depend on the CPU count or the load, so the values are the same on every
run with the same BLAS; they may differ in the last bits from one whole-matrix BLAS call
(float32 GEMM sums in another order on one thread), which is why only the float reference, whose
values feed error metrics, uses this; the simulated path keeps numpy's own products.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hwsim.sim import lanes

#: most rows of the left operand per task (:func:`row_blocks`; the values do not depend on the thread count). 1024
#: since 2026-11-26 (256 before): on MobileNetV2's 34 1x1 convs at batch 8 (4.3 GFLOP) the products
#: took 0.125 s CPU against 0.179 s (median of 4, load 11): a quarter of the tasks, each packing the
#: right operand once for 4x the rows. The float32 sums' order changed with it: reference values moved
#: by at most 1.7e-6 relative, per-layer SQNR by at most 4e-8 dB (benchmarks/RESULTS.md, "Fifth session: simref")
ROWS_PER_TASK = 1024
#: columns of the right operand per task of :func:`wide_dot` when the left operand is one row block
#: of :func:`row_blocks`
COLS_PER_TASK = 384
#: fewest rows of a block of :func:`row_blocks`
_MIN_ROWS = 256
#: products smaller than this (MACs) run as one call on the calling thread
_MIN_SPLIT_MACS = 1 << 22

_lock = threading.Lock()
_PREFIX = "hwsim-refblas"
_state: dict = {}


def cpu_count() -> int:
    """CPUs this process may run on (the pool's threads; solve's layer threads)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_at_once() -> int:
    """Python threads that may run hwsim's kernels at the same time (the float reference beside the
    quantized run, solve's layer and plan threads): :func:`cpu_count`, or 1 where numba's threading
    layer cannot take parallel kernels launched from two threads at once. numba's ``omp`` and
    ``tbb`` layers can; its ``workqueue`` layer, its fallback where neither library is installed
    (e.g. macOS without libomp), aborts the process on concurrent access, so there everything
    runs on the calling thread, one kernel after another (same values: no result depends on the
    thread count)."""
    return cpu_count() if concurrent_kernels_safe() else 1


@functools.cache
def concurrent_kernels_safe() -> bool:
    """Whether numba's threading layer is thread-safe (``omp`` or ``tbb``; see
    :func:`threads_at_once`). Starts numba's threads to find out which layer it chose."""
    import numba

    if numba.config.DISABLE_JIT:
        return True  # no parallel kernels: plain Python
    import hwsim.kernels  # noqa: F401  (its OpenMP wait policy, before the runtime loads)
    from numba.np.ufunc.parallel import _launch_threads

    _launch_threads()
    return numba.threading_layer() in ("omp", "tbb")


@functools.cache
def _controller():
    """The process's threadpoolctl controller (it scans the loaded BLAS libraries once)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS uses one thread.

    For the row blocks here, and for solve's tails (hwsim.solve.tail): a matmul of two activations
    is many small products (one per batch row and head), which OpenBLAS splits over its threads
    that then wait for each other; on this project's 2-core machine under load, MiniLM-L6's
    attention products took 3-5x the CPU time of one thread and longer in wall time too
    (benchmarks/RESULTS.md, "Cold solve, third session").
    """
    return _controller().limit(limits=1, user_api="blas")


def _pool():
    """The thread pool, made on first use."""
    with _lock:
        if not _state:
            _state["pool"] = ThreadPoolExecutor(cpu_count(), thread_name_prefix=_PREFIX)
        return _state["pool"]


def _run(tasks: list) -> None:
    """Run ``tasks`` on the pool: one job per pool thread (at most one per task), each taking the
    next task not yet taken until none is left (the blocks of a product go to whichever thread
    frees up; one future per thread, not one per block: a MobileNetV2 reference has ~500 blocks)."""
    pool = _pool()
    with one_blas_thread():
        if len(tasks) == 1 or cpu_count() == 1 or threading.current_thread().name.startswith(_PREFIX) or lanes.shared():
            for t in tasks:  # one task, one CPU, called from a task of the pool itself (no waiting on it), or beside
                # the other thread of a simulate run (hwsim.sim.lanes)
                t()
        else:
            taken = itertools.count()  # next() is atomic under the GIL

            def work() -> None:
                for i in iter(taken.__next__, None):
                    if i >= len(tasks):
                        return
                    tasks[i]()

            for f in [pool.submit(work) for _ in range(min(cpu_count(), len(tasks)))]:
                f.result()


def row_blocks(m: int, k: int, n: int) -> list[tuple[int, int]]:
    """The (start, stop) rows of the left operand that :func:`dot` multiplies in one BLAS call
    each, for an (m, k) x (k, n) product: one block under :data:`_MIN_SPLIT_MACS`, else blocks of
    a quarter of the rows, at least :data:`_MIN_ROWS` and at most :data:`ROWS_PER_TASK` (so that a
    product of few rows, a late conv's patches, still has blocks for two threads). The split
    depends on the shape only and fixes the float32 sums' order: callers that make their own
    left operand block by block (:mod:`hwsim.sim.refconv`) use the same blocks."""
    if m * k * n < _MIN_SPLIT_MACS:
        return [(0, m)]
    rows = min(ROWS_PER_TASK, max(_MIN_ROWS, -(-m // 4)))
    return [(i, min(i + rows, m)) for i in range(0, m, rows)]


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D float ``a`` (M, K) and ``b`` (K, N), in blocks of rows of ``a``
    (:func:`row_blocks`)."""
    a, b = np.ascontiguousarray(a), np.asarray(b)
    m, n = a.shape[0], b.shape[1]
    out = np.empty((m, n), np.result_type(a, b))
    _run([lambda i=i, j=j: np.dot(a[i:j], b, out=out[i:j]) for i, j in row_blocks(m, a.shape[1], n)])
    return out


def col_blocks(m: int, k: int, n: int) -> list[tuple[int, int]] | None:
    """The (start, stop) columns of the right operand that :func:`wide_dot` multiplies in one
    BLAS call each, for an (m, k) x (k, n) product whose left operand is a single row block of
    :func:`row_blocks` yet large enough to split (:data:`COLS_PER_TASK` columns each); None for
    any other product (then :func:`dot`'s row blocks)."""
    if m * k * n < _MIN_SPLIT_MACS or len(row_blocks(m, k, n)) > 1 or n <= COLS_PER_TASK:
        return None
    return [(j, min(j + COLS_PER_TASK, n)) for j in range(0, n, COLS_PER_TASK)]


def wide_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`dot`, except that a left operand of one row block is multiplied in blocks of
    columns of ``b`` (:func:`col_blocks`), on the pool's threads: a transformer's linears at
    batch 1 (128 x 768 times 768 x 3072 for BERT-base at sequence 128) would otherwise be one
    single-threaded call."""
    a, b = np.ascontiguousarray(a), np.asarray(b)
    m, n = a.shape[0], b.shape[1]
    cols = col_blocks(m, a.shape[1], n)
    if cols is None:
        return dot(a, b)
    out = np.empty((m, n), np.result_type(a, b))

    def task(j0: int, j1: int) -> None:
        out[:, j0:j1] = np.dot(a, b[:, j0:j1])

    _run([lambda j0=j0, j1=j1: task(j0, j1) for j0, j1 in cols])
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)`` of float arrays: 2-D by :func:`dot`, a stack one matrix per task."""
    if a.ndim == 2 and b.ndim == 2:
        return dot(a, b)
    if a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    out = np.empty((a3.shape[0], a.shape[-2], b.shape[-1]), np.result_type(a, b))
    _run([lambda i=i: np.matmul(a3[i], b3[i], out=out[i]) for i in range(a3.shape[0])])
    return out.reshape(batch + out.shape[-2:])


def run_tasks(tasks: list) -> None:
    """Run ``tasks`` (callables that release the GIL: BLAS calls, ``nogil`` numba kernels) on
    this module's pool, BLAS on one thread in each, and wait for all (solve's float32 tails
    share the pool this way)."""
    _run(tasks)
