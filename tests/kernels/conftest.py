import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "nojit: small kernel tests also run with NUMBA_DISABLE_JIT=1 (test_nojit.py)")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
