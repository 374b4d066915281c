"""Where the float reference is not the float model, simulate says so, never leaving silent figures.

Clamps: a quantizer that cannot hold negative values on a conv's output is what onnxruntime's
``quantize_static`` leaves where it removed a Relu (its default); the reference then lacks the Relu.

Overflow: a float reference that overflows is said, never left as silent ``nan`` SQNR figures.

A QDQ model's float reference is the graph run with its quantizers taken out. onnxruntime's
``quantize_static`` drops each Clip and Relu whose range a QuantizeLinear clamps anyway (PP-OCRv4's
recogniser loses all 28 Clips of its hard-swishes), so that graph is not the float model and can
overflow while the simulation, clamped by its quantizers, stays finite. Here: ten squarings, each
followed by a uint8 quantizer of range [0, 6]."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwsim.graph.onnx import load_onnx
from hwsim.sim import run
from hwsim.sim.metrics import reference_nonfinite_note
from hwsim.sim.runner import LayerError


def _squarings(tmp_path, n=10, top=6.0):
    nodes, inits = [], [numpy_helper.from_array(np.array(top / 255, np.float32), "s"),
                        numpy_helper.from_array(np.array(0, np.uint8), "z")]
    h = "x"
    for i in range(n + 1):
        nodes += [helper.make_node("QuantizeLinear", [h, "s", "z"], [f"q{i}"]),
                  helper.make_node("DequantizeLinear", [f"q{i}", "s", "z"], [f"d{i}"])]
        h = f"d{i}"
        if i < n:
            nodes.append(helper.make_node("Mul", [h, h], [f"m{i}"]))
            h = f"m{i}"
    nodes.append(helper.make_node("Identity", [h], ["y"]))
    graph = helper.make_graph(nodes, "squarings", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "sq.onnx")
    return load_onnx(str(tmp_path / "sq.onnx"), {})


def test_overflowing_reference_is_said_naming_the_first_op(tmp_path):
    g = _squarings(tmp_path)
    x = np.full((4, 8), 5.0, np.float32)  # 5 ** (2 ** 10) overflows float64; the quantizers clamp at 6
    res = run(g, {"x": x})
    assert np.isfinite(res.outputs["y"]).all()
    notes = [n for n in res.notes if n.startswith("the float reference is NaN or inf")]
    assert len(notes) == 1, res.notes
    first = next(e for e in res.layers if not np.isfinite(e.mse))
    assert f"'{first.name}'" in notes[0] and "quantize_static drops each Clip or Relu" in notes[0]
    assert all(np.isfinite(e.mse) for e in res.layers[:res.layers.index(first)])


def test_finite_reference_has_no_such_note(tmp_path):
    g = _squarings(tmp_path)
    res = run(g, {"x": np.full((4, 8), 0.9, np.float32)})  # 0.9 ** 1024: small, finite
    assert all(np.isfinite(e.mse) for e in res.layers)
    assert not any(n.startswith("the float reference is NaN or inf") for n in res.notes)


def test_simulated_nonfinite_values_are_not_blamed_on_the_reference():
    layers = [LayerError("a", "binary", 40.0, 1e-3), LayerError("b", "binary", float("nan"), float("inf")),
              LayerError("c", "binary", float("nan"), float("nan"))]
    assert reference_nonfinite_note(layers, {"b", "c"}) is None
    note = reference_nonfinite_note(layers, {"b"})
    assert note.startswith("the float reference is NaN or inf from binary 'c' on (1 of 3 ops")
    note = reference_nonfinite_note([None, *layers], set())
    assert "from binary 'b' on (2 of 4 ops" in note


def _conv_relu_conv(tmp_path, keep: bool):
    """A float Conv -> Relu -> Conv model quantized by quantize_static (QDQ u8/s8), with or without
    onnxruntime's ``QDQKeepRemovableActivations``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3, "w1"),
             numpy_helper.from_array(rng.standard_normal((2, 4, 3, 3)).astype(np.float32) * 0.3, "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "crc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "f.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self.data, None)

    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    extra_options={"QDQKeepRemovableActivations": keep})
    return load_onnx(str(tmp_path / "q.onnx"), {})


def test_removed_relu_is_said_and_keeping_it_needs_no_note(tmp_path):
    x = {"x": np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)}
    removed = run(_conv_relu_conv(tmp_path, keep=False), x)
    assert not any(o.op == "unary" for o in removed.graph.ops())  # quantize_static removed the Relu
    notes = [n for n in removed.notes if "cannot hold negative values" in n]
    assert len(notes) == 1 and notes[0].startswith("1 activation quantizers") and "conv2d '" in notes[0], removed.notes
    assert "QDQKeepRemovableActivations" in notes[0]
    assert removed.layers[0].sqnr_db < 10  # the clamp counted as error: half the values
    (tmp_path / "k").mkdir()
    kept = run(_conv_relu_conv(tmp_path / "k", keep=True), x)
    assert not any("cannot hold negative values" in n for n in kept.notes), kept.notes
    relu = next(e for e in kept.layers if e.op == "unary")
    assert relu.sqnr_db > 25  # against the float model's Relu


def test_symmetric_or_signed_quantizers_are_not_clamps():
    from hwsim.graph.quant import QuantSpec

    class _G:  # a conv whose output quantizer is int8 with zero point 0, or uint8 at 7
        def __init__(self, spec):
            self.op = type("Op", (), {"op": "conv2d", "name": "c", "outputs": ("t",)})()
            self.tensors = {"t": type("T", (), {"quant": spec})()}

        outputs: list = []

        def ops(self):
            return [self.op]

        def consumers(self, name):
            return []

    from hwsim.sim.metrics import clamp_at_zero_note

    assert clamp_at_zero_note(_G(QuantSpec(format="int8", scale=(0.1,), zero_point=(0,)))) is None
    assert clamp_at_zero_note(_G(QuantSpec(format="uint8", scale=(0.1,), zero_point=(7,)))) is None
    assert clamp_at_zero_note(_G(QuantSpec(format="uint8", scale=(0.1,), zero_point=(0,)))) is not None
    assert clamp_at_zero_note(_G(QuantSpec(format="int8", scale=(0.1,), zero_point=(-128,)))) is not None


def test_solve_on_a_quantize_static_file_says_its_reference_lacks_the_relu(tmp_path):
    from hwsim.solve import tables

    _conv_relu_conv(tmp_path, keep=False)
    tb = tables(str(tmp_path / "q.onnx"), "int8-npu", None, "output_mse", None, 2, str(tmp_path / "cache"),
                {"x": (2, 3, 8, 8)})
    notes = [n for n in tb.sensitivity.notes if "cannot hold negative values" in n]
    assert len(notes) == 1 and "the sensitivities compare with a different model" in notes[0], tb.sensitivity.notes
    (tmp_path / "k").mkdir()
    _conv_relu_conv(tmp_path / "k", keep=True)
    tb = tables(str(tmp_path / "k" / "q.onnx"), "int8-npu", None, "output_mse", None, 2, str(tmp_path / "cache2"),
                {"x": (2, 3, 8, 8)})
    assert not any("cannot hold negative values" in n for n in tb.sensitivity.notes), tb.sensitivity.notes
