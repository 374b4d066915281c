"""``run(reference_graph=...)`` / ``simulate --reference-model``: metrics against the float model a
QDQ file was quantized from, matched by tensor name, instead of the QDQ graph run without its
quantizers (which lacks the Relus and Clips onnxruntime's ``quantize_static`` removes).

The oracle is onnxruntime: the float model's outputs as onnxruntime computes them, and the output
SQNR of onnxruntime's own QDQ run against them (hwsim's outputs are bit-exact with it)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.errors import ConfigError, ShapeError
from hwsim.graph.onnx import load_onnx
from hwsim.sim import run
from hwsim.sim import refblas
from tests.sim.test_reference_notes import _conv_relu_conv

X = {"x": np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)}


def _ort(path, feeds):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _sqnr(ref, y):
    ref, y = np.asarray(ref, np.float64), np.asarray(y, np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - y) ** 2))


@pytest.fixture(params=["beside", "sequential"])
def mode(request, monkeypatch):
    """The reference on a thread of its own beside the quantized run (2+ cores), or before it."""
    if request.param == "sequential":
        monkeypatch.setattr(refblas, "threads_at_once", lambda: 1)
    else:
        monkeypatch.setattr(refblas, "threads_at_once", lambda: 2)
    return request.param


def test_the_float_model_restores_the_removed_relu(tmp_path, mode):
    g = _conv_relu_conv(tmp_path, keep=False)
    f = load_onnx(str(tmp_path / "f.onnx"), {})
    own = run(g, X)
    res = run(g, X, reference_graph=f)
    assert np.array_equal(res.outputs["y"], own.outputs["y"])  # the simulation is the same
    assert not any("cannot hold negative values" in n for n in res.notes), res.notes
    conv1 = res.layers[0]
    assert conv1.name == own.layers[0].name and own.layers[0].sqnr_db < 10 < 25 < conv1.sqnr_db
    # the reference is the float model as onnxruntime runs it, and the output SQNR is onnxruntime's own
    want = _ort(tmp_path / "f.onnx", X)["y"]
    np.testing.assert_allclose(res.reference_outputs["y"], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    ort_sqnr = _sqnr(want, _ort(tmp_path / "q.onnx", X)["y"])
    out = next(e for e in res.layers if e.name == g.op(g.producer("y")).name)
    assert abs(out.sqnr_db - ort_sqnr) < 0.01, (out.sqnr_db, ort_sqnr)
    assert abs(out.sqnr_db - own.layers[-1].sqnr_db) > 1  # not what the QDQ graph's own reference says
    assert res.memory.reference_bytes > 0


def _model(path, nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return load_onnx(str(path), {})


def test_a_model_on_other_inputs_or_without_the_outputs_is_refused(tmp_path):
    g = _conv_relu_conv(tmp_path, keep=False)
    other_input = _model(tmp_path / "a.onnx", [helper.make_node("Relu", ["z"], ["y"])], [("z", [2, 2, 8, 8])],
                         [("y", [2, 2, 8, 8])])
    with pytest.raises(ShapeError, match="reads input 'z', which"):
        run(g, X, reference_graph=other_input)
    other_shape = _model(tmp_path / "b.onnx", [helper.make_node("Relu", ["x"], ["y"])], [("x", [2, 3, 8, 4])],
                         [("y", [2, 3, 8, 4])])
    with pytest.raises(ShapeError, match=r"input 'x' is \(2, 3, 8, 8\) in .* and \(2, 3, 8, 4\)"):
        run(g, X, reference_graph=other_shape)
    no_output = _model(tmp_path / "c.onnx", [helper.make_node("Relu", ["x"], ["r"])], [("x", [2, 3, 8, 8])],
                       [("r", [2, 3, 8, 8])])
    with pytest.raises(ShapeError, match="computes no tensor 'y'"):
        run(g, X, reference_graph=no_output)
    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    wrong_shape = _model(tmp_path / "d.onnx", [helper.make_node("Conv", ["x", "w"], ["r1"]),
                                               helper.make_node("Identity", ["r1"], ["y"])],
                         [("x", [2, 3, 8, 8])], [("y", [2, 2, 8, 8])], [w])
    with pytest.raises(ShapeError, match="tensor 'r1' is"):
        run(g, X, reference_graph=wrong_shape)
    with pytest.raises(ConfigError, match="reference graph"):
        run(g, X, reference_graph=load_onnx(str(tmp_path / "f.onnx"), {}), float_reference=False)


def test_ops_the_reference_lacks_get_no_figure_and_a_note(tmp_path):
    """A float model computing the same outputs under other inner names: the ops it cannot match
    are counted and named, never compared with something else."""
    g = _conv_relu_conv(tmp_path, keep=False)
    m = onnx.load(str(tmp_path / "f.onnx"))
    for node in m.graph.node:  # rename the inner tensors c1 / r1
        node.input[:] = [{"c1": "k1", "r1": "s1"}.get(n, n) for n in node.input]
        node.output[:] = [{"c1": "k1", "r1": "s1"}.get(n, n) for n in node.output]
    onnx.save(m, tmp_path / "renamed.onnx")
    res = run(g, X, reference_graph=load_onnx(str(tmp_path / "renamed.onnx"), {}))
    assert [e.op for e in res.layers] == ["conv2d"] and res.layers[0].name == g.op(g.producer("y")).name
    notes = [n for n in res.notes if "no tensor of the same name in the reference model" in n]
    assert len(notes) == 1 and notes[0].startswith("1 of 2 ops") and f"'{g.op(g.producer('r1')).name}'" in notes[0]


def test_a_dequantized_constant_compares_with_the_float_constant(tmp_path):
    """quantize_static names the dequantized copy of a constant NAME NAME_DequantizeLinear_Output:
    its error is the constant's own quantization error."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    c = np.linspace(-1, 2, 16, dtype=np.float32).reshape(1, 16)
    _model(tmp_path / "f.onnx", [helper.make_node("Mul", ["x", "c"], ["y"])], [("x", [4, 16])], [("y", [4, 16])],
           [numpy_helper.from_array(c, "c")])
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{"x": rng.standard_normal((4, 16)).astype(np.float32)}])

        def get_next(self):
            return next(self.data, None)

    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    g = load_onnx(str(tmp_path / "q.onnx"), {})
    dq = [o for o in g.ops() if o.outputs[0] == "c_DequantizeLinear_Output"]
    assert len(dq) == 1, [o.outputs for o in g.ops()]
    res = run(g, {"x": rng.standard_normal((4, 16)).astype(np.float32)},
              reference_graph=load_onnx(str(tmp_path / "f.onnx"), {}))
    err = next(e for e in res.layers if e.name == dq[0].name)
    got = res.reference.values["c"]
    assert np.array_equal(got, c.astype(np.float64))
    want_mse = float(np.mean((_dequantized(tmp_path / "q.onnx", "c") - c.astype(np.float64)) ** 2))
    assert want_mse > 0 and err.mse == pytest.approx(want_mse, rel=1e-12)
    assert not any("no tensor of the same name" in n for n in res.notes), res.notes


def _dequantized(path, name):
    """The float32 values of ``name``'s DequantizeLinear in the QDQ file, by onnxruntime."""
    m = onnx.load(str(path))
    m.graph.output.append(helper.make_tensor_value_info(f"{name}_DequantizeLinear_Output", TensorProto.FLOAT, None))
    x = next(i for i in m.graph.input)
    feeds = {x.name: np.zeros([d.dim_value for d in x.type.tensor_type.shape.dim], np.float32)}
    onnx.save(m, str(path) + ".out.onnx")
    return _ort(str(path) + ".out.onnx", feeds)[f"{name}_DequantizeLinear_Output"].astype(np.float64)


def test_cli_reference_model(tmp_path, capsys):
    from hwsim.cli import main

    _conv_relu_conv(tmp_path, keep=False)
    np.savez(tmp_path / "in.npz", **X)
    args = ["simulate", str(tmp_path / "q.onnx"), "--inputs", str(tmp_path / "in.npz"), "--requant", "onnxruntime"]
    assert main(args) == 0
    own = capsys.readouterr().out
    assert "cannot hold negative values" in own and "--reference-model FLOAT.onnx" in own
    assert main(args + ["--reference-model", str(tmp_path / "f.onnx"), "--report-json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "cannot hold negative values" not in out
    import json

    layers = json.loads((tmp_path / "r.json").read_text())["layers"]
    assert layers[0]["sqnr_db"] > 25
    assert main(args + ["--reference-model", str(tmp_path / "f.onnx"), "--no-reference"]) != 0
    assert "--reference-model names the float model" in capsys.readouterr().err
