"""hwsim.heap: the one place that decides how much freed memory the process keeps (glibc only)."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from hwsim import heap

MIB = 1 << 20


class _FakeLibc:
    def __init__(self):
        self.calls = []
        self.mallopt = lambda param, value: self.calls.append((param, value)) or 1
        self.malloc_trim = lambda pad: self.calls.append(("trim", pad)) or 1


@pytest.fixture
def libc(monkeypatch):
    fake = _FakeLibc()
    monkeypatch.setattr(heap, "_libc", lambda: fake)
    monkeypatch.setattr(heap, "_state", {"trim_bytes": 0, "depth": 0, "one_arena": False})
    return fake


def test_kept_memory_grows_to_the_peak_capped_by_available_memory(libc):
    assert heap.keep_for_reuse(100 * MIB, None) == 100 * MIB
    assert libc.calls == [(heap._M_ARENA_MAX, 1), (heap._M_MMAP_THRESHOLD, 100 * MIB),
                          (heap._M_TRIM_THRESHOLD, 100 * MIB)]
    assert heap.keep_for_reuse(50 * MIB, None) == 100 * MIB  # never lowered
    assert len(libc.calls) == 3
    assert heap.keep_for_reuse(800 * MIB, 2 << 30) == 512 * MIB  # a quarter of what is available
    assert libc.calls[3:] == [(heap._M_MMAP_THRESHOLD, 512 * MIB), (heap._M_TRIM_THRESHOLD, 512 * MIB)]
    assert heap.keep_for_reuse(40 * MIB, None) == 512 * MIB
    assert heap.keep_for_reuse(8 << 30, None) == 2**31 - 1  # an int: the mmap threshold stops at 1 GiB
    assert libc.calls[5:] == [(heap._M_MMAP_THRESHOLD, 1 << 30), (heap._M_TRIM_THRESHOLD, 2**31 - 1)]


def test_a_peak_within_glibcs_own_ceiling_leaves_malloc_alone(libc):
    assert heap.keep_for_reuse(32 * MIB, None) == 0
    assert libc.calls == []
    assert heap.keep_for_reuse(40 * MIB, None) == 40 * MIB  # then the trim threshold is at least glibc's 64 MiB
    assert libc.calls == [(heap._M_ARENA_MAX, 1), (heap._M_MMAP_THRESHOLD, 40 * MIB), (heap._M_TRIM_THRESHOLD, 64 * MIB)]


def test_keep_freed_memory_nests_and_its_exit_restores_what_simulate_asked(libc):
    with heap.keep_freed_memory():
        assert libc.calls == [(heap._M_ARENA_MAX, 1), (heap._M_MMAP_THRESHOLD, 1 << 30),
                              (heap._M_TRIM_THRESHOLD, 2**31 - 1)]
        with heap.keep_freed_memory():
            assert heap.keep_for_reuse(300 * MIB, None) == 300 * MIB  # inside: remembered, not set
        assert len(libc.calls) == 3  # the inner exit changes nothing
    assert libc.calls[3:] == [(heap._M_MMAP_THRESHOLD, 300 * MIB), (heap._M_TRIM_THRESHOLD, 300 * MIB), ("trim", 0)]
    with heap.keep_freed_memory():
        pass
    assert (heap._M_ARENA_MAX, 1) not in libc.calls[3:]  # set once
    assert heap._state["depth"] == 0


def test_keep_freed_memory_gives_back_unless_every_entry_keeps(libc):
    with heap.keep_freed_memory(give_back=False):
        pass
    assert ("trim", 0) not in libc.calls and heap._state["depth"] == 0
    assert libc.calls[-1] == (heap._M_TRIM_THRESHOLD, 2 * heap.MMAP_THRESHOLD_BYTES)  # outside settings restored
    with heap.keep_freed_memory(give_back=False), heap.keep_freed_memory():
        pass
    assert libc.calls[-1] == ("trim", 0)
    n = len(libc.calls)
    with heap.keep_freed_memory(give_back=False):  # what the last exit decided does not carry over
        pass
    assert ("trim", 0) not in libc.calls[n:]


def test_keep_freed_memory_exits_on_an_error(libc):
    with pytest.raises(KeyError), heap.keep_freed_memory():
        raise KeyError("x")
    assert heap._state["depth"] == 0 and libc.calls[-1] == ("trim", 0)


@pytest.mark.parametrize("env", [("MALLOC_TRIM_THRESHOLD_", "0"), ("MALLOC_ARENA_MAX", "4"),
                                 ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")])
def test_the_users_malloc_settings_stand(monkeypatch, env):
    monkeypatch.setattr(heap, "_startup_environ", lambda: {**heap.os.environ, env[0]: env[1]})
    heap._libc.cache_clear()
    try:
        assert heap._libc() is None
        assert heap.keep_for_reuse(1 << 30, None) == 0
        with heap.keep_freed_memory():
            pass
    finally:
        heap._libc.cache_clear()


def test_simulate_with_reference_asks_for_its_estimate(libc, monkeypatch):
    import hwsim
    from hwsim.sim import memory, run
    from hwsim.sim.boundary import random_inputs

    monkeypatch.setattr(heap, "MMAP_THRESHOLD_BYTES", 0)  # a small model's estimate counts too
    g = hwsim.quantize_graph(hwsim.load_model("conv2d:c=8,h=12,w=12,k=8,batch=1"), "int8", "int8")
    x, calib = random_inputs(g, np.random.default_rng(0)), random_inputs(g, np.random.default_rng(1))
    run(g, x, calibration=calib, float_reference=False)
    assert libc.calls == []
    run(g, x, calibration=calib)
    assert heap._state["trim_bytes"] == memory.estimate(g, True).total_bytes


def _faults_of_second_block(mib: int = 64) -> int:
    """Minor page faults of allocating and touching a ``mib`` MiB array after freeing one."""
    a = np.ones(mib << 18, np.float32)
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(mib << 18, np.float32)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del b
    return after - before


def _rss_bytes() -> int:
    """Resident bytes from the page tables themselves (smaps_rollup, Linux 4.14+). Not statm:
    its counters are per-CPU and approximate; on Linux 6.18 (this project's CI machines) statm
    still showed the 64 MiB that malloc_trim had just released with madvise, and showed it gone
    after a later read of smaps (CI failure of 2026-11-27, tests/test_heap.py)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


_IN_A_FRESH_PROCESS = """
import sys
from hwsim import heap
from tests.test_heap import MIB, _faults_of_second_block, _rss_bytes
assert heap._libc() is not None
with heap.keep_freed_memory():
    inside = _faults_of_second_block()
    held = _rss_bytes()
print(inside, (held - _rss_bytes()) / MIB)
"""


@pytest.mark.skipif(heap._libc() is None, reason="not glibc's malloc")
def test_on_glibc_freed_blocks_are_reused_inside_and_given_back_on_exit():
    """In a process of its own, without malloc settings in its environment: in the test suite's
    process (CI, 2026-11-27: given_back 0.0) the main thread had had an allocation fail (a
    MemoryError some test provokes), after which glibc keeps it on another arena, where blocks
    over 64 MiB are mapped per allocation whatever the thresholds (hwsim.heap's docstring)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    # dask.distributed's nanny leaves MALLOC_TRIM_THRESHOLD_ in this process's environment (the sweep tests)
    env = {k: v for k, v in os.environ.items() if k not in heap._USER_SETTINGS and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", _IN_A_FRESH_PROCESS], cwd=root, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    inside, given_back_mib = (float(v) for v in done.stdout.split())
    # inside: the freed 64 MiB is reused (a fresh block faults at least once per 2 MiB huge page);
    # on exit malloc_trim returns it (and whatever else was free)
    assert inside < 16 and given_back_mib >= 48, (inside, given_back_mib)


@pytest.mark.skipif(not heap.os.path.exists("/proc/self/environ"), reason="no /proc: os.environ is all there is")
def test_a_malloc_variable_set_after_start_is_not_the_users_setting(monkeypatch):
    """glibc read its settings when the process started: a MALLOC_* put into os.environ later
    (dask.distributed's nanny does, for its workers) changed nothing in this process's malloc."""
    if "MALLOC_TRIM_THRESHOLD_" in heap._startup_environ():
        pytest.skip("this process started with MALLOC_TRIM_THRESHOLD_")
    heap._libc.cache_clear()
    try:
        before = heap._libc()
        monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
        heap._libc.cache_clear()
        assert "MALLOC_TRIM_THRESHOLD_" not in heap._startup_environ()
        assert (heap._libc() is None) == (before is None)
    finally:
        heap._libc.cache_clear()


@pytest.mark.skipif(heap._libc() is None or not heap.os.path.exists("/proc/self/environ"),
                    reason="not glibc's malloc, or no /proc")
def test_the_startup_environment_is_the_one_a_child_starts_with(tmp_path):
    import subprocess
    import sys

    code = "from hwsim import heap; print(heap._startup_environ().get('HWSIM_PROBE'), heap._libc() is None)"
    env = {k: v for k, v in heap.os.environ.items() if k not in heap._USER_SETTINGS and k != "GLIBC_TUNABLES"}
    for extra, want in (({"HWSIM_PROBE": "x"}, "x False"), ({"HWSIM_PROBE": "y", "MALLOC_ARENA_MAX": "2"}, "y True")):
        out = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True,
                             cwd=tmp_path)
        assert out.stdout.split() == want.split(), out.stderr


_PAGES = """
import sys
from hwsim import heap
try:
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:
    from numpy.core.multiarray import _set_madvise_hugepage
changed = heap.small_pages_for_one_run()
print(changed, _set_madvise_hugepage(True))  # the second: numpy's setting after the call
"""


@pytest.mark.parametrize("env", [None, "1", "0"])
def test_one_command_processes_do_without_numpys_huge_pages_unless_the_user_says(env, tmp_path):
    """heap.small_pages_for_one_run (the console script's start): numpy's MADV_HUGEPAGE off, in a
    fresh process (numpy reads NUMPY_MADVISE_HUGEPAGE at import); the user's variable stands."""
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    out = subprocess.run([sys.executable, "-c", _PAGES], env=environ, capture_output=True, text=True, check=True)
    changed, after = out.stdout.split()
    assert changed == str(env is None)
    assert after == ("False" if env is None else str(env == "1"))


def test_the_console_script_runs_with_small_pages(monkeypatch):
    from hwsim import cli

    calls = []
    monkeypatch.setattr(heap, "small_pages_for_one_run", lambda: calls.append(1) or True)
    monkeypatch.setattr(cli, "main", lambda: 0)
    monkeypatch.setattr(cli.gc, "freeze", lambda: None)  # not this test process's objects
    with pytest.raises(SystemExit) as stop:
        cli.entry()
    assert stop.value.code == 0 and calls == [1]
