"""How much two threads of 512-bit float work get on this machine right now, against one.

The project's 2-vCPU cloud machines share their SIMD floating-point throughput at times: two
single-threaded sgemm runs at once made 1.19x one at 16:50 on 2026-11-27 and 1.7-2.5x twenty
minutes later (benchmarks/RESULTS.md, "Fourteenth session: lead"). Every two-thread FP phase of
hwsim (the float reference beside the quantized run, solve's float32 tails on the BLAS pool)
speeds up or slows down with it, so the benchmarks print this probe beside their timings:
``probe()`` runs a float32 768 x 384 x 1536 product on one thread for ``seconds``, then on two
threads at once (BLAS held at one thread each), and returns GFLOP/s of each and their ratio.

``python benchmarks/fp_scaling.py [ROUNDS]`` prints ROUNDS probes (default 3), 10 s apart.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

_M, _K, _N = 768, 384, 1536  # a MiniLM-L6 tail's FFN product at 8 x 128 tokens (half its rows)


def _rate(a: np.ndarray, b: np.ndarray, seconds: float, out: list, start: threading.Barrier | None) -> None:
    if start is not None:
        start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.dot(a, b)
        n += 1
    out.append(n * 2 * _M * _K * _N / (time.perf_counter() - t0) / 1e9)


def probe(seconds: float = 0.5) -> dict:
    """{"one": GFLOP/s alone, "two": [GFLOP/s of each of two at once], "scaling": sum(two) / one}."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((_M, _K)).astype(np.float32)
    b = rng.standard_normal((_K, _N)).astype(np.float32)
    with threadpool_limits(1, user_api="blas"):
        for _ in range(3):
            np.dot(a, b)
        one: list = []
        _rate(a, b, seconds, one, None)
        two: list = []
        start = threading.Barrier(2)
        threads = [threading.Thread(target=_rate, args=(a, b, seconds, two, start)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return {"one": one[0], "two": sorted(two), "scaling": sum(two) / one[0]}


def describe(p: dict | None = None) -> str:
    """One line for a benchmark's header."""
    p = p or probe()
    shared = "; the two vCPUs share one core's SIMD units now" if p["scaling"] < 1.5 else ""
    return (f"two-thread float32 scaling {p['scaling']:.2f}x (sgemm {p['one']:.0f} GFLOP/s alone, "
            f"{p['two'][0]:.0f} + {p['two'][1]:.0f} at once{shared})")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    for i in range(rounds):
        print(time.strftime("%H:%M:%S"), describe(), flush=True)
        if i + 1 < rounds:
            time.sleep(10)


if __name__ == "__main__":
    main()
