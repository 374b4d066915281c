"""Issue 12 item 5: a bigger systolic array is priced as a bigger array (MACs/cycle from rows x cols)."""

import pytest

from hwsim import estimate
from hwsim.errors import ConfigError
from hwsim.targets import load_target


def _copy(tmp_path, rows: int, cols: int, extra: str = "") -> str:
    p = tmp_path / f"npu{rows}x{cols}.yaml"
    p.write_text(f"schema_version: 1\nname: npu{rows}x{cols}\ndescription: copy\nextends: int8-npu\n"
                 f"compute: {{rows: {rows}, cols: {cols}{extra}}}\n")
    return str(p)


def test_rate_follows_rows_x_cols(tmp_path):
    t = load_target(_copy(tmp_path, 256, 256))
    rates = {(r.activation, r.weight): r.macs_per_cycle for r in t.compute.rates}
    assert rates[("int8", "int8")] == 256 * 256
    assert rates[("int8", "int4")] == 2 * 256 * 256
    assert load_target("int8-npu").compute.rates[0].macs_per_cycle == 4096  # the bundled 64 x 64 unchanged


def test_bigger_array_with_unchanged_rates_is_not_slower(tmp_path):
    small = estimate("resnet18", _copy(tmp_path, 16, 16), "int8", "int8").total.latency_s
    big = estimate("resnet18", _copy(tmp_path, 256, 256), "int8", "int8").total.latency_s
    assert big <= small
    assert big < 0.5 * small  # 256x more PEs: much faster, not merely equal


def test_explicit_rate_is_honoured_and_a_contradicting_one_refused(tmp_path):
    rate = ("[{activation: int8, weight: int8, macs_per_cycle: 512, accumulator: int32, "
            "source: 'assumption: half the PEs clock-gated'}]")
    t = load_target(_copy(tmp_path, 32, 32, f", rates: {rate}"))
    assert t.compute.rates[0].macs_per_cycle == 512
    stale = rate.replace("512", "4096")
    with pytest.raises(ConfigError, match=r"macs_per_cycle 4096 on a 256 x 256 systolic array.*macs_per_pe_per_cycle"):
        load_target(_copy(tmp_path, 256, 256, f", rates: {stale}"))


def test_per_pe_rate_needs_a_systolic_unit(tmp_path):
    p = tmp_path / "simd.yaml"
    p.write_text("schema_version: 1\nname: s\ndescription: d\nextends: cortex-a78\ncompute:\n  rates:\n"
                 "    - {activation: int8, weight: int8, macs_per_pe_per_cycle: 1, accumulator: int32, source: x}\n")
    with pytest.raises(ConfigError, match="needs mapping: systolic"):
        load_target(str(p))


def test_weight_stationary_packs_small_groups_block_diagonally():
    """Depthwise 3x3 on 64 x 64: 7 blocks of 9 x 1 per pass (the other rows of a column hold zeros)."""
    from hwsim.cost.unit import DotShape, utilization

    t = load_target("int8-npu")
    m = 112 * 112
    ramp = m / (m + 64 + 64)
    dw = DotShape(m=m, n=1, k=9, groups=32)
    assert utilization(t, dw) == pytest.approx(32 * 9 / (5 * 64 * 64) * ramp)  # ceil(32 / 7) = 5 passes
    one_block = 9 / 64 * 1 / 64 * ramp  # what one group per pass would give
    assert utilization(t, dw) > 6 * one_block
    # a group block that fills the rows cannot share them: the plain fold, as for groups = 1
    big = DotShape(m=m, n=128, k=1200, groups=2)
    assert utilization(t, big) == pytest.approx(1200 / 1216 * 1.0 * ramp)
    dense = DotShape(m=m, n=64, k=576)
    assert utilization(t, dense) == pytest.approx(ramp)


@pytest.mark.parametrize("groups", [2, 7, 32, 96, 960])
@pytest.mark.parametrize("k, n", [(9, 1), (9, 2), (25, 4), (63, 8), (64, 64)])
def test_block_diagonal_never_below_one_group_per_pass(groups, k, n):
    from hwsim.cost.unit import DotShape, _fold, utilization

    t = load_target("int8-npu")
    s = DotShape(m=100, n=n, k=k, groups=groups)
    assert 0 < utilization(t, s) <= 1
    assert utilization(t, s) >= _fold(k, 64) * _fold(n, 64) * 100 / 228 - 1e-12
