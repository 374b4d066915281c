"""Non-finite values are named, never passed off as a result (issue 12): NaN logits rows are wrong
answers and counted, an all-NaN output has no SQNR (not "identical"), +inf inputs saturating to
int8 and fp16 overflow to inf are said per tensor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.graph.annotate import quantize_graph
from hwsim.graph.zoo import load_model
from hwsim.sim import run
from hwsim.sim.metrics import errors, rounding_notes, sqnr_db, top1, top1_accuracy

GEMM = "gemm:m=2,k=8,n=4"


def test_nan_rows_are_wrong_and_counted():
    """Two all-NaN rows used to score 100.00% (argmax of NaN is 0 = the label)."""
    logits = np.full((2, 3), np.nan)
    assert top1_accuracy(logits, np.array([0, 0])) == 0.0
    r = top1(np.array([[np.nan, 0, 0], [0.1, 0.9, 0.0], [0.0, np.nan, 5.0]]), np.array([0, 1, 2]))
    assert (r.accuracy, r.rows, r.nan_rows) == (pytest.approx(1 / 3), 3, 2)


def test_sqnr_of_nan_is_nan_not_identical():
    x = np.full(4, np.nan)
    assert math.isnan(sqnr_db(x, x))
    assert math.isnan(errors(x, x)[0])
    y = np.array([1.0, np.inf])
    assert sqnr_db(y, y) == math.inf  # identical and NaN-free: still "identical"


def test_rounding_notes_name_what_happened():
    before = np.array([np.inf, -np.inf, 1.0, 7e4, np.nan])
    notes = rounding_notes("input 'x'", "int8", before[:3], np.array([127.0, -128.0, 1.0]))
    assert notes == ["input 'x': 2 +-inf values saturate to the int8 range (-128 .. 127 here)"]
    notes = rounding_notes("input 'x'", "fp16", before, np.array([np.inf, -np.inf, 1.0, np.inf, np.nan]))
    assert "input 'x': 2 +-inf values stay +-inf (fp16 has inf)" in notes
    assert "input 'x': 1 finite values beyond the fp16 range overflow to +-inf" in notes
    assert "input 'x': 1 NaN values" in notes


def _sim(w, a, x):
    g = quantize_graph(load_model(GEMM), w, a)
    return g, run(g, {"input": x})


def test_inf_input_to_int8_named():
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    x[0, 0] = np.inf
    _, r = _sim("int8", "int8", x)
    assert any("1 +-inf values saturate to the int8 range" in n for n in r.notes), r.notes


def test_fp16_overflow_named():
    x = np.full((2, 8), 1e5, np.float32)
    g, r = _sim("fp16", "fp16", x)
    assert any("16 finite values beyond the fp16 range overflow to +-inf" in n for n in r.notes), r.notes
    assert any("gemm" in n and "where the float reference is finite" in n for n in r.notes), r.notes


def test_all_nan_output_named_and_no_sqnr(tmp_path, capsys):
    x = np.full((2, 8), np.nan, np.float32)
    g, r = _sim("fp16", "fp16", x)
    assert all(math.isnan(e.sqnr_db) for e in r.layers)
    assert any(f"output '{g.outputs[0]}': all 8 values are NaN" in n for n in r.notes), r.notes
    np.savez(tmp_path / "nan.npz", input=x)
    assert main(["simulate", GEMM, "--weights", "fp16", "--activations", "fp16", "--inputs",
                 str(tmp_path / "nan.npz")]) == 0
    out = capsys.readouterr().out
    assert " inf " not in out and "all 8 values are NaN" in out


def test_simulate_reports_nan_rows(tmp_path, capsys):
    x = np.full((2, 8), np.nan, np.float32)
    np.savez(tmp_path / "in.npz", input=x, labels=np.array([0, 0]))
    assert main(["simulate", GEMM, "--weights", "fp16", "--activations", "fp16", "--inputs",
                 str(tmp_path / "in.npz")]) == 0
    out = capsys.readouterr().out
    assert "0.00% simulated" in out and "2 of 2 rows hold NaN" in out, out
