"""Outputs are byte-identical across runs, Python hash seeds and numba thread counts
(docs/guarantees.md, issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import contextlib, io, sys
from hwsim.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    assert main(["estimate", "mobilenet_v2", "--target", "int8-npu", "--json"]) == 0
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # prints peak RSS
    assert main(["simulate", "conv2d", "--weights", "int4", "--activations", "int8", "--out", sys.argv[1],
                 "--report-json", sys.argv[2]]) == 0
sys.stdout.write(out.getvalue())
"""


def _run(tmp_path, tag, hash_seed, threads):
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed), NUMBA_NUM_THREADS=str(threads))
    npz, rep = tmp_path / f"{tag}.npz", tmp_path / f"{tag}.json"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(npz), str(rep)], env=env, capture_output=True,
                         check=True).stdout
    return out, npz.read_bytes(), rep.read_bytes()


def test_byte_identical_across_hash_seeds_and_threads(tmp_path):
    a = _run(tmp_path, "a", 1, 1)
    b = _run(tmp_path, "b", 2, 2)
    assert a[0] and a[0] == b[0]
    assert a[1] == b[1]  # the .npz, byte for byte (fixed zip timestamps)
    ra, rb = json.loads(a[2]), json.loads(b[2])
    ra.pop("memory"), rb.pop("memory")  # measured peak RSS and a thread-dependent workspace estimate
    assert ra == rb
