"""Memory of simulate: estimated from shapes, checked before allocating, reported (issues 12, 13)."""

import json
import time
import tracemalloc

import numpy as np
import pytest

import hwsim
from hwsim.cli import main
from hwsim.errors import MemoryLimitError
from hwsim.sim import memory, run
from hwsim.sim.boundary import random_inputs


def test_llama2_7b_refused_before_allocating(monkeypatch, capsys):
    """`hwsim simulate llama2-7b` on a 16 GiB machine: exit 2 at once, naming need and remedies."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * 2**30)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        code = main(["simulate", "llama2-7b"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert code == 2, err
    # 56.3 GiB since the reference keeps float32 weights as they are (refvalues.kept_as_stored; 106.5 before)
    assert "needs about 56" in err and "GiB" in err and "16.0 GiB available" in err
    assert "fewer layers" in err and "--shape" in err and "nothing was allocated" in err
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"
    assert time.perf_counter() - t0 < 30


def test_limit_is_a_parameter_and_zero_disables_it():
    g = hwsim.load_model("gemm:m=2,k=8,n=4")
    x = random_inputs(g, np.random.default_rng(0))
    need = memory.estimate(g).total_bytes
    with pytest.raises(MemoryLimitError, match="gemm"):
        run(g, x, memory_limit_bytes=need - 1)
    assert run(g, x, memory_limit_bytes=need).memory.total_bytes == need
    assert run(g, x, memory_limit_bytes=0).memory.total_bytes == need


@pytest.mark.parametrize("model", ["conv2d:c=16,h=24,w=24,k=32,batch=2", "gemm:m=64,k=256,n=128",
                                   "minilm-l6:layers=1,sequence=16,vocab=2000,hidden=64,heads=2,intermediate=128"])
def test_estimate_bounds_the_measured_peak(model):
    """Peak traced numpy memory of a whole run stays under the estimate, and within 4.5x of it (the
    small conv is the loosest: 4.07x, its workspace term 5.2 of 6.1 MB; it was 3.996x under 4x while
    the reference held float64 copies of the weights, which it no longer makes)."""
    g = hwsim.quantize_graph(hwsim.load_model(model), "int8", "int8")
    x = random_inputs(g, np.random.default_rng(0))
    run(g, x)  # compile kernels outside the measurement
    tracemalloc.start()
    try:
        est = run(g, x).memory.total_bytes
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= est < 4.5 * peak, (peak, est)


def test_quantized_values_die_after_their_last_reader():
    g = hwsim.load_model("resnet18:resolution=32")
    dead = memory.liveness(g)
    freed = {t for d in dead for t in d}
    assert not freed & set(g.outputs)
    readers = {t: [i for i, op in enumerate(g.ops()) if t in op.inputs] for t in freed}
    for i, d in enumerate(dead):
        for t in d:
            assert max(readers[t]) == i


def test_report_json_has_memory(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["simulate", "gemm:m=2,k=8,n=4", "--weights", "int8", "--activations", "int8",
                 "--report-json", str(out)]) == 0
    assert "memory: estimated peak" in capsys.readouterr().out
    mem = json.loads(out.read_text())["memory"]
    assert mem["estimated_peak_bytes"] > 0 and mem["peak_rss_bytes"] > 0
