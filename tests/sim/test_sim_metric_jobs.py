"""hwsim.sim.metric_jobs: per-op metrics run by whichever of simulate's two threads is free give the
values computed in order; no thread waits forever when either side fails."""

import threading
import time

import numpy as np
import pytest

from hwsim.sim import metric_jobs, runner
from hwsim.sim.arriving import ArrivingReference


def _beside(names, store, then_help=True):
    """An ArrivingReference whose computation is ``store(into)``, then (with ``then_help``) the
    jobs' help() on its thread, as runner._ReferenceBeside does."""
    holder, made = {}, threading.Event()

    def compute(into):
        store(into)
        made.wait()
        if then_help:
            holder["jobs"].help()

    arriving = ArrivingReference(set(names), compute)
    holder["jobs"] = metric_jobs.MetricJobs(arriving)
    made.set()
    return arriving, holder["jobs"]


def _in_thread(fn, timeout=20.0):
    """fn()'s result (or error) from another thread; fails if it has not ended in ``timeout``."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "a thread waited forever"
    if "error" in out:
        raise out["error"]
    return out.get("value")


@pytest.mark.parametrize("reference_ahead", [True, False])
def test_every_job_runs_once_on_a_free_thread(reference_ahead):
    """Reference ahead: the quantized side adds jobs slowly, the reference thread runs them after
    its last value. Reference behind: the quantized side adds all at once and runs them as the
    values arrive. Each result is its job's own, computed once."""
    names = [f"t{i}" for i in range(12)]

    def store(into):
        for i, n in enumerate(names):
            if not reference_ahead:
                time.sleep(0.005)
            into[n] = float(i)

    arriving, jobs = _beside(names, store)
    ran = []

    def quantized():
        for i, n in enumerate(names):
            if reference_ahead:
                time.sleep(0.005)
            jobs.add(i, n, lambda i=i, n=n: ran.append((i, threading.current_thread().name)) or arriving[n] * 10)
        jobs.finish()
        arriving.result()

    _in_thread(quantized)
    assert jobs.results == {i: 10.0 * i for i in range(12)}
    assert sorted(i for i, _ in ran) == list(range(12))
    threads = {name for _, name in ran}
    assert ("hwsim-reference" in threads) == reference_ahead or len(threads) == 2


def test_a_failed_reference_stops_the_waiting_quantized_side():
    def store(into):
        into["a"] = 1.0
        raise RuntimeError("reference broke")

    arriving, jobs = _beside(["a", "b"], store)
    jobs.add(0, "b", lambda: arriving["b"])  # "b" never comes

    def quantized():
        jobs.finish()  # returns: the reference failed
        arriving.result()

    with pytest.raises(RuntimeError, match="reference broke"):
        _in_thread(quantized)


def test_a_failing_job_on_the_quantized_side_lets_the_reference_thread_end():
    arriving, jobs = _beside(["a"], lambda into: into.update(a=1.0))
    jobs.add(0, "a", lambda: 1 / 0)

    def quantized():
        try:
            jobs.finish()
        finally:
            jobs.close()
            arriving.result()

    with pytest.raises(ZeroDivisionError):
        _in_thread(quantized)


def _qdq_cnn(tmp_path):
    """A CNN quantized by onnxruntime's quantize_static (QDQ, u8 activations: 8-bit codes flow
    between its ops) and its inputs."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from hwsim.graph.onnx import load_onnx
    from tests.sim.test_sim_qdq_ort import SHAPE, _float_cnn, _Reader

    _float_cnn(tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), _Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return load_onnx(tmp_path / "q.onnx", {}), {"x": np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32)}


def test_run_gives_the_metrics_in_order_with_and_without_jobs(monkeypatch, tmp_path):
    """simulate's layers (names, SQNR, MSE) equal with every metric handed over as a job and with
    every metric computed on the quantized thread as its op ends."""
    g, x = _qdq_cnn(tmp_path)
    monkeypatch.setattr(runner.refblas, "cpu_count", lambda: 2)
    added = []
    add = metric_jobs.MetricJobs.add
    monkeypatch.setattr(metric_jobs.MetricJobs, "add", lambda self, *a: added.append(a[0]) or add(self, *a))
    monkeypatch.setattr(metric_jobs.MetricJobs, "wants", lambda self, name, nbytes: True)
    jobs = runner.run(g, x, requant="onnxruntime")
    assert len(added) > 5
    monkeypatch.setattr(metric_jobs.MetricJobs, "wants", lambda self, name, nbytes: False)
    added.clear()
    inline = runner.run(g, x, requant="onnxruntime")
    assert not added
    assert [(e.name, e.op, e.sqnr_db, e.mse) for e in jobs.layers] == \
        [(e.name, e.op, e.sqnr_db, e.mse) for e in inline.layers]
    assert all(isinstance(e, runner.LayerError) for e in jobs.layers)
    for n in jobs.outputs:
        np.testing.assert_array_equal(jobs.outputs[n], inline.outputs[n])


def test_a_metric_is_handed_over_only_where_the_quantized_run_would_wait_or_the_reference_is_idle(monkeypatch):
    stored, go_on = threading.Event(), threading.Event()

    def store(into):
        into["a"] = 1.0
        stored.set()
        go_on.wait()

    arriving, jobs = _beside(["a", "b"], store)
    stored.wait()
    assert not jobs.wants("a", 10)  # made, reference busy: at once, in cache
    assert jobs.wants("b", 10)  # not made: the quantized run would wait
    monkeypatch.setattr(metric_jobs, "MAX_PENDING_BYTES", 5)
    assert not jobs.wants("b", 10)  # too many bytes held
    monkeypatch.undo()
    go_on.set()
    _in_thread(lambda: time.sleep(0.05) or jobs.close() or arriving.result())
    assert jobs._helping and jobs.wants("a", 10)  # the reference thread waited for jobs


def test_run_raises_a_metric_error_without_hanging(monkeypatch, tmp_path):
    g, x = _qdq_cnn(tmp_path)
    monkeypatch.setattr(runner.refblas, "cpu_count", lambda: 2)

    def broken(ref, y):
        raise ValueError("metric broke")

    monkeypatch.setattr(runner, "coded_errors", broken)
    with pytest.raises(ValueError, match="metric broke"):
        _in_thread(lambda: runner.run(g, x, requant="onnxruntime"))


@pytest.mark.parametrize("fill", [0.5, 1e5])  # finite fp16 outputs; outputs overflowing to inf
def test_float_outputs_as_jobs_give_the_same_layers_and_notes(monkeypatch, fill):
    """Float (not coded) outputs are handed over too where they are finite; one holding inf is
    computed in order, so its notes (the simulation's own inf) are made as before."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.zoo import load_model

    g = quantize_graph(load_model("gemm:m=2,k=8,n=4"), "fp16", "fp16")
    x = {"input": np.full((2, 8), fill, np.float32)}
    monkeypatch.setattr(runner.refblas, "cpu_count", lambda: 2)
    added = []
    add = metric_jobs.MetricJobs.add
    monkeypatch.setattr(metric_jobs.MetricJobs, "add", lambda self, *a: added.append(a[1]) or add(self, *a))
    monkeypatch.setattr(metric_jobs.MetricJobs, "wants", lambda self, name, nbytes: True)
    jobs = runner.run(g, x, keep_reference=False)
    handed = list(added)
    monkeypatch.setattr(metric_jobs.MetricJobs, "wants", lambda self, name, nbytes: False)
    added.clear()
    inline = runner.run(g, x)
    assert not added
    assert bool(handed) == (fill < 1e4)  # every output of the overflowing run holds inf
    assert [(e.name, repr(e.sqnr_db), repr(e.mse)) for e in jobs.layers] == \
        [(e.name, repr(e.sqnr_db), repr(e.mse)) for e in inline.layers]  # NaN equal to NaN
    assert jobs.notes == inline.notes
    if fill > 1e4:
        assert any("where the float reference is finite" in n for n in jobs.notes), jobs.notes


def test_run_ready_runs_the_arrived_jobs_and_waits_for_none():
    """The quantized thread's call between its ops (a run that drops its reference): jobs whose
    value has arrived run at once, the others stay queued, nothing blocks."""
    stored, go_on = threading.Event(), threading.Event()

    def store(into):
        into["a"] = 1.0
        stored.set()
        go_on.wait()
        into["b"] = 2.0

    arriving, jobs = _beside(["a", "b"], store)
    stored.wait()
    jobs.add(0, "a", lambda: "A")
    jobs.add(1, "b", lambda: "B")
    _in_thread(jobs.run_ready, timeout=5.0)
    assert jobs.results == {0: "A"}
    go_on.set()
    _in_thread(lambda: jobs.finish() or arriving.result())
    assert jobs.results == {0: "A", 1: "B"}
