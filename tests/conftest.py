"""Shared pytest options. Keep additive: each part owns its own fixtures in its own test folder."""

from hypothesis import settings

# Hypothesis's per-example deadline (200 ms) measures the machine's load, not the property: on a shared
# 2-core CI host a cost-model example took 252 ms and failed a correct test. Speed is measured in
# benchmarks/, never asserted in tests, so no property test has a deadline.
settings.register_profile("hwsim", deadline=None)
settings.load_profile("hwsim")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite golden files under tests/golden/ instead of comparing against them")
