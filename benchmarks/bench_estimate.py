"""Speed of hwsim.estimate after warm-up (targets: resnet50 < 0.1 s, llama2-7b decode < 0.5 s).

Baseline measured in the same run: building and quantizing the same graph (load_model +
quantize_graph), the floor any estimate pays. Prints best-of-N wall times and the ratio.
Run: python benchmarks/bench_estimate.py
"""

from __future__ import annotations

import time

from hwsim import estimate, load_model, quantize_graph

CASES = [
    ("resnet50", "cortex-a78", "int8", "int8"),
    ("resnet50", "int8-npu", "int8", "int8"),
    ("llama2-7b:phase=decode,context=2048", "cortex-a78", "int4", "int8"),
    ("llama2-7b:phase=decode,context=2048", "cortex-a78", "vq_d2_b6", "int8"),
    ("llama2-7b:phase=decode,context=2048", "h100-sxm", "fp8_e4m3fn", "fp8_e4m3fn"),
    ("resnet18", "rs-engine", "signed_binary", "int8"),
]


def best_of(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    print(f"{'model':38s} {'target':11s} {'formats':22s} {'estimate':>10s} {'graph only':>10s} {'ratio':>6s}")
    for model, target, w, a in CASES:
        estimate(model, target, weights=w, activations=a)  # warm-up (numba, caches)
        t_est = best_of(lambda: estimate(model, target, weights=w, activations=a))
        t_base = best_of(lambda: quantize_graph(load_model(model), w, a))
        print(f"{model:38s} {target:11s} {w + ' x ' + a:22s} {t_est * 1e3:8.1f}ms {t_base * 1e3:8.1f}ms "
              f"{t_est / t_base:6.2f}")


if __name__ == "__main__":
    main()
