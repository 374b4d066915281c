"""run(keep_reference=False) (what ``hwsim simulate`` runs): each reference value is dropped once the
reference's later ops and the op's metrics have read it; the figures, outputs and notes are those
of a run that keeps them all, and the memory peak is lower."""

import os
import sys
import tracemalloc

import numpy as np
import onnx
import pytest

from hwsim.graph.onnx import load_onnx
from hwsim.sim import metric_jobs, refblas, run

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import qdq_zoo  # noqa: E402

pytest.importorskip("onnxruntime")


@pytest.fixture
def beside(monkeypatch):
    """The reference on a thread of its own beside the quantized run, as on a host with 2+ CPUs."""
    monkeypatch.setattr(refblas, "threads_at_once", lambda: 2)


def _models(tmp_path, name):
    model, shape = {"cnn": lambda: qdq_zoo.resnet18(batch=2, res=32),
                    "mobilenet": lambda: qdq_zoo.mobilenet_v2(batch=1, res=32),
                    "encoder": lambda: qdq_zoo.bert(layers=1, seq=16, hidden=64, heads=2, ff=128)}[name]()
    float_path = str(tmp_path / "f.onnx")
    onnx.save(model, float_path)
    q = qdq_zoo.quantized(model, shape, str(tmp_path / "q.onnx"))
    x = {"x": np.random.default_rng(4).standard_normal(shape).astype(np.float32)}
    return load_onnx(q, {}), load_onnx(float_path, {}), x


def _figures(r):
    return [(e.name, e.op, e.sqnr_db, e.mse) for e in r.layers]


@pytest.mark.parametrize("name", ["cnn", "mobilenet", "encoder"])
@pytest.mark.parametrize("with_model", [False, True])
@pytest.mark.parametrize("cap", [None, 0])
def test_dropping_the_reference_changes_no_figure(tmp_path, beside, monkeypatch, name, with_model, cap):
    """Own reference and the float model as reference; metrics handed to jobs (the default cap) or
    all computed on the quantized thread (cap 0)."""
    if cap is not None:
        monkeypatch.setattr(metric_jobs, "MAX_PENDING_BYTES", cap)
    g, gf, x = _models(tmp_path, name)
    kw = {"requant": "onnxruntime", "reference_graph": gf if with_model else None}
    kept, dropped = run(g, x, **kw), run(g, x, keep_reference=False, **kw)
    assert _figures(dropped) == _figures(kept) and len(kept.layers) > 5
    assert dropped.notes == kept.notes
    for n in kept.outputs:
        np.testing.assert_array_equal(dropped.outputs[n], kept.outputs[n])
        np.testing.assert_array_equal(dropped.reference_outputs[n], kept.reference_outputs[n])
    ref_graph = gf if with_model else g
    made = {t for op in ref_graph.ops() for t in op.outputs} - set(ref_graph.outputs)
    assert made <= set(kept.reference.values)
    assert not made & set(dropped.reference.values)  # every op output but the graph's went


def test_without_metrics_the_values_go_after_their_last_reader(tmp_path, beside):
    g, _, x = _models(tmp_path, "cnn")
    r = run(g, x, requant="onnxruntime", metrics=False, keep_reference=False)
    assert not r.layers and set(r.reference_outputs) == set(g.outputs)
    assert not {t for op in g.ops() for t in op.outputs} - set(g.outputs) & set(r.reference.values)


@pytest.mark.parametrize("metrics_on", ["quantized thread", "jobs"])
def test_the_peak_is_lower(tmp_path, beside, monkeypatch, metrics_on):
    """The reference's values go as the run goes instead of all staying to the end (twelve 3x3
    convs of 8 channels at 96 x 96: activations, not weights), with the metrics computed on the
    quantized thread (cap 0) and with every metric handed over as a job (the quantized thread
    runs those whose value has arrived between its ops, so they hold no value to the end)."""
    if metrics_on == "jobs":
        monkeypatch.setattr(metric_jobs.MetricJobs, "wants", lambda self, name, nbytes: True)
    else:
        monkeypatch.setattr(metric_jobs, "MAX_PENDING_BYTES", 0)
    b = qdq_zoo._Builder(5)
    y = "x"
    for i in range(12):
        y = b.conv(y, 3 if i == 0 else 8, 8, 3)
    shape = (2, 3, 96, 96)
    q = qdq_zoo.quantized(b.model(shape, y, (2, 8, 96, 96)), shape, str(tmp_path / "q.onnx"))
    g, x = load_onnx(q, {}), {"x": np.random.default_rng(4).standard_normal(shape).astype(np.float32)}
    run(g, x, requant="onnxruntime")  # what the first run makes and keeps (packed weights)
    peaks = {}
    for keep in (True, False, True, False):
        tracemalloc.start()
        run(g, x, requant="onnxruntime", keep_reference=keep)
        peaks.setdefault(keep, []).append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert max(peaks[False]) < 0.7 * min(peaks[True]), peaks
