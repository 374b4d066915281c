"""The two threads of a default-mode simulate run one numba thread each while both run
(hwsim.sim.lanes), the reference's products on its own thread, and every thread count comes back."""

import threading

import numba
import numpy as np
import pytest

from hwsim.graph.annotate import quantize_graph
from hwsim.graph.zoo import load_model
from hwsim.sim import lanes, refblas, run, runner


def test_each_thread_runs_one_numba_thread_while_both_run(monkeypatch):
    if numba.config.DISABLE_JIT or not refblas.concurrent_kernels_safe() or refblas.cpu_count() < 2:
        pytest.skip("needs two CPUs and a thread-safe numba threading layer")
    g = quantize_graph(load_model("resnet18:batch=1,resolution=32"), "int8", "int8")
    x = {n: np.random.default_rng(3).standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs}
    before = numba.get_num_threads()
    seen, pooled = [], []
    execute, run_tasks = runner.execute, refblas._run

    def spy(ctx, op, xs):
        lane = lanes.current()
        seen.append((ctx.reference, lane is not None and lane.both(), numba.get_num_threads()))
        return execute(ctx, op, xs)

    def spy_tasks(tasks):
        pooled.append((lanes.shared(), threading.current_thread().name))
        return run_tasks(tasks)

    monkeypatch.setattr(runner, "execute", spy)
    monkeypatch.setattr(refblas, "_run", spy_tasks)
    beside = run(g, x)
    assert {r for r, _, _ in seen} == {True, False}  # both threads ran ops
    assert all(n == 1 for _, both, n in seen if both)
    assert all(n == before for _, both, n in seen if not both)
    assert numba.get_num_threads() == before and lanes.current() is None
    monkeypatch.setattr(refblas, "threads_at_once", lambda: 1)  # reference first, then the quantized run
    alone = run(g, x)
    for n in alone.outputs:
        np.testing.assert_array_equal(beside.outputs[n], alone.outputs[n])
    assert [(e.sqnr_db, e.mse) for e in beside.layers] == [(e.sqnr_db, e.mse) for e in alone.layers]
    for n in alone.reference.values:
        np.testing.assert_array_equal(beside.reference.values[n], alone.reference.values[n])


def test_a_thread_that_leaves_gets_its_threads_back():
    if numba.config.DISABLE_JIT:
        pytest.skip("numba's threads only with JIT")
    before = numba.get_num_threads()
    two = lanes.Lanes()
    out = []

    def other():
        two.enter()
        out.append(numba.get_num_threads())
        two.leave()
        out.append(numba.get_num_threads())

    two.enter()
    assert numba.get_num_threads() == 1 and lanes.shared()
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert out == [1, before]
    two.before_op()  # alone now: every thread
    assert numba.get_num_threads() == before and not lanes.shared()
    two.leave()
    assert numba.get_num_threads() == before and lanes.current() is None
