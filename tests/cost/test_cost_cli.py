"""`hwsim estimate` and `hwsim targets` through hwsim.cli.main, and once via a subprocess."""

import json
import subprocess
import sys

import pytest

from hwsim.cli import main


def test_estimate_table(capsys):
    assert main(["estimate", "resnet18", "--target", "cortex-a78", "--weights", "int4", "--activations", "int8"]) == 0
    out = capsys.readouterr().out
    assert "latency (ms)" in out and "bottleneck" in out and "layer4.1.conv2" in out
    assert "resnet18 on cortex-a78:" in out and "1.81 G MACs" in out


def test_estimate_json_is_one_object(capsys):
    assert main(["estimate", "conv2d", "--target", "int8-npu", "--shape", "c=16,k=16", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["target"] == "int8-npu" and j["layers"][0]["op"] == "conv2d"
    assert j["total"]["macs"] == 16 * 16 * 9 * 56 * 56


def test_estimate_plot(tmp_path, capsys):
    out = tmp_path / "r.png"
    assert main(["estimate", "resnet18", "--target", "eyeriss", "--plot", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["estimate", "conv2d", "--target", "eyeriss", "--plot", str(tmp_path / "x.png")]) == 2
    assert "pip install 'hwsim[plot]'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["estimate", "resnet18", "--target", "tpu9"], "unknown target 'tpu9'"),
    (["estimate", "resnet18", "--target", "cortex-a78", "--weights", "int99"], "int99"),
])
def test_estimate_user_errors_exit_2(argv, msg, capsys):
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_targets_listing(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in ("cortex-a78", "int8-npu", "h100-sxm", "rs-engine", "eyeriss"):
        assert name in out
    assert main(["targets", "--json"]) == 0
    hbm = json.loads(capsys.readouterr().out)["h100-sxm"]["memory"][-1]
    assert hbm["name"] == "hbm" and 2.0e12 < hbm["bandwidth_bytes_per_s"] <= 3.35e12  # achieved (fitted)


def test_estimate_via_subprocess():
    p = subprocess.run([sys.executable, "-m", "hwsim", "estimate", "gemm:m=8,k=64,n=64", "--target", "rs-engine",
                        "--weights", "signed_binary", "--activations", "int8", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)["layers"][0]
    assert row["executed_ops"] < row["macs"] and set(row["energy_breakdown_j"]) == {"mac", "decode", "memory", "static"}
    assert set(row["memory_energy_j"]) == {"buffer", "dram"}
