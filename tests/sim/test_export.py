"""``hwsim export``: the ONNX QDQ model it writes runs in onnxruntime, and ``hwsim simulate`` of that
file is bit-exact with onnxruntime on it (``requant="onnxruntime"`` against ORT_ENABLE_ALL,
``"exact"`` against ORT_DISABLE_ALL), on integer paths (conv, linear with int32 / float bias,
uint8 activations). Float ops between quantized tensors (layer norm, softmax, GELU) run in
onnxruntime's own float32 order: see the README for the mismatches measured on zoo models.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwsim.cli import main
from hwsim.errors import UnsupportedOpError
from hwsim.graph.annotate import quantize_graph
from hwsim.graph.onnx import load_onnx
from hwsim.graph.zoo import load_model
from hwsim.sim import run
from hwsim.sim.boundary import random_inputs
from hwsim.sim.export import export_onnx
from tests.sim.ort_cpu import ort_u8s8_pairs_saturate

PAIRS = ort_u8s8_pairs_saturate()
CASES = [("conv2d", {"batch": 2, "c": 16, "k": 16, "h": 12, "w": 12, "bias": True}, "int8", "uint8"),
         ("conv2d", {"batch": 1, "c": 8, "k": 12, "h": 9, "w": 9, "stride": 2}, "int4", "uint8"),
         ("gemm", {"m": 6, "k": 96, "n": 40, "bias": True}, "int8", "uint8"),
         ("gemm", {"m": 6, "k": 96, "n": 40}, "uint8", "uint8")]


def _ort(path, feeds, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)


def _export(tmp_path, name, params, w, a, seed=0):
    # scope all: the layer outputs are quantized too, so onnxruntime fuses every layer (QLinearConv,
    # QGemm); with mac_inputs an output stays float and onnxruntime runs a float32 conv instead
    g = quantize_graph(load_model(name, params), w, a, scope="all")
    inputs = random_inputs(g, np.random.default_rng(seed))
    model, notes = export_onnx(g, inputs, seed=seed)
    onnx.save(model, tmp_path / "m.onnx")
    return g, inputs, tmp_path / "m.onnx"


@pytest.mark.parametrize("name,params,w,a", CASES)
def test_simulate_of_export_bit_exact_with_onnxruntime(tmp_path, name, params, w, a):
    g, inputs, path = _export(tmp_path, name, params, w, a)
    g2 = load_onnx(path, {})
    for seed in range(2):
        feeds = random_inputs(g, np.random.default_rng(seed + 10))
        enable = _ort(path, feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        disable = _ort(path, feeds, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        got = run(g2, feeds, requant="onnxruntime", pairwise_int16=PAIRS).outputs
        np.testing.assert_array_equal(list(got.values())[0], enable[0])
        np.testing.assert_array_equal(list(run(g2, feeds, requant="exact").outputs.values())[0], disable[0])


@pytest.mark.parametrize("name,params,w,a", CASES)
def test_export_holds_the_simulated_model(tmp_path, name, params, w, a):
    """The exported file computes what hwsim simulates for the model it came from (float32 output)."""
    g, inputs, path = _export(tmp_path, name, params, w, a)
    want = run(g, inputs, requant="exact").output_values
    got = _ort(path, inputs, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)[0]
    ref = list(want.values())[0]
    assert np.abs(got - ref).max() <= 1e-6 * np.abs(ref).max()


def test_formats_onnx_cannot_carry_are_refused_or_dequantized(tmp_path):
    g = quantize_graph(load_model("gemm", {"m": 2, "k": 16, "n": 8}), "ternary", None)
    inputs = random_inputs(g, np.random.default_rng(0))
    with pytest.raises(UnsupportedOpError, match="gemm.weight.*ternary"):
        export_onnx(g, inputs)
    model, notes = export_onnx(g, inputs, dequantize_unsupported=True)
    assert any("ternary" in n and "float32" in n for n in notes)
    onnx.save(model, tmp_path / "m.onnx")
    got = _ort(tmp_path / "m.onnx", inputs, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)[0]
    want = run(g, inputs).output_values["gemm.out"]
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_cli_export_then_simulate(tmp_path, capsys):
    out = tmp_path / "c.onnx"
    assert main(["export", "conv2d", "--shape", "batch=1,c=8,k=8,h=10,w=10", "--weights", "int8",
                 "--activations", "uint8", "--scope", "all", "--out", str(out)]) == 0
    assert f"--out: wrote {out}" in capsys.readouterr().err
    g = load_onnx(out, {})
    feeds = random_inputs(g, np.random.default_rng(3))
    np.savez(tmp_path / "in.npz", **feeds)
    args = ["simulate", str(out), "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz"),
            "--requant", "onnxruntime"] + (["--pairwise-int16"] if PAIRS else [])
    assert main(args) == 0
    want = _ort(out, feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)[0]
    np.testing.assert_array_equal(next(iter(np.load(tmp_path / "o.npz").values())), want)


def test_cli_export_refusal_exits_2(tmp_path, capsys):
    rc = main(["export", "gemm", "--shape", "m=2,k=16,n=8", "--weights", "ternary", "--out", str(tmp_path / "t.onnx")])
    assert rc == 2 and "ternary" in capsys.readouterr().err


def test_export_of_imported_quantize_static_model_reproduces_it(tmp_path):
    """tests/data/tiny_bert_qstatic.onnx (onnxruntime's quantize_static) imported and exported again:
    onnxruntime gives the same logits on both files, and so does hwsim on the original."""
    from pathlib import Path

    src = Path(__file__).parent.parent / "data" / "tiny_bert_qstatic.onnx"
    g = load_onnx(src, {"batch": 2, "sequence": 8})
    feeds = {"input_ids": np.random.default_rng(0).integers(0, 64, (2, 8)).astype(np.int64)}
    model, _ = export_onnx(g, feeds)
    onnx.save(model, tmp_path / "re.onnx")
    for seed in range(2):
        f = {"input_ids": np.random.default_rng(seed + 5).integers(0, 64, (2, 8)).astype(np.int64)}
        level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        want = _ort(src, f, level)[0]
        np.testing.assert_array_equal(_ort(tmp_path / "re.onnx", f, level)[0], want)
        np.testing.assert_array_equal(run(g, f, requant="exact").outputs["logits"], want)



def test_linear_bias_of_imported_model_survives_onnxruntime_fusion(tmp_path):
    """models/digits_cnn.onnx (real trained biases, MatMul + Add) exported with the default scope:
    under ORT_ENABLE_ALL onnxruntime fuses MatMul + Add (+ Relu) into QGemm, which reads the int32
    bias at scale s_x * s_w. The bias was written at its own calibrated scale (amax / 2^31), so
    onnxruntime's logits were off by ~1e6 while hwsim simulate of the file, onnx.reference and
    ORT_DISABLE_ALL were fine. uint8 weights: no AVX2 pair saturation in the comparison."""
    from pathlib import Path

    models = Path(__file__).parent.parent.parent / "models"
    g = quantize_graph(load_onnx(models / "digits_cnn.onnx", {"batch": 8}), "uint8", "uint8")
    feeds = {"image": np.load(models / "digits_test.npz")["image"][:8]}
    model, _ = export_onnx(g, feeds)
    onnx.save(model, tmp_path / "m.onnx")
    want = run(g, feeds, requant="exact").outputs["logits"]
    got = _ort(tmp_path / "m.onnx", feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)[0]
    assert np.abs(got - want).max() <= 1e-5 * np.ptp(want)
