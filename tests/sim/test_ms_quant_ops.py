"""com.microsoft ops that onnxruntime's quantizers and optimizer write, imported as the standard nodes
that define them, against onnxruntime.

- ``quantize_static(..., quant_format=QOperator)``: QLinearConv, com.microsoft QLinearAdd,
  QLinearGlobalAveragePool and QGemm; bit-exact at ORT_ENABLE_ALL and ORT_DISABLE_ALL.
- DynamicQuantizeMatMul (onnxruntime's fusion of DynamicQuantizeLinear + MatMulInteger + scale):
  bit-exact.
- MatMulNBits (``MatMulNBitsQuantizer``, committed models made by tests/data/make_ms_quant_models.py, and
  hand-packed 2/4/8-bit nodes): within 2e-6 of the output range (float32 summation order).
- Ops hwsim has no definition for (FusedMatMul...) are refused naming the node.
"""

import importlib.util
from pathlib import Path

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
    node = helper.make_node("FusedMatMul", ["x", "b"], ["y"], domain="com.microsoft", name="fused", alpha=2.0)
    inits = [numpy_helper.from_array(np.ones((32, 8), np.float32), "b")]
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 32))], inits, (2, 8))
    with pytest.raises(UnsupportedOpError, match="com.microsoft.FusedMatMul \\(node 'fused'\\)"):
        load_onnx(tmp_path / "m.onnx", {})


# ------------------------------------------------------------------ MatMulNBits
DATA = Path(__file__).parents[1] / "data"


def _data_script():
    spec = importlib.util.spec_from_file_location("make_ms_quant_models", DATA / "make_ms_quant_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["mlp_nbits4", "mlp_nbits4_sym", "lstm_qdynamic", "lstm_qdynamic_pc"])
def test_committed_model_is_what_the_script_builds(name):
    assert (DATA / f"{name}.onnx").read_bytes() == _data_script().MODELS[name]().SerializeToString()


def _ort_run(path, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("name,shape", [("mlp_nbits4", (2, 5, 80)), ("mlp_nbits4_sym", (3, 80))])
def test_matmul_nbits_quantizer_models_match_onnxruntime(name, shape):
    """MatMulNBitsQuantizer output (asymmetric: packed zero points; symmetric: negative scales, no
    zero points) imports as linear layers with uint4 per-block weights; MACs = rows x K x N."""
    g = load_onnx(DATA / f"{name}.onnx", {"x": shape})
    ws = [t for t in g.tensors.values() if t.role == "weight"]
    assert [(t.quant.format, t.quant.granularity, t.quant.group_size, t.shape) for t in ws] == [
        ("uint4", "group", 32, (48, 80)), ("uint4", "group", 32, (24, 48))]
    assert g.total_macs == int(np.prod(shape[:-1])) * (80 * 48 + 48 * 24)
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * (seed + 1)
        want = _ort_run(DATA / f"{name}.onnx", {"x": x})[0]
        got = run(g, {"x": x}).outputs["y"]
        assert np.max(np.abs(got - want)) <= 2e-6 * np.ptp(want)


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Rows of codes packed lowest bits first (written out independently of hwsim's unpacker)."""
    per = 8 // bits
    rows, n = codes.shape
    padded = np.zeros((rows, -(-n // per) * per), np.int64)
    padded[:, :n] = codes
    out = np.zeros((rows, padded.shape[1] // per), np.int64)
    for j in range(per):
        out |= padded[:, j::per] << (j * bits)
    return out.astype(np.uint8)


@pytest.mark.parametrize("bits,zp,bias", [(4, True, True), (4, False, False), (8, True, False), (2, True, True)])
def test_matmul_nbits_hand_packed_matches_onnxruntime(tmp_path, bits, zp, bias):
    rng = np.random.default_rng(bits)
    k, n, block = 72, 20, 16
    blocks = -(-k // block)
    codes = rng.integers(0, 1 << bits, (n, blocks * block))
    b = _pack(codes, bits).reshape(n, blocks, -1)
    scales = (rng.uniform(0.01, 0.1, (n, blocks)) * rng.choice([-1, 1], (n, blocks))).astype(np.float32)
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(scales.ravel(), "s")]
    ins = ["x", "b", "s"]
    if zp:
        inits.append(numpy_helper.from_array(_pack(rng.integers(0, 1 << bits, (n, blocks)), bits).ravel(), "z"))
        ins.append("z")
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "bias"))
        ins += [""] * (5 - len(ins)) + ["bias"]
    node = helper.make_node("MatMulNBits", ins, ["y"], domain="com.microsoft", K=k, N=n, bits=bits, block_size=block)
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (4, k))], inits, (4, n))
    x = rng.standard_normal((4, k)).astype(np.float32)
    want = _ort_run(tmp_path / "m.onnx", {"x": x})[0]
    got = run(load_onnx(tmp_path / "m.onnx", {}), {"x": x}).outputs["y"]
    assert np.max(np.abs(got - want)) <= 2e-6 * np.ptp(want)


def test_matmul_nbits_act_order_is_refused(tmp_path):
    k, n = 32, 8
    inits = [numpy_helper.from_array(np.zeros((n, 2, 8), np.uint8), "b"), numpy_helper.from_array(np.ones(2 * n, np.float32), "s"),
             numpy_helper.from_array(np.arange(k, dtype=np.int32)[::-1] // 16, "g")]
    node = helper.make_node("MatMulNBits", ["x", "b", "s", "", "g"], ["y"], domain="com.microsoft", name="nb", K=k, N=n,
                            bits=4, block_size=16)
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, k))], inits, (2, n))
    with pytest.raises(UnsupportedOpError, match="MatMulNBits \\(node 'nb'\\): g_idx"):
        load_onnx(tmp_path / "m.onnx", {})
