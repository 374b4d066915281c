"""How many CPUs each of the two threads of a simulate run uses while both run.

With the float reference on a thread of its own beside the quantized run
(:class:`hwsim.sim.runner._ReferenceBeside`), each thread's parallel kernels (numba) and the
reference's products (:mod:`hwsim.sim.refblas`'s pool) asked for every CPU: on this project's
2-core machine up to six runnable threads for two CPUs, parallel regions waiting for a worker that
the other thread's work held. While both threads run, each now runs its kernels on one numba
thread (numba's thread count is per calling thread) and the reference its products on its own
thread, one block after another; the thread that is left once the other has ended gets every
thread back. Measured near idle on the 2-core AMD EPYC (2026-11-27, load 1.2-1.4, MobileNetV2 b8
default mode, the two ways alternating in one process, /work/s7/mnv2/ab_lanes.py "dyn"): wall
median 0.288 / 0.293 -> 0.225 / 0.214 s, process CPU 0.453 / 0.460 -> 0.389 / 0.378 s. No value
depends on it: no result of a kernel depends on its thread count (work items are claimed, sums
are exact or in a fixed order) and the products run the same blocks.
"""

from __future__ import annotations

import threading

_local = threading.local()


class Lanes:
    """Two threads of one run: :meth:`enter` on each when it starts, :meth:`before_op` before
    each of its ops (:func:`hwsim.sim.runner._execute`), :meth:`leave` when it has ended."""

    def __init__(self, count: int = 2):
        import numba

        self._numba = None if numba.config.DISABLE_JIT else numba
        self._lock = threading.Lock()
        self._running = count
        #: numba threads of the thread that made this (the caller of simulate): each thread's count
        #: once it runs alone, and when it leaves
        self.full = numba.get_num_threads() if self._numba else 1

    def both(self) -> bool:
        """Whether more than one of the threads still runs."""
        return self._running > 1

    def enter(self) -> None:
        """On a thread of the run, when it starts."""
        _local.lane = self
        self.before_op()

    def before_op(self) -> None:
        """The calling thread's numba threads: 1 while the other thread runs, else :attr:`full`."""
        if self._numba is not None:
            want = 1 if self.both() else self.full
            if self._numba.get_num_threads() != want:
                self._numba.set_num_threads(want)

    def leave(self) -> None:
        """On a thread of the run, when it has ended (also when it failed)."""
        with self._lock:
            self._running -= 1
        _local.lane = None
        if self._numba is not None and self._numba.get_num_threads() != self.full:
            self._numba.set_num_threads(self.full)


def current() -> Lanes | None:
    """The lanes the calling thread runs in, or None (a run without its reference beside it)."""
    return getattr(_local, "lane", None)


def shared() -> bool:
    """Whether the calling thread runs beside another thread of its run (then it keeps its work
    on itself: :func:`hwsim.sim.refblas.run_tasks` runs no pool jobs)."""
    lane = current()
    return lane is not None and lane.both()
