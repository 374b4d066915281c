"""refblas.run_tasks: every task runs once on the pool's threads, whatever the task count; a task's
error reaches the caller."""

import threading

import pytest

from hwsim.sim import refblas


@pytest.mark.parametrize("count", [1, 2, 3, 17, 100])
def test_every_task_runs_once(monkeypatch, count):
    monkeypatch.setattr(refblas, "cpu_count", lambda: 2)
    ran, lock = [], threading.Lock()

    def task(i):
        with lock:
            ran.append((i, threading.current_thread().name))

    refblas.run_tasks([lambda i=i: task(i) for i in range(count)])
    assert sorted(i for i, _ in ran) == list(range(count))
    if count > 1:
        assert all(name.startswith(refblas._PREFIX) for _, name in ran)


def test_a_task_error_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(refblas, "cpu_count", lambda: 2)

    def boom():
        raise ValueError("task 3")

    with pytest.raises(ValueError, match="task 3"):
        refblas.run_tasks([lambda: None] * 3 + [boom] + [lambda: None] * 3)
