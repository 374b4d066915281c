"""``hwsim compare-formats`` through hwsim.cli.main and once as a subprocess."""

import json
import subprocess
import sys

import pytest

from hwsim.cli import main

FAST = ["--samples", "2048"]
ROW_KEYS = {"format", "accumulator", "gates", "relative_gates_int8", "energy_pj_per_mac", "macs_per_cycle",
            "sqnr_db"}


def _json(capsys, *argv):
    assert main(["compare-formats", *argv, *FAST, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_shape(capsys):
    out = _json(capsys, "--formats", "int8,fp8_e4m3fn,fp8_e3m4")
    assert set(out) == {"rows", "crossover"}
    assert [(r["format"], r["accumulator"]) for r in out["rows"]] == [
        ("int8", "fx"), ("fp8_e4m3fn", "fp16"), ("fp8_e4m3fn", "fp32"), ("fp8_e3m4", "fp16"), ("fp8_e3m4", "fp32")]
    for r in out["rows"]:
        assert set(r) == ROW_KEYS
        assert set(r["gates"]) == {"multiply", "align_add", "normalize_accumulate", "total"}
        assert set(r["sqnr_db"]) >= {"gaussian", "laplace", "student_t3", "uniform"}
        assert all(isinstance(v, float) for v in r["sqnr_db"].values())
        assert r["macs_per_cycle"] is None  # no target
    c = out["crossover"]
    assert c["int_format"] == "int8" and c["float_format"] == "fp8_e4m3fn"
    assert len(c["nu"]) == len(c["sqnr_db"]["int8"]) == len(c["sqnr_db"]["fp8_e4m3fn"])
    assert c["nu"][0] < c["crossover_nu"] < c["nu"][-1]


def test_table_names_the_crossover(capsys):
    assert main(["compare-formats", "--formats", "int8,fp8_e4m3fn", "--accumulators", "fp16", *FAST]) == 0
    out = capsys.readouterr().out
    assert "fp8_e4m3fn is more accurate for Student-t nu <" in out
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert [r[:2] for r in rows] == [["int8", "fp16"], ["fp8_e4m3fn", "fp16"]]  # one accumulator for all


def test_custom_crossover_pair(capsys):
    out = _json(capsys, "--formats", "int4", "--crossover", "int4,fp4_e2m1fn")
    assert set(out["crossover"]["sqnr_db"]) == {"int4", "fp4_e2m1fn"}


@pytest.mark.parametrize("argv,msg", [
    (["--formats", "int8,fp8_e4m4"], "valid names"),
    (["--accumulators", "fp99"], "fx"),
    (["--crossover", "int8"], "INT,FP"),
    (["--samples", "10"], ">= 64"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, msg):
    assert main(["compare-formats", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and msg in err


def test_plot_is_written(tmp_path, capsys):
    path = tmp_path / "cmp.png"
    assert main(["compare-formats", "--formats", "int8,fp8_e4m3fn", *FAST, "--plot", str(path)]) == 0
    assert path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_subprocess_entry_point():
    proc = subprocess.run([sys.executable, "-m", "hwsim", "compare-formats", "--formats", "int8,fp8_e5m2",
                           "--json", *FAST], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert [r["format"] for r in rows] == ["int8", "fp8_e5m2", "fp8_e5m2"]
