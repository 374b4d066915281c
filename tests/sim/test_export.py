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
    assert any(n.startswith("written for fixed input shapes (") for n in notes)  # a dynamic batch is not kept
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


def _generic_model(path):
    """conv -> Resize (nearest x2) -> Pad -> conv -> Where(x > 0, x, 0.1 x) -> GlobalAveragePool:
    Resize, Pad, Greater and Where come in as generic ONNX nodes."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
             for n, s in (("w1", (8, 3, 3, 3)), ("b1", (8,)), ("w2", (8, 8, 3, 3)))]
    inits += [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
              numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
              numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(0.1, np.float32), "slope")]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4), n("Resize", ["c1", "", "scales"], ["r"], mode="nearest"),
             n("Pad", ["r", "pads"], ["p"]), n("Conv", ["p", "w2"], ["c2"]), n("Greater", ["c2", "zero"], ["pos"]),
             n("Mul", ["c2", "slope"], ["neg"]), n("Where", ["pos", "c2", "neg"], ["lr"]),
             n("GlobalAveragePool", ["lr"], ["y"])]
    graph = helper.make_graph(nodes, "generic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 6, 6))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 8, 1, 1))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)


def test_generic_onnx_nodes_are_exported(tmp_path):
    """Generic nodes are written back as imported; the file runs in onnxruntime, computes what hwsim
    simulated, and hwsim simulate of it is bit-exact with onnxruntime."""
    from hwsim.graph.ops_onnx import OnnxNode

    _generic_model(tmp_path / "f.onnx")
    g = quantize_graph(load_onnx(tmp_path / "f.onnx", {}), "int8", "uint8", scope="all")
    assert {o.op_type for o in g.ops() if isinstance(o, OnnxNode)} >= {"Resize", "Pad", "Greater", "Where"}
    inputs = random_inputs(g, np.random.default_rng(0))
    model, _ = export_onnx(g, inputs)
    onnx.save(model, tmp_path / "m.onnx")
    assert {"Resize", "Pad", "Where"} <= {n.op_type for n in model.graph.node}
    want = run(g, inputs, requant="exact").output_values["y"]
    assert np.abs(_ort(tmp_path / "m.onnx", inputs, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)[0] - want).max() \
        <= 1e-6 * np.abs(want).max()
    g2 = load_onnx(tmp_path / "m.onnx", {})
    for seed in range(3):
        feeds = random_inputs(g, np.random.default_rng(seed + 10))
        np.testing.assert_array_equal(run(g2, feeds, requant="exact").outputs["y"],
                                      _ort(tmp_path / "m.onnx", feeds, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)[0])
        np.testing.assert_array_equal(run(g2, feeds, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"],
                                      _ort(tmp_path / "m.onnx", feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)[0])


def test_generic_node_of_an_older_opset_whose_op_changed_is_refused(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    n = helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 0, 1])  # opset 2 form: pads as an attribute
    graph = helper.make_graph([n], "old", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 3))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 5))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    model.ir_version = 7
    onnx.save(model, tmp_path / "old.onnx")
    g = load_onnx(tmp_path / "old.onnx", {})
    with pytest.raises(UnsupportedOpError, match="Pad.*opset 10.*changed"):
        export_onnx(g, random_inputs(g, np.random.default_rng(0)))


def test_conv_transpose_and_conv3d_are_exported(tmp_path):
    """ConvTranspose (2-D) and a 3-D Conv are written as ONNX nodes; onnxruntime runs them (in
    float32, unfused) to within float32 rounding of what hwsim simulates."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
             for n, s in (("w1", (4, 6, 3, 3)), ("b1", (6,)), ("w3", (5, 1, 2, 3, 3)), ("b3", (5,)))]
    inits.append(numpy_helper.from_array(np.array([1, 1, 6, 10, 10], np.int64), "shape5"))
    n = helper.make_node
    nodes = [n("ConvTranspose", ["x", "w1", "b1"], ["t"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
             n("Reshape", ["t", "shape5"], ["t5"]), n("Conv", ["t5", "w3", "b3"], ["y"], pads=[0, 1, 1, 0, 1, 1])]
    graph = helper.make_graph(nodes, "ct", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 4, 5, 5))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 5, 5, 10, 10))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "f.onnx")
    g = quantize_graph(load_onnx(tmp_path / "f.onnx", {}), "int8", "uint8", scope="all")
    assert {o.op for o in g.ops()} >= {"conv_transpose", "conv3d"}
    inputs = random_inputs(g, np.random.default_rng(0))
    exported, _ = export_onnx(g, inputs)
    onnx.save(exported, tmp_path / "m.onnx")
    assert {"ConvTranspose", "Conv"} <= {x.op_type for x in exported.graph.node}
    res = run(g, inputs, requant="exact")
    want, step = res.output_values["y"], float(res.graph.tensors["y"].quant.scale[0])
    got = _ort(tmp_path / "m.onnx", inputs, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)[0]
    assert np.abs(got - want).max() <= step * 1.001  # at most one output step (float32 order at ties)


def test_export_keeps_the_output_names_of_quantized_outputs(tmp_path):
    """A graph output stored quantized (scope all) is read after its QDQ pair under its own name
    (it was renamed NAME.out, so a caller asking onnxruntime for the model's outputs by name failed)."""
    g, inputs, path = _export(tmp_path, "resnet18", {"resolution": 32, "num_classes": 10}, "int8", "int8")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == list(g.outputs)
    got = sess.run(list(g.outputs), inputs)[0]
    assert np.array_equal(got, _ort(path, inputs, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)[0])
