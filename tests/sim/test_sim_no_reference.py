"""``run(float_reference=False)`` / ``simulate --no-reference``: the same outputs without the float
reference run (issue 13)."""

import tracemalloc

import numpy as np
import pytest

import hwsim
from hwsim.cli import main
from hwsim.sim import memory, run
from hwsim.sim.boundary import random_inputs
from hwsim.sim.runner import needs_calibration

MODELS = ["conv2d:c=16,h=24,w=24,k=32,batch=2", "resnet18:resolution=32,batch=2",
          "minilm-l6:layers=1,sequence=16,vocab=2000,hidden=64,heads=2,intermediate=128"]


def _graph(model):
    g = hwsim.quantize_graph(hwsim.load_model(model), "int8", "int8")
    return g, random_inputs(g, np.random.default_rng(0))


@pytest.mark.parametrize("model", MODELS)
def test_same_outputs_without_reference(model):
    g, x = _graph(model)
    calib = random_inputs(g, np.random.default_rng(1))
    full = run(g, x, calibration=calib, requant="onnxruntime")
    bare = run(g, x, calibration=calib, requant="onnxruntime", float_reference=False)
    assert bare.reference is None and bare.layers == [] and bare.reference_outputs == {}
    assert full.layers and full.reference is not None
    for n in full.outputs:
        np.testing.assert_array_equal(bare.outputs[n], full.outputs[n])


def test_reference_still_runs_when_scales_must_be_calibrated():
    g, x = _graph(MODELS[0])
    assert needs_calibration(g)
    r = run(g, x, float_reference=False)
    assert r.reference is not None and r.layers == []  # calibration needed it; no metrics asked
    np.testing.assert_array_equal(r.outputs[g.outputs[0]], run(g, x).outputs[g.outputs[0]])


def test_memory_estimate_without_reference_bounds_the_peak():
    g, x = _graph(MODELS[0])
    calib = random_inputs(g, np.random.default_rng(1))
    run(g, x, calibration=calib, float_reference=False)  # compile kernels outside the measurement
    tracemalloc.start()
    try:
        est = run(g, x, calibration=calib, float_reference=False).memory
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert est.reference_bytes == 0 and est.total_bytes < memory.estimate(g).total_bytes
    assert peak <= est.total_bytes < 4 * peak, (peak, est.total_bytes)


def test_cli_no_reference_prints_no_sqnr_table(tmp_path, capsys):
    out = tmp_path / "y.npz"
    args = ["simulate", "gemm:m=2,k=8,n=4", "--weights", "int8", "--activations", "int8", "--out", str(out)]
    assert main(args) == 0
    with_ref = capsys.readouterr().out
    assert main(args + ["--no-reference"]) == 0
    bare = capsys.readouterr().out
    assert "SQNR dB" in with_ref and "SQNR dB" not in bare and "memory: estimated peak" in bare


def test_nonfinite_output_noted_without_reference():
    from hwsim.sim.metrics import nonfinite_notes

    notes = nonfinite_notes([("output 'y'", None, np.array([1.0, np.nan, np.inf]))])
    assert notes == ["output 'y': 2 of 3 values are NaN or inf (no float reference was run)"]
