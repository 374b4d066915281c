"""Per-op metrics of a simulate run computed by whichever of its two threads is free.

With the float reference on a thread of its own beside the quantized run
(:class:`hwsim.sim.runner._ReferenceBeside`), an op's metrics need both its quantized output and
its reference value. Computed on the quantized thread as each op ended, the quantized run waited
for every reference value the reference had not made yet, and when it was ahead the metrics
lengthened it while the reference thread had finished: MobileNetV2 b8 at load 8 (2026-11-26), the
reference thread done at 0.56-0.69 s, the quantized run at 0.77-0.97 s, 0.11-0.23 s of it in
metrics. Here the quantized thread hands an op's metric over as a job (:meth:`MetricJobs.add`)
and goes on when the reference value has not arrived yet, or when the reference thread has
finished and waits for jobs (:meth:`MetricJobs.wants`; otherwise it computes the metric at once,
while both values are in cache); a job can run once the reference value it compares with has
arrived. The quantized thread runs jobs after its last op (:meth:`MetricJobs.finish`), the
reference thread after its last value (:meth:`MetricJobs.help`), each until none is left. The values are those of the
metrics computed in order: each job is the same computation on the same two values.

A job holds its op's quantized output until it runs: only outputs up to
:data:`MAX_PENDING_BYTES` in all are handed over (8-bit codes, 1 byte per value; the reference
beside them holds 4-8 bytes per value), the others computed on the quantized thread as before.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable

from hwsim.sim.arriving import ArrivingReference

#: most bytes of quantized outputs waiting in jobs at once (beyond it the quantized thread
#: computes an op's metrics itself, waiting for the reference value as before)
MAX_PENDING_BYTES = 1 << 28


class MetricJobs:
    """Jobs ``fn()`` keyed by ``key``, each runnable once the value of its tensor ``name`` has
    arrived in ``arriving``; their results in :attr:`results` (key -> ``fn()``)."""

    def __init__(self, arriving: ArrivingReference):
        self._arriving = arriving
        self._cond = arriving.condition
        self._jobs: deque = deque()  # (key, name, fn, nbytes), in the order added
        self._pending_bytes = 0
        self._running = 0
        self._closed = False
        self._helping = False
        self.results: dict = {}

    def wants(self, name: str, nbytes: int) -> bool:
        """Whether to hand over the metric of ``name`` (its job holding ``nbytes``): when its
        reference value has not arrived (the quantized run would wait for it) or the reference
        thread has finished and waits for jobs, and the held bytes stay within
        :data:`MAX_PENDING_BYTES`. Otherwise the quantized thread computes it at once, while
        the values are in cache."""
        return (self._helping or not self._arriving.made(name)) and \
            self._pending_bytes + nbytes <= MAX_PENDING_BYTES

    def add(self, key, name: str, fn: Callable[[], object], nbytes: int = 0) -> None:
        """Queue ``fn`` (it reads the reference value of ``name`` and ``nbytes`` of held data)."""
        with self._cond:
            self._jobs.append((key, name, fn, nbytes))
            self._pending_bytes += nbytes
            self._cond.notify_all()

    def close(self) -> None:
        """No more jobs will be added (the quantized run has ended or failed)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def finish(self) -> None:
        """On the quantized thread after its last op: close, then run jobs until every job has
        run (or the reference failed: :meth:`ArrivingReference.result` raises its error)."""
        self.close()
        self._work(lambda: (not self._jobs and not self._running) or self._arriving.failed)

    def run_ready(self) -> None:
        """On the quantized thread between its ops: run the jobs whose value has arrived, waiting
        for none. A run that drops its reference (``keep_reference=False``) calls it, so that a
        reference value a job compares with is not held until the quantized run has ended (PP-OCRv4's
        recogniser at batch 8, ``hwsim simulate``: peak RSS 0.8-0.9 GB, 2.8 GB without it)."""
        self._work(lambda: True)

    def help(self) -> None:
        """On the reference thread after its last value: run jobs until the quantized run has
        closed and none is left to take."""
        self._helping = True
        self._work(lambda: self._closed and not self._jobs)

    def _take(self):
        """(key, fn) of the first job whose value has arrived (any job once the reference has
        completed: its read then raises as it would have), taken off the queue; None if none
        (and none ever once the reference has failed)."""
        complete = self._arriving.finished and not self._arriving.failed
        for i, (key, name, fn, nbytes) in enumerate(self._jobs):
            if complete or self._arriving.made(name) and not self._arriving.failed:
                del self._jobs[i]
                self._pending_bytes -= nbytes
                self._running += 1
                return key, fn
        return None

    def _work(self, done: Callable[[], bool]) -> None:
        while True:
            with self._cond:
                job = self._take()
                while job is None and not done():
                    self._cond.wait()
                    job = self._take()
            if job is None:
                return
            key, fn = job
            try:
                self.results[key] = fn()
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
