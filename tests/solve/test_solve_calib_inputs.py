"""``solve --calib`` on an ONNX model takes its shapes and control values from the calibration
data (before, such a model also needed ``--inputs``), and refuses ``--inputs`` that disagree."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main


def _branchy(path) -> str:
    """y = x @ A if sr == 8000 else x @ B: a MAC op in each branch, chosen by a scalar input."""
    rng = np.random.default_rng(0)
    a, b = (numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), n) for n in ("A", "B"))

    def branch(name, w):
        return helper.make_graph([helper.make_node("MatMul", ["x", w], [f"y_{name}"], name=f"mm_{name}")], name, [],
                                 [helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, ("batch", 3))])

    nodes = [helper.make_node("Equal", ["sr", "k8000"], ["is8k"], name="eq"),
             helper.make_node("If", ["is8k"], ["y"], name="by_rate", then_branch=branch("then", "A"),
                              else_branch=branch("else", "B"))]
    g = helper.make_graph(nodes, "branchy",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ("batch", 4)),
                           helper.make_tensor_value_info("sr", TensorProto.INT64, ())],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ("batch", 3))],
                          [a, b, numpy_helper.from_array(np.array(8000, np.int64), "k8000")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = str(path / "branchy.onnx")
    with open(p, "wb") as f:
        f.write(m.SerializeToString())
    return p


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(1)
    calib = str(tmp_path / "calib.npz")
    np.savez(calib, x=rng.standard_normal((6, 4)).astype(np.float32), sr=np.array(8000, np.int64))
    return _branchy(tmp_path), calib, tmp_path


def _solve(model, *extra, tmp):
    return main(["solve", model, "--target", "int8-npu", "--quiet", "--budget", "size_bytes<=1e9",
                 "--choices", "w=int8,int4;a=int8", "--cache-dir", str(tmp / "cache"), *extra])


def test_calib_alone_gives_shapes_and_control_values(files, capsys):
    model, calib, tmp = files
    assert _solve(model, "--calib", calib, tmp=tmp) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "mm_then" in out and "on 6 samples" in out


def test_calib_alone_binds_dynamic_dims_besides_the_batch(tmp_path, capsys):
    """tiny_bert's sequence length is dynamic: the first calibration sample gives it."""
    from pathlib import Path

    calib = str(tmp_path / "ids.npz")
    np.savez(calib, input_ids=np.random.default_rng(0).integers(0, 60, (4, 16)).astype(np.int64))
    model = str(Path(__file__).parents[1] / "data" / "tiny_bert.onnx")
    assert _solve(model, "--calib", calib, "--metric", "proxy", tmp=tmp_path) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "status optimal" in out and "priced from the first sample of" in out
    assert _solve(model, "--calib", calib, "--metric", "proxy", "--shape", "batch=3", "--json", tmp=tmp_path) == 0
    one = json.loads(capsys.readouterr().out)["total"]["macs"]
    assert _solve(model, "--calib", calib, "--metric", "proxy", "--json", tmp=tmp_path) == 0
    assert one == 3 * json.loads(capsys.readouterr().out)["total"]["macs"]  # --shape batch priced


def test_inputs_and_calib_must_agree_on_control_values(files, capsys):
    model, calib, tmp = files
    other = str(tmp / "in.npz")
    np.savez(other, x=np.zeros((1, 4), np.float32), sr=np.array(16000, np.int64))
    assert _solve(model, "--calib", calib, "--inputs", other, tmp=tmp) == 2
    err = capsys.readouterr().err
    assert "--calib" in err and "'sr'" in err and "16000" in err and "Traceback" not in err
    np.savez(other, x=np.zeros((1, 4), np.float32), sr=np.array(8000, np.int64))
    assert _solve(model, "--calib", calib, "--inputs", other, tmp=tmp) == 0
    assert "on 6 samples" in capsys.readouterr().out  # measured on every sample, not --inputs' one


@pytest.mark.parametrize("command", [["estimate", "--target", "int8-npu"], ["summary"],
                                     ["solve", "--target", "int8-npu", "--metric", "proxy", "--quiet",
                                      "--budget", "size_bytes<=1e9"]])
def test_inputs_and_calib_parse_the_onnx_file_once(files, command, monkeypatch, capsys):
    """Input names, the priced model and the measured ones come from one parse of the file (it
    was parsed for the names, again for the checks, and again for every import)."""
    import onnx

    import hwsim.graph.onnx as hwonnx

    model, calib, tmp = files
    inputs = str(tmp / "in.npz")
    np.savez(inputs, x=np.zeros((1, 4), np.float32), sr=np.array(8000, np.int64))
    parses = []
    real = onnx.load_model_from_string
    monkeypatch.setattr(hwonnx.onnx, "load_model_from_string", lambda *a, **k: parses.append(1) or real(*a, **k))
    monkeypatch.setattr(hwonnx.onnx, "load", lambda *a, **k: parses.append(1) or onnx.load_model(*a, **k))
    getattr(hwonnx, "_LAST_PARSED", {}).clear()
    extra = ["--calib", calib, "--cache-dir", str(tmp / "cache")] if command[0] == "solve" else []
    assert main([command[0], model, *command[1:], "--inputs", inputs, *extra]) == 0, capsys.readouterr().err
    assert len(parses) == 1


@pytest.mark.parametrize("metric", ["output_mse", "proxy"])
def test_non_finite_calibration_samples_are_refused_naming_them(files, metric, capsys):
    """A NaN sample made every sensitivity NaN ('no usable choice ... outputs overflow or are NaN') or
    failed inside the proxy ('int8: cannot quantize NaN'), neither naming the data."""
    model, _, tmp = files
    bad = str(tmp / "nan.npz")
    x = np.ones((4, 4), np.float32)
    x[2, 1] = np.nan
    np.savez(bad, x=x, sr=np.array(8000, np.int64))
    assert _solve(model, "--calib", bad, "--metric", metric, tmp=tmp) == 2
    err = capsys.readouterr().err
    assert "'x' holds 1 NaN or inf value(s) (sample(s) 2)" in err
