#!/usr/bin/env python3
"""Kernel classes of the traced H100 networks (``h100_session3.py --only profiles``) next to hwsim's layers.

For each network: per class (GEMM, convolution, attention, batch norm, pool, norm, elementwise, copy) the
kernels one CUDA-graph replay launched and their time (torch.profiler trace), and hwsim's layers of the same
class and their predicted time on a target. This is the evidence behind the per-op changes of session 3.

Run: python3 benchmarks/measure/h100_kernels.py [PROFILES.jsonl[.gz]] [--target h100-sxm] [--only ID,...]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
from pathlib import Path

#: kernel-name patterns, first match wins
KERNEL_CLASSES = [
    ("attention", r"sdpa|flash|fmha|attention"),
    ("batchnorm", r"batch_norm"),
    ("conv", r"fprop|convolve|conv2d|dgrad|implicit_gemm|nhwcAddPadding|depthwise|kern_precompute"),
    ("gemm", r"nvjet|gemm|cutlass|xmma|splitKreduce"),
    ("pool", r"pool"),
    ("norm", r"layer_norm|rms_norm|softmax|reduce_kernel"),
    ("copy", r"copy|Memset|Memcpy|CatArray|fill"),
    ("elementwise", r"."),
]
#: hwsim op kinds per class
OP_CLASSES = {"linear": "gemm", "matmul": "gemm", "conv2d": "conv", "batchnorm": "batchnorm", "pool": "pool",
              "global_avgpool": "pool", "layernorm": "norm", "rmsnorm": "norm", "softmax": "norm",
              "attention": "attention"}
ZOO = {"vit-b16": "vit-b16"}


def kernel_class(name: str) -> str:
    for cls, pat in KERNEL_CLASSES:
        if re.search(pat, name, re.I):
            return cls
    return "elementwise"


def model_of(ident: str) -> tuple[str, str] | None:
    """hwsim model reference and format of a traced network id."""
    m = re.match(r"(resnet18|resnet50|mobilenet_v2|vgg16|vit-b16)-b(\d+)$", ident)
    if m:
        return f"{m[1]}:batch={m[2]}", "bf16"
    m = re.match(r"(bert-base|minilm-l6)-b(\d+)-s(\d+):plain$", ident)
    if m:
        return f"{m[1]}:batch={m[2]},sequence={m[3]}", "bf16"
    m = re.match(r"llama2-7b-L(\d+)-(decode|prefill)-ctx(\d+)-b(\d+)-(bf16|fp8)$", ident)
    if m:
        return (f"llama2-7b:phase={m[2]},context={m[3]},layers={m[1]},batch={m[4]}",
                "bf16" if m[5] == "bf16" else "fp8_e4m3fn")
    return None


def measured_classes(rec: dict, replays: int = 2) -> dict[str, tuple[float, float]]:
    """class -> (kernels per replay, microseconds per replay)."""
    out = collections.defaultdict(lambda: [0.0, 0.0])
    for k in rec.get("kernels_graph") or rec.get("kernels_eager") or []:
        c = out[kernel_class(k["name"])]
        c[0] += 1 / replays
        c[1] += k["dur_us"] / replays
    return {k: tuple(v) for k, v in out.items()}


def predicted_classes(model: str, fmt: str, target: str) -> dict[str, tuple[float, float]]:
    from hwsim.cost.estimate import estimate
    from hwsim.targets import load_target

    rep = estimate(model, load_target(target), weights=fmt, activations=fmt)
    out = collections.defaultdict(lambda: [0.0, 0.0])
    for r in rep.layers:
        c = out[OP_CLASSES.get(r.op, "elementwise")]
        c[0] += 1
        c[1] += r.latency_s * 1e6
    return {k: tuple(v) for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profiles", nargs="?", default=str(Path(__file__).parent / "h100/session3/h100_profiles.jsonl.gz"))
    ap.add_argument("--target", default="h100-sxm")
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    classes = [c for c, _ in KERNEL_CLASSES]
    opener = gzip.open if args.profiles.endswith(".gz") else open
    for line in opener(args.profiles, "rt"):
        rec = json.loads(line)
        if only and rec["id"] not in only:
            continue
        meas = measured_classes(rec)
        mf = model_of(rec["id"])
        pred = predicted_classes(*mf, args.target) if mf else {}
        tm, tp = sum(v[1] for v in meas.values()), sum(v[1] for v in pred.values())
        print(f"{rec['id']}: graph replay {rec.get('graph_s', 0) * 1e6:.0f} us, kernels {tm:.0f} us, "
              f"hwsim {tp:.0f} us")
        for c in classes:
            if c in meas or c in pred:
                n, t = meas.get(c, (0, 0))
                pn, pt = pred.get(c, (0, 0))
                print(f"  {c:<12} measured {n:6.1f} kernels {t:9.1f} us   hwsim {pn:5.0f} layers {pt:9.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
