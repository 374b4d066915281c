"""Every compiled kernel of hwsim's kernel and simulator modules is cached on disk (numba
``cache=True``), except the helpers inlined into other kernels: a kernel compiled anew in each
process costs its compile time at its first call (the threaded AVX-512 GEMM drivers, made by
``simdgemm._variant`` without ``cache=True``, took 1.4-2.7 s at their first threaded call of every
process until 2026-11-27)."""

import importlib
import pkgutil

import pytest

numba = pytest.importorskip("numba")

from numba.core.caching import NullCache  # noqa: E402
from numba.core.registry import CPUDispatcher  # noqa: E402

import hwsim.kernels  # noqa: E402
import hwsim.sim  # noqa: E402


def _dispatchers():
    for pkg in (hwsim.kernels, hwsim.sim):
        for info in pkgutil.iter_modules(pkg.__path__):
            mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for name, value in vars(mod).items():
                if isinstance(value, CPUDispatcher) and getattr(value.py_func, "__module__", None) == mod.__name__:
                    yield f"{mod.__name__}.{name}", value


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no compiled kernels with NUMBA_DISABLE_JIT")
def test_every_called_kernel_is_cached_on_disk():
    found = dict(_dispatchers())
    assert "hwsim.kernels.simdgemm._gemm_w" in found  # the variants are seen
    uncached = [name for name, d in found.items()
                if isinstance(d._cache, NullCache) and d.targetoptions.get("inline") != "always"]
    assert not uncached, f"compiled anew in every process: {uncached}"
