import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "nojit: small kernel tests also run with NUMBA_DISABLE_JIT=1 (test_nojit.py)")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def all_threads(monkeypatch):
    """Kernel tests run the threaded kernels whatever the machine's load: workqueue.threads_now
    would otherwise give one thread while other jobs hold the cores, and the tests of the work
    split would test nothing."""
    from hwsim.kernels import workqueue

    monkeypatch.setattr(workqueue, "free_cpus", lambda: None)
