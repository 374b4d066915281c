"""The GPU-side cost laws of issue 11: occupancy-scaled active power, kinds of per-kernel overhead,
operand alignment, and per-group traffic of grouped and batched products."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from hwsim.cost import estimate
from hwsim.cost.layer import busy_power_w
from hwsim.cost.traffic import Operands, dot_traffic
from hwsim.cost.unit import UNALIGNED_NOTE, DotShape, misaligned, occupancy
from hwsim.targets import load_target


def _h100(**update):
    t = load_target("h100-sxm")
    d = t.model_dump()
    for k, v in update.items():
        if k.startswith("compute."):
            d["compute"][k.split(".", 1)[1]] = v
        else:
            d[k] = v
    return t.model_validate(d)


def test_occupancy_counts_tiles_over_waves():
    t = _h100(**{"compute.split_k_depth": None})
    # 4 output tiles of 128 x 128 on 132 SMs: 4 of 132 cores work
    assert occupancy(t, DotShape(m=128, n=512, k=4096)) == pytest.approx(4 / 132)
    # 133 tiles: two waves, the second with one tile
    assert occupancy(t, DotShape(m=128 * 133, n=128, k=64)) == pytest.approx(133 / 264)
    assert occupancy(load_target("eyeriss"), DotShape(m=1, n=1, k=1)) == 1.0


def test_static_energy_is_busy_power_over_the_kernel():
    t = _h100(idle_power_w=100.0, static_power_w=400.0, power_cap_w=None)
    shapes = {"small": DotShape(m=1, n=1024, k=1024), "big": DotShape(m=8192, n=4096, k=4096)}
    for s in shapes.values():
        row = estimate(f"gemm:m={s.m},k={s.k},n={s.n}", t, weights="bf16", activations="bf16").layers[0]
        assert row.energy_breakdown_j["static"] == pytest.approx(busy_power_w(t, occupancy(t, s)) * row.latency_s)
    # 8 tiles split 4 ways over the reduction hold 32 of 132 SMs; 2048 tiles fill 16 waves nearly
    assert occupancy(t, shapes["small"]) == pytest.approx(32 / 132)
    assert occupancy(t, shapes["big"]) == pytest.approx(2048 / 2112)
    assert busy_power_w(t, 0.0) == 100.0 and busy_power_w(t, 1.0) == 400.0
    # without an idle floor the unit draws static_power_w throughout, as before
    t0 = _h100(idle_power_w=None, static_power_w=400.0, power_cap_w=None)
    row = estimate("gemm:m=1,k=4096,n=4096", t0, weights="bf16", activations="bf16").layers[0]
    assert row.energy_breakdown_j["static"] == pytest.approx(400.0 * row.latency_s)


def test_idle_power_may_not_exceed_static_power():
    with pytest.raises(ValueError, match="idle_power_w"):
        _h100(idle_power_w=500.0, static_power_w=400.0)


def test_kinds_of_layer_overhead():
    t = _h100(layer_overhead_s=1e-6, elementwise_overhead_s=2e-6, convolution_overhead_s=3e-6, power_cap_w=None)
    rep = estimate("resnet18", t, weights="bf16", activations="bf16")
    busy = {r.name: max([r.compute_s] + list(r.transfer_s.values())) for r in rep.layers}
    gap = {r.name: r.latency_s - busy[r.name] for r in rep.layers}
    assert gap["conv1"] == pytest.approx(3e-6)
    bn = t.compute.batchnorm_kernels  # eval batch norm: that many kernels, each paying the overhead
    assert gap["bn1"] == pytest.approx(bn * 2e-6) and gap["relu"] == pytest.approx(2e-6)
    assert gap["fc"] == pytest.approx(1e-6)
    unset = _h100(layer_overhead_s=1e-6, elementwise_overhead_s=None, convolution_overhead_s=None, power_cap_w=None)
    rows = estimate("resnet18", unset, weights="bf16", activations="bf16").layers
    assert all(r.latency_s - max([r.compute_s] + list(r.transfer_s.values()))
               == pytest.approx(1e-6 * (bn if r.op == "batchnorm" else 1))
               for r in rows if r.op in ("conv2d", "batchnorm", "linear"))


@pytest.mark.parametrize("n,k,fmt,bad", [(1004, 2048, "bf16", True), (1008, 2048, "bf16", False),
                                         (1000, 2048, "int8", True), (1000, 2048, "bf16", False),
                                         (4096, 4104, "int8", True), (4096, 4104, "bf16", False)])
def test_unaligned_gemm_rows_run_slower(n, k, fmt, bad):
    t = _h100(**{"compute.unaligned_efficiency": 0.5})
    bits = 8 if fmt == "int8" else 16
    assert misaligned(t, DotShape(m=4096, n=n, k=k, inner=k), bits, bits) is bad
    row = estimate(f"gemm:m=16384,k={k},n={n}", t, weights=fmt, activations=fmt).layers[0]
    off = estimate(f"gemm:m=16384,k={k},n={n}", _h100(**{"compute.unaligned_efficiency": None}),
                   weights=fmt, activations=fmt).layers[0]
    assert (UNALIGNED_NOTE in row.note) is bad
    assert row.compute_s == pytest.approx(off.compute_s * (2 if bad else 1))


def test_convolutions_are_never_flagged_unaligned():
    t = _h100(**{"compute.unaligned_efficiency": 0.5})
    rep = estimate("resnet18", t, weights="bf16", activations="bf16")  # stem: 3 input channels
    assert not any(UNALIGNED_NOTE in r.note for r in rep.layers)


@settings(max_examples=40, deadline=None)
@given(g=st.integers(1, 64), m=st.integers(1, 512), n=st.integers(1, 256), k=st.integers(1, 512),
       cap=st.sampled_from([256.0, 4096.0, 65536.0]))
def test_grouped_traffic_is_the_groups_one_after_another(g, m, n, k, cap):
    """A product of g independent groups moves g times the bytes of one group at every level."""
    def ops(groups):
        w, i, o = 2.0 * k * n * groups, 2.0 * m * k * groups, 2.0 * m * n * groups
        return Operands(w, i, o, 2.0 * k, 4.0 * m * n * groups, m=m, n=n * groups, acc_bytes=4.0,
                        weight_home=1, input_home=1, output_home=1, groups=groups)
    one, many = dot_traffic(ops(1), [cap, 1e9]), dot_traffic(ops(g), [cap, 1e9])
    for a, b in zip(one[0] + one[1], many[0] + many[1]):
        assert b == pytest.approx(g * a)
    assert math.isfinite(sum(many[0]))
