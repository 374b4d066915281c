"""Hardware side of compare-formats: rows, the paper's gate ratios, defaults, errors."""

import pytest

from hwsim.compare import compare_formats, parse_accumulators, parse_formats
from hwsim.compare.hardware import default_accumulators, energy_pj_per_mac, macs_per_cycle
from hwsim.errors import ConfigError, UnknownFormatError
from hwsim.formats import get

FAST = dict(samples=2048, nus=(3.0, 30.0))


@pytest.fixture(scope="module")
def fp8_rows():
    res = compare_formats("int8,fp8_e4m3fn", "fx,fp16,fp32", **FAST)
    return {(r.format, r.accumulator): r for r in res.rows}


def test_relative_gates_reproduce_van_baalen_within_10_percent(fp8_rows):
    # van Baalen et al. 2023: FP8-E4M3 MAC +53% gates vs INT8/FX with an FP16 accumulator, +183% with FP32
    assert fp8_rows[("int8", "fx")].relative_gates_int8 == 1.0
    assert fp8_rows[("fp8_e4m3fn", "fp16")].relative_gates_int8 == pytest.approx(1.53, rel=0.10)
    assert fp8_rows[("fp8_e4m3fn", "fp32")].relative_gates_int8 == pytest.approx(2.83, rel=0.10)


def test_gate_parts_add_up_and_energy_follows_gates(fp8_rows):
    for r in fp8_rows.values():
        g = r.gates
        assert g.multiply + g.align_add + g.normalize_accumulate == pytest.approx(g.total)
        assert min(g.multiply, g.align_add, g.normalize_accumulate) > 0
    per_gate = {r.energy_pj_per_mac / r.gates.total for r in fp8_rows.values()}
    assert max(per_gate) == pytest.approx(min(per_gate))
    # Horowitz calibration: an int8 MAC at 45 nm costs a few tenths of a pJ (0.2 pJ multiply + add)
    assert 0.2 < fp8_rows[("int8", "fx")].energy_pj_per_mac < 0.6


def test_energy_scales_with_the_target_technology():
    class _T:  # the two fields energy_pj_per_mac reads
        technology_nm, energy_per_gate_fj = 7.0, None
    f = get("int8")
    assert energy_pj_per_mac(f, "fx", _T()) == pytest.approx(energy_pj_per_mac(f, "fx") * 7.0 / 45.0)
    assert macs_per_cycle(f, None) is None


def test_default_accumulators_per_kind():
    res = compare_formats("int8,fp8_e5m2,mxfp4_e2m1,ternary", **FAST)
    pairs = [(r.format, r.accumulator) for r in res.rows]
    assert pairs == [("int8", "fx"), ("fp8_e5m2", "fp16"), ("fp8_e5m2", "fp32"), ("mxfp4_e2m1", "fp32"),
                     ("ternary", "fx")]
    assert default_accumulators(get("fp8_e3m4")) == ("fp16", "fp32")


def test_fewer_bits_never_cost_more_gates():
    res = compare_formats("int8,int4,fp8_e4m3fn,fp4_e2m1fn", "fp32", **FAST)
    g = {r.format: r.gates.total for r in res.rows}
    assert g["int4"] < g["int8"] and g["fp4_e2m1fn"] < g["fp8_e4m3fn"]


def test_generic_fp8_names_parse_and_duplicates_collapse():
    assert [f.name for f in parse_formats("fp8_e2m5, fp8_e3m4,FP8_E3M4")] == ["fp8_e2m5", "fp8_e3m4"]
    assert [f.name for f in parse_formats(None)][:2] == ["int8", "fp8_e4m3fn"]


@pytest.mark.parametrize("bad", ["int8,fp8_e9m9", "fp9_e4m3", "nonsense"])
def test_bad_format_names_list_valid_spellings(bad):
    with pytest.raises(UnknownFormatError, match="fp8_e4m3fn") as exc:
        parse_formats(bad)
    assert "valid names" in str(exc.value)


@pytest.mark.parametrize("bad", ["fp99", "ternary", "mxfp4_e2m1"])
def test_bad_accumulators_are_clear_errors(bad):
    with pytest.raises(ConfigError, match="fx"):
        parse_accumulators(bad)


def test_accumulator_spellings_are_canonical():
    assert parse_accumulators("FX, float16,fp32,fp16") == ["fx", "fp16", "fp32"]
    with pytest.raises(ConfigError):
        parse_accumulators(" , ")
