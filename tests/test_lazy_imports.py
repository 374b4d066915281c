"""Whole-process time: a command imports only what it needs (benchmarks/bench_startup.py measures
it). Each check runs in a fresh interpreter and lists the heavy packages an import pulled in."""

import json
import subprocess
import sys

HEAVY = ("networkx", "pydantic", "numba", "scipy", "scipy.special", "onnx")


def _loaded(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cli_parser_and_errors_import_no_heavy_package():
    """``hwsim --help`` and an argument error build the parser only: no IR, numba, scipy or onnx."""
    assert _loaded("import hwsim.cli as c; c.build_parser(); import hwsim.errors") == []


def test_estimate_of_a_model_without_weights_does_not_import_numba_or_scipy():
    assert _loaded("from hwsim.cost.estimate import estimate; import hwsim.graph.zoo") == ["networkx", "pydantic"]


def test_simulator_imports_numba_but_not_scipy_special_or_onnx():
    """scipy.special (GELU / Erf) and onnx (generic ONNX nodes) load where first used; numba
    itself imports the scipy package (not scipy.special)."""
    loaded = _loaded("import hwsim.sim")
    assert "numba" in loaded and "scipy.special" not in loaded and "onnx" not in loaded
