"""Speed and accuracy of compare-formats' MSE-optimal scale search, against a dense grid baseline.

For each (format, distribution) the baseline is a dense grid of 400 log-spaced scales over the same
twelve-octave window (one octave for MX); hwsim's search is a 25-point grid plus 16 golden-section
steps. Prints time ratio and the SQNR difference (search minus dense; >= 0 means the search is at
least as good). Also times a default ``compare_formats()`` call (6 formats, 4 distributions, the
13-point Student-t crossover sweep, 65536 samples each).

Run: python benchmarks/bench_compare.py
"""

from __future__ import annotations

import math
import time

import numpy as np

from hwsim.compare import compare_formats, optimal_scale, samples
from hwsim.compare.accuracy import search_window
from hwsim.formats import get

CASES = [("int8", "gaussian"), ("int8", "student_t3"), ("fp8_e4m3fn", "laplace"), ("int4", "student_t3"),
         ("fp4_e2m1fn", "gaussian"), ("mxfp4_e2m1", "student_t3")]


def dense(fmt, x, points=400):
    lo, hi = search_window(fmt, x)
    errs = [np.mean((x - fmt.quantize(x, scale=2.0 ** s)) ** 2) for s in np.linspace(lo, hi, points)]
    return 10 * math.log10(np.mean(x * x) / min(errs))


def main():
    optimal_scale("int8", samples("gaussian", 65536))  # warm-up (scipy, caches)
    print("| format | distribution | search (ms) | dense 400 (ms) | speed-up | SQNR search - dense (dB) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, dist in CASES:
        f, x = get(name), samples(dist, 65536)
        t0 = time.perf_counter()
        found = optimal_scale(f, x)
        t1 = time.perf_counter()
        ref = dense(f, x)
        t2 = time.perf_counter()
        print(f"| {name} | {dist} | {(t1 - t0) * 1e3:.0f} | {(t2 - t1) * 1e3:.0f} | {(t2 - t1) / (t1 - t0):.1f}x "
              f"| {found.sqnr_db - ref:+.3f} |")
    t0 = time.perf_counter()
    res = compare_formats()
    print(f"\ncompare_formats() defaults: {time.perf_counter() - t0:.2f} s, "
          f"crossover nu = {res.crossover.crossover_nu:.2f}")


if __name__ == "__main__":
    main()
