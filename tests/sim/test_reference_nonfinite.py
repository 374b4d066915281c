"""A float reference that overflows is said, never left as silent ``nan`` SQNR figures.

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
