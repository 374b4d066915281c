"""Integer quantize matches the ONNX reference evaluator's QuantizeLinear, ties included."""

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import hwsim.formats as F
from hwsim.errors import InputDataError

ZP_TYPES = {"int8": (np.int8, TensorProto.INT8), "uint8": (np.uint8, TensorProto.UINT8),
            "int4": (ml_dtypes.int4, TensorProto.INT4), "uint4": (ml_dtypes.uint4, TensorProto.UINT4)}


def onnx_quantize(x, scale, zp, name, axis=1):
    """QuantizeLinear (opset 21) through onnx.reference.ReferenceEvaluator."""
    np_t, onnx_t = ZP_TYPES[name]
    node = helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"], axis=axis)
    graph = helper.make_graph(
        [node], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, np.shape(scale)),
         helper.make_tensor_value_info("zp", onnx_t, np.shape(zp))],
        [helper.make_tensor_value_info("y", onnx_t, x.shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    ref = ReferenceEvaluator(model)
    (y,) = ref.run(None, {"x": x, "s": np.asarray(scale, np.float32), "zp": np.asarray(zp, np_t)})
    return y.astype(np.int64)


def _data(rng, shape, scale):
    """Random values, exact ties k + 0.5 (in float32 units of scale), and values beyond range."""
    x = rng.normal(0, 60, size=shape).astype(np.float32) * np.float32(scale)
    ties = (rng.integers(-300, 300, size=shape) + 0.5).astype(np.float32) * np.float32(scale)
    return np.concatenate([x, ties, np.float32(scale) * np.float32(1e4) * np.sign(x)], axis=0)


@pytest.mark.parametrize("name", sorted(ZP_TYPES))
@pytest.mark.parametrize("scale", [0.5, 0.1, 0.03125, 1.7])
def test_per_tensor_matches_onnx(name, scale):
    fmt = F.get(name)
    rng = np.random.default_rng(1)
    x = _data(rng, (64, 5), scale)
    for zp in {fmt.qmin, 0, fmt.qmax // 2, fmt.qmax}:
        s = np.float32(scale)
        want = onnx_quantize(x, s, zp, name)
        codes = fmt.encode(x, scale=s, zero_point=zp)
        got = fmt.decode(codes, scale=None, zero_point=None)  # q, no zero point
        np.testing.assert_array_equal(got.astype(np.int64), want)
        deq = fmt.quantize(x, scale=s, zero_point=zp)
        np.testing.assert_array_equal(deq, (want - zp) * np.float64(s))


@pytest.mark.parametrize("name", sorted(ZP_TYPES))
def test_per_axis_matches_onnx(name):
    fmt = F.get(name)
    rng = np.random.default_rng(2)
    scales = np.array([0.5, 0.1, 0.25, 1.7, 0.03], np.float32)
    x = _data(rng, (50, 5), 1.0) * scales
    zps = rng.integers(fmt.qmin, fmt.qmax + 1, size=5)
    want = onnx_quantize(x, scales, zps, name, axis=1)
    got = fmt.decode(fmt.encode(x, scale=scales, zero_point=zps, axis=1))
    np.testing.assert_array_equal(got.astype(np.int64), want)
    np.testing.assert_array_equal(fmt.quantize(x, scale=scales, zero_point=zps, axis=1),
                                  (want - zps) * scales.astype(np.float64))


def test_division_in_float32_like_onnx():
    """x / scale rounded in float32 can land on a tie that float64 division would not."""
    fmt = F.get("int8")
    s = np.float32(0.1)
    x = np.float32(3.5) * s  # x / s: float32 gives the tie 3.5 -> 4; float64 gives 3.4999999 -> 3
    assert np.float64(x) / np.float64(s) < 3.5
    assert fmt.encode(np.array([x], np.float32), scale=s)[0] == 4
    assert onnx_quantize(np.array([[x]], np.float32), s, 0, "int8")[0, 0] == 4
    assert fmt.encode(np.array([x], np.float64), scale=np.float64(s))[0] == 3


def test_ties_half_even():
    fmt = F.get("int8")
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
    np.testing.assert_array_equal(fmt.quantize(x), [0, 2, 2, -0.0, -2, -2])
    np.testing.assert_array_equal(fmt.quantize(x, rounding="half_away"), [1, 2, 3, -1, -2, -3])
    np.testing.assert_array_equal(fmt.quantize(x, rounding="half_up"), [1, 2, 3, 0, -1, -2])
    np.testing.assert_array_equal(fmt.quantize(x, rounding="toward_zero"), [0, 1, 2, 0, -1, -2])


def test_group_quantization():
    fmt = F.get("int4")
    x = np.arange(12, dtype=np.float64).reshape(2, 6)
    s = np.array([[1.0, 2.0], [3.0, 4.0]])  # one per group of 3 along axis 1
    want = fmt.quantize(x, scale=np.repeat(s, 3, axis=1))
    np.testing.assert_array_equal(fmt.quantize(x, scale=s, axis=1, group_size=3), want)
    np.testing.assert_array_equal(fmt.quantize(x[0], scale=s[0], axis=0, group_size=3), want[0])


def test_codes_are_twos_complement():
    fmt = F.get("int8")
    assert fmt.encode(np.array([-1.0, -128.0, 127.0])).tolist() == [0xFF, 0x80, 0x7F]
    assert F.get("int4").encode(np.array([-1.0])).tolist() == [0xF]


def test_bad_inputs():
    with pytest.raises(InputDataError):
        F.get("int8").quantize(np.array([np.nan]))
    with pytest.raises(InputDataError):
        F.get("int8").quantize(np.ones((2, 3)), scale=np.ones(4), axis=1)
    with pytest.raises(InputDataError):
        F.get("int8").decode(np.array([256]))


@pytest.mark.parametrize("name", ["int4", "uint8"])
def test_blocked_matches_onnx(name):
    """ONNX blocked quantization (opset 21 block_size) equals group_size along the axis."""
    np_t, onnx_t = ZP_TYPES[name]
    fmt = F.get(name)
    rng = np.random.default_rng(7)
    x = rng.normal(0, 4, size=(3, 12)).astype(np.float32)
    s = rng.uniform(0.1, 1.0, size=(3, 3)).astype(np.float32)
    zp = rng.integers(fmt.qmin, fmt.qmax + 1, size=(3, 3))
    node = helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"], axis=1, block_size=4)
    graph = helper.make_graph(
        [node], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, s.shape),
         helper.make_tensor_value_info("zp", onnx_t, zp.shape)],
        [helper.make_tensor_value_info("y", onnx_t, x.shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (y,) = ReferenceEvaluator(model).run(None, {"x": x, "s": s, "zp": zp.astype(np_t)})
    got = fmt.decode(fmt.encode(x, scale=s, zero_point=zp, axis=1, group_size=4))
    np.testing.assert_array_equal(got.astype(np.int64), y.astype(np.int64))
