"""The generic ONNX path (non-MAC standard ops through shape inference + the ONNX definition),
control flow decided by input values, and input-shape binding (--shape NAME=AxB, -1, '?')."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

from hwsim.cli import main
from hwsim.cost import estimate
from hwsim.cost.ops_cost import CONTROL_FLOW_NOTE
from hwsim.errors import ShapeError, UnsupportedOpError
from hwsim.graph.onnx import load_onnx
from hwsim.sim import run


def _save(model, tmp_path, name="m.onnx") -> str:
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def _ort(path, feeds):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _assert_close(got, want, rel=1e-4):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    span = max(float(np.ptp(want)) if want.size else 0.0, 1e-12)
    assert np.max(np.abs(got - want), initial=0.0) <= rel * span


def _model(nodes, inputs, outputs, inits=(), opset=18):
    return h.make_model(h.make_graph(nodes, "g", inputs, outputs, list(inits)),
                        opset_imports=[h.make_opsetid("", opset)])


def test_generic_ops_match_onnxruntime(tmp_path):
    rng = np.random.default_rng(0)
    x = h.make_tensor_value_info("x", TP.FLOAT, [1, 3, 6, 8])
    outs = [h.make_empty_tensor_value_info(n) for n in ("sel", "pad", "up", "lin", "gnd", "topv", "topi", "nan")]
    nodes = [
        h.make_node("Floor", ["x"], ["fl"]),
        h.make_node("Equal", ["fl", "zero"], ["eq"]),
        h.make_node("Greater", ["x", "zero"], ["gt"]),
        h.make_node("And", ["eq", "gt"], ["both"]),
        h.make_node("Where", ["both", "x", "neg"], ["sel"]),  # run-time condition
        h.make_node("Pad", ["x", "pads", "padv"], ["pad"], mode="constant"),
        h.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest"),
        h.make_node("Resize", ["x", "", "", "sizes"], ["lin"], mode="linear",
                    coordinate_transformation_mode="half_pixel"),
        h.make_node("GatherND", ["x", "idx"], ["gnd"]),
        h.make_node("LeakyRelu", ["x"], ["lr"], alpha=0.1),
        h.make_node("TopK", ["lr", "k"], ["topv", "topi"], axis=-1),
        h.make_node("Div", ["x", "zero"], ["inf"]),
        h.make_node("Sub", ["inf", "inf"], ["maybe_nan"]),
        h.make_node("IsNaN", ["maybe_nan"], ["nan"]),
    ]
    inits = [nh.from_array(np.float32(0), "zero"), nh.from_array(np.float32(-1), "neg"),
             nh.from_array(np.array([0, 0, 1, 2, 0, 0, 1, 2], np.int64), "pads"), nh.from_array(np.float32(0.5), "padv"),
             nh.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             nh.from_array(np.array([1, 3, 9, 13], np.int64), "sizes"),
             nh.from_array(np.array([[0, 1], [0, 2]], np.int64), "idx"), nh.from_array(np.array([3], np.int64), "k")]
    path = _save(_model(nodes, [x], outs, inits), tmp_path)
    feed = {"x": (rng.standard_normal((1, 3, 6, 8)) * 2).astype(np.float32)}
    feed["x"][0, 0, 0, :3] = 0.0
    g = load_onnx(path, {})
    assert {o.op_type for o in g.ops() if o.op == "onnx"} >= {"Equal", "Where", "Pad", "Resize", "GatherND", "TopK",
                                                             "IsNaN", "And", "Floor"}
    res = run(g, feed)
    want = _ort(path, feed)
    for name, ref in want.items():
        _assert_close(res.output_values[name], ref)
    rep = estimate(g, "int8-npu")
    assert rep.total.latency_s > 0 and {r.op for r in rep.layers} >= {"onnx"}


@pytest.mark.parametrize("mode,ctm,nearest", [
    ("nearest", "asymmetric", "floor"), ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "align_corners", "round_prefer_ceil"), ("linear", "align_corners", ""),
    ("linear", "pytorch_half_pixel", ""), ("linear", "asymmetric", ""), ("linear", "half_pixel_symmetric", "")])
def test_resize_numpy_path_matches_onnxruntime(tmp_path, mode, ctm, nearest):
    x = h.make_tensor_value_info("x", TP.FLOAT, [1, 2, 5, 7])
    kw = {"nearest_mode": nearest} if nearest else {}
    node = h.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode, coordinate_transformation_mode=ctm, **kw)
    inits = [nh.from_array(np.array([1, 1, 2.5, 1.5], np.float32), "scales")]
    path = _save(_model([node], [x], [h.make_empty_tensor_value_info("y")], inits, opset=19), tmp_path)
    feed = {"x": np.random.default_rng(1).standard_normal((1, 2, 5, 7)).astype(np.float32)}
    _assert_close(run(load_onnx(path, {}), feed).output_values["y"], _ort(path, feed)["y"], rel=1e-6)


def _vad_like(with_mac_in_branch: bool = True):
    """If on Equal(sr, 16000): then = Conv-free scaling by 2 or a MatMul (a MAC op) by a weight."""
    x = h.make_tensor_value_info("x", TP.FLOAT, [1, 4])
    sr = h.make_tensor_value_info("sr", TP.INT64, [])
    then_nodes = [h.make_node("MatMul", ["x", "w"], ["t_out"])] if with_mac_in_branch else \
        [h.make_node("Mul", ["x", "two"], ["t_out"])]
    then_g = h.make_graph(then_nodes, "then", [], [h.make_tensor_value_info("t_out", TP.FLOAT, None)])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e_out"])], "else", [],
                          [h.make_tensor_value_info("e_out", TP.FLOAT, None)])
    nodes = [h.make_node("Equal", ["sr", "k16"], ["is16"]),
             h.make_node("If", ["is16"], ["y"], name="by_rate", then_branch=then_g, else_branch=else_g)]
    inits = [nh.from_array(np.int64(16000), "k16"), nh.from_array(np.eye(4, dtype=np.float32) * 3, "w"),
             nh.from_array(np.float32(2), "two")]
    return _model(nodes, [x, sr], [h.make_tensor_value_info("y", TP.FLOAT, None)], inits)


def test_if_on_an_input_value_runs_the_taken_branch(tmp_path):
    path = _save(_vad_like(), tmp_path)
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    with pytest.raises(UnsupportedOpError, match=r"If \(node 'by_rate'\).*graph input\(s\) \['sr'\]"):
        load_onnx(path, {})  # never silently picks a branch
    for rate in (16000, 8000):
        feed = {"x": x, "sr": np.array(rate, np.int64)}
        g = load_onnx(path, {}, values=feed)
        assert any("specialized" in n for n in g.notes)
        assert g.total_macs == (4 * 4 if rate == 16000 else 0)
        np.testing.assert_allclose(run(g, feed).output_values["y"], _ort(path, feed)["y"])
        with pytest.raises(Exception, match="sr"):  # a different value than the one it was specialized to
            run(g, {"x": x, "sr": np.array(24000 - rate, np.int64)})


def test_if_decided_at_run_time_without_macs_runs_generically(tmp_path):
    path = _save(_vad_like(with_mac_in_branch=False), tmp_path)
    g = load_onnx(path, {})
    assert [o.op_type for o in g.ops() if o.op == "onnx"] == ["Equal", "If"]
    for rate in (16000, 8000):
        feed = {"x": np.ones((1, 4), np.float32), "sr": np.array(rate, np.int64)}
        np.testing.assert_allclose(run(g, feed).output_values["y"], _ort(path, feed)["y"])


def test_cli_takes_control_values_and_shapes_from_inputs(tmp_path, capsys):
    path = _save(_vad_like(), tmp_path)
    npz = str(tmp_path / "in.npz")
    np.savez(npz, x=np.ones((1, 4), np.float32), sr=np.array(16000, np.int64))
    for cmd in (["simulate", path, "--inputs", npz], ["summary", path, "--inputs", npz],
                ["estimate", path, "--target", "int8-npu", "--inputs", npz]):
        assert main(cmd) == 0, cmd
    assert main(["summary", path]) == 2
    assert "sr" in capsys.readouterr().err


def _dyn_input(dims):
    x = h.make_tensor_value_info("x", TP.FLOAT, dims)
    return _model([h.make_node("Relu", ["x"], ["y"])], [x], [h.make_tensor_value_info("y", TP.FLOAT, None)])


def test_paddle_minus_one_and_question_mark_dims_are_dynamic(tmp_path):
    m = _dyn_input([-1, 3, "?", "?"])
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    path = _save(m, tmp_path)
    with pytest.raises(ShapeError, match=r"'x\.0'.*the whole input as x=Nx3xNxN"):
        load_onnx(path, {})
    g = load_onnx(path, {"x": (1, 3, 48, 192)})
    assert g.tensors["x"].shape == (1, 3, 48, 192)
    g = load_onnx(path, {"x.0": 2, "x.2": 48, "x.3": 192})
    assert g.tensors["x"].shape == (2, 3, 48, 192)
    with pytest.raises(ShapeError, match="declares"):
        load_onnx(path, {"x": (1, 4, 48, 192)})  # the static 3 does not match
    g = load_onnx(path, {}, values={"x": np.zeros((1, 3, 8, 16), np.float32)})
    assert g.tensors["x"].shape == (1, 3, 8, 16)


def test_cli_shape_binds_a_whole_input(tmp_path, capsys):
    path = _save(_dyn_input(["?", 3, "?", "?"]), tmp_path)
    assert main(["summary", path, "--all", "--shape", "x=1x3x48x192"]) == 0
    assert "1x3x48x192" in capsys.readouterr().out


def test_loop_without_macs_runs_generically_with_a_macs_body_refused(tmp_path):
    body = h.make_graph([h.make_node("Add", ["acc_in", "x"], ["acc_out"]), h.make_node("Identity", ["cond_in"], ["cond_out"])],
                        "body", [h.make_tensor_value_info("i", TP.INT64, []), h.make_tensor_value_info("cond_in", TP.BOOL, []),
                                 h.make_tensor_value_info("acc_in", TP.FLOAT, [2, 3])],
                        [h.make_tensor_value_info("cond_out", TP.BOOL, []), h.make_tensor_value_info("acc_out", TP.FLOAT, [2, 3])])
    nodes = [h.make_node("Loop", ["n", "", "zeros"], ["acc"], name="sum_n", body=body)]
    ins = [h.make_tensor_value_info("x", TP.FLOAT, [2, 3]), h.make_tensor_value_info("n", TP.INT64, [])]
    model = _model(nodes, ins, [h.make_tensor_value_info("acc", TP.FLOAT, [2, 3])],
                   [nh.from_array(np.zeros((2, 3), np.float32), "zeros")])
    path = _save(model, tmp_path)
    feed = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(4, np.int64)}
    g = load_onnx(path, {}, values=feed)
    assert [o.op_type for o in g.ops() if o.op == "onnx"] == ["Loop"]
    np.testing.assert_allclose(run(g, feed).output_values["acc"], _ort(path, feed)["acc"])
    report = estimate(g, "int8-npu")  # its body's work (n adds) is not priced: the report says so
    assert [r.note for r in report.layers if r.name == "sum_n"] == [CONTROL_FLOW_NOTE]
    assert any("priced by their outputs only" in n and "sum_n" in n for n in report.notes)
    model.graph.node[0].attribute[0].g.node[0].op_type = "MatMul"  # a MAC op in the body: hwsim cannot price its trip count's work
    path = _save(model, tmp_path, "mm.onnx")
    with pytest.raises(UnsupportedOpError, match=r"Loop \(node 'sum_n'\).*MatMul"):
        load_onnx(path, {}, values=feed)


def test_an_unknown_op_in_the_untaken_branch_does_not_matter(tmp_path):
    x = h.make_tensor_value_info("x", TP.FLOAT, [2])
    odd = h.make_graph([h.make_node("Mystery", ["x"], ["t"], domain="my.domain")], "odd", [],
                       [h.make_tensor_value_info("t", TP.FLOAT, None)])
    ok = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "ok", [], [h.make_tensor_value_info("e", TP.FLOAT, None)])
    flag = h.make_tensor_value_info("flag", TP.BOOL, [])
    model = h.make_model(h.make_graph([h.make_node("If", ["flag"], ["y"], name="pick", then_branch=odd, else_branch=ok)],
                                      "g", [x, flag], [h.make_tensor_value_info("y", TP.FLOAT, None)]),
                         opset_imports=[h.make_opsetid("", 18), h.make_opsetid("my.domain", 1)])
    path = _save(model, tmp_path)
    feed = {"x": np.array([1.0, -2.0], np.float32), "flag": np.array(False)}
    g = load_onnx(path, {}, values=feed)
    np.testing.assert_allclose(run(g, feed).output_values["y"], [-1.0, 2.0])
    with pytest.raises(UnsupportedOpError, match=r"my.domain.Mystery \(node '.*' in If 'pick' then_branch\)"):
        load_onnx(path, {}, values={**feed, "flag": np.array(True)})


def test_value_dependent_shapes_are_imported_for_the_given_inputs(tmp_path):
    x = h.make_tensor_value_info("x", TP.FLOAT, [3, 4])
    nodes = [h.make_node("Greater", ["x", "zero"], ["pos"]), h.make_node("NonZero", ["pos"], ["idx"], name="nz"),
             h.make_node("Transpose", ["idx"], ["idx_t"], perm=[1, 0]), h.make_node("GatherND", ["x", "idx_t"], ["vals"]),
             h.make_node("Relu", ["vals"], ["y"])]
    path = _save(_model(nodes, [x], [h.make_tensor_value_info("y", TP.FLOAT, None)],
                        [nh.from_array(np.float32(0), "zero")]), tmp_path)
    feed = {"x": np.array([[1, -2, 3, 0], [-1, 5, 6, -7], [0, 0, 2, 1]], np.float32)}
    with pytest.raises(UnsupportedOpError, match=r"NonZero \(node 'nz'\).*depends on run-time values"):
        load_onnx(path, {})
    g = load_onnx(path, {}, values=feed)
    assert g.tensors["y"].shape == (6,) and any("NonZero 'nz'" in n for n in g.notes)
    np.testing.assert_allclose(run(g, feed).output_values["y"], _ort(path, feed)["y"])
    with pytest.raises(Exception, match="imported for"):
        run(g, {"x": -feed["x"]})  # another count of positives: refused, not mis-shaped


def test_cli_shape_repeated_binds_every_name_and_a_conflict_is_refused(tmp_path, capsys):
    """--shape given twice binds both (it used to keep only the last); one name bound to two values
    is refused, not silently resolved."""
    path = _save(_dyn_input(["n", 3, "h", "w"]), tmp_path)
    assert main(["summary", path, "--all", "--shape", "n=1,h=48", "--shape", "w=192"]) == 0
    assert "1x3x48x192" in capsys.readouterr().out
    assert main(["summary", path, "--shape", "n=1,h=48,w=192", "--shape", "h=32"]) == 2
    assert "binds 'h' twice, to 48 and 32" in capsys.readouterr().err
