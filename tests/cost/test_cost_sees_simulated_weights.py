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
            seen["w"] = np.array(xs[1])
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
