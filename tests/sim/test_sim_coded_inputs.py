"""Graph inputs on an 8-bit grid are rounded straight to their codes (runner._round_input): the
same real values as rounding them to float64, and the same notes."""

import numpy as np
import pytest

from hwsim.graph.ir import Tensor
from hwsim.graph.quant import QuantSpec
from hwsim.sim import qspec, runner
from hwsim.sim.registry import ExecContext


@pytest.mark.parametrize("fmt,scale,zp", [("int8", 0.05, None), ("uint8", 0.02, (128,)), ("int4", 0.3, None)])
def test_coded_input_equals_the_rounded_reals(fmt, scale, zp):
    x = np.random.default_rng(1).standard_normal((3, 50)) * 4
    x[0, :3] = [np.inf, -np.inf, 0.025]  # saturating infinities and a tie
    t = Tensor("x", x.shape, "input", QuantSpec(format=fmt, scale=(scale,), zero_point=zp))
    ctx = ExecContext(graph=None, reference=False)
    got = runner._round_input(t, x, ctx)
    want = runner._round_output(ctx, None, t, x)  # the float64 rounding of any grid
    assert isinstance(got, qspec.Coded) == (fmt != "int4")
    np.testing.assert_array_equal(qspec.real_of(got), want)
    assert runner._input_notes("x", fmt, x, got) == runner._input_notes("x", fmt, x, want)
    assert runner._input_notes("x", fmt, x, got)  # the infinities are named
    assert runner._input_notes("x", fmt, x[1:], runner._round_input(t, x[1:], ctx)) == []
