"""Simulator semantics: registry coverage, fp32 equivalence with numpy, int8 accuracy, integer path."""

import numpy as np
import pytest

import hwsim
from hwsim.graph import ops as O
from hwsim.graph.builder import Builder
from hwsim.graph.ir import Tensor
from hwsim.graph.ops import OP_CLASSES
from hwsim.graph.quant import Pruning, QuantSpec
from hwsim.sim import EXECUTORS, run, sqnr_db
from hwsim.sim.compute import conv2d_float


def test_registry_covers_every_op_kind():
    assert set(EXECUTORS) == set(OP_CLASSES)


def _np_conv(x, w, stride, pad):
    """Direct-loop conv (obviously right) for the equivalence tests."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return y


def test_fp32_conv_matches_numpy_loop():
    g = hwsim.load_model("conv2d:c=3,h=9,w=9,k=5,r=3,stride=2,bias=true")
    x = np.random.default_rng(1).standard_normal((1, 3, 9, 9)).astype(np.float32)
    r = run(g, {"input": x})
    wt = r.graph.tensors["conv.weight"].data.astype(np.float64)
    b = r.graph.tensors["conv.bias"].data
    want = _np_conv(x.astype(np.float64), wt, 2, 1) + b.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(r.output_values["conv.out"], want, rtol=1e-6, atol=1e-6)
    assert r.outputs["conv.out"].dtype == np.float32


def test_grouped_dilated_conv_matches_loop():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 7, 7)), rng.standard_normal((6, 2, 3, 3))
    op = O.Conv2d(name="c", inputs=("x", "w"), outputs=("y",), groups=2, dilation=(2, 2), padding=(2, 2, 2, 2))
    got = conv2d_float(x, w, op)
    for g in range(2):
        xg = x[:, 2 * g:2 * g + 2]
        wg = w[3 * g:3 * g + 3]
        wd = np.zeros((3, 2, 5, 5))
        wd[:, :, ::2, ::2] = wg
        np.testing.assert_allclose(got[:, 3 * g:3 * g + 3], _np_conv(xg, wd, 1, 2), atol=1e-10)


def _tiny_resnet():
    from hwsim.graph.zoo_cnn import resnet

    return resnet("tiny", layers=(1, 1, 1, 1), width=8, num_classes=10, resolution=32).verify()


def _numpy_resnet(g, x):
    """Plain numpy forward of the tiny resnet, written independently of the executors."""
    d = {n: t.data.astype(np.float64) for n, t in g.tensors.items() if t.data is not None}
    v = {"input": x.astype(np.float64)}
    for op in g.ops():
        a = [v.get(t, d.get(t)) for t in op.inputs]
        if op.op == "conv2d":
            y = _np_conv(a[0], a[1], op.stride[0], op.padding[0])
        elif op.op == "batchnorm":
            y = (a[0] - a[3][None, :, None, None]) / np.sqrt(a[4][None, :, None, None] + op.eps) \
                * a[1][None, :, None, None] + a[2][None, :, None, None]
        elif op.op == "unary":
            y = np.maximum(a[0], 0)
        elif op.op == "pool":
            xp = np.pad(a[0], ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
            oh = (a[0].shape[2] + 2 - 3) // 2 + 1
            y = np.array([[xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(2, 3)) for j in range(oh)]
                          for i in range(oh)]).transpose(2, 3, 0, 1)
        elif op.op == "binary":
            y = a[0] + a[1]
        elif op.op == "global_avgpool":
            y = a[0].mean(axis=(2, 3), keepdims=True)
        elif op.op == "flatten":
            y = a[0].reshape(a[0].shape[0], -1)
        elif op.op == "linear":
            y = a[0] @ a[1].T + a[2]
        v[op.outputs[0]] = y
    return v[g.outputs[0]]


def test_tiny_resnet_fp32_matches_numpy_forward():
    g = hwsim.graph.weights.synthesize_weights(_tiny_resnet(), 3)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    r = run(g, {"input": x}, reference_precision="float64")
    want = _numpy_resnet(g, x)
    np.testing.assert_allclose(r.reference_outputs["fc.out"], want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(r.output_values["fc.out"], want, rtol=1e-4, atol=1e-4)
    r32 = run(g, {"input": x})  # default: dot products of the reference on float32 BLAS
    np.testing.assert_allclose(r32.reference_outputs["fc.out"], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(r32.output_values["fc.out"], r.output_values["fc.out"])


def test_gemm_zoo_fp32_matches_numpy():
    g = hwsim.graph.weights.synthesize_weights(hwsim.load_model("gemm:m=3,k=16,n=5,bias=true"), 0)
    x = np.random.default_rng(4).standard_normal((3, 16)).astype(np.float32)
    r = run(g, {"input": x})
    w, b = g.tensors["gemm.weight"].data, g.tensors["gemm.bias"].data
    np.testing.assert_allclose(r.outputs["gemm.out"], x.astype(np.float64) @ w.T + b, rtol=1e-5, atol=1e-6)


def test_resnet18_int8_output_sqnr_bounds():
    g = hwsim.quantize_graph(hwsim.load_model("resnet18:resolution=64"), "int8", "int8")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    r = run(g, {"input": x})
    out = r.layer("fc").sqnr_db
    assert 20.0 < out < 60.0  # measured ~29 dB; a broken quantizer gives < 5, a skipped one inf
    assert any("synthetic" in n for n in r.notes)
    # int4 weights are measurably worse than int8 on the same inputs (quantizer really quantizes)
    g4 = hwsim.quantize_graph(hwsim.load_model("resnet18:resolution=64"), "int4", "int8")
    assert run(g4, {"input": x}, reference=r.reference).layer("fc").sqnr_db < out - 6


def _int_linear_graph(bias=True):
    """Hand-built integer linear: uint8 x (s=0.02, zp=128), int8 w per channel, uint8 y."""
    b = Builder("q")
    x = b.input("x", (4, 8), "uint8")
    b.g.set_quant(x, QuantSpec(format="uint8", scale=(0.02,), zero_point=(128,)))
    rng = np.random.default_rng(5)
    wc = rng.integers(-127, 128, (3, 8)).astype(np.int8)
    sw = (0.01, 0.02, 0.005)
    b.g.add_tensor(Tensor("w", (3, 8), "weight", QuantSpec(format="int8", scale=sw, granularity="channel", axis=0),
                          wc, "int8"))
    ins = ["x", "w"]
    bc = np.array([100, -50, 7], np.int32)
    if bias:
        b.g.add_tensor(Tensor("b", (3,), "bias", QuantSpec(format="int32", scale=tuple(0.02 * s for s in sw), granularity="channel", axis=0),
                              bc, "int32"))
        ins.append("b")
    b.g.add_op(O.Linear(name="fc", inputs=tuple(ins), outputs=("y",)))
    b.g.tensors["y"] = Tensor("y", (4, 3), "activation", QuantSpec(format="uint8", scale=(0.05,), zero_point=(120,)),
                              dtype="uint8")
    b.output("y")
    return b.g.verify(), wc, bc


def test_integer_linear_is_exact_rational_requant():
    g, wc, bc = _int_linear_graph()
    xc = np.random.default_rng(6).integers(0, 256, (4, 8)).astype(np.uint8)
    r = run(g, {"x": xc})
    acc = (xc.astype(np.int64) - 128) @ wc.T.astype(np.int64) + bc
    mult = (np.float32(0.02) * np.array([0.01, 0.02, 0.005], np.float32) / np.float32(0.05)).astype(np.float64)
    want = np.clip(np.rint(acc * mult) + 120, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(r.outputs["y"], want)
    assert r.outputs["y"].dtype == np.uint8


def test_accumulator_width_wraps_and_saturates():
    g, wc, _ = _int_linear_graph(bias=False)
    op = g.op("fc")
    g.replace_op(op.model_copy(update={"accumulator": "int12"}))
    g.set_quant("y", QuantSpec(format="int32", scale=(0.02 * 0.01,)))
    g.tensors["y"] = Tensor("y", (4, 3), "activation", g.tensors["y"].quant, dtype="int32")
    g.set_quant("w", QuantSpec(format="int8", scale=(0.01,)))
    xc = np.full((4, 8), 255, np.uint8)
    exact = (xc.astype(np.int64) - 128) @ wc.T.astype(np.int64)
    wrapped = ((exact + 2048) % 4096) - 2048
    np.testing.assert_array_equal(run(g, {"x": xc}).outputs["y"], wrapped)
    sat = run(g, {"x": xc}, overflow="saturate").outputs["y"]
    assert sat.max() <= 2047 and sat.min() >= -2048
    assert not np.array_equal(wrapped, exact)  # the case does overflow


def test_pruning_reaches_simulated_weights():
    g = hwsim.load_model("gemm:m=2,k=16,n=4")
    g = hwsim.graph.weights.synthesize_weights(g, 0)
    g.replace_op(g.op("gemm").model_copy(update={"pruning": Pruning(kind="nm", n=2, m=4)}))
    x = np.eye(2, 16, dtype=np.float32)
    r = run(g, {"input": x})
    w = g.tensors["gemm.weight"].data
    kept = np.abs(w.reshape(4, 4, 4)).argsort(-1)[..., 2:]
    wp = np.zeros_like(w).reshape(4, 4, 4)
    np.put_along_axis(wp, kept, np.take_along_axis(w.reshape(4, 4, 4), kept, -1), -1)
    np.testing.assert_allclose(r.output_values["gemm.out"], x @ wp.reshape(4, 16).T, rtol=1e-6)
    assert np.isfinite(r.layer("gemm").sqnr_db)


def test_fp8_layer_uses_float_accumulator_and_loses_precision():
    g = hwsim.quantize_graph(hwsim.load_model("gemm:m=4,k=64,n=8"), "fp8_e4m3fn", "fp8_e4m3fn")
    x = np.random.default_rng(8).standard_normal((4, 64)).astype(np.float32)
    r = run(g, {"input": x})
    assert 15 < r.layer("gemm").sqnr_db < 40  # e4m3: ~30 dB per operand
    xq = r.graph.tensors["input"].quant
    assert xq.scale is not None and abs(np.abs(x).max() / xq.scale[0] - 448) < 1e-3


def test_sqnr_definition():
    ref = np.array([3.0, 4.0])
    assert sqnr_db(ref, ref) == float("inf")
    assert sqnr_db(ref, ref + np.array([0.3, 0.4])) == pytest.approx(20.0)


def test_an_output_that_is_also_a_weight_is_the_stored_constant(tmp_path):
    """A graph output naming an initializer that an op also reads (a debugging copy of a model
    lists every tensor as an output): its value, in the quantized run and the float reference,
    is the initializer, as onnxruntime outputs it; where the op keeps it transformed (a MatMul's
    weight, transposed) the import refuses, naming it."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from hwsim.errors import ConfigError
    from hwsim.graph.onnx import load_onnx

    rng = np.random.default_rng(0)
    w, s = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Mul", ["xw", "s"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(s, "s")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((2, 4)).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    onnx.save(m, tmp_path / "m.onnx")
    res = run(load_onnx(str(tmp_path / "m.onnx"), {}), {"x": x})
    np.testing.assert_array_equal(res.outputs["s"], want[1])
    np.testing.assert_array_equal(res.reference_outputs["s"], s.astype(np.float64))
    np.testing.assert_allclose(res.outputs["y"], want[0], rtol=1e-6)

    g.output.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3]))
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m2.onnx")
    with pytest.raises(ConfigError, match="graph output 'w' is an initializer"):
        load_onnx(str(tmp_path / "m2.onnx"), {})


def test_reference_winograd_conv_keeps_outputs_and_sqnr(monkeypatch):
    """A 3x3 conv of 128 input channels: the float32 reference runs it as Winograd
    (hwsim.sim.refconv.winograd), within float32 roundoff of the float64 reference: same outputs,
    the same per-layer SQNR to 1e-4 dB."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.sim import refconv

    calls = []
    real = refconv.winograd
    monkeypatch.setattr(refconv, "winograd", lambda *a: calls.append(1) or real(*a))
    g = quantize_graph(hwsim.graph.weights.synthesize_weights(
        hwsim.load_model("conv2d:c=128,h=10,w=10,k=16,r=3,bias=true,batch=2"), 5), "int8", "int8")
    x = np.random.default_rng(5).standard_normal((2, 128, 10, 10)).astype(np.float32)
    cal = {"input": x}  # scales calibrated apart (a reference calibrating them runs in float64)
    r32, r64 = run(g, {"input": x}, calibration=cal), run(g, {"input": x}, calibration=cal, reference_precision="float64")
    assert calls == [1]
    np.testing.assert_array_equal(r32.outputs["conv.out"], r64.outputs["conv.out"])
    np.testing.assert_allclose(r32.reference_outputs["conv.out"], r64.reference_outputs["conv.out"], rtol=1e-5, atol=1e-5)
    for a, b in zip(r32.layers, r64.layers):
        assert abs(a.sqnr_db - b.sqnr_db) < 1e-4
