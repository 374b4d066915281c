"""``hwsim calibrate --host`` measures this machine and writes a loadable target plus its runs."""

import json

from hwsim.cli import main
from hwsim.fidelity.host import cache_sizes, copy_bandwidth, physical_cores
from hwsim.fidelity.records import load_measurements
from hwsim.targets import load_target


def test_host_facts_are_sane():
    assert physical_cores() >= 1
    sizes = [s for _, s in cache_sizes()]
    assert sizes == sorted(sizes)
    assert copy_bandwidth(1 << 20, 0.01) > 1e8  # any machine copies faster than 100 MB/s


def test_calibrate_host_writes_target_and_runs(tmp_path, capsys):
    out = tmp_path / "host.yaml"
    assert main(["calibrate", "--host", "--seconds", "0.05", "--out", str(out),
                 "--models", "models/digits_cnn.onnx:batch=1"]) == 0
    text = capsys.readouterr().out
    assert "GMAC/s" in text and "digits_cnn" in text
    t = load_target(str(out))
    assert t.compute.mapping == "simd" and t.validation.measurements == ("host.jsonl",)
    recs = load_measurements(tmp_path / "host.jsonl")
    assert len(recs) == 1 and recs[0].latency_s > 0 and recs[0].params == {"batch": 1}
    assert json.loads(json.dumps(t.model_dump()))["energy_scope"] in (None, "chip")


def test_calibrate_host_refuses_a_target(tmp_path, capsys):
    assert main(["calibrate", "h100-sxm", "--host", "--out", str(tmp_path / "h.yaml")]) == 2
    assert "--host measures this machine" in capsys.readouterr().err
