"""Bundled targets against their own committed measurements (the CI drift check of issue 11)."""

from __future__ import annotations

import pytest

from hwsim.cli import main
from hwsim.targets import bundled_targets


def test_every_bundled_target_states_its_energy_scope():
    assert {n: t.energy_scope for n, t in bundled_targets().items() if t.energy_scope is None} == {}


def test_targets_lists_fidelity(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "uncalibrated" in out and "validated" in out


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, t in bundled_targets().items() if t.validation is not None))
def test_bundled_target_within_its_documented_tolerance(name, capsys):
    """`hwsim validate NAME` exits 1 when the target drifts past the tolerance its YAML documents."""
    rc = main(["validate", name])
    out = capsys.readouterr().out
    assert rc == 0, out[-2000:]
