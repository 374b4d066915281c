"""Structurally broken ONNX graphs end in a clear error naming the node or tensor, never
``internal error: KeyError`` (issue 12); merely unsorted nodes import like sorted ones."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

from hwsim.cli import main
from hwsim.cost import estimate
from hwsim.errors import ConfigError, GraphError, ShapeError
from hwsim.graph.onnx import load_onnx

n = h.make_node


def _w(dims=None, name="w"):
    t = nh.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), name)
    if dims is not None:
        t.dims[:] = dims
    return t


def _save(tmp_path, nodes, inits=None, x_dims=(2, 3), y="y", name="m"):
    g = h.make_graph(nodes, "t", [h.make_tensor_value_info("x", TP.FLOAT, list(x_dims))],
                     [h.make_tensor_value_info(y, TP.FLOAT, [2, 4])], [_w()] if inits is None else inits)
    p = tmp_path / f"{name}.onnx"
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]), p)
    return p


def test_negative_input_dim_refused(tmp_path):
    """Used to import and report '-24 MACs'."""
    p = _save(tmp_path, [n("MatMul", ["x", "w"], ["y"])], x_dims=(-2, 3))
    with pytest.raises(ShapeError, match=r"input 'x' dim 0 is -2"):
        load_onnx(p, {})


def test_negative_initializer_dims_refused(tmp_path):
    p = _save(tmp_path, [n("MatMul", ["x", "w"], ["y"])], inits=[_w([-3, -4])])
    with pytest.raises(ConfigError, match=r"initializer 'w' has negative dims \[-3, -4\]"):
        load_onnx(p, {})


def test_initializer_dims_not_matching_data_refused(tmp_path):
    p = _save(tmp_path, [n("MatMul", ["x", "w"], ["y"])], inits=[_w([3, 5])])
    with pytest.raises(ConfigError, match=r"initializer 'w': dims \[3, 5\] need 15 values"):
        load_onnx(p, {})


def test_cycle_refused_naming_nodes(tmp_path):
    p = _save(tmp_path, [n("Add", ["x", "b"], ["a"], name="add"), n("Relu", ["a"], ["b"], name="relu"),
                         n("MatMul", ["a", "w"], ["y"], name="mm")])
    with pytest.raises(ConfigError, match=r"cycle.*'add'.*'relu'"):
        load_onnx(p, {})


def test_self_loop_refused(tmp_path):
    p = _save(tmp_path, [n("Add", ["x", "a"], ["a"], name="acc"), n("MatMul", ["a", "w"], ["y"])])
    with pytest.raises(ConfigError, match=r"node 'acc' reads its own output 'a'"):
        load_onnx(p, {})


def test_output_never_produced_refused(tmp_path):
    p = _save(tmp_path, [n("MatMul", ["x", "w"], ["z"])])
    with pytest.raises(ConfigError, match=r"graph output 'y' is produced by no node"):
        load_onnx(p, {})


def test_input_never_provided_refused(tmp_path):
    p = _save(tmp_path, [n("Add", ["x", "ghost"], ["a"], name="add"), n("MatMul", ["a", "w"], ["y"])])
    with pytest.raises(ConfigError, match=r"node 'add' \(Add\) reads 'ghost'"):
        load_onnx(p, {})


def test_tensor_written_twice_refused(tmp_path):
    p = _save(tmp_path, [n("Relu", ["x"], ["a"], name="r1"), n("Neg", ["x"], ["a"], name="r2"),
                         n("MatMul", ["a", "w"], ["y"])])
    with pytest.raises(ConfigError, match=r"tensor 'a' is written by node 'r1' and node 'r2'"):
        load_onnx(p, {})


def test_unsorted_nodes_import_like_sorted(tmp_path):
    nodes = [n("MatMul", ["x", "w"], ["a"], name="mm"), n("Relu", ["a"], ["y"], name="relu")]
    ok = estimate(load_onnx(_save(tmp_path, nodes, name="sorted"), {}), "int8-npu")
    shuffled = estimate(load_onnx(_save(tmp_path, nodes[::-1], name="unsorted"), {}), "int8-npu")
    assert shuffled.total.macs == ok.total.macs == 2 * 3 * 4
    assert shuffled.total.energy_j == ok.total.energy_j


@pytest.mark.parametrize("case", ["cycle", "noout", "baddims"])
def test_cli_exit_2(tmp_path, capsys, case):
    nodes = {"cycle": [n("Add", ["x", "b"], ["a"]), n("Relu", ["a"], ["b"]), n("MatMul", ["a", "w"], ["y"])],
             "noout": [n("MatMul", ["x", "w"], ["z"])], "baddims": [n("MatMul", ["x", "w"], ["y"])]}[case]
    p = _save(tmp_path, nodes, inits=[_w([3, 5])] if case == "baddims" else None)
    assert main(["estimate", str(p), "--target", "int8-npu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "internal error" not in err, err


def test_verify_refuses_negative_dims():
    from hwsim.graph.ir import Graph, Tensor

    g = Graph("neg")
    g.add_tensor(Tensor("x", (-1, 3), "input"))
    with pytest.raises(GraphError, match="negative"):
        g.verify()
