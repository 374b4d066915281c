"""``ort_activations`` (``--ort-activations``): float32 Sigmoid and Tanh ops as onnxruntime computes
them on x86-64 (MLAS's rational approximations, :mod:`hwsim.sim.mlas_math`), against onnxruntime.

Found by the public-model corpus (text2tashkeel's bilstm.int8, 2026-11-27): a float32 Tanh after
its LSTMs came out one ulp from onnxruntime's in 55% of its values, which moved two codes of the
DynamicQuantizeLinear after it and 29 of the 360 logits by up to 4.3e-4 of their range.
"""

import platform
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main
from hwsim.graph.onnx import load_onnx
from hwsim.sim import run

x86 = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                         reason="mlas_math models MLAS's x86-64 kernels")


def _model(path):
    """x -> Tanh -> t, x -> Sigmoid -> s, and x -> QuantizeLinear -> DequantizeLinear -> Tanh -> q
    (a coded input: the simulator's 256-entry table path)."""
    nodes = [helper.make_node("Tanh", ["x"], ["t"]), helper.make_node("Sigmoid", ["x"], ["s"]),
             helper.make_node("QuantizeLinear", ["x", "sc", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sc", "zp"], ["xd"]),
             helper.make_node("Tanh", ["xd"], ["q"])]
    shape = [4, 4096]
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "sc"), numpy_helper.from_array(np.array(3, np.int8), "zp")]
    g = helper.make_graph(nodes, "acts", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "tsq"], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    onnx.save(m, path)
    return path


def _ort(path, x, names="tsq"):
    """onnxruntime's outputs ``names`` (one-letter output names) of the model at ``path`` on input
    ``x``, at ORT_DISABLE_ALL (Q -> DQ -> op run literally)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return dict(zip(names, sess.run(list(names), {"x": x})))


def _x(seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(8192) * 3, rng.uniform(-12, 12, 8192)]).astype(np.float32)
    return x.reshape(4, 4096)


@x86
def test_ort_activations_bit_exact_with_onnxruntime(tmp_path):
    path = _model(tmp_path / "a.onnx")
    x = _x()
    want = _ort(path, x)
    g = load_onnx(path, {})
    got = run(g, {"x": x}, ort_activations=True).outputs
    for n in "tsq":
        np.testing.assert_array_equal(got[n], want[n], err_msg=n)


def test_default_is_the_float64_function_rounded_once(tmp_path):
    """Without the option each value is float64 tanh / sigmoid rounded to float32, which differs
    from onnxruntime's approximation in many values (so the option is not a no-op)."""
    path = _model(tmp_path / "a.onnx")
    x = _x(1)
    g = load_onnx(path, {})
    got = run(g, {"x": x}).outputs
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(got["t"], np.tanh(x64).astype(np.float32))
    np.testing.assert_allclose(got["s"], (1 / (1 + np.exp(-x64))).astype(np.float32), rtol=2e-7, atol=0)
    ort_t = run(g, {"x": x}, ort_activations=True).outputs["t"]
    assert (ort_t != got["t"]).mean() > 0.1
    np.testing.assert_allclose(ort_t, got["t"], rtol=1e-6, atol=1e-7)  # a few ulps apart, no more


@x86
def test_cli_simulate_ort_activations(tmp_path):
    path = _model(tmp_path / "a.onnx")
    x = _x(2)
    np.savez(tmp_path / "in.npz", x=x)
    want = _ort(path, x)
    args = ["simulate", str(path), "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "a.npz"),
            "--ort-activations"]
    assert main(args) == 0
    for n in "tsq":
        np.testing.assert_array_equal(np.load(tmp_path / "a.npz")[n], want[n], err_msg=n)
    proc = subprocess.run([sys.executable, "-m", "hwsim", *args[:-1]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (np.load(tmp_path / "a.npz")["t"] != want["t"]).any()


# ------------------------------------------------------------------ a tensor read both quantized and as it is
def test_tensor_read_quantized_and_float(tmp_path):
    """Q -> DQ placed on one reader of a tensor only, as explicit-quantization tools place them
    (TensorRT-style QDQ from NVIDIA's pytorch-quantization / ModelOpt: on a conv's or matmul's
    input, while a residual Add reads the tensor as it is). Until 2026-11-27 the import folded the
    pair into a QuantSpec on the tensor itself, so the Add read quantized values (a wrong number,
    silently). onnxruntime's own quantize_static moves every reader behind the DequantizeLinear, so
    the model is written here."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (64, 32)).astype(np.int8)
    c = rng.standard_normal((8, 64)).astype(np.float32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["y"]), helper.make_node("Add", ["x", "c"], ["z"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(c, "c"),
             numpy_helper.from_array(np.array(0.03, np.float32), "sx"), numpy_helper.from_array(np.array(5, np.uint8), "zx"),
             numpy_helper.from_array(np.array(0.01, np.float32), "sw")]
    g = helper.make_graph(nodes, "part", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 32]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [8, 64])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    onnx.save(m, tmp_path / "q.onnx")
    x = rng.standard_normal((8, 64)).astype(np.float32) * 2
    want = _ort(tmp_path / "q.onnx", x, "yz")
    got = run(load_onnx(tmp_path / "q.onnx", {}), {"x": x}).outputs
    np.testing.assert_array_equal(got["z"], want["z"])  # the float Add: x + c exactly
    np.testing.assert_allclose(got["y"], want["y"], rtol=0, atol=1e-6 * np.abs(want["y"]).max())


def test_quantized_graph_output_beside_a_float_reader(tmp_path):
    """``x -> Relu -> r``; ``r -> Q -> DQ -> graph output o`` and ``r -> Tanh -> graph output t``:
    the output takes the quantized values and Tanh the float ones (the import gives a folded pair's
    output name to the producer only where nothing else reads the producer's output)."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
             helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["o"]), helper.make_node("Tanh", ["r"], ["t"])]
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "z")]
    g = helper.make_graph(nodes, "out", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 256])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 256]) for n in "ot"], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    onnx.save(m, tmp_path / "o.onnx")
    x = np.random.default_rng(4).standard_normal((4, 256)).astype(np.float32) * 2
    want = _ort(tmp_path / "o.onnx", x, "ot")
    got = run(load_onnx(tmp_path / "o.onnx", {}), {"x": x}).outputs
    np.testing.assert_array_equal(got["o"], want["o"])
    np.testing.assert_array_equal(got["t"], np.tanh(np.maximum(x, 0).astype(np.float64)).astype(np.float32))
    assert len(np.unique(got["t"])) > 300  # not the ~150 values of the quantized grid


def test_requant_onnxruntime_notes_the_activations(tmp_path, capsys):
    """Asked for onnxruntime's arithmetic (``--requant onnxruntime``) without ``--ort-activations``,
    simulate says that its float32 Sigmoid / Tanh are not onnxruntime's, naming the option."""
    path = _model(tmp_path / "a.onnx")
    np.savez(tmp_path / "in.npz", x=_x(3))
    assert main(["simulate", str(path), "--inputs", str(tmp_path / "in.npz"), "--requant", "onnxruntime"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime approximates them" in out and "[--ort-activations]" in out
    assert main(["simulate", str(path), "--inputs", str(tmp_path / "in.npz"), "--requant", "onnxruntime",
                 "--ort-activations"]) == 0
    assert "onnxruntime approximates them" not in capsys.readouterr().out


class _Reader:
    def __init__(self):
        rng = np.random.default_rng(3)
        self.data = iter([{"x": rng.standard_normal((8, 64)).astype(np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self.data, None)


@pytest.mark.parametrize("rename", [False, True])
def test_dedicated_qdq_pairs_still_fold(tmp_path, rename):
    """onnxruntime's ``DedicatedQDQPair`` gives each reader of a tensor its own Q -> DQ pair with
    the same scale and zero point (``rename``: as separate constants of equal values): every reader
    reads the quantized tensor, so the pairs fold into one QuantSpec (no explicit quantize op) and
    the outputs stay bit-exact with onnxruntime at ORT_DISABLE_ALL."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["x", "y"], ["z"])]
    g = helper.make_graph(nodes, "pairs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [8, 64])], [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    onnx.save(m, tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), _Reader(), quant_format=QuantFormat.QDQ,
                    extra_options={"DedicatedQDQPair": True})
    q = onnx.load(tmp_path / "q.onnx")
    pairs = [n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x"]
    assert len(pairs) == 2  # the pattern under test, as the quantizer writes it
    if rename:  # the second pair reads its own copies of the scale and zero point
        inits = {t.name: t for t in q.graph.initializer}
        for k in (1, 2):
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[pairs[1].input[k]])
            copy.name = pairs[1].input[k] + "_copy"
            q.graph.initializer.append(copy)
            dq = next(n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == pairs[1].output[0])
            dq.input[k] = pairs[1].input[k] = copy.name
        onnx.save(q, tmp_path / "q.onnx")
    graph = load_onnx(tmp_path / "q.onnx", {})
    assert not [op for op in graph.ops() if op.op == "quantize"], [op.name for op in graph.ops()]
    assert graph.tensors["x"].quant.format != "fp32"
    x = rng.standard_normal((8, 64)).astype(np.float32)
    want = _ort(tmp_path / "q.onnx", x, "z")["z"]
    np.testing.assert_array_equal(run(graph, {"x": x}).outputs["z"], want)
