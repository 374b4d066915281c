"""GEMM kernel throughput against baselines measured in the same run (not a test).

Usage: ``python benchmarks/bench_gemm.py [--m 512 --k 4096 --n 4096 --repeat 5]``

Prints, for an (M, K) @ (K, N) product, the median-of-``repeat`` wall time of

* exact int8 GEMM (``hwsim.kernel_api.int_matmul(..., overflow="none")``) vs onnxruntime
  MatMulInteger (B a constant initializer, so ORT may prepack it), u8*u8 and s8*s8;
* FP8 (E4M3) GEMM with exact and with sequential fp32 accumulation
  (``hwsim.kernel_api.float_matmul``) vs numpy float32 matmul on the same values;
* the same int8 and sequential-fp32 kernels on the AVX2 tiles of ``hwsim.kernels.simdgemm`` (its
  AVX-512 VNNI tiles switched off, as on an AVX2-only host), and with both switched off (the
  float32-BLAS / loop routes used before them), in the same run.

GOPS counts 2 operations per multiply-accumulate; GMAC/s counts one.
"""

import argparse
import contextlib
import os
import platform
import time
from typing import NamedTuple

import ml_dtypes
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hwsim import kernel_api
from hwsim.kernels import simdgemm, workqueue


@contextlib.contextmanager
def switched_off(check):
    """The kernels with ``hwsim.kernels.simdgemm.<check>`` reporting False: "available" runs them
    as before simdgemm (float32 BLAS, numba loops), "wide" on the AVX2 tiles (no AVX-512 VNNI)."""
    saved = getattr(simdgemm, check)
    setattr(simdgemm, check, lambda: False)
    try:
        yield
    finally:
        setattr(simdgemm, check, saved)


def _old(fn, check="available"):
    def run():
        with switched_off(check):
            return fn()
    return run


#: seconds of rest before each timed call, at least. onnxruntime's intra-op threads spin for a while
#: after a run returns (its default); back to back, they took a core from whatever ran next: here our
#: kernel, always timed right after it (at load 7-8: 0.66x measured right after onnxruntime, 0.92x
#: the same code measured second). numba's OpenMP workers spin after a parallel region the same way.
PAUSE_S = 0.05
#: seconds of rest at most: after PAUSE_S the rest goes on while another thread of this process is
#: still runnable. OpenBLAS's workers stay runnable 100-108 ms after a numpy product (measured
#: 2026-11-26: sgemm and dgemm 1024^2), so a 50 ms pause left the FP8 kernel, timed right after
#: the float64-BLAS exact FP8 product, sharing a core with a spinning BLAS worker for its first
#: ~50 ms; the same holds for numpy timed after onnxruntime. Fair both ways.
REST_MAX_S = 1.0


def rest():
    """Sleep :data:`PAUSE_S`, then until no other thread of this process is runnable (polled every
    5 ms, :func:`hwsim.kernels.workqueue.own_running`) or :data:`REST_MAX_S` has passed."""
    time.sleep(PAUSE_S)
    end = time.perf_counter() + REST_MAX_S - PAUSE_S
    while (workqueue.own_running() or 1) > 1 and time.perf_counter() < end:
        time.sleep(0.005)


class Timing(NamedTuple):
    wall_s: float  # median wall time
    cpu_s: float  # median CPU time of this process (all its threads, spinning ones included)


def best_times(fns, repeat):
    """:class:`Timing` of each of ``fns``: medians over ``repeat`` interleaved rounds (after one
    warm-up call each), so a load change on a shared machine hits all of them alike; each call
    starts after a :func:`rest`, so no call pays for the one before it."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            rest()
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[i].append((time.perf_counter() - t0, time.process_time() - c0))
    return [Timing(*(float(v) for v in np.median(np.array(t), axis=0))) for t in times]


def ort_matmul_integer(b):
    """An onnxruntime session computing MatMulInteger(x, b) with ``b`` constant."""
    import onnxruntime as ort

    types = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8}
    node = helper.make_node("MatMulInteger", ["x", "b"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", types[b.dtype], None)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x})[0]


def bench_int8(m, k, n, repeat, rng):
    rows = []
    for dt in (np.uint8, np.int8):
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, (m, k), endpoint=True).astype(dt)
        b = rng.integers(info.min, info.max, (k, n), endpoint=True).astype(dt)
        run_ort = ort_matmul_integer(b)
        ours = kernel_api.int_matmul(a, b, overflow="none")
        assert np.array_equal(ours, run_ort(a).astype(np.int64)), "results differ from ORT"
        af, bf = a.astype(np.float32), b.astype(np.float32)
        ours_fn = lambda: kernel_api.int_matmul(a, b, overflow="none")  # noqa: E731
        fns = [lambda: run_ort(a), ours_fn, lambda: af @ bf, _old(ours_fn), _old(ours_fn, "wide")]
        t_ort, t_ours, t_np, t_old, t_avx2 = best_times(fns, repeat)
        name = f"{np.dtype(dt).name}x{np.dtype(dt).name}"
        rows.append((f"exact int GEMM {name}", t_ours, f"ORT MatMulInteger {name}", t_ort))
        if simdgemm.wide():
            rows.append((f"exact int GEMM {name}, AVX2 tiles", t_avx2, f"ORT MatMulInteger {name}", t_ort))
        rows.append((f"exact int GEMM {name}, float32-BLAS route (before)", t_old, f"ORT MatMulInteger {name}", t_ort))
        rows.append((f"exact int GEMM {name}", t_ours, "numpy float32 matmul", t_np))
    return rows


def bench_fp8(m, k, n, repeat, rng):
    def fp8(shape):
        x = rng.standard_normal(shape).astype(np.float32)
        return x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)

    a, b = fp8((m, k)), fp8((k, n))
    seq = lambda: kernel_api.float_matmul(a, b, "fp32", "sequential")  # noqa: E731
    t_np, t_exact, t_seq, t_old, t_avx2 = best_times([lambda: a @ b, lambda: kernel_api.float_matmul(a, b, "exact"),
                                                      seq, _old(seq), _old(seq, "wide")], repeat)
    return [("FP8 GEMM, exact accumulation", t_exact, "numpy float32 matmul", t_np),
            ("FP8 GEMM, sequential fp32 accumulation", t_seq, "numpy float32 matmul", t_np),
            *([("FP8 GEMM, sequential fp32, AVX2 tile", t_avx2, "numpy float32 matmul", t_np)]
              if simdgemm.wide() else []),
            ("FP8 GEMM, sequential fp32, numba loop (before)", t_old, "numpy float32 matmul", t_np)]


def machine():
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=512)
    p.add_argument("--k", type=int, default=4096)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    macs = args.m * args.k * args.n
    print(f"machine: {machine()}; date {time.strftime('%Y-%m-%d %H:%M')}; load average "
          f"{os.getloadavg()[0]:.1f}; shape {args.m}x{args.k}x{args.n} ({macs / 1e9:.2f} GMAC)")
    import fp_scaling

    print(fp_scaling.describe())  # this machine's speed moves with it (benchmarks/fp_scaling.py)
    print("| kernel | time s | CPU s | GOPS | baseline | baseline s | baseline CPU s | baseline GOPS | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t, base, tb in bench_int8(args.m, args.k, args.n, args.repeat, rng) + \
            bench_fp8(args.m, args.k, args.n, args.repeat, rng):
        print(f"| {name} | {t.wall_s:.4f} | {t.cpu_s:.3f} | {2 * macs / t.wall_s / 1e9:.1f} | {base} | "
              f"{tb.wall_s:.4f} | {tb.cpu_s:.3f} | {2 * macs / tb.wall_s / 1e9:.1f} | {tb.wall_s / t.wall_s:.2f}x |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
