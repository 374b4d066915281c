"""`pip install .` (README quickstart) installs every subpackage: pyproject lists packages by hand,
and hwsim.requant was missing, so a non-editable install failed at `hwsim ...` with
"cannot import name 'requant' from 'hwsim'" while the editable install CI uses worked."""

from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "hwsim").rglob("__init__.py")}
    assert on_disk - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {sorted(on_disk - listed)}"
