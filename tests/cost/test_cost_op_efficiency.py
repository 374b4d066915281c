"""Per-op-class efficiency of a format pair, and exact pairs winning over equivalent ones."""

import pytest

from hwsim.cost.estimate import estimate
from hwsim.cost.unit import select_rate
from hwsim.targets import load_target
from hwsim.targets.schema import Target


def _cpu(**rate) -> Target:
    d = load_target("cortex-a78").model_dump()
    d["compute"]["rates"] = [{"activation": "fp32", "weight": "fp32", "macs_per_cycle": 8, "accumulator": "fp32",
                              "efficiency": 0.8, "source": "test", **rate}]
    return Target.model_validate(d)


def _compute_s(target, ref):
    return sum(r.compute_s for r in estimate(ref, target, weights="fp32", activations="fp32").layers if r.macs)


@pytest.mark.parametrize("ref", ["conv2d:c=64,h=28,w=28,k=64,r=3", "conv2d:c=64,h=28,w=28,k=64,r=3,groups=64",
                                 "conv2d:c=64,h=28,w=28,k=64,r=1", "gemm:m=64,k=256,n=256"])
def test_conv_pointwise_and_depthwise_efficiency_scale_only_their_class(ref):
    plain = _compute_s(_cpu(), ref)
    conv = _compute_s(_cpu(conv_efficiency=0.4), ref) / plain
    dw = _compute_s(_cpu(conv_efficiency=0.4, depthwise_efficiency=0.1), ref) / plain
    pw = _compute_s(_cpu(conv_efficiency=0.4, pointwise_efficiency=0.2), ref) / plain
    if ref.startswith("gemm"):
        assert conv == pytest.approx(1) and dw == pytest.approx(1) and pw == pytest.approx(1)
    elif "groups" in ref:  # depthwise: its own efficiency, else the convolutions'
        assert conv == pytest.approx(2) and dw == pytest.approx(8) and pw == pytest.approx(2)
    elif "r=1" in ref:  # 1x1: its own efficiency, else the convolutions'
        assert conv == pytest.approx(2) and dw == pytest.approx(2) and pw == pytest.approx(4)
    else:
        assert conv == pytest.approx(2) and dw == pytest.approx(2) and pw == pytest.approx(2)


def test_an_exact_pair_wins_over_a_faster_equivalent_one():
    d = _cpu().model_dump()
    d["compute"]["rates"] = [
        {"activation": "int8", "weight": "int8", "macs_per_cycle": 16, "accumulator": "int32", "source": "test"},
        {"activation": "uint8", "weight": "int8", "macs_per_cycle": 32, "accumulator": "int32", "source": "test"}]
    rates = Target.model_validate(d).compute.rates
    assert select_rate(rates, "int8", "int8") == (rates[0], True)
    assert select_rate(rates, "uint8", "int8") == (rates[1], True)


@pytest.mark.parametrize("ref", ["conv2d:c=64,h=28,w=28,k=64,r=3,groups=64", "conv2d:c=64,h=28,w=28,k=64,r=3"])
def test_depthwise_overhead_adds_to_depthwise_convolutions_only(ref):
    def latency(t):
        return sum(r.latency_s for r in estimate(ref, t, weights="fp32", activations="fp32").layers if r.macs)
    extra = latency(_cpu(depthwise_overhead_s=3e-5)) - latency(_cpu())
    assert extra == pytest.approx(3e-5 if "groups" in ref else 0.0, abs=1e-12)
