"""ONNX conformance: onnx's own node-test cases, bit-exact through load_onnx + hwsim.sim.run.

The cases come from the generators shipped in the onnx wheel (``onnx/backend/test/case/node``;
the ``data/node`` folder is not shipped): each module's ``expect`` is replaced by a recorder and
every ``export*`` function is called. Scale and zero-point *graph inputs* of a case become
initializers (their values are part of the case), as do QLinearConv/ConvInteger weights and
biases and CastLike's type example; the rest stay graph inputs. One case per op type also goes
through the CLI (``hwsim simulate`` with .npz files).
"""


import ml_dtypes  # noqa: F401  (dtypes of the node-test arrays)
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from hwsim.cli import main
from hwsim.sim import run
from hwsim.sim.boundary import container_dtype
from tests.sim.onnx_node_cases import collect

MODULES = ["quantizelinear", "dequantizelinear", "dynamicquantizelinear", "qlinearmatmul", "qlinearconv",
           "matmulinteger", "convinteger", "cast", "castlike"]
#: input positions that stay graph inputs (run-time data); every other input becomes an initializer
RUNTIME = {"QuantizeLinear": (0,), "DequantizeLinear": (0,), "DynamicQuantizeLinear": (0,),
           "QLinearMatMul": (0, 3), "QLinearConv": (0,), "MatMulInteger": (0, 1), "ConvInteger": (0,),
           "Cast": (0,), "CastLike": (0,)}
#: cases the IR cannot express, with the reason (none so far)
NOT_EXPRESSIBLE: dict[str, str] = {}

#: cases that fail for a known, reported reason outside the simulator (strict xfail: a fix shows)
KNOWN_GAPS: dict[str, str] = {}


CASES = collect(MODULES)


def _array(v):
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)


def _elem(a):
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def build_model(node, inputs, outputs, path):
    arrays = [_array(v) for v in inputs]
    names = list(node.input)
    keep = RUNTIME[node.op_type]
    g_in, inits, feeds = [], [], {}
    for i, (n, a) in enumerate(zip(names, arrays)):
        if not n:
            continue
        if i in keep:
            g_in.append(helper.make_tensor_value_info(n, _elem(a), a.shape))
            feeds[n] = a
        else:
            inits.append(numpy_helper.from_array(a, n))
    outs = [_array(v) for v in outputs]
    g_out = [helper.make_tensor_value_info(n, _elem(a), a.shape) for n, a in zip(node.output, outs)]
    model = helper.make_model(helper.make_graph([node], "case", g_in, g_out, inits))
    onnx.save(model, path)
    return feeds, dict(zip(node.output, outs))


def boundary(a: np.ndarray) -> np.ndarray:
    """The .npz form of an ONNX array: fp8/fp4/bf16 as float32, int4/int2 in int8, uint4/uint2 in uint8."""
    return a.astype(container_dtype(a.dtype.name))


def assert_bit_exact(name, got, want):
    want = boundary(want)
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if want.dtype.kind == "f":
        same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
        assert same.all(), f"{name}: {got[~same][:8]} != {want[~same][:8]}"
    else:
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_node_case_bit_exact(case, tmp_path, request):
    from hwsim.graph.onnx import load_onnx

    name, node, inputs, outputs = case
    if name in NOT_EXPRESSIBLE:
        pytest.skip(NOT_EXPRESSIBLE[name])  # listed explicitly above, with the reason
    if name in KNOWN_GAPS:
        request.node.add_marker(pytest.mark.xfail(reason=KNOWN_GAPS[name], strict=True))
    path = tmp_path / "m.onnx"
    feeds, want = build_model(node, inputs, outputs, path)
    graph = load_onnx(path, {})
    result = run(graph, {k: boundary(v) for k, v in feeds.items()})
    for out, w in want.items():
        assert_bit_exact(f"{name}:{out}", result.outputs[out], w)


CLI_CASES = ["test_quantizelinear_axis", "test_dequantizelinear_int4", "test_qlinearmatmul_3D_int8_float32",
             "test_qlinearconv", "test_matmulinteger", "test_convinteger_with_padding",
             "test_dynamicquantizelinear", "test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FN",
             "test_castlike_FLOAT_to_FLOAT4E2M1", "test_cast_FLOAT_to_INT2"]


@pytest.mark.parametrize("case_name", CLI_CASES)
def test_node_case_through_cli(case_name, tmp_path):
    name, node, inputs, outputs = next(c for c in CASES if c[0] == case_name)
    path = tmp_path / "m.onnx"
    feeds, want = build_model(node, inputs, outputs, path)
    np.savez(tmp_path / "in.npz", **{k: boundary(v) for k, v in feeds.items()})
    rc = main(["simulate", str(path), "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz")])
    assert rc == 0
    with np.load(tmp_path / "out.npz") as f:
        for out, w in want.items():
            assert_bit_exact(f"{name}:{out}", f[out], w)


def test_every_required_op_type_is_covered():
    kinds = {c[1].op_type for c in CASES}
    assert kinds == set(RUNTIME)
    assert len(CASES) > 150
    assert set(NOT_EXPRESSIBLE) <= {c[0] for c in CASES}
