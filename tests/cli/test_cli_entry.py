"""The console script's entry (:func:`hwsim.cli.entry`): main's exit status, and the objects frozen
out of the garbage collector before the interpreter's shutdown (which otherwise traverses them
all again: 0.4-0.5 s at the end of a cold solve)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

import hwsim.cli as cli

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite keeps a collector that sees everything


@pytest.mark.parametrize("status", [0, 2, 3])
def test_entry_exits_with_mains_status_after_freezing(monkeypatch, unfrozen, status):
    seen = []

    def fake_main(argv=None):
        seen.append(gc.get_freeze_count())  # nothing frozen while the command runs
        return status

    monkeypatch.setattr(cli, "main", fake_main)
    with pytest.raises(SystemExit) as exc:
        cli.entry()
    assert exc.value.code == status
    assert seen == [0]
    assert gc.get_freeze_count() > 0


def test_main_leaves_the_collector_alone(unfrozen, capsys):
    assert cli.main(["targets"]) == 0
    assert gc.get_freeze_count() == 0


def test_console_script_and_python_m_use_entry():
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["hwsim"] == "hwsim.cli:entry"
    assert "entry()" in (ROOT / "hwsim" / "__main__.py").read_text()


@pytest.mark.parametrize("argv, status, needle", [
    (["targets"], 0, "int8-npu"),
    (["simulate", "no-such-model.onnx"], 2, "error:"),
])
def test_python_m_hwsim_status_and_output(argv, status, needle):
    proc = subprocess.run([sys.executable, "-m", "hwsim", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == status, proc.stderr
    assert needle in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
