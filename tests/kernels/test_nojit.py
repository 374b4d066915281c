"""Run the ``nojit`` subset of tests/kernels with NUMBA_DISABLE_JIT=1, so the kernels' Python
source is executed (coverage, readable tracebacks)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already without JIT")
def test_kernels_without_jit():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "nojit", "-p", "no:cacheprovider",
           "-p", "no:warnings", str(Path(__file__).parent)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and " skipped" not in res.stdout.split("\n")[-2]
