"""ONNX's quantization node tests AS SHIPPED: every input, scales and zero points included, is a graph
input fed at run time (``hwsim simulate --inputs``), never turned into an initializer.

hwsim must use the values given (run-time scales and zero points) or refuse naming the node; it must
never compute with other values. Cases come from the generators in the onnx wheel, as in
tests/sim/test_onnx_conformance.py.
"""

import numpy as np
import onnx
import pytest
from onnx import helper

from hwsim.graph.onnx import load_onnx
from hwsim.sim import run
from tests.sim.test_onnx_conformance import CASES, NOT_EXPRESSIBLE, _array, _elem, assert_bit_exact, boundary

#: every case of every op type (QuantizeLinear, DequantizeLinear, QLinearMatMul, QLinearConv,
#: MatMulInteger, ConvInteger, DynamicQuantizeLinear, Cast, CastLike), no input made a constant
SHIPPED = [c for c in CASES if c[0] not in NOT_EXPRESSIBLE]


def _as_shipped(node, inputs, outputs, path):
    arrays = [_array(v) for v in inputs]
    names = [n for n in node.input]
    g_in = [helper.make_tensor_value_info(n, _elem(a), a.shape) for n, a in zip(names, arrays) if n]
    outs = [_array(v) for v in outputs]
    g_out = [helper.make_tensor_value_info(n, _elem(a), a.shape) for n, a in zip(node.output, outs)]
    onnx.save(helper.make_model(helper.make_graph([node], "case", g_in, g_out)), path)
    return {n: a for n, a in zip(names, arrays) if n}, dict(zip(node.output, outs))


@pytest.mark.parametrize("case", SHIPPED, ids=[c[0] for c in SHIPPED])
def test_node_case_as_shipped(case, tmp_path):
    name, node, inputs, outputs = case
    feeds, want = _as_shipped(node, inputs, outputs, tmp_path / "m.onnx")
    runtime = [n for n in node.input[1:] if n]
    graph = load_onnx(tmp_path / "m.onnx", {})
    assert all(n in graph.inputs for n in runtime)
    result = run(graph, {k: boundary(v) for k, v in feeds.items()})
    for out, w in want.items():
        assert_bit_exact(f"{name}:{out}", result.outputs[out], w)


CLI_CASES = ["test_quantizelinear", "test_dequantizelinear_axis", "test_quantizelinear_e4m3fn",
             "test_quantizelinear_float4e2m1", "test_dequantizelinear_int16", "test_quantizelinear_blocked_asymmetric",
             "test_qlinearmatmul_2D_uint8_float32", "test_qlinearmatmul_3D_int8_float16", "test_qlinearconv",
             "test_matmulinteger", "test_convinteger_with_padding"]


@pytest.mark.parametrize("case_name", CLI_CASES)
def test_as_shipped_through_cli(case_name, tmp_path, capsys):
    from hwsim.cli import main

    name, node, inputs, outputs = next(c for c in SHIPPED if c[0] == case_name)
    feeds, want = _as_shipped(node, inputs, outputs, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **{k: boundary(v) for k, v in feeds.items()})
    rc = main(["simulate", str(tmp_path / "m.onnx"), "--inputs", str(tmp_path / "in.npz"),
               "--out", str(tmp_path / "out.npz")])
    assert rc == 0
    with np.load(tmp_path / "out.npz") as f:
        for out, w in want.items():
            assert_bit_exact(f"{name}:{out}", f[out], w)


def test_every_case_runs_as_shipped():
    """No case is left out: every one the generators emit runs with all its inputs given at run time."""
    assert not NOT_EXPRESSIBLE and len(SHIPPED) == len(CASES) > 150
