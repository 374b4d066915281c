"""Kernels launched from two Python threads at once only where numba's threading layer allows it.

numba's workqueue layer (its fallback without OpenMP or TBB) aborts the process when two threads
run parallel kernels at the same time, so the float reference beside the quantized run, and
solve's layer and plan threads, must run one after another there.
"""

import threading

import numba
import numpy as np
import pytest

import hwsim
from hwsim import sim
from hwsim.sim import refblas


@pytest.fixture
def layer(monkeypatch):
    """Pretend numba chose ``layer`` as its threading layer."""

    def use(name: str):
        refblas.concurrent_kernels_safe.cache_clear()
        monkeypatch.setattr(numba, "threading_layer", lambda: name)
        monkeypatch.setattr(numba.config, "DISABLE_JIT", False)
        monkeypatch.setattr(refblas, "cpu_count", lambda: 2)

    yield use
    refblas.concurrent_kernels_safe.cache_clear()


@pytest.mark.parametrize("name, want", [("omp", 2), ("tbb", 2), ("workqueue", 1)])
def test_threads_at_once_follows_the_threading_layer(layer, name, want):
    layer(name)
    assert refblas.threads_at_once() == want


def _run_threads(g, x) -> tuple[set, sim.SimResult]:
    names, real = set(), threading.Thread.start

    def start(self):
        names.add(self.name)
        return real(self)

    threading.Thread.start = start
    try:
        r = sim.run(g, x)
    finally:
        threading.Thread.start = real
    return names, r


def test_run_keeps_the_reference_on_the_calling_thread_under_workqueue(layer):
    g = hwsim.quantize_graph(hwsim.load_model("resnet18:resolution=32,batch=1"), "int8", "int8")
    x = {g.inputs[0]: np.random.default_rng(0).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)}
    g = sim.run(g, x).graph  # scales calibrated: no activation scale waits for the reference
    layer("omp")
    beside, r_beside = _run_threads(g, x)
    layer("workqueue")
    alone, r_alone = _run_threads(g, x)
    assert "hwsim-reference" in beside
    assert "hwsim-reference" not in alone
    for n in r_beside.output_values:  # the same values either way
        assert np.array_equal(r_beside.output_values[n], r_alone.output_values[n])
    assert [e.mse for e in r_beside.layers] == [e.mse for e in r_alone.layers]
