"""ONNX import of quantized models: QDQ from onnxruntime, QLinear / Integer ops, weight-only
patterns, standalone Q/DQ and ONNX's own node conformance models (the IR contract in
hwsim/graph/onnx.py)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh
from onnx_test_models import cnn, cnn_macs, single

from hwsim.graph.onnx import load_onnx
from hwsim.graph.onnx_values import array_dtype
from hwsim.graph.quant import QuantSpec


def _save(model, tmp_path, name="m.onnx") -> str:
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def _inits(path) -> dict[str, np.ndarray]:
    return {t.name: nh.to_array(t) for t in onnx.load(path).graph.initializer}


@pytest.fixture(scope="module")
def qdq_cnn(tmp_path_factory):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.it = iter([{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(3)])

        def get_next(self):
            return next(self.it, None)

    d = tmp_path_factory.mktemp("qdq")
    onnx.save(cnn(batch=1), str(d / "f.onnx"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(d / "f.onnx"), str(d / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return str(d / "q.onnx")


def test_qdq_cnn_weights_activations_outputs(qdq_cnn):
    g = load_onnx(qdq_cnn, {})
    inits = _inits(qdq_cnn)
    model = onnx.load(qdq_cnn)
    assert not {"quantize", "dequantize"} & {o.op for o in g.ops()}  # every Q/DQ pair folded
    assert g.inputs == ["x"] and g.outputs == ["y"] and g.tensors["x"].dtype == "float32"
    assert g.total_macs == cnn_macs(1)
    for layer in g.layers():
        w = g.weight(layer)
        assert w.quant.format == "int8" and w.quant.granularity == "channel" and w.quant.axis == 0
        assert w.data.dtype == np.int8
        np.testing.assert_array_equal(w.data, inits[w.name])  # codes as in the file (Gemm transB=1)
        np.testing.assert_allclose(w.quant.scale, inits[w.name.replace("_quantized", "_scale")], rtol=1e-7)
        assert len(w.quant.scale) == w.shape[0]
        x = g.tensors[layer.inputs[0]]
        assert x.quant.format == "uint8" and x.quant.scale[0] > 0 and len(x.quant.zero_point) == 1
        if len(layer.inputs) == 3:
            b = g.tensors[layer.inputs[2]]
            assert b.role == "bias" and b.quant.format == "int32" and b.data.dtype == np.int32
            np.testing.assert_allclose(b.quant.scale, np.float32(x.quant.scale[0]) * np.float32(w.quant.scale),
                                       rtol=1e-6)
    q_scales = {n.input[0]: inits[n.input[1]] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    np.testing.assert_allclose(g.tensors["x"].quant.scale, [q_scales["x"]])
    out = g.tensors["y"]
    assert out.quant.format == "uint8" and out.quant.scale[0] == pytest.approx(float(inits["y_scale"]))


def test_qoperator_format_quantize_qlinearconv_dequantize(tmp_path):
    """onnxruntime QOperator output: QuantizeLinear -> QLinearConv -> QLinearConv -> DequantizeLinear."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    rng = np.random.default_rng(4)
    nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c1"], ["r1"], name="relu"), h.make_node("Conv", ["r1", "w2"], ["y"], name="conv2")]
    inits = [nh.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w1"),
             nh.from_array((rng.standard_normal(4) * 0.1).astype(np.float32), "b1"),
             nh.from_array((rng.standard_normal((5, 4, 3, 3)) * 0.3).astype(np.float32), "w2")]
    m = h.make_model(h.make_graph(nodes, "c", [h.make_tensor_value_info("x", TP.FLOAT, [1, 3, 8, 8])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, [1, 5, 6, 6])], inits),
                     opset_imports=[h.make_opsetid("", 17)])

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self.it, None)

    src, dst = _save(m, tmp_path, "f.onnx"), str(tmp_path / "q.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QOperator, per_channel=True)
    g = load_onnx(dst, {})
    assert [o.op for o in g.ops()] == ["quantize", "conv2d", "conv2d", "dequantize"]
    q, c1, c2, dq = g.ops()
    codes = g.tensors[q.outputs[0]]
    assert q.inputs == ("x",) and codes.dtype in ("uint8", "int8") and codes.quant.format == codes.dtype
    assert g.tensors[c1.inputs[0]].quant == g.tensors[q.outputs[0]].quant  # the conv reads the codes
    assert g.tensors[c1.outputs[0]].quant.format == codes.dtype and g.tensors[c2.outputs[0]].quant.scale[0] > 0
    assert g.weight(c2).quant.granularity == "channel" and g.tensors[c1.inputs[2]].quant.format == "int32"
    assert dq.outputs == ("y",) and g.outputs == ["y"]


def _qlinear_conv_model(per_channel: bool):
    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, (4, 3, 3, 3), dtype=np.int8)
    w_s = (rng.random(4) * 0.01 + 0.001).astype(np.float32) if per_channel else np.float32(0.004)
    w_zp = np.zeros(4, np.int8) if per_channel else np.int8(0)
    inits = [nh.from_array(np.float32(0.02), "x_s"), nh.from_array(np.uint8(128), "x_zp"), nh.from_array(w, "w"),
             nh.from_array(w_s, "w_s"), nh.from_array(w_zp, "w_zp"), nh.from_array(np.float32(0.05), "y_s"),
             nh.from_array(np.uint8(100), "y_zp"), nh.from_array(rng.integers(-500, 500, 4, dtype=np.int32), "b")]
    return single("QLinearConv", [("x", TP.UINT8, [1, 3, 8, 8])], [("y", TP.UINT8, [1, 4, 8, 8])], inits,
                  node_inputs=["x", "x_s", "x_zp", "w", "w_s", "w_zp", "y_s", "y_zp", "b"], pads=[1, 1, 1, 1])


@pytest.mark.parametrize("per_channel", [True, False])
def test_qlinear_conv_contract(tmp_path, per_channel):
    path = _save(_qlinear_conv_model(per_channel), tmp_path)
    g = load_onnx(path, {})
    (conv,) = g.ops()
    inits = _inits(path)
    assert conv.op == "conv2d" and conv.padding == (1, 1, 1, 1)
    x, w, b = (g.tensors[t] for t in conv.inputs)
    assert x.quant == QuantSpec(format="uint8", scale=(float(np.float32(0.02)),), zero_point=(128,))
    assert x.dtype == "uint8" and w.dtype == "int8"
    np.testing.assert_array_equal(w.data, inits["w"])
    assert w.quant.granularity == ("channel" if per_channel else "tensor")
    np.testing.assert_allclose(w.quant.scale, np.atleast_1d(inits["w_s"]))
    assert b.role == "bias" and b.quant.format == "int32" and set(b.quant.zero_point) == {0}
    np.testing.assert_allclose(b.quant.scale, np.atleast_1d(np.float32(0.02) * inits["w_s"]), rtol=1e-7)
    np.testing.assert_array_equal(b.data, inits["b"])
    y = g.tensors["y"]
    assert y.dtype == "uint8" and y.quant == QuantSpec(format="uint8", scale=(float(np.float32(0.05)),),
                                                        zero_point=(100,))


def test_qlinear_matmul_constant_b_is_transposed_linear(tmp_path):
    rng = np.random.default_rng(6)
    b = rng.integers(-127, 128, (6, 5), dtype=np.int8)  # (K, N)
    b_s = (rng.random(5) * 0.01 + 0.001).astype(np.float32)
    inits = [nh.from_array(np.float32(0.1), "a_s"), nh.from_array(np.int8(-3), "a_zp"), nh.from_array(b, "b"),
             nh.from_array(b_s, "b_s"), nh.from_array(np.zeros(5, np.int8), "b_zp"),
             nh.from_array(np.float32(0.2), "y_s"), nh.from_array(np.int8(4), "y_zp")]
    m = single("QLinearMatMul", [("a", TP.INT8, [2, 3, 6])], [("y", TP.INT8, [2, 3, 5])], inits,
               node_inputs=["a", "a_s", "a_zp", "b", "b_s", "b_zp", "y_s", "y_zp"])
    g = load_onnx(_save(m, tmp_path), {})
    (lin,) = g.ops()
    w = g.tensors[lin.inputs[1]]
    assert lin.op == "linear" and w.shape == (5, 6)
    np.testing.assert_array_equal(w.data, b.T)
    assert w.quant.granularity == "channel" and w.quant.axis == 0
    np.testing.assert_allclose(w.quant.scale, b_s)
    assert g.tensors["a"].quant.zero_point == (-3,) and g.tensors["y"].quant.format == "int8"
    assert g.total_macs == 2 * 3 * 5 * 6


def test_matmul_integer_and_conv_integer(tmp_path):
    b = np.arange(12, dtype=np.uint8).reshape(4, 3)
    m = single("MatMulInteger", [("A", TP.UINT8, [2, 4])], [("Y", TP.INT32, [2, 3])],
               [nh.from_array(b, "B"), nh.from_array(np.uint8(7), "a_zp"), nh.from_array(np.array([1, 2, 3], np.uint8), "b_zp")],
               node_inputs=["A", "B", "a_zp", "b_zp"])
    g = load_onnx(_save(m, tmp_path), {})
    (lin,) = g.ops()
    w = g.tensors[lin.inputs[1]]
    assert lin.op == "linear" and g.tensors["A"].quant == QuantSpec(format="uint8", scale=(1.0,), zero_point=(7,))
    np.testing.assert_array_equal(w.data, b.T)
    assert w.quant.zero_point == (1, 2, 3) and w.quant.scale == (1.0, 1.0, 1.0) and w.quant.axis == 0
    assert g.tensors["Y"].quant == QuantSpec(format="int32", scale=(1.0,), zero_point=(0,))
    assert g.tensors["Y"].dtype == "int32"
    wc = np.ones((2, 1, 3, 3), np.uint8)
    m = single("ConvInteger", [("x", TP.UINT8, [1, 1, 5, 5])], [("y", TP.INT32, [1, 2, 3, 3])],
               [nh.from_array(wc, "w"), nh.from_array(np.uint8(1), "x_zp")], node_inputs=["x", "w", "x_zp"], opset=10)
    g = load_onnx(_save(m, tmp_path, "c.onnx"), {})
    (conv,) = g.ops()
    assert conv.op == "conv2d" and g.tensors["x"].quant.zero_point == (1,)
    assert g.tensors[conv.inputs[1]].quant == QuantSpec(format="uint8", scale=(1.0,), zero_point=(0,))
    assert g.tensors["y"].quant.format == "int32" and g.macs(conv) == 2 * 9 * 9


def _weight_only(zero_point: bool, group: int = 0):
    """int8 codes -> Cast -> [Sub zp] -> Mul scale [-> Reshape groups] -> MatMul; K=8, N=4."""
    rng = np.random.default_rng(7)
    k, n = 8, 4
    nodes = [h.make_node("Cast", ["wq"], ["wf"], name="cast", to=TP.FLOAT)]
    src = "wf"
    if group:
        codes = rng.integers(-8, 8, (k // group, group, n), dtype=np.int8)  # (groups, group, N)
        scale = (rng.random((k // group, 1, n)) + 0.5).astype(np.float32)
        zp = rng.integers(-2, 3, (k // group, 1, n)).astype(np.float32)
    else:
        codes = rng.integers(-127, 128, (k, n), dtype=np.int8)
        scale = (rng.random((1, n)) + 0.5).astype(np.float32)  # per output column
        zp = rng.integers(-3, 4, (1, n)).astype(np.int8)
    inits = [nh.from_array(codes, "wq"), nh.from_array(scale, "scale")]
    if zero_point:
        inits.append(nh.from_array(zp, "zp"))
        if zp.dtype == np.int8:
            nodes.append(h.make_node("Cast", ["zp"], ["zpf"], name="cast_zp", to=TP.FLOAT))
        nodes.append(h.make_node("Sub", ["wf", "zpf" if zp.dtype == np.int8 else "zp"], ["ws"], name="sub"))
        src = "ws"
    nodes.append(h.make_node("Mul", [src, "scale"], ["w"], name="mul"))
    if group:
        inits.append(nh.from_array(np.array([k, n], np.int64), "kn"))
        nodes.append(h.make_node("Reshape", ["w", "kn"], ["w2"], name="merge_groups"))
    nodes.append(h.make_node("MatMul", ["x", "w2" if group else "w"], ["y"], name="mm"))
    m = h.make_model(h.make_graph(nodes, "wo", [h.make_tensor_value_info("x", TP.FLOAT, [3, k])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, [3, n])], inits),
                     opset_imports=[h.make_opsetid("", 17)])
    return m, codes, scale, zp


@pytest.mark.parametrize("zero_point", [False, True])
def test_weight_only_cast_mul_per_channel(tmp_path, zero_point):
    m, codes, scale, zp = _weight_only(zero_point)
    g = load_onnx(_save(m, tmp_path), {})
    (lin,) = g.ops()
    w = g.tensors[lin.inputs[1]]
    assert lin.op == "linear" and w.name == "wq" and w.data.dtype == np.int8
    np.testing.assert_array_equal(w.data, codes.T)
    assert w.quant.format == "int8" and w.quant.granularity == "channel" and w.quant.axis == 0
    np.testing.assert_allclose(w.quant.scale, scale.ravel())
    assert w.quant.zero_point == tuple(int(v) for v in (zp.ravel() if zero_point else np.zeros(4)))
    assert g.tensors["x"].quant.is_float32 and g.tensors["y"].quant.is_float32


def test_weight_only_per_group_reshape(tmp_path):
    m, codes, scale, zp = _weight_only(True, group=4)
    g = load_onnx(_save(m, tmp_path), {})
    w = g.tensors[g.op("mm").inputs[1]]
    np.testing.assert_array_equal(w.data, codes.reshape(8, 4).T)  # (N, K)
    assert (w.quant.granularity, w.quant.axis, w.quant.group_size) == ("group", 1, 4)
    np.testing.assert_allclose(w.quant.scale, scale.reshape(2, 4).T.ravel())  # (N, K/group) in C order
    assert w.quant.zero_point == tuple(int(v) for v in zp.reshape(2, 4).T.ravel())


def test_int4_blocked_dequantize_weight_only(tmp_path):
    rng = np.random.default_rng(8)
    k, n, block = 8, 3, 4
    codes = rng.integers(-8, 8, (k, n))
    scale = (rng.random((k // block, n)) + 0.1).astype(np.float32)
    wq = h.make_tensor("wq", TP.INT4, [k, n], codes.ravel().tolist())
    nodes = [h.make_node("DequantizeLinear", ["wq", "s"], ["w"], name="dq", axis=0, block_size=block),
             h.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = h.make_model(h.make_graph(nodes, "int4", [h.make_tensor_value_info("x", TP.FLOAT, [2, k])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, [2, n])], [wq, nh.from_array(scale, "s")]),
                     opset_imports=[h.make_opsetid("", 21)])
    g = load_onnx(_save(m, tmp_path), {})
    w = g.tensors[g.op("mm").inputs[1]]
    assert w.dtype == "int4" and w.quant.format == "int4" and w.data.dtype == np.int8
    np.testing.assert_array_equal(w.data, codes.T)
    assert (w.quant.granularity, w.quant.axis, w.quant.group_size) == ("group", 1, block)
    np.testing.assert_allclose(w.quant.scale, scale.T.ravel())


def test_standalone_quantize_and_dequantize_with_initializer_scales(tmp_path):
    s = nh.from_array(np.array([0.5, 0.25], np.float32), "s")
    zp = nh.from_array(np.array([3, -3], np.int8), "zp")
    m = single("QuantizeLinear", [("x", TP.FLOAT, [4, 2])], [("y", TP.INT8, [4, 2])], [s, zp],
               node_inputs=["x", "s", "zp"], axis=1)
    g = load_onnx(_save(m, tmp_path), {})
    (q,) = g.ops()
    assert q.op == "quantize" and q.inputs == ("x",) and g.tensors["y"].dtype == "int8"
    assert g.tensors["y"].quant == QuantSpec(format="int8", scale=(0.5, 0.25), zero_point=(3, -3),
                                             granularity="channel", axis=1)
    m = single("DequantizeLinear", [("x", TP.INT8, [4, 2])], [("y", TP.FLOAT, [4, 2])], [s, zp],
               node_inputs=["x", "s", "zp"], axis=1)
    g = load_onnx(_save(m, tmp_path, "dq.onnx"), {})
    (dq,) = g.ops()
    assert dq.op == "dequantize" and g.tensors["x"].quant.scale == (0.5, 0.25)


def test_uint4_per_channel_dequantize_on_gemm_weight(tmp_path):
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 16, (3, 5))  # (N, K) with transB=1
    zp = h.make_tensor("zp", TP.UINT4, [3], [8, 7, 9])
    nodes = [h.make_node("DequantizeLinear", ["wq", "s", "zp"], ["w"], name="dq", axis=0),
             h.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    inits = [h.make_tensor("wq", TP.UINT4, [3, 5], codes.ravel().tolist()), zp,
             nh.from_array(np.array([0.1, 0.2, 0.3], np.float32), "s")]
    m = h.make_model(h.make_graph(nodes, "u4", [h.make_tensor_value_info("x", TP.FLOAT, [2, 5])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, [2, 3])], inits),
                     opset_imports=[h.make_opsetid("", 21)])
    g = load_onnx(_save(m, tmp_path), {})
    w = g.tensors[g.op("fc").inputs[1]]
    assert w.name == "wq" and w.dtype == "uint4" and w.data.dtype == np.uint8
    np.testing.assert_array_equal(w.data, codes)
    scales = tuple(float(v) for v in np.array([0.1, 0.2, 0.3], np.float32))  # float32 values, widened exactly
    assert w.quant == QuantSpec(format="uint4", scale=scales, zero_point=(8, 7, 9),
                                granularity="channel", axis=0)
    assert g.tensors["x"].quant.is_float32


def test_float8_dequantized_weight_keeps_type_and_real_values(tmp_path):
    import ml_dtypes

    w = np.random.default_rng(2).standard_normal((6, 4)).astype(ml_dtypes.float8_e4m3fn)
    nodes = [h.make_node("DequantizeLinear", ["w8", "s"], ["w"], name="dq"),
             h.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = h.make_model(h.make_graph(nodes, "f8", [h.make_tensor_value_info("x", TP.FLOAT, [2, 6])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, [2, 4])],
                                  [nh.from_array(w, "w8"), nh.from_array(np.float32(0.5), "s")]),
                     opset_imports=[h.make_opsetid("", 21)])
    g = load_onnx(_save(m, tmp_path), {})
    t = g.tensors[g.op("mm").inputs[1]]
    assert t.dtype == "float8e4m3fn" and t.quant == QuantSpec(format="fp8_e4m3fn", scale=(0.5,))
    np.testing.assert_array_equal(t.data, w.astype(np.float32).T * np.float32(0.5))


def test_dynamic_quantization_from_onnxruntime(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    w = nh.from_array(rng.standard_normal((16, 8)).astype(np.float32), "W")
    m = h.make_model(h.make_graph([h.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "g",
                                  [h.make_tensor_value_info("x", TP.FLOAT, ["batch", 16])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, ["batch", 8])], [w]),
                     opset_imports=[h.make_opsetid("", 17)])
    src, dst = _save(m, tmp_path, "f.onnx"), str(tmp_path / "d.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True)
    g = load_onnx(dst, {"batch": 2})
    parts = [o.part for o in g.ops() if o.op == "dynamic_quantize"]
    assert sorted(parts) == ["scale", "y", "zero_point"]
    (lin,) = g.layers()
    assert g.tensors[lin.outputs[0]].quant.format == "int32"
    # the zero point the DynamicQuantizeLinear computes is a run-time input of the linear, beside its codes
    assert lin.runtime_quant == ("x_zero_point",) and len(lin.operands) == 2
    assert [g.op(g.producer(t)).part for t in (lin.inputs[0], lin.inputs[2])] == ["y", "zero_point"]
    assert g.tensors[lin.inputs[0]].quant.format == "uint8"
    assert g.tensors[lin.inputs[1]].data.dtype == np.int8 and g.total_macs == 2 * 16 * 8


_NODE_CASES = re.compile(r"^test_(de)?quantizelinear|^test_qlinear(conv|matmul)|^test_(matmul|conv)integer"
                         r"|^test_dynamicquantizelinear(_min_adjusted|_max_adjusted)?$|^test_cast_")


def _node_cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c for c in collect_testcases(None) if _NODE_CASES.search(c.name)]


@pytest.mark.parametrize("case", _node_cases(), ids=lambda c: c.name)
def test_onnx_node_conformance_models_import(tmp_path, case):
    """ONNX's own node tests (Q/DQ, QLinear, Integer, DynamicQuantizeLinear, Cast): scale /
    zero-point / weight inputs bound as constants; output shapes and element types as expected."""
    path = _save(case.model, tmp_path)
    inputs, expected = case.data_sets[0]
    arrays = [nh.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v) for v in inputs]
    names = [i.name for i in case.model.graph.input]
    consts = dict(zip(names[1:], arrays[1:]))
    g = load_onnx(path, {}, consts)
    if case.name.startswith("test_cast_"):
        assert [o.op for o in g.ops()] == ["cast"]
    for out, want in zip(case.model.graph.output, expected):
        want = nh.to_array(want) if isinstance(want, onnx.TensorProto) else np.asarray(want)
        assert g.tensors[out.name].shape == want.shape
        assert g.tensors[out.name].dtype == array_dtype(want)
