"""Bad inputs give clear errors; NaN/inf are reported; the CLI end to end (in-process and subprocess)."""

import json
import subprocess
import sys

import numpy as np
import pytest

import hwsim
from hwsim.cli import main
from hwsim.errors import ConfigError, InputDataError
from hwsim.sim import run


@pytest.fixture(scope="module")
def gemm():
    return hwsim.quantize_graph(hwsim.load_model("gemm:m=2,k=8,n=4"), "int8", "int8")


def test_missing_input_names_tensor_and_shape(gemm):
    with pytest.raises(InputDataError, match=r"missing input.*input \(2, 8\)"):
        run(gemm, {})


def test_wrong_shape_and_dtype(gemm):
    with pytest.raises(InputDataError, match=r"'input' has shape \(3, 8\).*\(2, 8\)"):
        run(gemm, {"input": np.zeros((3, 8), np.float32)})
    with pytest.raises(InputDataError, match="dtype int32"):
        run(gemm, {"input": np.zeros((2, 8), np.int32)})


def test_unknown_requant_mode(gemm):
    with pytest.raises(ConfigError, match="unknown requant mode 'fast'"):
        run(gemm, {"input": np.zeros((2, 8), np.float32)}, requant="fast")


def test_nan_inf_are_reported_and_follow_format_policy():
    g = hwsim.quantize_graph(hwsim.load_model("gemm:m=2,k=8,n=4"), "fp8_e4m3fn", "fp8_e4m3fn")
    x = np.ones((2, 8), np.float32)
    x[0, 1], x[1, 2] = np.nan, np.inf
    r = run(g, {"input": x})
    assert "input 'input': 1 NaN values" in r.notes  # named per tensor (issue 12)
    assert any(n.startswith("input 'input': 1 +-inf values saturate to the fp8_e4m3fn range") for n in r.notes)
    assert np.isnan(r.output_values["gemm.out"][0]).all()  # NaN propagates through fp8 (fn has NaN)
    gi = hwsim.quantize_graph(hwsim.load_model("gemm:m=2,k=8,n=4"), "int8", "int8")
    with pytest.raises(InputDataError, match="NaN"):  # integer formats cannot hold NaN
        run(gi, {"input": x})


def test_cli_writes_outputs_and_report(tmp_path):
    np.savez(tmp_path / "in.npz", input=np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32))
    rc = main(["simulate", "gemm:m=2,k=8,n=4", "--weights", "int8", "--activations", "int8",
               "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz"),
               "--report-json", str(tmp_path / "r.json"), "--requant", "gemmlowp"])
    assert rc == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["requant"] == "gemmlowp" and rep["layers"][0]["name"] == "gemm"
    assert 20 < rep["layers"][0]["sqnr_db"] < 60
    assert rep["outputs"]["gemm.out"]["shape"] == [2, 4]
    with np.load(tmp_path / "o.npz") as f:
        assert f["gemm.out"].shape == (2, 4)


def test_cli_bad_npz_and_subprocess(tmp_path, capsys):
    (tmp_path / "bad.npz").write_text("not a zip")
    assert main(["simulate", "gemm:m=2,k=8,n=4", "--inputs", str(tmp_path / "bad.npz")]) == 2
    assert "cannot read" in capsys.readouterr().err
    p = subprocess.run([sys.executable, "-m", "hwsim", "simulate", "conv2d:c=2,h=6,w=6,k=3",
                        "--weights", "int8", "--activations", "int8"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "seeded random inputs" in p.stdout and "conv2d" in p.stdout


@pytest.mark.parametrize("cmd", [["summary"], ["estimate", "--target", "int8-npu"],
                                 ["solve", "--target", "int8-npu", "--budget", "latency_s<=1", "--metric", "proxy"]])
def test_shape_only_commands_refuse_inputs_they_would_ignore(tmp_path, capsys, cmd):
    """summary / estimate / solve of a zoo model with --inputs at another shape priced the zoo shape
    (224x224) and exited 0; a file whose arrays the model does not read was ignored. Both refused
    now, as simulate refuses them; matching inputs are accepted."""
    from hwsim.cli import main

    small, wrong, ok = tmp_path / "small.npz", tmp_path / "wrong.npz", tmp_path / "ok.npz"
    np.savez(small, input=np.zeros((1, 3, 64, 64), np.float32))
    np.savez(wrong, image=np.zeros((1, 3, 32, 32), np.float32))
    np.savez(ok, input=np.zeros((1, 3, 32, 32), np.float32), labels=np.zeros(1, np.int64))
    model = cmd[:1] + ["resnet18:resolution=32"] + cmd[1:]
    assert main(model[:1] + ["resnet18"] + model[2:] + ["--inputs", str(small)]) == 2
    assert "has shape (1, 3, 64, 64); the model expects (1, 3, 224, 224)" in capsys.readouterr().err
    assert main(model + ["--inputs", str(wrong)]) == 2
    assert "unknown input name(s) ['image']" in capsys.readouterr().err
    if cmd[0] != "solve":
        assert main(model + ["--inputs", str(ok)]) == 0


def test_shape_binding_that_contradicts_the_inputs_is_refused(tmp_path, capsys):
    """--shape batch=2 (or image=2x1x8x8) with --inputs of batch 4: the inputs' shape silently won
    for a named dim and the binding silently won for a whole input (summary priced batch 2 while
    simulate ran 4). Refused naming both; agreeing bindings are fine."""
    from pathlib import Path

    from hwsim.cli import main

    model = str(Path(__file__).parent.parent.parent / "models" / "digits_cnn.onnx")
    np.savez(tmp_path / "d4.npz", image=np.zeros((4, 1, 8, 8), np.float32))
    inputs = ["--inputs", str(tmp_path / "d4.npz")]
    assert main(["summary", model, "--shape", "batch=2"] + inputs) == 2
    assert "batch=2, but the array given for input 'image' has 4 in dim 0" in capsys.readouterr().err
    assert main(["summary", model, "--shape", "image=2x1x8x8"] + inputs) == 2
    assert "input 'image' is bound to 2x1x8x8 but the array given for it has shape 4x1x8x8" in capsys.readouterr().err
    assert main(["simulate", model, "--shape", "batch=2"] + inputs) == 2
    assert main(["summary", model, "--shape", "batch=4"] + inputs) == 0


@pytest.mark.parametrize("command", ["summary", "estimate", "simulate", "solve"])
def test_every_command_says_a_shape_key_bound_nothing(command, tmp_path, capsys):
    """The import's notes reach every command's output (estimate, simulate and solve dropped them:
    a mistyped or needless --shape key was ignored without a word); keys bound through --inputs
    are not called unused."""
    from pathlib import Path

    model = str(Path(__file__).parents[1] / "data" / "tiny_bert.onnx")
    ids = str(tmp_path / "ids.npz")
    np.savez(ids, input_ids=np.arange(16, dtype=np.int64).reshape(1, 16))
    extra = {"estimate": ["--target", "int8-npu"], "simulate": ["--inputs", ids],
             "solve": ["--target", "int8-npu", "--metric", "proxy", "--quiet", "--budget", "size_bytes<=1e9",
                       "--cache-dir", str(tmp_path / "cache")]}.get(command, [])
    assert main([command, model, "--shape", "batch=1,sequence=16,seqlen=16", *extra]) == 0
    out = capsys.readouterr().out
    assert "shapes seqlen matched no dynamic dim or input" in out and "batch, seqlen" not in out


@pytest.mark.parametrize("mode", ["tflite", "gemmlowp"])
def test_a_requant_mode_with_nothing_to_round_says_so(mode):
    """With float layer outputs (scope mac_inputs) gemmlowp / tflite requantization changes
    nothing; the run said nothing, so it looked like the mode had been simulated."""
    g = hwsim.quantize_graph(hwsim.load_model("gemm:m=2,k=8,n=4"), "int8", "int8")
    x = {"input": np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)}
    r = run(g, x, requant=mode)
    assert any(n.startswith(f"requant {mode}: layers with float outputs") for n in r.notes)
    np.testing.assert_array_equal(r.outputs["gemm.out"], run(g, x, requant="exact").outputs["gemm.out"])
    assert not any("layers with float outputs" in n for n in run(g, x, requant="exact").notes)
