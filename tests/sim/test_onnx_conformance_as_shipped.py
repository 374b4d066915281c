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


#: cases compared with onnxruntime too (Cast / CastLike are checked elsewhere against ml_dtypes)
ORT_CASES = [c for c in SHIPPED if c[1].op_type not in ("Cast", "CastLike")]


def _ort_outputs(path, feeds) -> list | str:
    """onnxruntime's outputs for the model at ``path``, run at the node's own opset, else at the newest
    older one onnxruntime takes (node and attributes unchanged); else why it runs at none."""
    import onnxruntime as ort

    model = onnx.load(path)
    since = max(onnx.defs.get_schema(model.graph.node[0].op_type).since_version, 13)
    why = "no opset"
    for version in [since] + [v for v in (23, 21, 19) if v < since]:
        model.opset_import[0].version = version
        model.ir_version = 10
        so = ort.SessionOptions()
        so.log_severity_level = 4
        try:  # onnxruntime raises its own types: no kernel for the opset / types, feeds its binding cannot take
            return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
        except Exception as exc:  # noqa: BLE001
            why = str(exc).splitlines()[0][:160]
    return why


@pytest.mark.parametrize("case", ORT_CASES, ids=[c[0] for c in ORT_CASES])
def test_node_case_as_shipped_against_onnxruntime(case, tmp_path):
    """Where onnxruntime runs the case, hwsim with requant="onnxruntime" (and this CPU's int16 pairs)
    gives its outputs exactly."""
    from tests.sim.ort_cpu import ort_u8s8_pairs_saturate

    name, node, inputs, outputs = case
    feeds, _ = _as_shipped(node, inputs, outputs, tmp_path / "m.onnx")
    got = _ort_outputs(tmp_path / "m.onnx", feeds)
    if isinstance(got, str):
        pytest.skip(f"onnxruntime does not run it: {got}")
    result = run(load_onnx(tmp_path / "m.onnx", {}), {k: boundary(v) for k, v in feeds.items()},
                 requant="onnxruntime", pairwise_int16=ort_u8s8_pairs_saturate())
    for out, w in zip(node.output, got):
        assert_bit_exact(f"{name}:{out}", result.outputs[out], np.asarray(w))


def test_onnxruntime_runs_most_cases(tmp_path):
    """The comparison above is not vacuous: onnxruntime 1.32 runs 25 of the 42 cases (the others are
    fp8 / int4 / int2 / fp4 feeds or kernels it lacks, and a per-channel ConvInteger w_zero_point)."""
    ran = 0
    for name, node, inputs, outputs in ORT_CASES:
        feeds, _ = _as_shipped(node, inputs, outputs, tmp_path / "m.onnx")
        ran += not isinstance(_ort_outputs(tmp_path / "m.onnx", feeds), str)
    assert ran >= 25
