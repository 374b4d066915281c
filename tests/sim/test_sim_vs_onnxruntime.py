"""Randomised end-to-end checks against onnxruntime: QLinearMatMul / QLinearConv models imported
with load_onnx and simulated with ``requant="onnxruntime"``: 0 mismatches.

Known onnxruntime deviations are modelled as options, never the default: u8*s8 int16 pair
saturation on AVX2 without VNNI (``pairwise_int16=True``) and the E4M3FN saturate=0 cast of
[480, 496) to +-448 (``ort_e4m3fn_cast=True``). The cases below avoid u8*s8 so the default path
is what is compared.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.graph.onnx import load_onnx
from hwsim.sim import run


def _ort(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _qparams(rng, dt, n=None):
    s = (rng.uniform(0.002, 0.05, n) if n else np.array(rng.uniform(0.002, 0.05))).astype(np.float32)
    info = np.iinfo(dt)
    zp = rng.integers(info.min // 4 + (0 if dt == np.int8 else 100), info.max // 4 + (0 if dt == np.int8 else 100),
                      n if n else ()).astype(dt)
    return s, zp


def _save(tmp_path, nodes, inputs, outputs, inits):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return model, path


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("k", [7, 300, 4096])
def test_qlinearmatmul_matches_onnxruntime(dt, per_channel, k, tmp_path):
    rng = np.random.default_rng(k + 2 * per_channel + (dt == np.int8))
    m, n = 5, 6
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max + 1, (m, k)).astype(dt)
    b = rng.integers(info.min, info.max + 1, (k, n)).astype(dt)
    sa, za = _qparams(rng, dt)
    sb, zb = _qparams(rng, dt, n if per_channel else None)
    if per_channel:
        zb = np.full(n, zb[0], dt)  # onnxruntime needs one b zero point per tensor for u8
    acc = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    sy = np.float32(np.abs(acc * sa.astype(np.float64) * sb).max() / 110)
    zy = np.array(0 if dt == np.int8 else 128).astype(dt)
    et = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    inits = [numpy_helper.from_array(np.asarray(v), nm) for nm, v in
             [("sa", sa), ("za", za), ("b", b), ("sb", sb), ("zb", zb), ("sy", np.asarray(sy)), ("zy", zy)]]
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    model, path = _save(tmp_path, [node], [helper.make_tensor_value_info("a", et, (m, k))],
                        [helper.make_tensor_value_info("y", et, (m, n))], inits)
    want = _ort(model, {"a": a})
    got = run(load_onnx(path, {}), {"a": a}, requant="onnxruntime").outputs["y"]
    assert got.dtype == want.dtype
    assert np.count_nonzero(got != want) == 0
    assert len(np.unique(want)) > 3  # the case is not saturated to a constant


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinearconv_matches_onnxruntime(dt, per_channel, tmp_path):
    rng = np.random.default_rng(11 + per_channel)
    info = np.iinfo(dt)
    c, o = 16, 8
    x = rng.integers(info.min, info.max + 1, (1, c, 9, 9)).astype(dt)
    w = rng.integers(info.min, info.max + 1, (o, c, 3, 3)).astype(dt)
    sx, zx = _qparams(rng, dt)
    sw, _ = _qparams(rng, dt, o if per_channel else None)
    zw = np.zeros(o if per_channel else (), dt) if dt == np.int8 else np.full(o if per_channel else (), 128, dt)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    sy = np.float32(float(sx) * float(np.max(sw)) * np.sqrt(c * 9) * 127 * 2)
    zy = np.array(10 if dt == np.int8 else 120).astype(dt)
    et = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    inits = [numpy_helper.from_array(np.asarray(v), nm) for nm, v in
             [("sx", sx), ("zx", zx), ("w", w), ("sw", sw), ("zw", zw), ("sy", np.asarray(sy)), ("zy", zy),
              ("bias", bias)]]
    node = helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "bias"], ["y"],
                            pads=[1, 1, 1, 1], strides=[2, 2])
    model, path = _save(tmp_path, [node], [helper.make_tensor_value_info("x", et, x.shape)],
                        [helper.make_tensor_value_info("y", et, (1, o, 5, 5))], inits)
    want = _ort(model, {"x": x})
    got = run(load_onnx(path, {}), {"x": x}, requant="onnxruntime").outputs["y"]
    assert np.count_nonzero(got != want) == 0
    assert len(np.unique(want)) > 3


def test_exact_and_onnxruntime_modes_can_differ():
    """The modes are really different arithmetic: float32(acc) * float32(m) vs float64 product."""
    from hwsim import kernel_api

    acc = np.arange(2**24, 2**24 + 4000, dtype=np.int64)
    m = np.float32(0.3)
    e = kernel_api.requantize(acc, m, 0, "exact", np.int32)
    o = kernel_api.requantize(acc, m, 0, "onnxruntime", np.int32)
    assert np.count_nonzero(e != o) > 0


def test_e4m3fn_cast_deviation_is_an_option_not_the_default(tmp_path):
    x = np.array([460.0, 480.0, 490.0, -495.0, 496.0, 100.0], np.float32)
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E4M3FN, saturate=0)
    _, path = _save(tmp_path, [node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, (6,))],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, (6,))], [])
    g = load_onnx(path, {})
    spec = run(g, {"x": x}).outputs["y"]
    ortlike = run(g, {"x": x}, ort_e4m3fn_cast=True).outputs["y"]
    assert np.isnan(spec[1:5]).all() and spec[0] == 448 and spec[5] == 96
    np.testing.assert_array_equal(ortlike[[0, 1, 2, 3, 5]], [448, 448, 448, -448, 96])
    assert np.isnan(ortlike[4])


def test_u8s8_pair_saturation_option_reproduces_onnxruntime_avx2(tmp_path):
    rng = np.random.default_rng(3)
    m, k, n = 4, 64, 5
    a = rng.integers(200, 256, (m, k)).astype(np.uint8)
    b = rng.integers(100, 128, (k, n)).astype(np.int8)
    inits = [numpy_helper.from_array(np.asarray(v), nm) for nm, v in
             [("za", np.uint8(0)), ("b", b), ("zb", np.int8(0))]]
    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    model, path = _save(tmp_path, [node], [helper.make_tensor_value_info("a", TensorProto.UINT8, (m, k))],
                        [helper.make_tensor_value_info("y", TensorProto.INT32, (m, n))], inits)
    want = _ort(model, {"a": a})
    g = load_onnx(path, {})
    exact = run(g, {"a": a}).outputs["y"]
    np.testing.assert_array_equal(exact, a.astype(np.int64) @ b.astype(np.int64))
    if np.array_equal(want, exact):
        pytest.skip("this CPU's onnxruntime does not saturate u8*s8 pairs (VNNI or ARM)")
    np.testing.assert_array_equal(run(g, {"a": a}, pairwise_int16=True).outputs["y"], want)
