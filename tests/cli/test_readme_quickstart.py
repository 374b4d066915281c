"""The README's two Quickstart commands stay true: the first runs, the second is what CI runs."""

import re
import shlex
from pathlib import Path

from hwsim.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _quickstart_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1]
    return re.findall(r"```bash\n(.+?)\n```", section)[:2]


def test_first_command_runs(capsys):
    first, _ = _quickstart_commands()
    install, hwsim_cmd = first.split(" && ", 1)
    assert install == "pip install ."
    argv = shlex.split(hwsim_cmd)
    assert argv[0] == "hwsim"
    assert main(argv[1:]) == 0
    assert "resnet18 on cortex-a78" in capsys.readouterr().out


def test_second_command_is_what_ci_runs():
    _, second = _quickstart_commands()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == second
