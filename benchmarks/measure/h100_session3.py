#!/usr/bin/env python3
"""Third H100 session (issue 11): kernel traces of every measured network, a check of the BERT/MiniLM
graph-replay residual, microbenchmarks of the named residual kernels, and new held-out records.

Sections (each writes under --out, one JSON object a line):
- ``profiles``: for each network the kernels one CUDA-graph replay launches (torch.profiler / CUPTI
  trace: name, duration, grid, block, start), the graph replay time and the eager time of the same forward.
  BERT / MiniLM are traced twice: called as ``BertModel(input_ids=...)`` (how sessions 1-2 measured them)
  and as embeddings -> encoder -> pooler with no attention mask (the path eager PyTorch takes when the
  mask is all ones).
- ``micro``: the 3-channel stem convolutions (and the same with 4 / 8 channels), VGG's first convolution,
  NHWC max pooling; records in the measurement schema (conv2d ones carry a zoo model).
- ``bertfix``: the BERT / MiniLM networks of sessions 1-2 again, on the mask-free path (replace theirs).
- ``net3``, ``gemm3``, ``conv3``: networks, GEMMs and convolutions at shapes and batches no earlier
  session measured, held out of every fit this session.

Run: python3 benchmarks/measure/h100_session3.py --out DIR [--only profiles,micro,net3,gemm3,conv3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h100_measure import (BF16, HWSIM_FMT, LlamaShaped, Meter, _net_record, bert_forward, capture,  # noqa: E402
                          emit, gemm_step, measure, measure_llamas)

T0 = time.time()
TRACE_REPLAYS = 2
BERT_CFG = {"bert-base": {}, "minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                               intermediate_size=1536)}


def kernel_trace(fn, replays: int = TRACE_REPLAYS) -> list[dict]:
    """Kernels, memsets and copies the GPU ran during ``replays`` calls of ``fn``, in start order."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(replays):
            fn()
        torch.cuda.synchronize()
    path = "/tmp/h100_trace.json"
    prof.export_chrome_trace(path)
    with open(path) as f:
        ev = json.load(f)
    ev = ev["traceEvents"] if isinstance(ev, dict) else ev
    ks = sorted((e for e in ev if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy")),
                key=lambda e: e["ts"])
    t0 = ks[0]["ts"] if ks else 0.0
    return [{"name": e["name"][:140], "cat": e["cat"], "ts_us": round(e["ts"] - t0, 2), "dur_us": e["dur"],
             "grid": e.get("args", {}).get("grid"), "block": e.get("args", {}).get("block")} for e in ks]


def _time(fn, n: int) -> float:
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


def profile_one(out, ident: str, step, extra: dict | None = None, eager_trace: bool = False) -> None:
    """Graph and eager time of ``step`` and the kernels of its graph replays (and of eager calls)."""
    try:
        with torch.inference_mode():
            step()
            torch.cuda.synchronize()
            g = capture(step)
            rec = {"id": ident, **(extra or {}), "eager_s": _time(step, 5)}
            if g is not None:
                rec["graph_s"] = _time(g.replay, 10)
                rec["kernels_graph"] = kernel_trace(g.replay)
            if eager_trace or g is None:
                rec["kernels_eager"] = kernel_trace(step)
    except Exception as exc:  # noqa: BLE001 - report and go on
        print(f"profile {ident}: failed ({type(exc).__name__}: {str(exc)[:160]})", flush=True)
        return
    out.write(json.dumps(rec) + "\n")
    out.flush()
    kg = rec.get("kernels_graph", [])
    busy = sum(k["dur_us"] for k in kg) / TRACE_REPLAYS
    print(f"profile {ident:<40} graph {rec.get('graph_s', 0) * 1e3:8.3f} ms  eager {rec['eager_s'] * 1e3:8.3f} ms  "
          f"graph kernels {len(kg) // TRACE_REPLAYS} busy {busy / 1e3:8.3f} ms", flush=True)
    torch.cuda.empty_cache()


def bert_model(zoo: str):
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(**BERT_CFG[zoo])).to("cuda", BF16).eval()


bert_plain = bert_forward  # BertModel's forward without the attention mask: embeddings, encoder, pooler


def _tv(name: str, batch: int, res: int = 224):
    import torchvision

    m = getattr(torchvision.models, name)(weights=None).to("cuda", BF16).eval()
    x = torch.randn(batch, 3, res, res, device="cuda", dtype=BF16)
    if not name.startswith("vit"):
        m, x = m.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    return m, x


LLAMA_RUNS = [  # (fp8, batch, phase, context): the network ids of sessions 1-2
    (False, 1, "decode", 128), (False, 1, "decode", 2048), (False, 1, "prefill", 512), (False, 1, "prefill", 128),
    (True, 1, "decode", 128), (True, 1, "decode", 2048), (True, 1, "prefill", 512), (True, 1, "prefill", 128),
    (False, 8, "decode", 512)]


def run_profiles(out, budget_s: float) -> None:
    import transformers

    torch.backends.cudnn.benchmark = True
    print(f"transformers {transformers.__version__}", flush=True)
    for zoo, batches in (("bert-base", (1, 8, 32)), ("minilm-l6", (1, 32))):
        bert = bert_model(zoo)
        for b in batches:
            ids = torch.randint(0, 30522, (b, 128), device="cuda")
            extra = {"attn_implementation": getattr(bert.config, "_attn_implementation", None),
                     "transformers": transformers.__version__}
            profile_one(out, f"{zoo}-b{b}-s128:hfcall", lambda ids=ids, bert=bert: bert(input_ids=ids), extra, True)
            profile_one(out, f"{zoo}-b{b}-s128:plain", lambda ids=ids, bert=bert: bert_plain(bert, ids), extra, True)
        del bert
    for name, batches in (("resnet18", (1, 8, 32, 64, 256)), ("resnet50", (1, 8, 32, 64, 256)),
                          ("mobilenet_v2", (1, 8, 32, 64, 256)), ("vgg16", (1, 32)), ("vit_b_16", (1, 32))):
        for b in batches:
            if time.time() - T0 > budget_s:
                print("profiles: time budget spent", flush=True)
                return
            m, x = _tv(name, b)
            zoo = {"vit_b_16": "vit-b16"}.get(name, name)
            profile_one(out, f"{zoo}-b{b}", lambda m=m, x=x: m(x))
            del m, x
    built = None
    for fp8, batch, phase, ctx in LLAMA_RUNS:
        if time.time() - T0 > budget_s:
            print("profiles: time budget spent", flush=True)
            return
        if built is None or built[0] != (fp8, batch):
            built = None
            torch.cuda.empty_cache()
            built = ((fp8, batch), LlamaShaped(fp8=fp8, batch=batch))
        llm = built[1]
        ids = torch.randint(0, 32000, (batch, 1 if phase == "decode" else ctx), device="cuda")
        cached = ctx if phase == "decode" else 0
        fmt = "fp8" if fp8 else "bf16"
        profile_one(out, f"llama2-7b-L32-{phase}-ctx{ctx}-b{batch}-{fmt}",
                    lambda ids=ids, cached=cached, llm=llm: llm.forward(ids, cached))
    built = None
    torch.cuda.empty_cache()


def _conv_record(bt, c, h, k, r, s, g, res, family="cnn"):
    return {"id": f"conv-b{bt}-c{c}-h{h}-k{k}-r{r}-s{s}-g{g}", "kind": "conv2d", "family": family,
            "model": f"conv2d:batch={bt},c={c},h={h},w={h},k={k},r={r},stride={s},groups={g}",
            "activations": "bf16", "weights": "bf16",
            "params": {"batch": bt, "c": c, "h": h, "w": h, "k": k, "r": r, "stride": s, "groups": g},
            "library": "cuDNN via torch.nn.functional.conv2d, channels_last", **res}


def conv_cases(meter, out, window, cases, family="cnn") -> None:
    torch.backends.cudnn.benchmark = True
    for bt, c, h, k, r, s, g in cases:
        try:
            x = torch.randn(bt, c, h, h, device="cuda", dtype=BF16).to(memory_format=torch.channels_last)
            wt = (torch.randn(k, c // g, r, r, device="cuda", dtype=BF16) * 0.05).to(
                memory_format=torch.channels_last)
            oh = (h + 2 * (r // 2) - r) // s + 1
            flops = 2.0 * bt * oh * oh * k * (c // g) * r * r
            reps = int(min(32, max(1, round(2e-3 / max(flops / 4e14, x.numel() * 4 / 2.5e12, 4e-6)))))

            def step(x=x, wt=wt, r=r, s=s, g=g, reps=reps):
                for _ in range(reps):
                    F.conv2d(x, wt, stride=s, padding=r // 2, groups=g)
            res = measure(meter, step, reps, window)
        except Exception as exc:  # noqa: BLE001
            print(f"conv {bt},{c},{h},{k},{r},{s},{g}: not run ({type(exc).__name__}: {str(exc)[:120]})", flush=True)
            continue
        emit(out, _conv_record(bt, c, h, k, r, s, g, res, family))
        torch.cuda.empty_cache()


STEMS = [(1, 3, 224, 64, 7, 2, 1), (8, 3, 224, 64, 7, 2, 1), (64, 3, 224, 64, 7, 2, 1), (256, 3, 224, 64, 7, 2, 1),
         (32, 4, 224, 64, 7, 2, 1), (32, 8, 224, 64, 7, 2, 1), (1, 3, 224, 64, 3, 1, 1), (32, 3, 224, 64, 3, 1, 1),
         (32, 8, 224, 64, 3, 1, 1), (32, 64, 224, 64, 3, 1, 1), (32, 3, 112, 32, 3, 2, 1)]


def run_micro(meter, out, window) -> None:
    conv_cases(meter, out, window, STEMS, "stem")
    for b, c, h in ((1, 64, 112), (8, 64, 112), (32, 64, 112), (256, 64, 112), (32, 64, 224)):
        x = torch.randn(b, c, h, h, device="cuda", dtype=BF16).to(memory_format=torch.channels_last)
        reps = int(min(32, max(1, round(2e-3 / max(x.numel() * 2.5 / 2.5e12, 4e-6)))))
        k, s = (3, 2) if h == 112 else (2, 2)

        def step(x=x, reps=reps, k=k, s=s):
            for _ in range(reps):
                F.max_pool2d(x, k, s, k // 2 if k == 3 else 0)
        try:
            res = measure(meter, step, reps, window)
        except Exception as exc:  # noqa: BLE001
            print(f"maxpool {b},{c},{h}: not run ({type(exc).__name__}: {exc})", flush=True)
            continue
        emit(out, {"id": f"maxpool-nhwc-b{b}-c{c}-h{h}-k{k}-s{s}", "kind": "op", "family": "pool", "model": None,
                   "activations": "bf16", "weights": "bf16", "params": {"batch": b, "c": c, "h": h, "k": k, "stride": s},
                   "library": "torch.nn.functional.max_pool2d, channels_last", **res})


def run_net3(meter, out, out_hf, window, llama_layers: int = 32) -> None:
    torch.backends.cudnn.benchmark = True
    nets = [("resnet18", b, 224) for b in (4, 16, 128)] + [("resnet50", b, 224) for b in (4, 16, 128)]
    nets += [("mobilenet_v2", b, 224) for b in (4, 16, 128)] + [("vgg16", 8, 224), ("resnet50", 32, 160),
                                                                ("vit_b_16", 8, 224), ("vit_b_16", 64, 224)]
    for name, batch, res in nets:
        try:
            m, x = _tv(name, batch, res)
            r = measure(meter, lambda m=m, x=x: m(x), 1, window)
        except Exception as exc:  # noqa: BLE001
            print(f"{name} b{batch}: not run ({type(exc).__name__}: {str(exc)[:120]})", flush=True)
            continue
        zoo = {"vit_b_16": "vit-b16"}.get(name, name)
        rs = "" if res == 224 else f"-r{res}"
        model = f"{zoo}:batch={batch}" + ("" if res == 224 else f",resolution={res}")
        emit(out, _net_record(f"{zoo}-b{batch}{rs}", {"batch": batch, "resolution": res}, model,
                              "transformer" if name.startswith("vit") else "cnn",
                              f"torchvision {name} (weights=None)" + ("" if name.startswith("vit") else
                                                                      ", cuDNN, channels_last"), r))
        del m, x
        torch.cuda.empty_cache()
    for zoo, batches in (("bert-base", (4, 16)), ("minilm-l6", (8, 64))):
        bert = bert_model(zoo)
        for b in batches:
            ids = torch.randint(0, 30522, (b, 128), device="cuda")
            for dest, how, fn in ((out, "embeddings -> encoder -> pooler, no attention mask (as eager with an "
                                        "all-ones mask)", lambda ids=ids, bert=bert: bert_plain(bert, ids)),
                                  (out_hf, "BertModel(input_ids=...) called inside the graph",
                                   lambda ids=ids, bert=bert: bert(input_ids=ids))):
                try:
                    r = measure(meter, fn, 1, window)
                except Exception as exc:  # noqa: BLE001
                    print(f"{zoo} b{b}: not run ({type(exc).__name__}: {str(exc)[:120]})", flush=True)
                    continue
                emit(dest, _net_record(f"{zoo}-b{b}-s128", {"batch": b, "sequence": 128},
                                       f"{zoo}:batch={b},sequence=128", "transformer",
                                       f"transformers BertModel(BertConfig({BERT_CFG[zoo]})) random init, {how}", r))
        del bert
        torch.cuda.empty_cache()
    measure_llamas(meter, out, window, llama_layers,
                   ((False, 1, "decode", 1024), (False, 1, "prefill", 256), (True, 4, "decode", 256)))


def run_bertfix(meter, out, window) -> None:
    """BERT-base b1/b8/b32 and MiniLM-L6 b1/b32 (the records of sessions 1-2) again, on the mask-free path:
    ``BertModel(input_ids=...)`` captured in a graph runs a float32 math attention (transformers cannot
    drop the all-ones mask while a stream captures), not the flash SDPA an eager call runs."""
    for zoo, batches in (("bert-base", (1, 8, 32)), ("minilm-l6", (1, 32))):
        bert = bert_model(zoo)
        for b in batches:
            ids = torch.randint(0, 30522, (b, 128), device="cuda")
            try:
                r = measure(meter, lambda ids=ids, bert=bert: bert_plain(bert, ids), 1, window)
            except Exception as exc:  # noqa: BLE001
                print(f"{zoo} b{b}: not run ({type(exc).__name__}: {str(exc)[:120]})", flush=True)
                continue
            emit(out, _net_record(f"{zoo}-b{b}-s128", {"batch": b, "sequence": 128},
                                  f"{zoo}:batch={b},sequence=128", "transformer",
                                  f"transformers BertModel(BertConfig({BERT_CFG[zoo]})) random init, embeddings -> "
                                  "encoder -> pooler, no attention mask (as eager with an all-ones mask)", r))
        del bert
        torch.cuda.empty_cache()


GEMM3_KN = [(5120, 13824), (2048, 8192), (8192, 2048)]
GEMM3_M = [8, 32, 128, 512, 2048, 8192]
GEMM3_CNN = [(1568, 1152, 128), (6272, 576, 128), (3136, 1152, 256), (784, 4608, 512)]


def run_gemm3(meter, out, window, budget_s: float) -> None:
    cases = [(f, m, k, n, "llm") for f in ("bf16", "fp8", "int8") for k, n in GEMM3_KN for m in GEMM3_M
             if not (f == "int8" and m <= 16)]
    cases += [(f, m, k, n, "cnn") for f in ("bf16", "fp8", "int8") for m, k, n in GEMM3_CNN]
    for fmt, m, k, n, family in cases:
        if time.time() - T0 > budget_s:
            print("gemm3: time budget spent", flush=True)
            return
        try:
            step, reps = gemm_step(fmt, m, k, n)
            r = measure(meter, step, reps, window)
        except Exception as exc:  # noqa: BLE001
            print(f"gemm {fmt} m={m} k={k} n={n}: not run ({type(exc).__name__}: {str(exc)[:100]})", flush=True)
            torch.cuda.empty_cache()
            continue
        f = HWSIM_FMT[fmt]
        emit(out, {"id": f"gemm-{fmt}-m{m}-k{k}-n{n}", "kind": "gemm", "family": family,
                   "model": f"gemm:m={m},k={k},n={n}", "activations": f, "weights": f,
                   "params": {"m": m, "k": k, "n": n}, "weights_resident": False,
                   "library": "cuBLASLt via " + {"bf16": "torch.mm", "fp8": "torch._scaled_mm",
                                                 "int8": "torch._int_mm"}[fmt], **r})
        torch.cuda.empty_cache()


CONV3 = [(8, 128, 28, 128, 3, 1, 1), (64, 256, 14, 256, 3, 1, 1), (16, 64, 56, 64, 1, 1, 1),
         (32, 96, 112, 96, 3, 1, 96), (32, 960, 7, 960, 3, 1, 960), (32, 128, 56, 128, 3, 2, 1),
         (128, 512, 7, 512, 3, 1, 1), (4, 64, 56, 64, 3, 1, 1), (64, 128, 28, 512, 1, 1, 1)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="profiles,micro,net3,gemm3,conv3")
    ap.add_argument("--window", type=float, default=0.8, help="seconds per timed window")
    ap.add_argument("--budget-s", type=float, default=520, help="stop starting sections after this")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    meter = Meter()
    time.sleep(2.0)
    info = {"device": meter.name, "idle_power_w": meter.idle_power_w(), "power_limit_w": meter.power_limit_w,
            "max_sm_clock_mhz": meter.max_sm_mhz, "torch": torch.__version__, "cuda": torch.version.cuda,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(info), flush=True)
    a = torch.randn(8192, 8192, device="cuda", dtype=BF16)
    t = time.time()
    while time.time() - t < 2:
        a @ a
    torch.cuda.synchronize()
    del a
    for name in args.only.split(","):
        if time.time() - T0 > args.budget_s:
            print(f"section {name}: skipped, time budget spent", flush=True)
            continue
        t = time.time()
        path = os.path.join(args.out, f"h100_{name}.jsonl")
        with open(path, "a") as out:
            if name == "profiles":
                run_profiles(out, args.budget_s * 0.45)
            elif name == "micro":
                run_micro(meter, out, args.window)
            elif name == "net3":
                with open(os.path.join(args.out, "h100_net3_hfcall.jsonl"), "a") as out_hf:
                    run_net3(meter, out, out_hf, args.window)
            elif name == "gemm3":
                run_gemm3(meter, out, args.window, args.budget_s)
            elif name == "bertfix":
                run_bertfix(meter, out, 1.2)
            elif name == "conv3":
                conv_cases(meter, out, args.window, CONV3)
        print(f"section {name}: {time.time() - t:.0f} s", flush=True)
    info["idle_power_end_w"] = meter.idle_power_w(3.0)
    with open(os.path.join(args.out, "h100_device.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
