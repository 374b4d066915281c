"""Every cost constant outside the targets lives in hwsim.cost.constants with a source."""

from hwsim.cost import constants


def test_every_constant_cites_a_source_or_says_assumption():
    found = [v for v in vars(constants).values() if isinstance(v, constants.Constant)]
    assert len(found) >= 2
    for c in found:
        assert c.value > 0
        assert "assumption" in c.source or "(" in c.source, c.source
