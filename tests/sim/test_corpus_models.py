"""The committed small real-shaped models (tests/data, made by tests/data/make_corpus_models.py):
``hwsim simulate`` matches onnxruntime within 1e-4 of each output's range, estimate and summary work."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hwsim.cli import main

DATA = Path(__file__).parents[1] / "data"


def _script(name: str = "make_corpus_models"):
    """The generator script ``tests/data/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _speech(rate: int, n: int) -> dict:
    t = np.arange(n) / rate
    x = 0.3 * np.sin(2 * np.pi * 140 * t) + 0.1 * np.sin(2 * np.pi * 900 * t)
    return {"input": x[None].astype(np.float32), "state": np.full((2, 1, 32), 0.05, np.float32),
            "sr": np.array(rate, np.int64)}


CASES = {
    "yolo_like": {"images": np.random.default_rng(0).random((1, 3, 64, 96)).astype(np.float32)},
    "speech_like@16k": _speech(16000, 1024),
    "speech_like@8k": _speech(8000, 512),
}


@pytest.mark.parametrize("name", sorted(_script().MODELS))
def test_committed_file_is_what_the_script_builds(name):
    assert (DATA / f"{name}.onnx").read_bytes() == _script().MODELS[name]().SerializeToString()
    assert (DATA / f"{name}.onnx").stat().st_size < 1_000_000


@pytest.mark.parametrize("case", sorted(CASES))
def test_simulate_matches_onnxruntime_and_prices(case, tmp_path, capsys):
    path = str(DATA / f"{case.split('@')[0]}.onnx")
    feeds = CASES[case]
    npz, out = str(tmp_path / "in.npz"), str(tmp_path / "out.npz")
    np.savez(npz, **feeds)
    assert main(["simulate", path, "--inputs", npz, "--out", out]) == 0
    got = np.load(out)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for meta, want in zip(sess.get_outputs(), sess.run(None, feeds)):
        scale = max(float(np.ptp(want)), float(np.max(np.abs(want))))
        assert got[meta.name].shape == want.shape
        assert np.max(np.abs(got[meta.name].astype(np.float64) - want)) <= 1e-4 * scale, meta.name
    capsys.readouterr()
    assert main(["estimate", path, "--target", "int8-npu", "--inputs", npz, "--weights", "int8",
                 "--activations", "int8"]) == 0
    assert main(["summary", path, "--inputs", npz]) == 0
    text = capsys.readouterr().out
    kinds = ("conv_transpose", "conv2d") if case == "yolo_like" else ("lstm", "conv2d")
    assert all(k in text for k in kinds)


def test_speech_model_needs_the_sample_rate(capsys):
    path = str(DATA / "speech_like.onnx")
    assert main(["summary", path, "--shape", "batch=1,samples=512"]) == 2
    err = capsys.readouterr().err
    assert "by_sample_rate" in err and "'sr'" in err


def test_solve_takes_shapes_and_the_sample_rate_from_inputs(tmp_path, capsys):
    path = str(DATA / "speech_like.onnx")
    npz = str(tmp_path / "in.npz")
    np.savez(npz, **CASES["speech_like@8k"])
    rc = main(["solve", path, "--target", "int8-npu", "--inputs", npz, "--metric", "proxy", "--quiet",
               "--budget", "size_bytes<=1e9", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
