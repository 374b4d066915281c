"""`hwsim simulate --inputs` with a labels array reports top-1 accuracy of simulated and float outputs."""

import json
from importlib import resources

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.errors import InputDataError
from hwsim.sim.metrics import top1_accuracy

MODELS = resources.files("hwsim._models")


def test_top1_accuracy_counts_argmax_hits():
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 0.5]])
    assert top1_accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(InputDataError, match="one class index per row"):
        top1_accuracy(logits, np.array([1, 0]))


def test_digits_accuracy_through_cli(tmp_path, capsys):
    data = np.load(str(MODELS / "digits_test.npz"))
    n = 60
    path = tmp_path / "in.npz"
    np.savez(path, image=data["image"][:n], labels=data["labels"][:n])
    report = tmp_path / "r.json"
    code = main(["simulate", str(MODELS / "digits_cnn.onnx"), "--shape", f"batch={n}", "--weights", "int8",
                 "--activations", "int8", "--inputs", str(path), "--report-json", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert f"top-1 accuracy on {n} labelled inputs" in out
    acc = json.loads(report.read_text())["accuracy"]
    # trained to 97.5% held-out; int8 keeps nearly all of it, so both must be high and close
    assert acc["float"] > 0.9 and abs(acc["simulated"] - acc["float"]) <= 0.05
    # a second, differently named key is still an unknown input (no silent ignoring)
    np.savez(path, image=data["image"][:n], targets=data["labels"][:n])
    assert main(["simulate", str(MODELS / "digits_cnn.onnx"), "--shape", f"batch={n}", "--inputs", str(path)]) == 2
    assert "unknown input" in capsys.readouterr().err


def test_labels_key_that_is_not_in_the_inputs_is_refused(tmp_path, capsys):
    """--labels KEY named explicitly but absent from --inputs (or without --inputs): exit 2 naming
    the key (before: ignored, no accuracy line, exit 0); a key that is there is used, and the default
    key stays optional."""
    from pathlib import Path

    model = str(Path(__file__).parent.parent.parent / "models" / "digits_cnn.onnx")
    np.savez(tmp_path / "d.npz", image=np.zeros((2, 1, 8, 8), np.float32))
    inputs = ["--inputs", str(tmp_path / "d.npz")]
    assert main(["simulate", model] + inputs) == 0
    capsys.readouterr()
    assert main(["simulate", model, "--labels", "foo"] + inputs) == 2
    assert "--labels foo: " in capsys.readouterr().err
    assert main(["simulate", model, "--labels", "foo"]) == 2
    assert "--labels foo: " in capsys.readouterr().err
    np.savez(tmp_path / "d.npz", image=np.zeros((2, 1, 8, 8), np.float32), y=np.zeros(2, np.int64))
    assert main(["simulate", model, "--labels", "y"] + inputs) == 0
    assert "top-1 accuracy on 2 labelled inputs" in capsys.readouterr().out
