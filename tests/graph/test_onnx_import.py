"""ONNX import of float models: op kinds, shapes against onnxruntime, exact MACs, errors, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh
from onnx_test_models import cnn, cnn_macs, single, transformer, transformer_macs, transformer_params

from hwsim.cli import main
from hwsim.errors import ConfigError, ShapeError, UnsupportedOpError
from hwsim.graph.onnx import load_onnx
from hwsim.graph.zoo import load_model


def _save(model: onnx.ModelProto, tmp_path, name="m.onnx") -> str:
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def _ort_shapes(path: str, feeds: dict) -> dict[str, tuple]:
    """Every graph output's and intermediate tensor's shape, as onnxruntime computes them."""
    model = onnx.load(path)
    names = [o.name for o in model.graph.output]
    extra = [t for n in model.graph.node for t in n.output if t and t not in names]
    for t in extra:
        model.graph.output.append(h.make_empty_tensor_value_info(t))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    return {o.name: tuple(v.shape) for o, v in zip(sess.get_outputs(), outs)}


def test_cnn_ops_shapes_and_macs(tmp_path):
    path = _save(cnn(), tmp_path)
    g = load_model(path, {"batch": 3})
    assert [o.op for o in g.ops()] == ["conv2d", "batchnorm", "unary", "pool", "conv2d", "unary",
                                       "global_avgpool", "flatten", "linear"]
    assert g.op("relu6").fn == "relu6" and g.op("relu1").fn == "relu"
    assert g.op("conv1").padding == (1, 1, 1, 1) and g.op("conv2").stride == (2, 2)
    ref = _ort_shapes(path, {"x": np.zeros((3, 3, 16, 16), np.float32)})
    for name, shape in ref.items():
        assert g.tensors[name].shape == shape, name
    assert g.total_macs == cnn_macs(3)
    w = onnx.numpy_helper.to_array(next(t for t in onnx.load(path).graph.initializer if t.name == "fc.w"))
    np.testing.assert_array_equal(g.tensors[g.op("fc").inputs[1]].data, w)  # Gemm transB=1: (out, in) as is
    assert g.tensors["c1.b"].role == "bias" and g.tensors["bn.m"].role == "buffer"
    assert g.total_params == 8 * 27 + 8 + 2 * 8 + 16 * 72 + 10 * 16 + 10
    assert g.inputs == ["x"] and g.outputs == ["y"]


def test_transformer_folds_shape_subgraphs_and_matches_ort(tmp_path):
    path = _save(transformer(), tmp_path)
    g = load_onnx(path, {"batch": 2, "sequence": 7})
    kinds = [o.op for o in g.ops()]
    assert kinds.count("linear") == 4 and kinds.count("matmul") == 2 and kinds.count("embedding") == 2
    assert {"softmax", "layernorm", "reduce", "reshape", "transpose"} <= set(kinds)
    assert not {"gather", "concat"} & set(kinds)  # the shape arithmetic was folded away
    assert g.op("q_proj").inputs[2] == "q.b"  # MatMul + bias Add -> linear with bias
    np.testing.assert_array_equal(g.tensors["q.w"].data,
                                  nh.to_array(next(t for t in onnx.load(path).graph.initializer if t.name == "q.w")).T)
    ref = _ort_shapes(path, {"ids": np.zeros((2, 7), np.int64)})
    for name, shape in ref.items():
        if name in g.tensors:
            assert g.tensors[name].shape == shape, name
    assert g.tensors["y"].shape == (2, 7, 16)
    assert g.total_macs == transformer_macs(2, 7)
    assert g.total_params == transformer_params()
    assert g.tensors["ids"].dtype == "int64"


def test_unbound_dim_names_input_dim_and_flag(tmp_path):
    path = _save(transformer(), tmp_path)
    with pytest.raises(ShapeError, match=r"input 'ids' dim 1 \('sequence'\).*shapes as sequence=VALUE"):
        load_onnx(path, {"batch": 1})
    g = load_onnx(path, {"batch": 1, "sequence": 4, "seq_len": 3})  # extra names: a note, not an error
    assert any("seq_len matched no dynamic dim" in n and "batch, sequence" in n for n in g.notes)


def test_unsupported_ops_listed_with_node_names_subgraphs_included(tmp_path):
    x = h.make_tensor_value_info("x", TP.FLOAT, [4, 8])
    inner = h.make_graph([h.make_node("MyOp", ["x"], ["t"], name="inner_custom", domain="my.domain")], "body", [],
                         [h.make_tensor_value_info("t", TP.FLOAT, None)])
    nodes = [h.make_node("TopK", ["x", "k"], ["v", "i"], name="topk", axis=-1),  # generic: fine
             h.make_node("Einsum", ["v", "v", "v"], ["e"], name="einsum", equation="ij,kj,kl->il"),  # no kernel
             h.make_node("Relu", ["e"], ["y"], name="ok"),
             h.make_node("Custom", ["x"], ["c"], name="custom_1", domain="my.domain"),
             h.make_node("ReduceMax", ["x"], ["m"], name="rmax", keepdims=0),
             h.make_node("Greater", ["m", "zero"], ["cond"], name="gt"),
             h.make_node("If", ["cond"], ["w"], name="branch", then_branch=inner, else_branch=inner)]
    model = h.make_model(h.make_graph(nodes, "bad", [x], [h.make_tensor_value_info("y", TP.FLOAT, None),
                                                          h.make_tensor_value_info("c", TP.FLOAT, None),
                                                          h.make_tensor_value_info("w", TP.FLOAT, None)],
                                      [nh.from_array(np.array([3], np.int64), "k"),
                                       nh.from_array(np.float32(0), "zero")]),
                         opset_imports=[h.make_opsetid("", 17), h.make_opsetid("my.domain", 1)])
    path = _save(model, tmp_path)
    with pytest.raises(UnsupportedOpError) as err:
        load_onnx(path, {})
    msg = str(err.value)
    assert msg.startswith("unsupported ONNX ops: Einsum (node 'einsum'): a MAC op")
    assert "my.domain.Custom (node 'custom_1')" in msg
    assert "my.domain.MyOp (node 'inner_custom' in If 'branch' then_branch)" in msg
    assert "TopK" not in msg and "Relu (node 'ok')" not in msg  # generic / downstream of a failed node
    assert ".py" not in msg  # never points pip users to a source file


def test_garbage_and_truncated_files_are_config_errors(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \xff\xfe" * 20)
    with pytest.raises(ConfigError, match="ONNX"):
        load_onnx(junk, {})
    data = cnn().SerializeToString()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="ONNX"):
        load_onnx(cut, {})


def test_gemm_attributes_and_activation_variants(tmp_path):
    rng = np.random.default_rng(3)
    b = nh.from_array(rng.standard_normal((6, 4)).astype(np.float32), "B")  # (K, N), transB=0
    c = nh.from_array(rng.standard_normal((4,)).astype(np.float32), "C")
    nodes = [h.make_node("Gemm", ["x", "B", "C"], ["g"], name="gemm", alpha=0.5, beta=2.0, transA=1),
             h.make_node("HardSigmoid", ["g"], ["hs"], name="hsig", alpha=0.2, beta=0.5),
             h.make_node("Gelu", ["hs"], ["y"], name="gelu", approximate="tanh")]
    model = h.make_model(h.make_graph(nodes, "gemm", [h.make_tensor_value_info("x", TP.FLOAT, [6, 3])],
                                      [h.make_tensor_value_info("y", TP.FLOAT, [3, 4])], [b, c]),
                         opset_imports=[h.make_opsetid("", 20)])
    g = load_onnx(_save(model, tmp_path), {})
    kinds = [(o.op, getattr(o, "fn", None)) for o in g.ops()]
    assert kinds == [("transpose", None), ("linear", None), ("binary", "mul"), ("binary", "add"),
                     ("binary", "mul"), ("binary", "add"), ("unary", "clip"), ("unary", "gelu_tanh")]
    lin = g.op("gemm")
    np.testing.assert_array_equal(g.tensors[lin.inputs[1]].data, nh.to_array(b).T)
    assert len(lin.inputs) == 2  # alpha != 1: the bias is added after the scaling
    assert g.total_macs == 3 * 4 * 6


def test_cli_summary_json_and_subprocess(tmp_path, capsys):
    path = _save(cnn(), tmp_path)
    assert main(["summary", path, "--shape", "batch=2,sequence=128", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["total_macs"] == cnn_macs(2)
    assert main(["summary", path]) == 2
    err = capsys.readouterr().err
    assert "shapes as batch=VALUE" in err and err.rstrip().endswith("[--shape]"), err
    run = subprocess.run([sys.executable, "-m", "hwsim", "summary", path, "--shape", "batch=1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "conv1" in run.stdout and f"{cnn_macs(1):,}" in run.stdout


def test_single_node_identity_output_and_constant_folding(tmp_path):
    x = ("x", TP.FLOAT, [2, 3])
    model = single("Expand", [x], [("y", TP.FLOAT, [2, 3])], [nh.from_array(np.array([2, 3], np.int64), "s")],
                   node_inputs=["x", "s"])
    g = load_onnx(_save(model, tmp_path), {})
    assert [o.op for o in g.ops()] == ["unary"] and g.outputs == ["y"]  # Expand to its own shape aliases


_I = lambda name, v: nh.from_array(np.asarray(v, np.int64), name)  # noqa: E731
_SINGLE_OPS = [  # (op type, attributes, constant inputs, input shape, opset)
    ("Flatten", {"axis": -1}, [], (2, 3, 4, 5), 17),
    ("Flatten", {"axis": 0}, [], (2, 3, 4), 17),
    ("Squeeze", {}, [_I("axes", [1, -1])], (2, 1, 4, 1), 17),
    ("Squeeze", {"axes": [1]}, [], (2, 1, 4), 11),
    ("Unsqueeze", {}, [_I("axes", [0, -1])], (2, 3), 17),
    ("Slice", {}, [_I("s", [1, -4]), _I("e", [100, -1]), _I("a", [1, -1]), _I("st", [2, 1])], (2, 7, 6), 17),
    ("Slice", {}, [_I("s", [-1]), _I("e", [-100]), _I("a", [2]), _I("st", [-2])], (2, 7, 6), 17),
    ("Transpose", {}, [], (2, 3, 4), 17),
    ("ReduceSum", {"keepdims": 0}, [_I("axes", [-1, 0])], (2, 3, 4), 13),
    ("ReduceMean", {}, [], (2, 3, 4), 18),
    ("ReduceMax", {"axes": [1]}, [], (2, 3, 4), 17),
    ("GlobalMaxPool", {}, [], (1, 3, 5, 5), 17),
    ("Softmax", {"axis": 1}, [], (2, 3, 4), 13),
    ("Reshape", {}, [_I("shape", [0, -1])], (2, 3, 4), 17),
    ("Gather", {"axis": 1}, [_I("idx", [[0, 2], [1, 1]])], (2, 3, 4), 17),
    ("Expand", {}, [_I("shape", [2, 3, 4])], (2, 3, 4), 17),
    ("Clip", {}, [nh.from_array(np.float32(-1.0), "lo")], (2, 3), 17),
    ("Expand", {}, [_I("shape", [4, 2, 1, 3])], (2, 3), 17),
]


@pytest.mark.parametrize("op_type,attrs,consts,shape,opset", _SINGLE_OPS,
                         ids=[f"{o[0]}-{i}" for i, o in enumerate(_SINGLE_OPS)])
def test_single_ops_match_onnxruntime_shapes(tmp_path, op_type, attrs, consts, shape, opset):
    node = h.make_node(op_type, ["x"] + [c.name for c in consts], ["y"], name="op", **attrs)
    model = h.make_model(h.make_graph([node], "one", [h.make_tensor_value_info("x", TP.FLOAT, list(shape))],
                                      [h.make_tensor_value_info("y", TP.FLOAT, None)], consts),
                         opset_imports=[h.make_opsetid("", opset)])
    path = _save(model, tmp_path)
    g = load_onnx(path, {})
    assert g.tensors["y"].shape == _ort_shapes(path, {"x": np.zeros(shape, np.float32)})["y"]


def test_where_with_constant_mask_is_exact_multiply_add(tmp_path):
    """Causal-mask Where(const cond, scores, -inf) as exported by GPT-style models."""
    mask = np.tril(np.ones((4, 4), bool))
    nodes = [h.make_node("Where", ["m", "x", "neg"], ["y"], name="mask")]
    inits = [nh.from_array(mask, "m"), nh.from_array(np.float32(-np.inf), "neg")]
    model = h.make_model(h.make_graph(nodes, "w", [h.make_tensor_value_info("x", TP.FLOAT, [2, 4, 4])],
                                      [h.make_tensor_value_info("y", TP.FLOAT, [2, 4, 4])], inits),
                         opset_imports=[h.make_opsetid("", 17)])
    g = load_onnx(_save(model, tmp_path), {})
    assert [(o.op, o.fn) for o in g.ops()] == [("binary", "mul"), ("binary", "add")]
    x = np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32)
    keep, fill = (g.tensors[g.op(n).inputs[1]].data for n in ("mask.keep", "mask.fill"))
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(x * keep + fill, want)
