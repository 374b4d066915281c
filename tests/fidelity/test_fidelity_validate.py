"""Measurement records, ``hwsim validate`` and ``hwsim calibrate`` on small synthetic files."""

from __future__ import annotations

import json

import pytest

from hwsim.cli import main
from hwsim.cost import estimate
from hwsim.errors import ConfigError
from hwsim.fidelity.calibrate import calibrate
from hwsim.fidelity.records import load_measurements
from hwsim.fidelity.validate import summarize, validate
from hwsim.fidelity.yaml_out import target_yaml
from hwsim.targets import load_target

GEMMS = [(m, k, n) for m in (1, 64, 512, 4096) for k, n in ((1024, 1024), (4096, 4096), (4096, 1024))]


def _record(i, m, k, n, lat, en, scope="board"):
    return {"id": f"g{i}", "kind": "gemm", "model": f"gemm:m={m},k={k},n={n}", "activations": "bf16",
            "weights": "bf16", "params": {"m": m, "k": k, "n": n}, "latency_s": lat, "energy_j": en,
            "weights_resident": False,
            "conditions": {"runtime": "synthetic", "device": "test", "energy_scope": scope}}


def _write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _truth(target, scale_lat=1.0, scale_en=1.0, scope="board"):
    out = []
    for i, (m, k, n) in enumerate(GEMMS):
        rep = estimate(f"gemm:m={m},k={k},n={n}", target, weights="bf16", activations="bf16",
                       weights_resident=False)
        out.append(_record(i, m, k, n, rep.total.latency_s * scale_lat, rep.total.energy_j * scale_en, scope))
    return out


def test_records_reject_bad_lines(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": "a"}\n')
    with pytest.raises(ConfigError, match=r"m.jsonl:1: not a measurement record"):
        load_measurements(p)
    p.write_text("not json\n")
    with pytest.raises(ConfigError, match="not JSON"):
        load_measurements(p)
    rec = _record(0, 1, 64, 64, 1e-5, None)
    _write(p, [rec, rec])
    with pytest.raises(ConfigError, match="duplicate id"):
        load_measurements(p)


def test_validate_exact_and_scaled(tmp_path):
    t = load_target("h100-sxm")
    p = _write(tmp_path / "m.jsonl", _truth(t))
    v = validate(t, p)
    assert v.latency.within_10 == 1.0 and abs(v.latency.median_error) < 1e-9
    assert v.energy.n == len(GEMMS) and abs(v.energy.median_error) < 1e-9
    p2 = _write(tmp_path / "m2.jsonl", _truth(t, scale_lat=2.0, scale_en=0.5))
    v2 = validate(t, p2)
    assert v2.latency.median_error == pytest.approx(-0.5) and v2.latency.within_25 == 0.0
    assert v2.energy.median_error == pytest.approx(1.0)


def test_energy_scope_must_match(tmp_path):
    t = load_target("h100-sxm")
    v = validate(t, _write(tmp_path / "m.jsonl", _truth(t, scope="chip")))
    assert v.energy is None and "energy not compared" in v.energy_note


def test_summarize_counts_band_edges():
    s = summarize([0.1, -0.25, 0.3, -0.05], 0.25)
    assert (s.n, s.within_10, s.within_25, s.within_tolerance) == (4, 0.5, 0.75, 0.75)


def _documented(tmp_path, scale):
    t = load_target("h100-sxm")
    _write(tmp_path / "runs.jsonl", _truth(t, scale_lat=scale, scale_en=scale))
    d = t.model_dump()
    d["validation"] = {"measurements": ["runs.jsonl"], "latency_tolerance": 0.15, "energy_tolerance": 0.2,
                       "min_fraction_within": 0.9, "source": "synthetic test file"}
    y = tmp_path / "t.yaml"
    y.write_text(target_yaml(t.model_validate(d)))
    return y


def test_cli_validate_exit_status_follows_documented_tolerance(tmp_path, capsys):
    assert main(["validate", str(_documented(tmp_path, 1.05))]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["validate", str(_documented(tmp_path, 1.4))]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_validate_json_and_plot(tmp_path, capsys):
    y = _documented(tmp_path, 1.0)
    png = tmp_path / "v.png"
    assert main(["validate", str(y), "--json", "--plot", str(png)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["passed"] is True and len(d["records"]) == len(GEMMS)
    assert png.stat().st_size > 1000


def test_cli_validate_bad_file_exits_2(tmp_path, capsys):
    assert main(["validate", "h100-sxm", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read measurement file" in capsys.readouterr().err


def test_calibrate_recovers_known_parameters(tmp_path):
    """Records made by a target with known overhead, static power and bandwidth are fitted back."""
    base = load_target("h100-sxm")
    d = base.model_dump()
    d["layer_overhead_s"], d["static_power_w"], d["idle_power_w"], d["power_cap_w"] = 7e-6, 180.0, 60.0, None
    d["memory"][-1]["bandwidth_bytes_per_s"] = 2.0e12
    true = base.model_validate(d)
    p = _write(tmp_path / "m.jsonl", _truth(true))
    c = calibrate(base, p, holdout=0.0)
    assert c.parameters["layer_overhead_s"] == pytest.approx(7e-6, rel=0.1)
    # the power of a kernel that holds every SM (idle floor + active power); the floor alone is seen only
    # through the two GEMMs that hold a quarter of the SMs, too few to pin it down
    assert c.parameters["idle_power_w"] + c.parameters["active_power_w"] == pytest.approx(180.0, rel=0.1)
    assert c.target.static_power_w == pytest.approx(180.0, rel=0.1) and c.target.idle_power_w < 180.0
    assert c.parameters["bandwidth_bytes_per_s[hbm]"] == pytest.approx(2.0e12, rel=0.1)
    assert c.train.latency.within_10 == 1.0
    assert "m.jsonl" in c.target.source and "fitted to m.jsonl" in c.target.memory[-1].source
    assert load_target(_yaml(tmp_path, c.target)) == c.target


def _yaml(tmp_path, t):
    y = tmp_path / "fit.yaml"
    y.write_text(target_yaml(t))
    return str(y)


def test_calibrate_holds_fixed_parameters_and_the_measured_idle_floor(tmp_path):
    """``fixed`` keeps a parameter at its value and out of the 'fitted' provenance; records' measured idle
    power bounds the fitted idle floor from below; unseparated overhead kinds stay unset."""
    base = load_target("h100-sxm")
    d = base.model_dump()
    d["elementwise_overhead_s"] = d["convolution_overhead_s"] = None
    base = base.model_validate(d)
    recs = _truth(base)
    for r in recs:
        r["conditions"]["idle_power_w"] = 150.0
    p = _write(tmp_path / "m.jsonl", recs)
    c = calibrate(base, p, holdout=0.0, fixed={"elementwise_ops_per_cycle": 256.0})
    assert c.parameters["elementwise_ops_per_cycle"] == pytest.approx(256.0)
    assert "elementwise_ops_per_cycle" not in c.target.compute.source
    assert c.parameters["idle_power_w"] >= 150.0 * (1 - 1e-6)
    assert c.target.elementwise_overhead_s is None and c.target.convolution_overhead_s is None
    with pytest.raises(ConfigError, match="not one of"):
        calibrate(base, p, holdout=0.0, fixed={"no_such_parameter": 1.0})


def test_cli_calibrate_fix_flag(tmp_path, capsys):
    p = _write(tmp_path / "m.jsonl", _truth(load_target("h100-sxm"))[:4])
    assert main(["calibrate", "h100-sxm", str(p), "--out", str(tmp_path / "f.yaml"), "--holdout", "0",
                 "--fix", "elementwise_ops_per_cycle=x"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("field,value,says", [("model", "nosuchmodel", "unknown model"),
                                               ("activations", "int99", "bad number format")])
def test_a_record_that_cannot_be_priced_is_named(tmp_path, capsys, field, value, says):
    """A record whose workload cannot be priced names itself (the error said only what was wrong)."""
    from pathlib import Path

    rec = json.loads((Path(__file__).parents[2] / "targets" / "measurements" / "edgetpu.jsonl").read_text()
                     .splitlines()[0])
    rec[field] = value
    (tmp_path / "m.jsonl").write_text(json.dumps(rec) + "\n")
    assert main(["validate", "edgetpu", str(tmp_path / "m.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"measurement '{rec['id']}'" in err and says in err


def test_calibrate_refuses_to_hold_an_inner_memory_level(tmp_path):
    """Inner levels are fitted as ratios to the next level out, so a held value would be silently misread."""
    p = _write(tmp_path / "m.jsonl", _truth(load_target("h100-sxm"))[:4])
    with pytest.raises(ConfigError, match="inner memory level"):
        calibrate("h100-sxm", p, holdout=0.0, fixed={"bandwidth_bytes_per_s[smem]": 3e13})


def test_calibrate_fits_attention_efficiency_and_counts_batchnorm_kernels(tmp_path, monkeypatch):
    """Networks priced by a target with a known fused-attention efficiency and per-kernel overhead (batch norm
    as three kernels) are fitted back; the attention products' energy per MAC is their pair's."""
    import hwsim.fidelity.calibrate as cal

    monkeypatch.setattr(cal, "RESTARTS", 1)
    base = load_target("h100-sxm")
    d = base.model_dump()
    d["power_cap_w"] = None
    d["compute"].update(fused_attention=True, batchnorm_kernels=3)
    d["elementwise_overhead_s"] = 3e-6
    for r in d["compute"]["rates"]:
        if r["activation"] == "bf16":
            r["attention_efficiency"] = 0.3
    true = base.model_validate(d)
    models = [f"bert-base:layers=1,sequence=512,batch={b}" for b in (1, 4, 16)] + ["resnet18"]
    recs = []
    for i, model in enumerate(models):
        rep = estimate(model, true, weights="bf16", activations="bf16")
        recs.append({**_record(i, 1, 1, 1, rep.total.latency_s, rep.total.energy_j), "id": f"n{i}", "kind": "network",
                     "model": model, "params": {}, "weights_resident": True})
    recs += _truth(true)[::2]
    p = _write(tmp_path / "m.jsonl", recs)
    d["elementwise_overhead_s"] = 6e-6
    for r in d["compute"]["rates"]:
        r["attention_efficiency"] = None
    bf16 = next(r for r in true.compute.rates if r.activation == "bf16")
    # the pair's own efficiency held at its truth: with it free, these few noise-free records leave a valley
    # along which the two trade off, and one start of the fit may stop anywhere in it
    c = calibrate(base.model_validate(d), p, holdout=0.0, fixed={"efficiency[bf16 x bf16]": bf16.efficiency})
    assert c.parameters["attention_efficiency[bf16 x bf16]"] == pytest.approx(0.3, rel=0.1)
    assert c.parameters["elementwise_overhead_s"] == pytest.approx(3e-6, rel=0.1)
    assert "energy_per_mac_pj[bf16 x bf16 attention]" in c.parameters  # held, unused: the pair's is used
    bf16 = next(r for r in c.target.compute.rates if r.activation == "bf16")
    assert bf16.attention_efficiency == pytest.approx(0.3, rel=0.1)
    assert "attention_efficiency" in bf16.source
