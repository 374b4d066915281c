"""The cost model prices exactly the weights the simulator executes (issue 9: one preparation path).

For every format family and every pruning kind, the weights the conv2d executor receives in a
simulation are captured; their codes, density, N:M compliance and repetition must equal what the
cost model measures for the same layer.
"""

import numpy as np
import pytest

import hwsim
import hwsim.formats
from hwsim.cost.estimate import _Stats
from hwsim.cost.stats import weight_stats
from hwsim.errors import GraphError
from hwsim.graph.annotate import LayerRule, QuantConfig, quantize_graph
from hwsim.sim import EXECUTORS
from hwsim.sim import qspec
from hwsim.targets import load_target

FAMILIES = ["int8", "int4", "uint8", "int2", "ternary", "binary", "signed_binary", "pow2_4",
            "fp8_e4m3fn", "fp4_e2m1fn", "mxfp4_e2m1", "mxint8", "nvfp4", "vq_d2_b6"]
PRUNINGS = ["0", "50%", "2:4", "ch25%"]
MODEL = "conv2d:c=8,h=6,w=6,k=16,r=2,stride=1"


def _executed_weights(g, monkeypatch):
    """Run the simulator and return the weight array its conv2d executor was handed."""
    seen = {}
    inner = EXECUTORS["conv2d"]

    def spy(ctx, op, xs):
        if not ctx.reference:
            seen["w"] = np.array(qspec.real_of(xs[1]))  # integer weights arrive as qspec.Coded (33cb0c8)
        return inner(ctx, op, xs)

    monkeypatch.setitem(EXECUTORS, "conv2d", spy)
    x = np.random.default_rng(3).standard_normal((1, 8, 6, 6)).astype(np.float32)
    res = hwsim.simulate(g, {"input": x}, metrics=False)
    return seen["w"], res.graph.tensors["conv.weight"].quant


@pytest.mark.parametrize("pruning", PRUNINGS)
@pytest.mark.parametrize("fmt", FAMILIES)
def test_cost_codes_equal_simulated_codes(fmt, pruning, monkeypatch):
    rule = LayerRule(weights=fmt, activations="int8", pruning=pruning)
    if pruning != "0" and not hwsim.formats.get(fmt).has_zero:  # binary, VQ: pruning is refused
        with pytest.raises(GraphError, match="has no zero"):
            quantize_graph(hwsim.load_model(MODEL), config=QuantConfig(defaults=rule))
        return
    g = quantize_graph(hwsim.load_model(MODEL), config=QuantConfig(defaults=rule))
    executed, spec = _executed_weights(g, monkeypatch)
    sim_codes = qspec.weight_codes(executed, spec)

    target = load_target("rs-engine").model_copy(deep=True)
    stats = _Stats(g, target, seed=0)
    op, w = g.op("conv"), g.weight(g.op("conv"))
    cost_codes = stats._codes(op, w)
    np.testing.assert_array_equal(cost_codes, sim_codes)

    nm = ((2, 4),)
    want = weight_stats(sim_codes, 1, nm, 4)
    got = weight_stats(cost_codes, 1, nm, 4)
    assert got == want
    assert got.density == pytest.approx(np.count_nonzero(executed) / executed.size)
    if pruning == "2:4":
        assert got.nm_compliance[(2, 4)] == 1.0


def test_density_is_measured_in_full_and_a_sampled_repetition_is_named(tmp_path):
    """A real weight over SAMPLE_ELEMENTS: its density counts every zero (the last reduction columns
    are all zero here, which a sample of the first columns would miss), and the report names the
    repetition sample."""
    import onnx
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    from hwsim.cost import estimate
    from hwsim.cost.stats import SAMPLE_ELEMENTS

    rng = np.random.default_rng(0)
    k, n = 2048, 1024
    w = rng.standard_normal((k, n)).astype(np.float32)
    w[k // 2:, :] = 0.0  # MatMul weight (k, n): the second half of the reduction axis is all zero
    assert w.size > SAMPLE_ELEMENTS
    model = h.make_model(h.make_graph([h.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                                      [h.make_tensor_value_info("x", TP.FLOAT, [1, k])],
                                      [h.make_tensor_value_info("y", TP.FLOAT, [1, n])], [nh.from_array(w, "w")]),
                         opset_imports=[h.make_opsetid("", 17)])
    path = str(tmp_path / "big.onnx")
    onnx.save(model, path)
    g = quantize_graph(hwsim.graph.zoo.load_model(path, {}), "ternary", "int8")
    st = _Stats(g, load_target("rs-engine"), 0)(g.op("mm"))
    assert st.density == pytest.approx(1.0 - np.mean(qspec.weight_codes(*qspec.prepare_constant(
        g.tensors[g.op("mm").inputs[1]], None, 0)) == 0), abs=1e-12)
    assert st.density < 0.5 and 0 < st.repetition_fraction < 1
    report = estimate(g, "rs-engine")
    assert any("measured on their first columns" in x and "(fraction measured)" in x for x in report.notes)
