"""Impossible or inconsistent targets are refused naming the fields, and nothing prices to inf
(issue 12): clock 1e-308 gave 'inf ms' with exit 0; an int2 accumulator was priced cheaper while
the simulator kept int32; fallbacks the unit cannot represent were priced without a word in the
totals."""

from __future__ import annotations

import pytest
import yaml

from hwsim.cli import main
from hwsim.cost import estimate
from hwsim.errors import ConfigError
from hwsim.targets import load_target


def _target(tmp_path, edit, base="int8-npu"):
    t = load_target(base).model_dump(mode="json")
    t["compute"]["rates"] = [{k: v for k, v in r.items() if v is not None} for r in t["compute"]["rates"]]
    edit(t)
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(t))
    return str(p)


@pytest.mark.parametrize("clock", [1e-308, 1.0, 1e15])
def test_absurd_clock_refused(tmp_path, clock):
    p = _target(tmp_path, lambda t: t.update(clock_hz=clock))
    with pytest.raises(ConfigError, match=r"field 'clock_hz'.*1 kHz .. 100 GHz"):
        load_target(p)


def test_cli_absurd_clock_exit_2(tmp_path, capsys):
    p = _target(tmp_path, lambda t: t.update(clock_hz=1e-308))
    assert main(["estimate", "conv2d", "--target", p]) == 2
    assert "clock_hz" in capsys.readouterr().err


def test_nothing_prices_to_inf(tmp_path):
    """A bandwidth small enough to overflow the division is named with the layer, not priced at inf."""
    def edit(t):
        t["memory"][0]["bandwidth_bytes_per_s"] = 1e-310
    with pytest.raises(ConfigError, match=r"layer 'conv'.*not finite.*memory level 'sram'"):
        estimate("conv2d", _target(tmp_path, edit))


def test_accumulator_narrower_than_a_product_refused(tmp_path):
    def edit(t):
        t["compute"]["rates"][0]["accumulator"] = "int2"
    with pytest.raises(ConfigError, match=r"field 'compute\.rates\.0': accumulator int2 cannot hold one int8 x int8 "
                                          r"product \(16 bits\)"):
        load_target(_target(tmp_path, edit))


def test_integer_accumulator_for_float_pair_refused(tmp_path):
    def edit(t):
        t["compute"]["rates"][0].update(activation="fp8_e4m3fn", weight="fp8_e4m3fn", accumulator="int32")
    with pytest.raises(ConfigError, match=r"field 'compute\.rates\.0': accumulator int32 sums fp8_e4m3fn"):
        load_target(_target(tmp_path, edit))


def test_unknown_format_in_rate_names_field(tmp_path):
    def edit(t):
        t["compute"]["rates"][1]["weight"] = "int99"
    with pytest.raises(ConfigError, match=r"field 'compute\.rates\.1\.weight'"):
        load_target(_target(tmp_path, edit))


def test_memory_levels_must_grow_outward(tmp_path):
    def edit(t):
        t["memory"].insert(0, dict(t["memory"][0], name="l0", size_bytes=2 * t["memory"][0]["size_bytes"]))
    with pytest.raises(ConfigError, match=r"memory\[0\] 'l0'.*larger than memory\[1\] 'sram'"):
        load_target(_target(tmp_path, edit))


def test_unrepresentable_fallback_named_in_layer_and_totals():
    """fp32 layers on the integer-only int8-npu: priced as int16 x int8 with notes: [] before."""
    rep = estimate("gemm:m=2,k=8,n=4", "int8-npu", weights="fp32", activations="fp32")
    row = rep.layer("gemm")
    assert "no pair of int8-npu holds fp32 x fp32 values" in row.note
    assert any(n.startswith("1 of 1 MAC layers run on a pair int8-npu lacks: fp32 x fp32 as int16 x int8 "
                            "-> int32 (gemm); priced as an assumption") for n in rep.notes), rep.notes


def test_covering_fallback_named_in_totals():
    rep = estimate("gemm:m=2,k=8,n=4", "cortex-a78", weights="int4", activations="int8")
    assert any("MAC layers run on a pair cortex-a78 lacks: int8 x int4 as int8 x int8" in n for n in rep.notes), rep.notes


def test_quant_config_accumulator_not_priced_is_said(tmp_path):
    cfg = tmp_path / "q.yaml"
    cfg.write_text("schema_version: 1\ndefaults: {weights: int8, activations: int8}\n"
                   "layers: [{match: gemm, accumulator: int16}]\n")
    rep = estimate("gemm:m=2,k=8,n=4", "int8-npu", config=str(cfg))
    assert "accumulator int16 of the quant config is not priced: int8-npu accumulates int8 x int8 in int32" in \
        rep.layer("gemm").note
