"""compare-formats with --target: MACs/cycle, peak throughput, technology, fallbacks, model estimate."""

import json

import pytest

from hwsim.cli import main
from hwsim.compare import compare_formats
from hwsim.cost import arith
from hwsim.targets import load_target

FAST = dict(samples=2048, nus=(3.0, 30.0))


@pytest.fixture(scope="module")
def a78():
    return compare_formats("int8,fp16,int4,fp8_e4m3fn", "fp32", target="cortex-a78", **FAST)


def test_rates_come_from_the_target(a78):
    t = load_target("cortex-a78")
    rows = {r.format: r for r in a78.rows}
    # Arm: SDOT 32 int8 MAC/cycle/core, FP16 FMLA 16 per core (REFERENCES.md); 4 cores in the cluster
    assert rows["int8"].macs_per_cycle == 32 * t.compute.cores
    assert rows["fp16"].macs_per_cycle == 16 * t.compute.cores
    for r in a78.rows:
        assert a78.target.peak_macs_per_s[r.format] == pytest.approx(r.macs_per_cycle * t.clock_hz)


def test_missing_pairs_fall_back_and_say_so(a78):
    assert a78.target.fallbacks == {"int4": "int8 x int8", "fp8_e4m3fn": "fp16 x fp16"}
    rows = {r.format: r for r in a78.rows}
    assert rows["int4"].macs_per_cycle == rows["int8"].macs_per_cycle


def test_energy_uses_the_target_gate_energy(a78):
    t = load_target("cortex-a78")
    for r in a78.rows:
        assert r.energy_pj_per_mac == pytest.approx(r.gates.total * arith.energy_per_gate_fj(t.technology_nm) * 1e-3)
    assert a78.target.technology_nm == t.technology_nm


def test_h100_runs_fp8_natively():
    res = compare_formats("int8,fp8_e4m3fn", "fp32", target="h100-sxm", **FAST)
    assert res.target.fallbacks == {}
    peak = res.target.peak_macs_per_s
    # datasheet: 1979 dense FP8 and INT8 TFLOPS = 989.5 T MAC/s
    assert peak["int8"] == pytest.approx(989.5e12, rel=0.01) and peak["fp8_e4m3fn"] == peak["int8"]


def test_model_estimate_per_format_on_the_target(capsys):
    argv = ["compare-formats", "--formats", "int8,fp8_e4m3fn,int4", "--target", "cortex-a78", "--model", "resnet18",
            "--shape", "resolution=64", "--samples", "2048", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"rows", "crossover", "target", "model"}
    assert set(out["target"]["peak_macs_per_s"]) == {"int8", "fp8_e4m3fn", "int4"}
    est = {e["format"]: e for e in out["model"]["estimates"]}
    assert set(est) == {"int8", "fp8_e4m3fn", "int4"}
    assert all(e["latency_s"] > 0 and e["energy_j"] > 0 for e in est.values())
    # no FP8 pipe on a Cortex-A78: fp8 runs on fp16 FMLA at half the int8 SDOT rate
    assert est["fp8_e4m3fn"]["latency_s"] > est["int8"]["latency_s"]


def test_unknown_target_is_a_clear_error(capsys):
    assert main(["compare-formats", "--target", "no-such-chip", "--samples", "2048"]) == 2
    assert "cortex-a78" in capsys.readouterr().err
