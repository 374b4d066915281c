"""Where a cold solve's transformer tails spend their time, and the floor their products set.

1. The floor: multiply-adds of every solver layer's descendants (linears, matmuls and convolutions
   counted as patch GEMMs; what
   sensitivity's tails compute, all choices stacked), as FLOP, and the seconds they take at the
   float32 GEMM rate measured here (numpy sgemm 2048^3 on one BLAS thread) on every CPU.
2. One tail (default: the first solver layer's, the longest), its choices stacked as sensitivity
   runs them, twice (the second is reported): process CPU per op type (linear, matmul, softmax,
   layernorm, unary:gelu, ...; ops run by the simulator's executors are marked "sim"; the
   channels-last ops of :mod:`hwsim.solve.tail_cnn` are listed too), and
   the GFLOP per CPU second of the products. With ``float64``, the same tail with float64 products (how choices
   that barely move the outputs are run again) in the same process.

Run: ``python benchmarks/bench_tails.py [MODEL] [--layer=I] [float64]`` (default minilm-l6 at
sequence 128, 8 samples, int8-npu's choices). CPU time (all threads) is the steadier number on a
shared machine; the load average is printed.
"""

from __future__ import annotations

import collections
import os
import sys
import time

import numpy as np


def _macs(g, op) -> int:
    """Multiply-adds of a linear or matmul op of ``g`` (0 for other ops)."""
    shape = lambda n: g.tensors[n].shape  # noqa: E731
    if op.op == "linear":
        return int(np.prod(shape(op.inputs[0])[:-1])) * int(np.prod(shape(op.inputs[1])))
    if op.op == "matmul":
        a, b = shape(op.inputs[0]), shape(op.inputs[1])
        return int(np.prod(np.broadcast_shapes(a[:-2], b[:-2]))) * a[-2] * a[-1] * b[-1]
    if op.op == "conv2d":  # as the patches' GEMM (Winograd multiplies fewer)
        w, y = shape(op.inputs[1]), shape(op.outputs[0])
        return int(np.prod(y)) * int(np.prod(w[1:])) // max(1, op.groups)
    return 0


def sgemm_rate() -> float:
    """FLOP per CPU second of numpy float32 2048^3 on one BLAS thread (best of 3; thread CPU
    time, so other processes on the machine change it less than they change wall time)."""
    from hwsim.sim.refblas import one_blas_thread

    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    best = np.inf
    with one_blas_thread():
        for _ in range(3):
            t = time.thread_time()
            a @ a
            best = min(best, time.thread_time() - t)
    return 2 * 2048 ** 3 / best


def main(model: str = "minilm-l6", layer_index: int = 0, float64: bool = False) -> None:
    import networkx as nx

    from hwsim.heap import keep_freed_memory
    from hwsim.sim.refblas import cpu_count
    from hwsim.sim.registry import EXECUTORS
    from hwsim.sim.runner import ensure_weights
    from hwsim.solve import api, output_error, tail_cnn, tail_tf
    from hwsim.solve.choices import choices_for
    from hwsim.solve.layers import solver_layers
    from hwsim.solve.tail import subgraph
    from hwsim.targets import load_target

    shapes, samples, seed = ({"sequence": 128} if model.startswith("minilm") else {}), 8, 0
    print(f"{model} {shapes}, {samples} samples; load average {os.getloadavg()[0]:.1f}")
    g, samples, _ = api._sim_graph(model, shapes, samples, None)
    g = ensure_weights(g, seed)
    chs = choices_for(None, load_target("int8-npu"))
    layers = solver_layers(g)
    tails = [sum(_macs(g, g.op(o)) for o in nx.descendants(g.nx, layer)) for layer in layers]
    flop = 2 * len(chs) * sum(tails)
    rate, cpus = sgemm_rate(), cpu_count()
    print(f"tails of {len(layers)} layers x {len(chs)} choices: {flop / 1e12:.3f} TFLOP of products; at "
          f"{rate / 1e9:.0f} GFLOP per CPU second (sgemm 2048^3, one thread) on {cpus} CPUs: "
          f"{flop / rate / cpus:.1f} s wall")

    ref = output_error.float_values(g, api._data(g, None, samples, seed), seed)[1]
    stacked = output_error._Stacked(g, api._batched(model, shapes, samples, None, False), seed)
    layer = layers[layer_index]
    firsts, after = output_error._alone(g, layer, chs, ref, seed)
    post = subgraph(g, after, layer)
    cpu = collections.defaultdict(float)

    def timed(key, fn):
        def run(*args):
            c = time.process_time()
            y = fn(*args)
            if y is not None:
                op = args[1] if key == "sim" else args[0]
                cpu[f"{key} {op.op}" + (f":{op.fn}" if op.op in ("unary", "binary") else "")] += \
                    time.process_time() - c
            return y
        return run

    run, cnn_run = tail_tf.Transformer.run, tail_cnn.ChannelsLast.run
    tail_tf.Transformer.run = lambda self, op, value: timed("", lambda o, v: run(self, o, v))(op, value)
    tail_cnn.ChannelsLast.run = lambda self, op, value: timed("", lambda o, v: cnn_run(self, o, v))(op, value)
    saved = dict(EXECUTORS)
    EXECUTORS.update({k: timed("sim", f) for k, f in saved.items()})
    try:
        with keep_freed_memory():
            for products in ("float32", "float64") if float64 else ("float32",):
                for _ in range(2):
                    cpu.clear()
                    c, t = time.process_time(), time.perf_counter()
                    output_error._tail_runs(post, layer, after, chs, firsts, ref, seed, stacked, products)
                    c, t = time.process_time() - c, time.perf_counter() - t
                gflop = 2 * len(chs) * tails[layer_index] / 1e9
                print(f"\ntail of {layer} ({len(chs)} choices stacked, {products} products, {gflop:.1f} GFLOP): "
                      f"{c:.2f} s CPU, {t:.2f} s wall; load average {os.getloadavg()[0]:.1f}")
                for key, s in sorted(cpu.items(), key=lambda kv: -kv[1]):
                    if s >= 0.005:
                        print(f"  {key.strip():24s} {s:6.3f} s CPU  {100 * s / c:4.0f}%")
                dots = sum(s for k, s in cpu.items() if k.split()[-1] in ("linear", "matmul", "conv2d"))
                print(f"  products: {gflop / max(dots, 1e-9):.0f} GFLOP per CPU second")
    finally:
        tail_tf.Transformer.run, tail_cnn.ChannelsLast.run = run, cnn_run
        EXECUTORS.update(saved)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(next((a for a in args if not a.startswith("-") and a != "float64"), "minilm-l6"),
         int(next((a.split("=", 1)[1] for a in args if a.startswith("--layer=")), 0)), "float64" in args)
