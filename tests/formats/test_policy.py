"""Every bundled format answers the policy questions the simulator, cost model and compare ask,
and its answers agree with its own numerics."""

import numpy as np
import pytest

import hwsim.formats as F
from hwsim.cost import arith

NAMES = F.names()


@pytest.mark.parametrize("name", NAMES)
def test_policy_is_complete_and_consistent(name):
    f = F.get(name)
    assert f.scale_rule in ("max_abs", "min_max", "mean_abs", "none")
    assert f.weight_granularity in ("tensor", "channel")
    assert all(F.get(a).can_accumulate for a in f.default_accumulators if a != "fx")
    op = F.get(f.mac_operand)
    assert op.can_accumulate or op.name == f.name  # a plain int/float, or (e8m0) itself
    if f.scale_rule == "min_max":
        assert f.integer_codes and not f.signed
    if f.name != "e8m0":  # the scale type is not a MAC operand
        spec = f.mac_operand_spec()
        assert spec.sig_bits >= 1 and spec.exp_bits >= 0
        assert arith.mac_gates(f.name, f.name, "fx").total > 0
    else:
        with pytest.raises(Exception, match="not a MAC operand"):
            f.mac_operand_spec()


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("vq")])
def test_has_zero_matches_quantize(name):
    f = F.get(name)
    x = np.array([[0.0, 0.0, 0.0, 0.0] * 8, np.linspace(-1, 1, 32)])
    if f.scale_rule == "min_max":
        x = np.abs(x)
    q = f.quantize(x) if f.scale_rule == "none" or f.name == "nvfp4" else f.quantize(x, scale=0.25)
    assert (q[0] == 0).all() == f.has_zero, name


@pytest.mark.parametrize("name", NAMES)
def test_covers_itself_and_wider_units_cover_narrower(name):
    f = F.get(name)
    if f.can_accumulate:
        assert f.covers(f) == 0.0
    if f.integer_codes and f.bits <= 8 and f.signed:
        assert F.get("int16").covers(f) == 16 - f.bits
        assert F.get("fp32").covers(f) is not None
