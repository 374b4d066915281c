"""com.microsoft ops that onnxruntime's quantizers and optimizer write, imported as the standard nodes
that define them, against onnxruntime.

- ``quantize_static(..., quant_format=QOperator)``: QLinearConv, com.microsoft QLinearAdd,
  QLinearGlobalAveragePool and QGemm; bit-exact at ORT_ENABLE_ALL and ORT_DISABLE_ALL.
- DynamicQuantizeMatMul (onnxruntime's fusion of DynamicQuantizeLinear + MatMulInteger + scale):
  bit-exact.
- Ops hwsim has no definition for (QAttention, MatMulNBits, DynamicQuantizeLSTM, FusedMatMul...) are
  refused naming the node.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from hwsim.errors import UnsupportedOpError
from hwsim.graph.onnx import load_onnx
from hwsim.sim import run
from tests.sim import test_sim_qdq_ort as cnn
from tests.sim.ort_cpu import ort_u8s8_pairs_saturate

PAIRS = ort_u8s8_pairs_saturate()
LEVELS = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)


@pytest.mark.parametrize("per_channel", [False, True])
def test_qoperator_cnn_bit_exact(tmp_path, per_channel):
    cnn._float_cnn(tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), cnn._Reader(), quant_format=QuantFormat.QOperator,
                    per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    kinds = {(n.domain, n.op_type) for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert {("com.microsoft", "QGemm"), ("com.microsoft", "QLinearAdd"),
            ("com.microsoft", "QLinearGlobalAveragePool")} <= kinds
    g = load_onnx(tmp_path / "q.onnx", {})
    for x in cnn._inputs(2):
        got = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        for level in LEVELS:
            np.testing.assert_array_equal(got, cnn._ort(tmp_path / "q.onnx", x, level))


def _ms_model(path, node, inputs, inits, out_shape):
    graph = helper.make_graph([node], "ms", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    onnx.save(model, path)


@pytest.mark.parametrize("wdt,bias", [(np.int8, True), (np.uint8, False), (np.int8, False)])
def test_dynamic_quantize_matmul_bit_exact(tmp_path, wdt, bias):
    rng = np.random.default_rng(7)
    info = np.iinfo(wdt)
    b = rng.integers(info.min, info.max + 1, (48, 24)).astype(wdt)
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(rng.uniform(0.001, 0.01, 24).astype(np.float32), "bs"),
             numpy_helper.from_array(rng.integers(info.min // 4 + info.max // 4, info.max // 2, 24).astype(wdt), "bz")]
    ins = ["x", "b", "bs", "bz"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(24).astype(np.float32), "bias"))
        ins.append("bias")
    node = helper.make_node("DynamicQuantizeMatMul", ins, ["y"], domain="com.microsoft")
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (3, 5, 48))], inits,
              (3, 5, 24))
    g = load_onnx(tmp_path / "m.onnx", {})
    for seed in range(3):
        x = (np.random.default_rng(seed).standard_normal((3, 5, 48)) * 2 + 0.3).astype(np.float32)
        got = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        so = ort.SessionOptions()
        so.log_severity_level = 3
        want = ort.InferenceSession(str(tmp_path / "m.onnx"), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, want)


def test_ops_without_definition_are_refused_naming_the_node(tmp_path):
    node = helper.make_node("MatMulNBits", ["x", "b", "s"], ["y"], domain="com.microsoft", name="nbits", K=32, N=8,
                            bits=4, block_size=32)
    inits = [numpy_helper.from_array(np.zeros((8, 1, 16), np.uint8), "b"), numpy_helper.from_array(np.ones(8, np.float32), "s")]
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 32))], inits, (2, 8))
    with pytest.raises(UnsupportedOpError, match="com.microsoft.MatMulNBits \\(node 'nbits'\\)"):
        load_onnx(tmp_path / "m.onnx", {})
