"""Cold sensitivity on the layer threads: where the thread-seconds go, and numba's kernel threads.

A cold ``tables`` (empty cache, 8 synthetic samples, int8-npu's default choices, output_mse) of
each named model, repeated in one process with the modes alternating (the order flips every
round, after one warm-up run of the first mode):

- ``main``: as the library runs it (two layer threads on 2 CPUs, numba's kernels at one thread
  on each of them, :func:`hwsim.solve.output_error._one_kernel_thread`);
- ``kernels2``: the same without that: each layer thread's numba kernels take the threads
  ``workqueue.threads_now`` gives them (two at idle on 2 CPUs);
- ``serial``: one layer thread (``threads_at_once`` -> 1), the reference computed first.

Per run: wall, process CPU (all threads), load average, and summed over the calls on the layer
threads the wall inside them (thread-s) and the calling thread's CPU of ``_alone`` (each layer
at its choices), the descendant tails (float32, and the float64 re-runs) and the waits for
arriving reference values. The tables of all modes must be equal (no value depends on threads).
On a shared machine compare CPU; wall only at idle.

Run: ``python benchmarks/bench_sensitivity_threads.py [resnet18] [minilm-l6] [--modes main,kernels2]
[--rounds N]``
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import threading
import time

import numpy as np

MODELS = {"resnet18": {}, "minilm-l6": {"sequence": 128}}


class Split:
    """Thread-seconds and calling-thread CPU inside the wrapped functions, summed per label."""

    def __init__(self):
        self.lock, self.sums = threading.Lock(), collections.defaultdict(lambda: [0.0, 0.0])

    def add(self, label: str, wall: float, cpu: float) -> None:
        with self.lock:
            s = self.sums[label]
            s[0] += wall
            s[1] += cpu

    def wrap(self, fn, label):
        def timed(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(label(*args) if callable(label) else label, time.perf_counter() - t0, time.thread_time() - c0)
        return timed


def instrument(split: Split) -> None:
    from hwsim.sim import arriving
    from hwsim.solve import output_error as oe

    oe._alone = split.wrap(oe._alone, "alone")
    oe._tail_runs = split.wrap(oe._tail_runs, lambda *a: f"tail {a[8] or 'simulator'}")
    raw = arriving.ArrivingReference.raw

    def waited(self, name):
        if dict.__contains__(self._values, name):
            return raw(self, name)
        t0 = time.perf_counter()
        try:
            return raw(self, name)
        finally:
            split.add("wait", time.perf_counter() - t0, 0.0)

    arriving.ArrivingReference.raw = waited


def set_mode(mode: str, saved: dict) -> None:
    from hwsim.solve import output_error as oe

    oe.threads_at_once = (lambda: 1) if mode == "serial" else saved["threads_at_once"]
    oe._one_kernel_thread = (lambda fn: fn) if mode == "kernels2" else saved["_one_kernel_thread"]


def run(model: str, mode: str, split: Split, saved: dict):
    from hwsim.solve import tables

    set_mode(mode, saved)
    split.sums.clear()
    load0, (w0, c0) = os.getloadavg()[0], (time.perf_counter(), time.process_time())
    with tempfile.TemporaryDirectory() as cache:
        tb = tables(model, "int8-npu", None, "output_mse", None, 8, cache, dict(MODELS[model]))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    parts = "  ".join(f"{k} {v[0]:.2f}/{v[1]:.2f}" for k, v in sorted(split.sums.items()))
    print(f"{model} {mode:8} {wall:6.2f} s wall, {cpu:6.2f} s CPU (load {load0:.1f}-{os.getloadavg()[0]:.1f}); "
          f"thread-s/thread CPU: {parts}", flush=True)
    return tb.sensitivity.values


def main() -> None:
    from hwsim.solve import output_error as oe

    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*", default=["resnet18"], choices=list(MODELS))
    p.add_argument("--modes", default="main,kernels2")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    modes = args.modes.split(",")
    saved = {"threads_at_once": oe.threads_at_once, "_one_kernel_thread": oe._one_kernel_thread}
    split = Split()
    instrument(split)
    for model in args.models:
        run(model, modes[0], split, saved)  # warm-up: numba cache loads, graph builds
        values = []
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                values.append(run(model, mode, split, saved))
        same = all(np.array_equal(values[0], v) for v in values)
        print(f"{model}: tables of {', '.join(modes)} equal: {same}")
    set_mode("main", saved)


if __name__ == "__main__":
    main()
