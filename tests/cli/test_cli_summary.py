"""`hwsim summary` / `hwsim models` end to end, in process and as a subprocess."""

import json
import subprocess
import sys

from hwsim.cli import main


def test_summary_json_shape(capsys):
    assert main(["summary", "resnet18", "--weights", "int4", "--activations", "int8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"model", "total_macs", "total_params", "total_weight_bytes", "layers"}
    assert out["total_macs"] == 1_814_073_344 and out["total_params"] == 11_689_512
    conv1 = out["layers"][0]
    assert set(conv1) == {"name", "op", "macs", "params", "weight_format", "activation_format",
                          "input_shapes", "output_shape"}
    assert (conv1["name"], conv1["op"], conv1["weight_format"], conv1["activation_format"]) == \
        ("conv1", "conv2d", "int4", "int8")
    assert conv1["output_shape"] == [1, 64, 112, 112] and conv1["macs"] == 118_013_952


def test_summary_table_and_shape_override(capsys):
    assert main(["summary", "bert-base", "--shape", "sequence=64"]) == 0
    text = capsys.readouterr().out
    assert "encoder.layer.11.output.dense" in text and "109,482,240 parameters" in text
    assert "1x64x3072" in text


def test_depthwise_label(capsys):
    assert main(["summary", "mobilenet_v2", "--json"]) == 0
    ops = {r["name"]: r["op"] for r in json.loads(capsys.readouterr().out)["layers"]}
    assert ops["features.2.conv.1.0"] == "conv2d/dw"


def test_errors_are_messages_not_tracebacks(capsys):
    assert main(["summary", "resnet19"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'resnet19'") and "Traceback" not in err
    assert main(["summary", "resnet18", "--weights", "int9x"]) == 2
    assert "int9x" in capsys.readouterr().err
    assert main(["summary", "resnet18", "--shape", "batch"]) == 2
    assert "name=value" in capsys.readouterr().err
    assert main(["summary", "resnet18", "--weights", "int8", "--config", "x.yaml"]) == 2
    assert main(["summary", "missing.onnx"]) == 2
    assert "not found" in capsys.readouterr().err


def test_models_lists_zoo(capsys):
    assert main(["models", "--json"]) == 0
    zoo = json.loads(capsys.readouterr().out)
    assert {"resnet18", "resnet50", "mobilenet_v2", "bert-base", "vit-b16", "llama2-7b", "gemm", "conv2d"} <= set(zoo)


def test_console_entry_point_runs_from_any_directory(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hwsim", "summary", "gemm:m=1,k=8,n=8", "--json"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total_macs"] == 64
