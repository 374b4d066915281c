"""``hwsim calibrate --host``: timing on a shared machine, the fit on microbenchmarks, the CLI.

The full measurement (minutes) runs only with ``pytest -m host``; the fit is checked here on a small
synthetic measurement set priced by a known target, so a broken fit fails in seconds.
"""

import json

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.fidelity.host import cache_sizes, copy_bandwidth, host_target, physical_cores
from hwsim.fidelity.host_bench import _relu_chain, _stream_op
from hwsim.fidelity.host_fit import fit_host
from hwsim.fidelity.host_timing import Timing, _per_run, merge, random_feeds, session, time_model
from hwsim.fidelity.records import Measurement, load_measurements
from hwsim.fidelity.validate import predict, validate
from hwsim.targets import load_target
from hwsim.targets.schema import Target


def test_host_facts_are_sane():
    assert physical_cores() >= 1
    sizes = [s for _, s in cache_sizes()]
    assert sizes == sorted(sizes)
    assert copy_bandwidth(1 << 20, 0.01) > 1e8  # any machine copies faster than 100 MB/s


def test_per_run_splits_kernels_by_run():
    """Kernel events belong to the run whose window holds them; the warm-up is a run like any other."""
    ev = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
          {"cat": "Session", "name": "model_run", "ts": 200, "dur": 50},
          {"cat": "Node", "name": "a_kernel_time", "ts": 10, "dur": 60},
          {"cat": "Node", "name": "b_kernel_time", "ts": 75, "dur": 20},
          {"cat": "Node", "name": "a_kernel_time", "ts": 205, "dur": 30},
          {"cat": "Node", "name": "a_fence_before", "ts": 204, "dur": 1},
          {"cat": "Node", "name": "b_kernel_time", "ts": 240, "dur": 5}]
    walls, kernels, gaps = _per_run(ev)
    assert walls == pytest.approx([100e-6, 50e-6])
    assert gaps[0] == pytest.approx({"a_kernel_time": 10e-6, "b_kernel_time": 5e-6, "": 5e-6})
    assert gaps[1] == pytest.approx({"a_kernel_time": 5e-6, "b_kernel_time": 5e-6, "": 5e-6})
    assert [sorted(k) for k in kernels] == [["a_kernel_time", "b_kernel_time"]] * 2
    assert [k["a_kernel_time"] for k in kernels] == pytest.approx([60e-6, 30e-6])
    assert [k["b_kernel_time"] for k in kernels] == pytest.approx([20e-6, 5e-6])


def test_merge_takes_each_nodes_minimum_over_rounds():
    a = Timing(0.0, 5.0, 6.0, 3, 2, node_min_s=(("a", 1.0), ("b", 3.0)), gap_each_s=(("a", 0.25), ("", 0.25)))
    b = Timing(0.0, 4.0, 9.0, 5, 2, node_min_s=(("a", 2.0), ("b", 1.0)), gap_each_s=(("a", 0.5), ("", 0.125)))
    m = merge(merge(None, a), b)
    assert m.gap_min_s == 0.25 + 0.125  # each gap's minimum, like the kernels'
    assert m.latency_s == 1.0 + 1.0 + 0.375 and m.run_min_s == 4.0 and m.runs == 8 and m.run_median_s == 9.0


def test_time_model_per_node_minimum_is_at_most_the_fastest_run():
    model = _relu_chain(8)
    sess, note = session(model, 1)
    t = time_model(model, random_feeds(sess, {}), threads=1, runs=5)
    assert note == "" and t.nodes == 8 and t.runs == 5
    assert 0 < t.latency_s <= t.run_min_s * 1.05 and t.run_min_s <= t.run_median_s


def test_skipped_node_types_leave_the_timing():
    model = _relu_chain(4)
    sess, _ = session(model, 1)
    t = time_model(model, random_feeds(sess, {}), threads=1, runs=3, skip_ops=("Relu",))
    assert t.nodes == 0 and t.latency_s == t.gap_min_s


def test_bound_dims_let_onnxruntime_fold_shape_arithmetic():
    """Dynamic dims bound at session creation: onnxruntime folds the Shape / Gather / Unsqueeze / Concat
    arithmetic the model computes its reshapes with, as hwsim does when it binds them."""
    dims = {"batch": 1, "sequence": 16}
    sess, _ = session("tests/data/tiny_bert.onnx", 1)
    feeds = random_feeds(sess, dims)
    free = time_model("tests/data/tiny_bert.onnx", feeds, threads=1, runs=2)
    bound = time_model("tests/data/tiny_bert.onnx", feeds, threads=1, runs=2, dims=dims)
    assert bound.nodes < free.nodes
    assert not any("Shape" in n or "Unsqueeze" in n for n, _ in bound.node_min_s)
    assert any("Unsqueeze" in n for n, _ in free.node_min_s)


def test_energy_counter_gives_energy_per_run_and_a_chip_record(tmp_path):
    """Where a counter is readable (RAPL), each record carries energy per run at chip scope."""
    import time

    from hwsim.fidelity.host import rapl_joules
    from hwsim.fidelity.host_bench import Bench, record

    model = _relu_chain(4)
    sess, _ = session(model, 1)
    t = time_model(model, random_feeds(sess, {}), threads=1, runs=5, energy=lambda: 10.0 * time.perf_counter())
    assert t.energy_j is not None and 10.0 * t.run_min_s * 0.9 < t.energy_j < 10.0  # 10 W x (a run, not 1 s)
    rec = Measurement.model_validate(record(Bench("x", "op", "overhead", "m/x.onnx", "fp32", "fp32", model, "l"), t, 1, "d"))
    assert rec.energy_j == t.energy_j and rec.conditions.energy_scope == "chip"
    counter = tmp_path / "energy_uj"
    counter.write_text("2500000\n")
    assert rapl_joules(counter) == 2.5 and rapl_joules(tmp_path / "missing") is None


def _truth(tmp_path) -> Target:
    """A host target with known efficiencies, overhead and bandwidths (what the fit must recover)."""
    from hwsim.fidelity.host import HostFacts

    facts = HostFacts(cores=2, clock_hz=3e9, caches=[(1, 32 << 10), (2, 512 << 10), (3, 32 << 20)],
                      bandwidth=[100e9, 60e9, 40e9, 10e9], rapl=False)
    t = Target.model_validate(host_target(facts, {("fp32", "fp32"): (60e9, "a"), ("int8", "int8"): (100e9, "b")},
                                          5e-6, "test"))
    d = t.model_dump()
    d["compute"]["elementwise_ops_per_cycle"] = 4.0
    d["compute"]["rates"][0].update(efficiency=0.8, conv_efficiency=0.6, pointwise_efficiency=0.4,
                                    depthwise_efficiency=0.1, depthwise_overhead_s=20e-6)
    d["compute"]["rates"][1].update(efficiency=0.5, conv_efficiency=0.3)
    return Target.model_validate(d)


def _synthetic_records(truth: Target, tmp_path) -> list[Measurement]:
    (tmp_path / "m").mkdir()
    files = {"m/add.onnx": _stream_op("Add", ((1, 64, 56, 56), (1, 64, 56, 56))),
             "m/softmax.onnx": _stream_op("Softmax", ((1, 12, 128, 128),)), "m/chain.onnx": _relu_chain(16)}
    for name, model in files.items():
        (tmp_path / name).write_bytes(model.SerializeToString())
    work = [("gemm", f"gemm:m={m},k={k},n={n},bias=false", f) for m, k, n in ((1, 384, 1536), (128, 384, 1536),
                                                                               (512, 512, 512)) for f in ("fp32", "int8")]
    work += [("conv2d", "conv2d:c=64,h=56,w=56,k=64,r=3", f) for f in ("fp32", "int8")]
    work += [("conv2d", "conv2d:c=32,h=28,w=28,k=96,r=1", "fp32"),
             ("conv2d", "conv2d:c=144,h=56,w=56,k=144,r=3,groups=144", "fp32"),
             ("conv2d", "conv2d:c=256,h=28,w=28,k=256,r=3,groups=256", "fp32"),
             ("conv2d", "conv2d:c=960,h=7,w=7,k=960,r=3,groups=960", "fp32")]
    work += [("op", name, "fp32") for name in files]
    recs = []
    for i, (kind, ref, f) in enumerate(work):
        rec = Measurement.model_validate({
            "id": f"r{i}", "kind": kind, "model": ref,
            "family": "depthwise" if "groups" in ref else "pointwise" if "r=1" in ref else kind,
            "activations": f, "weights": f, "latency_s": 1.0, "scope": "mac_inputs" if f == "int8" else None,
            "conditions": {"runtime": "synthetic", "device": "none"}})
        lat = predict(rec, truth, tmp_path).total.latency_s
        recs.append(rec.model_copy(update={"latency_s": lat}))
    (tmp_path / "micro.jsonl").write_text("".join(json.dumps(r.model_dump(exclude_none=True)) + "\n" for r in recs))
    return recs


def test_fit_recovers_a_known_host(tmp_path):
    """Records priced by a known target; the fit, started from all-1 efficiencies, a 2x wrong
    elementwise rate and the directly measured per-node overhead, recovers the efficiencies of each
    op class and predicts every record within 3%."""
    truth = _truth(tmp_path)
    recs = _synthetic_records(truth, tmp_path)
    d = truth.model_dump()
    for r in d["compute"]["rates"]:
        r.update(efficiency=1.0, conv_efficiency=None, pointwise_efficiency=None, depthwise_efficiency=None,
                 depthwise_overhead_s=None)
    d["compute"]["elementwise_ops_per_cycle"] = 8.0
    fitted = fit_host(Target.model_validate(d), recs, tmp_path / "micro.jsonl")
    got = {(r.activation, r.weight): r for r in fitted.compute.rates}
    assert got[("fp32", "fp32")].efficiency == pytest.approx(0.8, rel=0.05)
    assert got[("int8", "int8")].efficiency == pytest.approx(0.5, rel=0.05)
    assert got[("fp32", "fp32")].conv_efficiency == pytest.approx(0.6, rel=0.05)
    assert got[("fp32", "fp32")].pointwise_efficiency == pytest.approx(0.4, rel=0.05)
    assert got[("fp32", "fp32")].depthwise_efficiency == pytest.approx(0.1, rel=0.05)
    assert got[("fp32", "fp32")].depthwise_overhead_s == pytest.approx(20e-6, rel=0.05)
    assert got[("int8", "int8")].conv_efficiency == pytest.approx(0.3, rel=0.05)
    assert fitted.compute.elementwise_ops_per_cycle == pytest.approx(4.0, rel=0.05)
    assert fitted.layer_overhead_s == pytest.approx(5e-6, rel=1e-6)  # held at its measurement
    errors = [abs(r.latency_error) for r in validate(fitted, [tmp_path / "micro.jsonl"]).rows]
    assert max(errors) < 0.03
    assert fitted.energy_scope is None and "uncalibrated" in fitted.memory[-1].source  # no energy was fitted


def test_calibrate_host_refuses_a_target(tmp_path, capsys):
    assert main(["calibrate", "h100-sxm", "--host", "--out", str(tmp_path / "h.yaml")]) == 2
    assert "--host measures this machine" in capsys.readouterr().err


def test_calibrate_host_refuses_a_bad_models_spec(tmp_path, capsys):
    assert main(["calibrate", "--host", "--no-zoo", "--models", "x.onnx:batch", "--out", str(tmp_path / "h.yaml")]) == 2
    assert "--models" in capsys.readouterr().err


@pytest.mark.host
def test_calibrate_host_end_to_end(tmp_path, capsys):
    """The whole measurement on this machine (minutes): target, records, validation table."""
    out = tmp_path / "host.yaml"
    assert main(["calibrate", "--host", "--runs", "6", "--out", str(out),
                 "--models", "models/digits_cnn.onnx:batch=1"]) == 0
    text = capsys.readouterr().out
    assert "within +-20%" in text and "resnet18-int8" in text and "digits_cnn" in text
    t = load_target(str(out))
    assert t.compute.mapping == "simd" and t.validation.measurements == ("host.jsonl",)
    assert len(load_measurements(tmp_path / "host.jsonl")) == 7
    assert np.isfinite(t.layer_overhead_s)
