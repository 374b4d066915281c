"""hwsim.sim.heap: simulate keeps the memory its float reference frees for the next run."""

import numpy as np
import pytest

from hwsim.sim import heap


@pytest.fixture
def calls(monkeypatch):
    made = []
    monkeypatch.setattr(heap, "_mallopt", lambda: lambda param, value: made.append((param, value)) or 1)
    monkeypatch.setattr(heap, "_state", {"trim_bytes": 0})
    return made


def test_trim_threshold_grows_to_the_peak_capped_by_available_memory(calls):
    assert heap.keep_for_reuse(100 << 20, None) == 100 << 20
    assert calls == [(heap._M_MMAP_THRESHOLD, heap.MMAP_THRESHOLD_BYTES), (heap._M_TRIM_THRESHOLD, 100 << 20)]
    assert heap.keep_for_reuse(50 << 20, None) == 100 << 20  # never lowered
    assert heap.keep_for_reuse(800 << 20, 2 << 30) == 512 << 20  # a quarter of what is available
    assert calls[-1] == (heap._M_TRIM_THRESHOLD, 512 << 20) and len(calls) == 3


def test_small_runs_leave_malloc_alone(calls):
    assert heap.keep_for_reuse(heap.MMAP_THRESHOLD_BYTES, None) == 0
    assert calls == []


@pytest.mark.parametrize("env", [("MALLOC_TRIM_THRESHOLD_", "0"), ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")])
def test_the_users_malloc_settings_stand(monkeypatch, env):
    monkeypatch.setenv(*env)
    heap._mallopt.cache_clear()
    try:
        assert heap._mallopt() is None
        assert heap.keep_for_reuse(1 << 30, None) == 0
    finally:
        heap._mallopt.cache_clear()


def test_simulate_with_reference_sets_it(calls, monkeypatch):
    import hwsim
    from hwsim.sim import memory, run
    from hwsim.sim.boundary import random_inputs

    monkeypatch.setattr(heap, "MMAP_THRESHOLD_BYTES", 0)  # a small model's estimate counts too
    g = hwsim.quantize_graph(hwsim.load_model("conv2d:c=8,h=12,w=12,k=8,batch=1"), "int8", "int8")
    x, calib = random_inputs(g, np.random.default_rng(0)), random_inputs(g, np.random.default_rng(1))
    run(g, x, calibration=calib, float_reference=False)
    assert calls == []
    run(g, x, calibration=calib)
    assert calls[-1] == (heap._M_TRIM_THRESHOLD, memory.estimate(g, True).total_bytes)
