"""Output files are written exactly where asked, and the command says so (issue 12): ``--out X``
used to write ``X.npz``, and existing files were replaced without a word."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from hwsim.cli import main

GEMM = "gemm:m=2,k=8,n=4"


def _sim(tmp_path, *extra):
    return main(["simulate", GEMM, "--weights", "int8", "--activations", "int8", *extra])


def test_out_written_at_exact_path(tmp_path, capsys):
    out = tmp_path / "result"
    assert _sim(tmp_path, "--out", str(out)) == 0
    assert out.is_file() and not (tmp_path / "result.npz").exists()
    with np.load(out) as f:
        assert f["gemm.out"].shape == (2, 4)
    err = capsys.readouterr().err
    assert f"--out: wrote {out}" in err and "replaced" not in err


def test_replacing_an_existing_file_is_said(tmp_path, capsys):
    out, rep = tmp_path / "o.npz", tmp_path / "r.json"
    out.write_bytes(b"old")
    rep.write_text("{}")
    assert _sim(tmp_path, "--out", str(out), "--report-json", str(rep)) == 0
    err = capsys.readouterr().err
    assert f"--out: wrote {out} (replaced the existing file)" in err
    assert f"--report-json: wrote {rep} (replaced the existing file)" in err
    assert json.loads(rep.read_text())["layers"]


def test_write_config_says_written(tmp_path, capsys):
    cfg = tmp_path / "plan.yaml"
    cfg.write_text("old")
    assert main(["solve", GEMM, "--target", "int8-npu", "--budget", "size_bytes<=1e9", "--metric", "proxy",
                 "--write-config", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert f"--write-config: wrote {cfg} (replaced the existing file)" in err
    assert "schema_version" in cfg.read_text()


def test_estimate_json_stdout_stays_json_with_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "p.png"
    assert main(["estimate", GEMM, "--target", "int8-npu", "--json", "--plot", str(png)]) == 0
    cap = capsys.readouterr()
    json.loads(cap.out)
    assert f"--plot: wrote {png}" in cap.err and png.is_file()
