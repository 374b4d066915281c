"""Golden JSON per (bundled model, bundled target) at default parameters (llama at context 32).

A change of numbers shows in review: rewrite with ``pytest tests/cost --update-golden``.
"""

import json
import math
from pathlib import Path

import pytest

from hwsim.cost import estimate
from hwsim.graph.zoo import bundled_models
from hwsim.targets import bundled_targets

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "estimate"
MODELS = sorted(bundled_models())
TARGETS = sorted(bundled_targets())


def _round(x):
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


def _close(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{path}: keys differ"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=2e-5, abs_tol=1e-30), f"{path}: {a} != golden {b}"
    else:
        assert a == b, f"{path}: {a!r} != golden {b!r}"


def _dump(report: dict) -> str:
    """One line per layer, so a changed number shows as a one-line diff."""
    head = {k: v for k, v in report.items() if k != "layers"}
    rows = ",\n".join(json.dumps(r, sort_keys=True) for r in report["layers"])
    return json.dumps(head, sort_keys=True)[:-1] + ',\n"layers": [\n' + rows + "\n]}\n"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", MODELS)
def test_golden(model, target, request):
    name = model + (":context=32" if model.startswith("llama") else "")
    got = _round(estimate(name, target).to_json())
    path = GOLDEN / f"{model}__{target}.json"
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dump(got))
        pytest.skip("golden rewritten")
    assert path.is_file(), f"missing {path}; create it with pytest --update-golden"
    _close(got, json.loads(path.read_text()))
