"""Speed of hwsim sweep on ResNet-18 (issue 14 goal: >= 400 estimate-only points/s on 2 cores).

Space: int8-npu with rows x cols (8 log-spaced values each, 8..256) x SRAM (6 sizes, 256 KiB..16 MiB)
x {int8, int4 weights} = 768 points, estimate only.

Measured in the same run:
1. baseline: a lone ``hwsim.estimate("resnet18", target, "int8", "int8")`` per point (what a script
   looping over estimate pays), wall and CPU time per point;
2. one worker's loop in-process (``run_batch``: cached graphs, targets and per-layer rows);
3. ``run_sweep`` on a local Dask cluster of 1 and of 2 worker processes: points/s while results
   stream (first batch to last), and the CPU time the worker processes spent per point (Dask's own
   work included), which gives the rate on that many dedicated cores; the two output files must be
   identical.

CPU time is reported beside wall time because the benchmark machine is shared: CPU ms per point
is what a dedicated core would take. Run: python benchmarks/bench_sweep.py [--points-only]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from hwsim.cost import estimate
from hwsim.sweep import parse_spec, run_sweep
from hwsim.sweep.run import make_job
from hwsim.sweep.space import build_target, plan
from hwsim.sweep.worker import run_batch

SPEC = {
    "models": ["resnet18"],
    "targets": [{"base": "int8-npu", "vary": {
        "compute.rows": {"log_range": [8, 256], "points": 8},
        "compute.cols": {"log_range": [8, 256], "points": 8},
        "memory.sram.size_bytes": {"log_range": ["256KiB", "16MiB"], "points": 6}}}],
    "quantization": [{"weights": "int8", "activations": "int8"}, {"weights": "int4", "activations": "int8"}],
    "objectives": ["latency_s", "energy_j", "area_mm2"],
}


def _timed(fn):
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def baseline(space, n: int = 30) -> tuple[float, float]:
    """(wall s, CPU s) per point of lone estimate calls."""
    targets = [build_target(space.bases[0], p.params) for p in space.points[:n]]
    estimate("resnet18", targets[0], "int8", "int8")
    _, wall, cpu = _timed(lambda: [estimate("resnet18", t, "int8", "int8") for t in targets])
    return wall / n, cpu / n


def in_process(space) -> tuple[float, float]:
    job = make_job(space)
    run_batch(job, space.points[:2])  # warm-up: imports, first graph of each format
    _, wall, cpu = _timed(lambda: run_batch(job, space.points))
    return wall / len(space.points), cpu / len(space.points)


def dask_run(workers: int, out: Path) -> tuple[float, float]:
    """(points/s while results stream, CPU ms per point summed over the worker processes).

    The cluster is started here (workers warmed up by importing hwsim) and passed by address, so
    the workers' own CPU time can be read before and after the sweep.
    """
    import logging

    from distributed import Client, LocalCluster

    marks = []
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as lc, Client(lc) as client:
        client.run(lambda: __import__("hwsim.sweep.worker") and None)
        cpu0 = sum(client.run(time.process_time).values())
        res = run_sweep(parse_spec(SPEC, "bench"), out, cluster=lc.scheduler_address,
                        progress=lambda d, n, e: marks.append((d, time.perf_counter())))
        cpu1 = sum(client.run(time.process_time).values())
    (d0, t0), (d1, t1) = marks[0], marks[-1]
    return (d1 - d0) / (t1 - t0), (cpu1 - cpu0) / res.computed


def main() -> None:
    space = plan(parse_spec(SPEC, "bench"))
    n = len(space.points)
    b_wall, b_cpu = baseline(space)
    p_wall, p_cpu = in_process(space)
    print(f"{n} points, resnet18 on int8-npu variants, estimate only")
    print(f"{'':34s} {'wall ms/pt':>10s} {'CPU ms/pt':>10s} {'points/s':>9s}")
    print(f"{'baseline: lone estimate()':34s} {b_wall * 1e3:10.2f} {b_cpu * 1e3:10.2f} {1 / b_wall:9.1f}")
    print(f"{'one worker loop (in-process)':34s} {p_wall * 1e3:10.2f} {p_cpu * 1e3:10.2f} {1 / p_wall:9.1f}   "
          f"CPU ratio to baseline {b_cpu / p_cpu:.1f}x")
    if "--points-only" in sys.argv:
        return
    with tempfile.TemporaryDirectory() as d:
        rates = {}
        for w in (1, 2):
            rates[w] = dask_run(w, Path(d) / f"w{w}.parquet")
            print(f"{f'run_sweep, local Dask, {w} worker(s)':34s} streaming {rates[w][0]:7.1f} points/s; worker CPU "
                  f"{rates[w][1] * 1e3:.2f} ms/point -> {w / rates[w][1]:.0f} points/s on {w} dedicated core(s)")
        same = (Path(d) / "w1.parquet").read_bytes() == (Path(d) / "w2.parquet").read_bytes()
        print(f"2 vs 1 worker: x{rates[2][0] / rates[1][0]:.2f} streaming wall rate, worker CPU per point "
              f"x{rates[2][1] / rates[1][1]:.2f}; output files identical: {same}")


if __name__ == "__main__":
    main()
