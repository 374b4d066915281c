"""QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger whose every input, scales and zero
points included, is a graph input given at run time: bit-exact against ONNX's reference evaluator
(``requant="exact"``) and onnxruntime (``requant="onnxruntime"``) on random values.

The values are drawn per case, so a simulator that computed with any other scale or zero point
(a calibrated one, a default of 1.0 / 0) would differ from the oracles.
"""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from hwsim.graph.onnx import load_onnx
from hwsim.sim import run
from tests.sim.ort_cpu import ort_run, ort_u8s8_pairs_saturate

_INFO = {np.uint8: (0, 256), np.int8: (-128, 128)}


def _codes(rng, dtype, shape):
    lo, hi = _INFO[dtype]
    return rng.integers(lo, hi, shape).astype(dtype)


def _model(path, node, feeds, out_dtype, opset=21):
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in feeds.items()]
    out = helper.make_tensor_value_info(node.output[0], helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype)), None)
    model = helper.make_model(helper.make_graph([node], "case", ins, [out]),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.save(model, path)
    return model


def _check(tmp_path, node, feeds, out_dtype, ort_too=True):
    path = tmp_path / "m.onnx"
    model = _model(path, node, feeds, out_dtype)
    graph = load_onnx(path, {})
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    got = run(graph, feeds).outputs[node.output[0]]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want, err_msg="against onnx.reference")
    if ort_too:
        got = run(graph, feeds, requant="onnxruntime", pairwise_int16=ort_u8s8_pairs_saturate()).outputs[node.output[0]]
        np.testing.assert_array_equal(got, ort_run(model, feeds)[0], err_msg="against onnxruntime")
    return got


def _scale(rng, shape=()):
    return rng.uniform(0.002, 0.05, shape).astype(np.float32)


CONV = [(np.uint8, np.uint8, np.uint8, False, False), (np.uint8, np.int8, np.uint8, True, True),
        (np.int8, np.int8, np.int8, True, False), (np.uint8, np.int8, np.int8, False, True)]


@pytest.mark.parametrize("xdt,wdt,ydt,per_channel,bias", CONV)
@pytest.mark.parametrize("seed", [0, 1])
def test_qlinearconv_runtime(tmp_path, xdt, wdt, ydt, per_channel, bias, seed):
    rng = np.random.default_rng(seed)
    o = 4
    c = (o,) if per_channel else ()
    feeds = {"x": _codes(rng, xdt, (1, 3, 6, 5)), "x_scale": _scale(rng), "x_zero_point": _codes(rng, xdt, ()),
             "w": _codes(rng, wdt, (o, 3, 3, 3)), "w_scale": _scale(rng, c),
             "w_zero_point": np.zeros(c, wdt) if wdt == np.int8 else _codes(rng, wdt, c),
             "y_scale": np.float32(rng.uniform(0.05, 0.3)), "y_zero_point": _codes(rng, ydt, ())}
    feeds = {k: np.asarray(v) for k, v in feeds.items()}
    names = list(feeds)
    if bias:
        feeds["B"] = rng.integers(-2000, 2000, o).astype(np.int32)
        names.append("B")
    node = helper.make_node("QLinearConv", names, ["y"], pads=[1, 0, 1, 1], strides=[1, 2])
    _check(tmp_path, node, feeds, ydt, ort_too=ydt == xdt)  # onnxruntime has no u8 -> s8 QLinearConv


@pytest.mark.parametrize("adt,bdt", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)])
@pytest.mark.parametrize("shape_a,shape_b", [((5, 7), (7, 3)), ((2, 5, 7), (2, 7, 3)), ((2, 5, 7), (7, 3))])
def test_qlinearmatmul_runtime(tmp_path, adt, bdt, shape_a, shape_b):
    rng = np.random.default_rng(len(shape_a) * 10 + len(shape_b))
    feeds = {"a": _codes(rng, adt, shape_a), "a_scale": _scale(rng), "a_zero_point": _codes(rng, adt, ()),
             "b": _codes(rng, bdt, shape_b), "b_scale": _scale(rng), "b_zero_point": _codes(rng, bdt, ()),
             "y_scale": np.float32(0.2), "y_zero_point": _codes(rng, adt, ())}
    feeds = {k: np.asarray(v) for k, v in feeds.items()}
    node = helper.make_node("QLinearMatMul", list(feeds), ["y"])
    _check(tmp_path, node, feeds, adt)


@pytest.mark.parametrize("adt,bdt,b_per_column", [(np.uint8, np.uint8, False), (np.uint8, np.int8, True),
                                                 (np.int8, np.int8, True)])
def test_matmulinteger_runtime(tmp_path, adt, bdt, b_per_column):
    rng = np.random.default_rng(3)
    feeds = {"A": _codes(rng, adt, (4, 9)), "B": _codes(rng, bdt, (9, 5)), "a_zero_point": _codes(rng, adt, ()),
             "b_zero_point": _codes(rng, bdt, (5,) if b_per_column else ())}
    feeds = {k: np.asarray(v) for k, v in feeds.items()}
    node = helper.make_node("MatMulInteger", list(feeds), ["Y"])
    _check(tmp_path, node, feeds, np.int32)


@pytest.mark.parametrize("per_channel", [False, True])
def test_convinteger_runtime(tmp_path, per_channel):
    rng = np.random.default_rng(4)
    feeds = {"x": _codes(rng, np.uint8, (1, 2, 5, 5)), "w": _codes(rng, np.uint8, (3, 2, 2, 2)),
             "x_zero_point": _codes(rng, np.uint8, ()),
             "w_zero_point": _codes(rng, np.uint8, (3,) if per_channel else ())}
    node = helper.make_node("ConvInteger", list(feeds), ["y"], pads=[1, 1, 0, 0])
    # onnxruntime 1.32: "Non per-tensor quantization is not supported now" (per-channel w_zero_point)
    _check(tmp_path, node, {k: np.asarray(v) for k, v in feeds.items()}, np.int32, ort_too=not per_channel)


def _small_qlinearmatmul(rng, a_scale_shape=()) -> dict:
    """Feeds of a (3, 4) x (4, 2) uint8 QLinearMatMul, every parameter a graph input."""
    feeds = {"a": _codes(rng, np.uint8, (3, 4)), "a_scale": _scale(rng, a_scale_shape), "a_zero_point": np.uint8(7),
             "b": _codes(rng, np.uint8, (4, 2)), "b_scale": _scale(rng), "b_zero_point": np.uint8(3),
             "y_scale": np.float32(0.1), "y_zero_point": np.uint8(9)}
    return {k: np.asarray(v) for k, v in feeds.items()}


def test_scale_changes_the_answer(tmp_path):
    """The same model fed two different y_scale values gives the two answers of the oracle."""
    feeds = _small_qlinearmatmul(np.random.default_rng(5))
    node = helper.make_node("QLinearMatMul", list(feeds), ["y"])
    first = _check(tmp_path, node, feeds, np.uint8)
    second = _check(tmp_path, node, {**feeds, "y_scale": np.asarray(np.float32(0.37))}, np.uint8)
    assert not np.array_equal(first, second)


def test_per_row_a_scale_is_refused_naming_the_input(tmp_path):
    from hwsim.errors import UnsupportedOpError

    feeds = _small_qlinearmatmul(np.random.default_rng(6), a_scale_shape=(3,))
    _model(tmp_path / "m.onnx", helper.make_node("QLinearMatMul", list(feeds), ["y"], name="qmm"), feeds, np.uint8)
    with pytest.raises(UnsupportedOpError, match=r"node 'qmm'.*x_scale \(input 1, 'a_scale'\) holds 3 values"):
        load_onnx(tmp_path / "m.onnx", {})


@pytest.mark.parametrize("value", [0.0, np.inf])
def test_quantize_linear_zero_or_inf_runtime_scale_is_refused(tmp_path, value):
    """QuantizeLinear divides by its scale: a run-time scale of 0 or inf was computed, exit 0, into
    codes 0 and a following DequantizeLinear returned 2.8e17 (onnxruntime saturates, onnx.reference
    gives 0 or the zero point). Refused naming the node and the input."""
    from hwsim.errors import InputDataError

    f = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="ql"),
         helper.make_node("DequantizeLinear", ["q", "s2", "z"], ["y"], name="dql")], "case",
        [helper.make_tensor_value_info("x", f, [3, 5]), helper.make_tensor_value_info("s", f, []),
         helper.make_tensor_value_info("z", onnx.TensorProto.UINT8, []), helper.make_tensor_value_info("s2", f, [])],
        [helper.make_tensor_value_info("y", f, [3, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "qdq.onnx")
    g = load_onnx(tmp_path / "qdq.onnx", {})
    feeds = {"x": np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5), "s": np.asarray(np.float32(0.02)),
             "z": np.asarray(np.uint8(100)), "s2": np.asarray(np.float32(0.03))}
    np.testing.assert_array_equal(run(g, feeds).outputs["y"], ReferenceEvaluator(model).run(None, feeds)[0])
    with pytest.raises(InputDataError, match=r"quantize 'ql': scale 's' holds (0|inf); .*non-zero"):
        run(g, {**feeds, "s": np.asarray(np.float32(value))})


def _ms_node(op, ins, **kw):
    return helper.make_node(op, ins, ["y"], domain="com.microsoft", **kw)


def _check_ort(tmp_path, nodes, feeds, inits, out_type, ms=False):
    from onnx import numpy_helper

    feeds = {k: np.asarray(v) for k, v in feeds.items()}
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()]
    opsets = [helper.make_opsetid("", 21)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    graph = helper.make_graph(nodes, "case", ins, [helper.make_tensor_value_info("y", out_type, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    onnx.save(model, tmp_path / "m.onnx")
    got = run(load_onnx(tmp_path / "m.onnx", {}), feeds, requant="onnxruntime",
              pairwise_int16=ort_u8s8_pairs_saturate()).outputs["y"]
    want = ort_run(model, feeds)[0]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("trans_b,bias,quantized_out,per_column",
                         [(0, False, True, False), (1, True, True, True), (0, True, False, False), (1, False, False, True)])
def test_qgemm_runtime_against_onnxruntime(tmp_path, trans_b, bias, quantized_out, per_column):
    """com.microsoft QGemm with every scale and zero point a graph input: the integer path."""
    rng = np.random.default_rng(7)
    n = (4,) if per_column else ()
    b = _codes(rng, np.int8, (4, 6) if trans_b else (6, 4))
    feeds = {"A": _codes(rng, np.uint8, (3, 6)), "a_scale": _scale(rng), "a_zp": np.uint8(99), "B": b,
             "b_scale": _scale(rng, n), "b_zp": np.zeros(n, np.int8)}
    names = list(feeds) + [""]
    if bias:
        feeds["C"] = rng.integers(-3000, 3000, 4).astype(np.int32)
        names[-1] = "C"
    if quantized_out:
        feeds.update(y_scale=np.float32(0.05), y_zp=np.uint8(128))
        names += ["y_scale", "y_zp"]
    while not names[-1]:
        names.pop()
    _check_ort(tmp_path, [_ms_node("QGemm", names, transB=trans_b)], feeds, {},
               onnx.TensorProto.UINT8 if quantized_out else onnx.TensorProto.FLOAT, ms=True)


@pytest.mark.parametrize("axis", [None, 0])
def test_dequantize_initializer_with_runtime_scale(tmp_path, axis):
    """DequantizeLinear of stored codes whose scale / zero point are graph inputs (was refused)."""
    rng = np.random.default_rng(8)
    kw = {} if axis is None else {"axis": axis}
    feeds = {"s": _scale(rng, () if axis is None else (3,)), "z": np.zeros(() if axis is None else (3,), np.int8)}
    _check_ort(tmp_path, [helper.make_node("DequantizeLinear", ["w", "s", "z"], ["y"], **kw)], feeds,
               {"w": _codes(rng, np.int8, (3, 5))}, onnx.TensorProto.FLOAT)


@pytest.mark.parametrize("runtime", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_matmul_integer_to_float_against_onnxruntime(tmp_path, runtime, bias):
    """com.microsoft MatMulIntegerToFloat (onnxruntime's fusion of MatMulInteger -> Cast -> Mul)."""
    rng = np.random.default_rng(9)
    params = {"a_scale": _scale(rng), "b_scale": _scale(rng, (4,)), "a_zp": np.uint8(77), "b_zp": np.zeros(4, np.int8)}
    feeds = {"A": _codes(rng, np.uint8, (3, 6)), "B": _codes(rng, np.int8, (6, 4))}
    inits = {}
    (feeds if runtime else inits).update(params)
    names = ["A", "B", "a_scale", "b_scale", "a_zp", "b_zp"]
    if bias:
        inits["bias"] = rng.standard_normal(4).astype(np.float32)
        names.append("bias")
    _check_ort(tmp_path, [_ms_node("MatMulIntegerToFloat", names)], feeds, inits, onnx.TensorProto.FLOAT, ms=True)


QLINEAR_MS = [("QLinearAdd", 2, {}), ("QLinearMul", 2, {}), ("QLinearSigmoid", 1, {}),
              ("QLinearLeakyRelu", 1, {"alpha": 0.1}), ("QLinearGlobalAveragePool", 1, {}),
              ("QLinearAveragePool", 1, {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [1, 1, 0, 1]})]


@pytest.mark.parametrize("op,n_in,kw", QLINEAR_MS, ids=[q[0] for q in QLINEAR_MS])
def test_ms_qlinear_elementwise_runtime(tmp_path, op, n_in, kw):
    """com.microsoft QLinear elementwise ops with every scale and zero point a graph input, over
    every uint8 code."""
    rng = np.random.default_rng(10)
    codes = np.arange(256).astype(np.uint8).reshape(1, 4, 8, 8)
    feeds, names = {}, []
    for i in range(n_in):
        feeds.update({f"x{i}": codes if i == 0 else rng.permutation(codes.ravel()).reshape(codes.shape),
                      f"s{i}": _scale(rng), f"z{i}": np.uint8(rng.integers(0, 256))})
        names += [f"x{i}", f"s{i}", f"z{i}"]
    feeds.update(ys=np.float32(rng.uniform(0.02, 0.05)), yz=np.uint8(rng.integers(0, 256)))
    _check_ort(tmp_path, [_ms_node(op, names + ["ys", "yz"], **kw)], feeds, {}, onnx.TensorProto.UINT8, ms=True)


def test_quant_config_leaves_runtime_quantized_layers_alone(tmp_path):
    """--weights / --activations do not round a run-time-quantized layer's codes or scales: the
    model's own quantization is what it computes with (the estimate still prices its codes)."""
    from hwsim.graph.annotate import quantize_graph

    rng = np.random.default_rng(11)
    feeds = {"x": _codes(rng, np.uint8, (1, 2, 5, 5)), "x_scale": np.float32(0.0137), "x_zero_point": np.uint8(131),
             "w": _codes(rng, np.uint8, (3, 2, 3, 3)), "w_scale": _scale(rng, (3,)),
             "w_zero_point": _codes(rng, np.uint8, (3,)), "y_scale": np.float32(0.113), "y_zero_point": np.uint8(5)}
    feeds = {k: np.asarray(v) for k, v in feeds.items()}
    want = _check(tmp_path, helper.make_node("QLinearConv", list(feeds), ["y"]), feeds, np.uint8, ort_too=False)
    graph = quantize_graph(load_onnx(tmp_path / "m.onnx", {}), weights="int4", activations="int8")
    assert graph.tensors["w"].quant.format == "uint8" and graph.tensors["x_scale"].quant.format == "fp32"
    np.testing.assert_array_equal(run(graph, feeds).outputs["y"], want)


def test_export_refuses_runtime_scales_naming_the_layer(tmp_path):
    from hwsim.errors import UnsupportedOpError
    from hwsim.sim.export import export_onnx

    feeds = _small_qlinearmatmul(np.random.default_rng(12))
    _model(tmp_path / "m.onnx", helper.make_node("QLinearMatMul", list(feeds), ["y"], name="qmm"), feeds, np.uint8)
    with pytest.raises(UnsupportedOpError, match=r"matmul 'qmm' quantizes with scales / zero points given at run time"):
        export_onnx(load_onnx(tmp_path / "m.onnx", {}), feeds)


@pytest.mark.parametrize("name,value", [("y_scale", 0.0), ("a_scale", -0.5), ("b_scale", np.nan)])
def test_bad_runtime_scale_is_an_error_naming_it(tmp_path, name, value):
    from hwsim.errors import InputDataError

    feeds = _small_qlinearmatmul(np.random.default_rng(13))
    _model(tmp_path / "m.onnx", helper.make_node("QLinearMatMul", list(feeds), ["y"], name="qmm"), feeds, np.uint8)
    graph = load_onnx(tmp_path / "m.onnx", {})
    with pytest.raises(InputDataError, match=rf"matmul 'qmm': \w_scale '{name}' is \[.*\]; scales must be finite"):
        run(graph, {**feeds, name: np.asarray(value, np.float32)})


CONV_ND = [((1, 3, 11), (4, 3, 3), {"pads": [1, 2], "strides": [2]}),
           ((1, 2, 4, 5, 6), (3, 2, 2, 3, 2), {"pads": [0, 1, 1, 1, 0, 0]})]


@pytest.mark.parametrize("shape_x,shape_w,kw", CONV_ND, ids=["1-D", "3-D"])
@pytest.mark.parametrize("runtime", [False, True])
def test_qlinearconv_1d_3d(tmp_path, shape_x, shape_w, kw, runtime):
    """QLinearConv over 1-D (as a 2-D conv of height 1) and 3-D inputs, constant or run-time
    parameters, per-channel w_scale and a bias: onnxruntime's answer. (onnx.reference's QLinearConv
    broadcasts a per-channel w_scale as 2-D, so it is no oracle here; 3-D uses u8 weights, whose
    sums onnxruntime takes exactly.)"""
    rng = np.random.default_rng(14)
    wdt = np.int8 if len(shape_w) == 3 else np.uint8
    params = {"x_scale": np.float32(0.02), "x_zero_point": np.uint8(120), "w_scale": _scale(rng, shape_w[:1]),
              "w_zero_point": np.full(shape_w[:1], 0 if wdt == np.int8 else 128, wdt), "y_scale": np.float32(0.3),
              "y_zero_point": np.uint8(128)}
    consts = {"w": _codes(rng, wdt, shape_w), "B": rng.integers(-500, 500, shape_w[:1]).astype(np.int32)}
    feeds = {"x": _codes(rng, np.uint8, shape_x)}
    inits = dict(consts)
    (feeds if runtime else inits).update({k: np.asarray(v) for k, v in params.items()})
    node = helper.make_node("QLinearConv", ["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point",
                                            "y_scale", "y_zero_point", "B"], ["y"], **kw)
    _check_ort(tmp_path, [node], feeds, inits, onnx.TensorProto.UINT8)


@pytest.mark.parametrize("shape_x,shape_w,kw", CONV_ND, ids=["1-D", "3-D"])
def test_convinteger_1d_3d(tmp_path, shape_x, shape_w, kw):
    rng = np.random.default_rng(15)
    feeds = {"x": _codes(rng, np.uint8, shape_x), "w": _codes(rng, np.uint8, shape_w), "x_zero_point": np.uint8(7)}
    _check(tmp_path, helper.make_node("ConvInteger", list(feeds), ["y"], **kw), {k: np.asarray(v) for k, v in feeds.items()},
           np.int32)


@pytest.mark.parametrize("runtime", [False, True])
def test_qlinear_concat_against_onnxruntime(tmp_path, runtime):
    rng = np.random.default_rng(16)
    params = {"ys": _scale(rng), "yz": np.uint8(17), "as": _scale(rng), "az": np.uint8(200), "bs": _scale(rng),
              "bz": np.uint8(3)}
    feeds = {"a": _codes(rng, np.uint8, (1, 3, 4, 5)), "b": _codes(rng, np.uint8, (1, 2, 4, 5))}
    inits = {}
    (feeds if runtime else inits).update({k: np.asarray(v) for k, v in params.items()})
    node = _ms_node("QLinearConcat", ["ys", "yz", "a", "as", "az", "b", "bs", "bz"], axis=1)
    _check_ort(tmp_path, [node], feeds, inits, onnx.TensorProto.UINT8, ms=True)


def test_qgemm_float_output_against_onnxruntime(tmp_path):
    """QuantizeLinear -> QGemm without y_scale, constant parameters: the int32 result (C included)
    times float32(a_scale * b_scale) in float32, as onnxruntime (was a float64 product: 1 ulp off)."""
    rng = np.random.default_rng(17)
    inits = {"s": np.float32(0.02), "z": np.uint8(128), "B": _codes(rng, np.int8, (64, 16)),
             "b_scale": _scale(rng, (16,)), "b_zp": np.zeros(16, np.int8),
             "C": rng.integers(-3000, 3000, 16).astype(np.int32)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             _ms_node("QGemm", ["xq", "s", "z", "B", "b_scale", "b_zp", "C"])]
    _check_ort(tmp_path, nodes, {"x": rng.standard_normal((8, 64)).astype(np.float32)}, inits,
               onnx.TensorProto.FLOAT, ms=True)


def test_constant_b_with_a_runtime_scale_is_a_stored_weight(tmp_path):
    """QLinearMatMul whose B is an initializer but whose b_scale is a graph input: B is the model's
    weight (summary counts it, estimate prices its bytes as weights; it was 0 B), and the answer
    stays onnxruntime's."""
    from onnx import TensorProto as TP
    from onnx import numpy_helper as nh

    from hwsim.cost import estimate

    rng = np.random.default_rng(0)
    node = helper.make_node("QLinearMatMul", ["a", "a_s", "a_z", "b", "b_s", "b_z", "y_s", "y_z"], ["y"], name="qmm")
    inits = [nh.from_array(np.float32(0.05), "a_s"), nh.from_array(np.uint8(128), "a_z"),
             nh.from_array(rng.integers(0, 255, (64, 32)).astype(np.uint8), "b"), nh.from_array(np.uint8(128), "b_z"),
             nh.from_array(np.float32(0.5), "y_s"), nh.from_array(np.uint8(128), "y_z")]
    model = helper.make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("a", TP.UINT8, [4, 64]), helper.make_tensor_value_info("b_s", TP.FLOAT, [])],
        [helper.make_tensor_value_info("y", TP.UINT8, [4, 32])], inits), opset_imports=[helper.make_opsetid("", 13)])
    path = str(tmp_path / "qmm.onnx")
    onnx.save(model, path)
    feeds = {"a": rng.integers(0, 255, (4, 64)).astype(np.uint8), "b_s": np.array(0.02, np.float32)}
    g = load_onnx(path, {}, values=feeds)
    assert estimate(g, "int8-npu").total.weight_bytes == 64 * 32
    np.testing.assert_array_equal(run(g, feeds, requant="onnxruntime").outputs["y"], ort_run(model, feeds)[0])


@pytest.mark.parametrize("trans_b,per_column", [(0, True), (1, False)])
def test_qgemm_constant_b_with_runtime_scales_is_a_weight(tmp_path, trans_b, per_column):
    """QGemm whose B is an initializer and whose scales are graph inputs: B is priced as a weight
    (it was read as data: 0 B of weights) and the answer stays onnxruntime's."""
    from hwsim.cost import estimate

    rng = np.random.default_rng(3)
    n = (4,) if per_column else ()
    b = _codes(rng, np.int8, (4, 6) if trans_b else (6, 4))
    feeds = {"A": _codes(rng, np.uint8, (3, 6)), "a_scale": _scale(rng), "a_zp": np.uint8(99),
             "b_scale": _scale(rng, n), "b_zp": np.zeros(n, np.int8), "y_scale": np.float32(0.05), "y_zp": np.uint8(128)}
    names = ["A", "a_scale", "a_zp", "B", "b_scale", "b_zp", "", "y_scale", "y_zp"]
    _check_ort(tmp_path, [_ms_node("QGemm", names, transB=trans_b)], feeds, {"B": b}, onnx.TensorProto.UINT8, ms=True)
    g = load_onnx(tmp_path / "m.onnx", {})
    assert estimate(g, "int8-npu").total.weight_bytes == b.size
