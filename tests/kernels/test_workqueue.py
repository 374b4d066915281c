"""The dynamic work split (hwsim.kernels.workqueue): every item is claimed exactly once."""

import os
import time

import numpy as np
import pytest
from numba import njit, prange

from hwsim.kernels.workqueue import claim, split


@njit(parallel=True)
def _mark(items, hits, counter, threads):
    for _ in prange(threads):
        while True:
            it = claim(counter)
            if it >= items:
                break
            hits[it] += 1


@pytest.mark.nojit
@pytest.mark.parametrize("items", [0, 1, 7, 5000])
def test_every_item_is_claimed_once(items):
    hits = np.zeros(max(items, 1), np.int64)
    counter, threads = split()
    _mark(items, hits, counter, max(threads, 2))
    np.testing.assert_array_equal(hits[:items], 1)
    assert counter[0] >= items


def test_threads_now_leaves_the_cpus_other_tasks_hold(monkeypatch, tmp_path):
    """/proc/loadavg's running count includes the caller: 1 running -> every thread; one running
    task per CPU besides the caller -> 1; an unreadable file -> numba's count."""
    import numba
    import os

    from hwsim.kernels import workqueue

    monkeypatch.undo()  # the conftest's all_threads fixture
    monkeypatch.setattr(workqueue, "FREE_CPUS_TTL_S", 0.0)  # every call reads the file
    want = numba.get_num_threads()
    path = tmp_path / "loadavg"
    monkeypatch.setattr(workqueue, "_LOADAVG", str(path))
    monkeypatch.setattr(workqueue, "_OWN_TASKS", str(tmp_path / "no-such-dir"))  # own: the caller only
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    for running, expected in ((1, min(want, 4)), (2, min(want, 3)), (4, 1), (9, 1)):
        path.write_text(f"0.5 0.4 0.3 {running}/321 4567\n")
        assert workqueue.threads_now() == max(1, expected)
    path.write_text("garbage\n")
    assert workqueue.free_cpus() is None and workqueue.threads_now() == want
    path.unlink()
    assert workqueue.threads_now() == want
    path.write_text("0.1 0.1 0.1 1/100 1\n")
    assert workqueue.split(0)[1] == 1  # under PARALLEL_MIN: one thread whatever is free


def test_threads_now_does_not_count_this_processs_own_runnable_threads(monkeypatch, tmp_path):
    """Our own spinning BLAS/OpenMP workers are runnable in /proc/loadavg too; they must not be read
    as other tasks holding CPUs (with them counted, an idle machine gave one thread). A thread name
    with spaces and parentheses does not confuse the state field."""
    import os

    from hwsim.kernels import workqueue

    monkeypatch.undo()
    tasks = tmp_path / "task"
    for tid, comm, state in ((101, "python", "R"), (102, "numba (worker) 1", "R"), (103, "openblas", "R"),
                             (104, "sleeper", "S")):
        (tasks / str(tid)).mkdir(parents=True)
        (tasks / str(tid) / "stat").write_text(f"{tid} ({comm}) {state} 1 2 3 4\n")
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(workqueue, "_LOADAVG", str(loadavg))
    monkeypatch.setattr(workqueue, "_OWN_TASKS", str(tasks))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert workqueue.own_running() == 3
    for running, free in ((3, 4), (4, 3), (7, 0)):  # 3 of the running tasks are ours
        loadavg.write_text(f"0.1 0.1 0.1 {running}/200 1\n")
        assert workqueue.free_cpus() == free
    (tasks / "103" / "stat").write_text("103 (openblas) S 1 2 3 4\n")
    loadavg.write_text("0.1 0.1 0.1 3/200 1\n")
    assert workqueue.free_cpus() == 3  # 2 of ours run: 1 other task


def test_own_running_follows_threads_that_start_and_end(monkeypatch, tmp_path):
    """own_running keeps a descriptor per thread's stat file between readings: a thread that
    appears is read, one that ended is dropped (its descriptor closed), a changed state is seen;
    on the real /proc a thread that has ended is no longer counted or held."""
    import threading

    from hwsim.kernels import workqueue

    monkeypatch.undo()
    tasks = tmp_path / "task"
    monkeypatch.setattr(workqueue, "_OWN_TASKS", str(tasks))

    def task(tid, state):
        (tasks / str(tid)).mkdir(parents=True, exist_ok=True)
        (tasks / str(tid) / "stat").write_text(f"{tid} (t) {state} 1 2 3\n")

    task(1, "R")
    task(2, "S")
    assert workqueue.own_running() == 1
    task(3, "R")
    task(2, "R")
    assert workqueue.own_running() == 3
    (tasks / "1" / "stat").unlink()
    (tasks / "1").rmdir()
    assert workqueue.own_running() == 2
    assert f"{tasks}/1/stat" not in workqueue._stat_fds

    monkeypatch.setattr(workqueue, "_OWN_TASKS", "/proc/self/task")
    started, stop, tid = threading.Event(), threading.Event(), []

    def spin():
        tid.append(threading.get_native_id())
        started.set()
        while not stop.is_set():
            pass

    t = threading.Thread(target=spin)
    t.start()
    started.wait()
    assert workqueue.own_running() >= 1
    assert f"/proc/self/task/{tid[0]}/stat" in workqueue._stat_fds
    stop.set()
    t.join()  # returns once Python is done with the thread, which may still be exiting in the kernel:
    gone = time.monotonic() + 10  # wait until /proc no longer lists it (under load this took a while)
    while os.path.exists(f"/proc/self/task/{tid[0]}") and time.monotonic() < gone:
        time.sleep(0.001)
    workqueue.own_running()
    assert f"/proc/self/task/{tid[0]}/stat" not in workqueue._stat_fds
    assert not any(p.startswith(str(tasks)) for p in workqueue._stat_fds)


def test_threads_now_reads_proc_at_most_once_per_ttl(monkeypatch, tmp_path):
    """A reading of /proc/loadavg serves threads_now for FREE_CPUS_TTL_S, then is read again."""
    import os
    import types

    import numba

    from hwsim.kernels import workqueue

    monkeypatch.undo()
    if numba.get_num_threads() < 2:
        pytest.skip("needs 2 numba threads")
    clock = [1000.0]
    monkeypatch.setattr(workqueue, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(workqueue, "_reading", (-float("inf"), None, None))
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(workqueue, "_LOADAVG", str(loadavg))
    monkeypatch.setattr(workqueue, "_OWN_TASKS", str(tmp_path / "no-such-dir"))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    loadavg.write_text("0.1 0.1 0.1 1/200 1\n")
    assert workqueue.threads_now() == 2
    loadavg.write_text("0.1 0.1 0.1 5/200 1\n")  # others now hold both CPUs
    clock[0] += workqueue.FREE_CPUS_TTL_S / 2
    assert workqueue.threads_now() == 2  # the reading is still fresh
    clock[0] += workqueue.FREE_CPUS_TTL_S
    assert workqueue.threads_now() == 1
