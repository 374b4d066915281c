"""Shared pytest options. Keep additive: each part owns its own fixtures in its own test folder."""


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite golden files under tests/golden/ instead of comparing against them")
