"""Spread of ``simulate``'s default mode over many runs in one process, against onnxruntime.

Usage: ``python benchmarks/bench_sim_spread.py [--runs 12] [MODEL ...]`` (models of
``benchmarks/qdq_zoo.py``: resnet18, bert, mobilenet_v2; default mobilenet_v2).

bench_sim.py --qdq reports the median of 3 runs; issue 13's goal is "no slower than 10x
onnxruntime" in every run, and MobileNetV2's default mode was bimodal (0.20-0.71 s in one process).
This prints each run's wall time, its user and system CPU and its minor page faults
(``resource.getrusage``, the whole process: both threads), sorted by wall time, then the median
and the slowest run over onnxruntime's median (ORT_ENABLE_ALL, 2 threads, after one warm-up) in
the same process, and the load average. Same settings as bench_sim.py --qdq (requant=onnxruntime,
pairwise_int16 as onnxruntime computes on this CPU, float reference and per-op metrics on).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def spread(name: str, runs: int) -> None:
    import onnxruntime as ort

    import qdq_zoo
    from bench_sim import _pairs_saturate
    from hwsim.graph.onnx import load_onnx
    from hwsim.sim import run

    with tempfile.TemporaryDirectory() as d:
        path = qdq_zoo.quantized(*getattr(qdq_zoo, name)(), os.path.join(d, "q.onnx"))
        g = load_onnx(path, {})
        opts = ort.SessionOptions()
        opts.log_severity_level, opts.intra_op_num_threads = 3, 2
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    x = {"x": np.random.default_rng(11).standard_normal(g.tensors["x"].shape).astype(np.float32)}
    kw = dict(requant="onnxruntime", pairwise_int16=_pairs_saturate())
    for _ in range(2):
        run(g, x, **kw)
    sess.run(None, x)
    ort_s = []
    for _ in range(max(5, runs // 2)):
        t = time.perf_counter()
        sess.run(None, x)
        ort_s.append(time.perf_counter() - t)
    rows = []
    for _ in range(runs):
        time.sleep(0.1)
        r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        run(g, x, **kw)
        w, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
        rows.append((w, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt))
    ort_med = float(np.median(ort_s))
    print(f"{name}: {runs} default-mode runs (wall s, user s, system s, minor faults), onnxruntime median "
          f"{ort_med:.4f} s; load {os.getloadavg()[0]:.1f}")
    for w, u, s, f in sorted(rows):
        print(f"  {w:.3f}  {u:.3f}  {s:.3f}  {f:6d}  {w / ort_med:5.1f}x")
    walls = [r[0] for r in rows]
    print(f"  median {np.median(walls):.3f} s = {np.median(walls) / ort_med:.1f}x, slowest {max(walls):.3f} s = "
          f"{max(walls) / ort_med:.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", default=["mobilenet_v2"])
    p.add_argument("--runs", type=int, default=12)
    a = p.parse_args()
    for m in a.models:
        spread(m, a.runs)


if __name__ == "__main__":
    main()
