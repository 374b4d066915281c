#!/usr/bin/env python3
"""Measure latency and NVML board energy of GEMMs, convolutions, small ops and whole networks on one
NVIDIA GPU, and write hwsim measurement records (JSONL, one per run; schema in
``hwsim/fidelity/records.py``).

Method (see docs/fidelity.md):
- Every workload runs under a CUDA graph (eager if capture fails; the record says which). A graph holds
  ``repeats`` copies of the op (one forward pass for whole networks); weights rotate over enough copies
  that they do not stay in the 50 MB L2 between uses, as in a real network.
- Each timed window lasts at least ``--window`` seconds of back-to-back replays; latency is the window
  over the number of ops, energy is the difference of nvmlDeviceGetTotalEnergyConsumption (board, mJ)
  over the same window divided likewise. SM clock and power are read while the window runs.
- Random data only (nothing is downloadable there): torchvision models with weights=None, BERT from a
  transformers BertConfig, and a Llama-2-7B-shaped decoder written here with random weights.

Run: python3 benchmarks/measure/h100_measure.py --out DIR [--only networks,gemm,conv,ops]
(second session: --only networks2,align,ops_cnn)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time

import torch
import torch.nn.functional as F

try:
    import pynvml
except ImportError:  # pragma: no cover - only on machines without nvidia-ml-py
    pynvml = None

BF16 = torch.bfloat16
FP8 = torch.float8_e4m3fn
L2_ROTATE_BYTES = 160e6  # > 3 x the 50 MB L2: rotated weights come from HBM
SETTLE_S = 0.3  # seconds of replays before each timed window


class Meter:
    """NVML board energy, power and clocks of device 0."""

    def __init__(self):
        pynvml.nvmlInit()
        self.h = pynvml.nvmlDeviceGetHandleByIndex(0)
        self.name = pynvml.nvmlDeviceGetName(self.h)
        if isinstance(self.name, bytes):
            self.name = self.name.decode()
        self.power_limit_w = pynvml.nvmlDeviceGetEnforcedPowerLimit(self.h) / 1000.0
        self.max_sm_mhz = pynvml.nvmlDeviceGetMaxClockInfo(self.h, pynvml.NVML_CLOCK_SM)

    def energy_j(self) -> float:
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(self.h) / 1000.0

    def sample(self) -> tuple[float, float, float]:
        """(SM clock MHz, power W, temperature C) now."""
        return (pynvml.nvmlDeviceGetClockInfo(self.h, pynvml.NVML_CLOCK_SM),
                pynvml.nvmlDeviceGetPowerUsage(self.h) / 1000.0,
                pynvml.nvmlDeviceGetTemperature(self.h, pynvml.NVML_TEMPERATURE_GPU))

    def idle_power_w(self, seconds: float = 3.0) -> float:
        torch.cuda.synchronize()
        time.sleep(1.0)
        e0, t0 = self.energy_j(), time.perf_counter()
        time.sleep(seconds)
        return (self.energy_j() - e0) / (time.perf_counter() - t0)


class Sampler(threading.Thread):
    """Samples clock and power every 20 ms while a window runs."""

    def __init__(self, meter: Meter):
        super().__init__(daemon=True)
        self.meter, self.stop, self.rows = meter, threading.Event(), []

    def run(self):
        while not self.stop.is_set():
            self.rows.append(self.meter.sample())
            time.sleep(0.02)


def capture(step):
    """A CUDA graph of ``step`` (warmed up on a side stream), or None if capture fails."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(g):
            step()
        torch.cuda.synchronize()
        return g
    except Exception as exc:  # noqa: BLE001 - fall back to eager, and say so in the record
        print(f"  graph capture failed ({type(exc).__name__}: {str(exc)[:120]}); timing eagerly", flush=True)
        torch.cuda.synchronize()
        return None


def measure(meter: Meter, step, ops_per_step: int, window_s: float) -> dict:
    """Latency (s) and energy (J) per op of ``step`` (which runs ``ops_per_step`` ops)."""
    with torch.inference_mode():
        step()
        torch.cuda.synchronize()
        g = capture(step)
        run = g.replay if g is not None else step
        t0 = time.perf_counter()
        for _ in range(3):
            run()
        torch.cuda.synchronize()
        one = max((time.perf_counter() - t0) / 3, 1e-6)
        n = max(5, math.ceil(window_s / one))
        for _ in range(max(2, math.ceil(SETTLE_S / one))):  # reach the steady clock and power first
            run()
        samp = Sampler(meter)
        torch.cuda.synchronize()
        samp.start()
        e0, t0 = meter.energy_j(), time.perf_counter()
        for _ in range(n):
            run()
        torch.cuda.synchronize()
        t1, e1 = time.perf_counter(), meter.energy_j()
        samp.stop.set()
        samp.join()
    rows = samp.rows or [meter.sample()]
    busy = rows[len(rows) // 4:] or rows
    wall = t1 - t0
    return {
        "latency_s": wall / (n * ops_per_step),
        "energy_j": (e1 - e0) / (n * ops_per_step),
        "conditions": {
            "runtime": f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
                       f"{'cuda-graph' if g is not None else 'eager'}",
            "cuda_graph": g is not None,
            "device": meter.name,
            "energy_scope": "board",
            "energy_source": "nvmlDeviceGetTotalEnergyConsumption",
            "sm_clock_mhz": sum(r[0] for r in busy) / len(busy),
            "sm_clock_min_mhz": min(r[0] for r in busy),
            "max_sm_clock_mhz": meter.max_sm_mhz,
            "power_w": (e1 - e0) / wall,
            "power_limit_w": meter.power_limit_w,
            "temperature_c": max(r[2] for r in busy),
            "window_s": wall,
            "replays": n,
            "ops_per_replay": ops_per_step,
        },
    }


def emit(out, rec: dict):
    out.write(json.dumps(rec) + "\n")
    out.flush()
    c = rec["conditions"]
    e = rec.get("energy_j")
    print(f"{rec['id']:<44} {rec['latency_s'] * 1e6:11.2f} us  {(e or 0) * 1e3:10.4f} mJ  "
          f"{c['power_w']:6.0f} W  {c['sm_clock_mhz']:5.0f} MHz", flush=True)


def _repeats(flops: float, nbytes: float) -> int:
    est = max(flops / 6e14, nbytes / 2.5e12, 4e-6)
    return int(min(32, max(1, round(2e-3 / est))))


# ----------------------------------------------------------------------------- GEMMs
def gemm_step(fmt: str, m: int, k: int, n: int):
    """(step, ops per step) running ``fmt`` GEMM (m x k) @ (k x n), weights rotated past L2."""
    dev = "cuda"
    wbytes = k * n * (1 if fmt in ("fp8", "int8") else 2)
    nbuf = 1 if wbytes >= L2_ROTATE_BYTES / 2 else min(16, math.ceil(L2_ROTATE_BYTES / wbytes))
    reps = max(_repeats(2.0 * m * n * k, wbytes + m * (k + n) * 2), nbuf if nbuf > 1 else 1)
    if fmt in ("bf16", "fp16"):
        dt = BF16 if fmt == "bf16" else torch.float16
        a = torch.randn(m, k, device=dev, dtype=dt)
        ws = [torch.randn(n, k, device=dev, dtype=dt) * 0.02 for _ in range(nbuf)]
        c = torch.empty(m, n, device=dev, dtype=dt)

        def step():
            for i in range(reps):
                torch.mm(a, ws[i % nbuf].t(), out=c)
    elif fmt == "fp8":
        a = torch.randn(m, k, device=dev).to(FP8)
        ws = [(torch.randn(n, k, device=dev) * 0.5).to(FP8) for _ in range(nbuf)]
        one = torch.ones((), device=dev)

        def step():
            for i in range(reps):
                torch._scaled_mm(a, ws[i % nbuf].t(), scale_a=one, scale_b=one, out_dtype=BF16)
    elif fmt == "int8":
        a = torch.randint(-128, 127, (m, k), device=dev, dtype=torch.int8)
        ws = [torch.randint(-128, 127, (n, k), device=dev, dtype=torch.int8) for _ in range(nbuf)]

        def step():
            for i in range(reps):
                torch._int_mm(a, ws[i % nbuf].t())
    else:
        raise ValueError(fmt)
    return step, reps


HWSIM_FMT = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8_e4m3fn", "int8": "int8"}
LLM_KN = [(4096, 4096), (4096, 11008), (11008, 4096), (4096, 32000)]
LLM_M = [1, 4, 16, 64, 256, 1024, 4096, 16384]
CNN_MKN = [(3136, 576, 64), (25088, 576, 64), (6272, 1152, 128), (1568, 2304, 256), (392, 4608, 512),
           (12544, 64, 256), (12544, 256, 64), (16384, 2048, 1000)]


def gemm_cases():
    for fmt in ("bf16", "fp8", "int8", "fp16"):
        kns = LLM_KN if fmt != "fp16" else LLM_KN[:2]
        for k, n in kns:
            for m in LLM_M:
                yield fmt, m, k, n, "llm"
        if fmt != "fp16":
            for m, k, n in CNN_MKN:
                yield fmt, m, k, n, "cnn"
            yield fmt, 8192, 8192, 8192, "square"


def run_gemms(meter, out, window):
    for fmt, m, k, n, family in gemm_cases():
        try:
            step, reps = gemm_step(fmt, m, k, n)
            r = measure(meter, step, reps, window)
        except Exception as exc:  # noqa: BLE001 - e.g. _int_mm needs m > 16
            print(f"gemm {fmt} m={m} k={k} n={n}: not run ({type(exc).__name__}: {str(exc)[:100]})", flush=True)
            torch.cuda.empty_cache()
            continue
        f = HWSIM_FMT[fmt]
        emit(out, {"id": f"gemm-{fmt}-m{m}-k{k}-n{n}", "kind": "gemm", "family": family,
                   "model": f"gemm:m={m},k={k},n={n}", "activations": f, "weights": f,
                   "params": {"m": m, "k": k, "n": n},
                   "library": "cuBLASLt via " + {"bf16": "torch.mm", "fp16": "torch.mm", "fp8": "torch._scaled_mm",
                                                 "int8": "torch._int_mm"}[fmt], **r})
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- convolutions
CONVS = [  # batch, c, h, w, k, r, stride, groups
    (1, 64, 56, 56, 64, 3, 1, 1), (32, 64, 56, 56, 64, 3, 1, 1), (256, 64, 56, 56, 64, 3, 1, 1),
    (32, 128, 28, 28, 128, 3, 1, 1), (32, 256, 14, 14, 256, 3, 1, 1), (32, 512, 7, 7, 512, 3, 1, 1),
    (32, 256, 56, 56, 64, 1, 1, 1), (32, 64, 56, 56, 256, 1, 1, 1), (32, 3, 224, 224, 64, 7, 2, 1),
    (32, 144, 56, 56, 144, 3, 1, 144), (1, 512, 7, 7, 512, 3, 1, 1), (256, 1024, 14, 14, 256, 1, 1, 1),
]


def run_convs(meter, out, window):
    torch.backends.cudnn.benchmark = True
    for bt, c, h, w, k, r, s, g in CONVS:
        try:
            x = torch.randn(bt, c, h, w, device="cuda", dtype=BF16).to(memory_format=torch.channels_last)
            wt = (torch.randn(k, c // g, r, r, device="cuda", dtype=BF16) * 0.05).to(
                memory_format=torch.channels_last)
            oh = (h + 2 * (r // 2) - r) // s + 1
            flops = 2.0 * bt * oh * oh * k * (c // g) * r * r
            reps = _repeats(flops, x.numel() * 2 * 2)

            def step(x=x, wt=wt, r=r, s=s, g=g, reps=reps):
                for _ in range(reps):
                    F.conv2d(x, wt, stride=s, padding=r // 2, groups=g)
            res = measure(meter, step, reps, window)
        except Exception as exc:  # noqa: BLE001
            print(f"conv {bt},{c},{h},{k},{r},{s},{g}: not run ({type(exc).__name__}: {exc})", flush=True)
            continue
        emit(out, {"id": f"conv-b{bt}-c{c}-h{h}-k{k}-r{r}-s{s}-g{g}", "kind": "conv2d", "family": "cnn",
                   "model": f"conv2d:batch={bt},c={c},h={h},w={w},k={k},r={r},stride={s},groups={g}",
                   "activations": "bf16", "weights": "bf16",
                   "params": {"batch": bt, "c": c, "h": h, "w": w, "k": k, "r": r, "stride": s, "groups": g},
                   "library": "cuDNN via torch.nn.functional.conv2d, channels_last", **res})
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- small ops
def run_ops(meter, out, window):
    dev = "cuda"
    cases = []
    for b, h, s, d in ((1, 12, 128, 64), (32, 12, 128, 64), (1, 32, 512, 128), (1, 32, 2048, 128)):
        q = torch.randn(b, h, s, d, device=dev, dtype=BF16)
        cases.append((f"sdpa-b{b}-h{h}-s{s}-d{d}", "attention", {"batch": b, "heads": h, "seq": s, "head_dim": d},
                      lambda q=q: F.scaled_dot_product_attention(q, q, q, is_causal=True)))
    for b, h, s, d in ((1, 32, 128, 128), (1, 32, 2048, 128), (32, 32, 2048, 128)):
        q = torch.randn(b, h, 1, d, device=dev, dtype=BF16)
        kv = torch.randn(b, h, s, d, device=dev, dtype=BF16)
        cases.append((f"sdpa-decode-b{b}-h{h}-ctx{s}-d{d}", "attention",
                      {"batch": b, "heads": h, "seq": 1, "context": s, "head_dim": d},
                      lambda q=q, kv=kv: F.scaled_dot_product_attention(q, kv, kv)))
    for tok, hid in ((128, 768), (4096, 768), (512, 4096), (16384, 4096)):
        x = torch.randn(tok, hid, device=dev, dtype=BF16)
        wln = torch.ones(hid, device=dev, dtype=BF16)
        cases.append((f"layernorm-t{tok}-h{hid}", "layernorm", {"tokens": tok, "hidden": hid},
                      lambda x=x, wln=wln: F.layer_norm(x, (x.shape[-1],), wln, wln)))
        cases.append((f"rmsnorm-t{tok}-h{hid}", "rmsnorm", {"tokens": tok, "hidden": hid},
                      lambda x=x, wln=wln: F.rms_norm(x, (x.shape[-1],), wln)))
        cases.append((f"gelu-t{tok}-h{hid}", "gelu", {"tokens": tok, "hidden": hid}, lambda x=x: F.gelu(x)))
        cases.append((f"add-t{tok}-h{hid}", "add", {"tokens": tok, "hidden": hid}, lambda x=x: x + x))
        cases.append((f"softmax-t{tok}-h{hid}", "softmax", {"tokens": tok, "hidden": hid},
                      lambda x=x: torch.softmax(x, -1)))
    for ident, op, params, fn in cases:
        _measure_op(meter, out, window, ident, fn, 4 * math.prod(params.values()),
                    {"id": ident, "kind": "op", "family": op, "model": None, "activations": "bf16",
                     "weights": "bf16", "params": params, "library": "torch eager kernels"})


def _measure_op(meter, out, window, label: str, fn, nbytes: float, record: dict) -> None:
    """Measure ``fn`` (a memory-bound op of ``nbytes`` moved) repeated per step and emit ``record``
    with the result; an op that fails is reported under ``label`` and skipped."""
    reps = _repeats(0.0, nbytes)

    def step():
        for _ in range(reps):
            fn()
    try:
        res = measure(meter, step, reps, window)
    except Exception as exc:  # noqa: BLE001
        print(f"{label}: not run ({type(exc).__name__}: {exc})", flush=True)
        return
    emit(out, {**record, **res})


# ----------------------------------------------------------------------------- networks
def _rms(x, w):
    return F.rms_norm(x, (x.shape[-1],), w, 1e-5)


class LlamaShaped:
    """Llama-2-7B-shaped decoder (hidden 4096, 32 heads, intermediate 11008, vocab 32000), random weights.

    Same ops as hwsim's llama zoo graph: embedding, per layer RMSNorm, q/k/v projections, rotary, KV cache,
    attention, o projection, residual, RMSNorm, gate/up projections, SiLU x up, down projection, residual;
    final RMSNorm and the LM head over every position. ``fp8``: weights and activations E4M3 with
    per-tensor scale 1 through torch._scaled_mm (activations cast before each projection).
    """

    def __init__(self, layers=32, hidden=4096, heads=32, inter=11008, vocab=32000, max_ctx=2048 + 8,
                 batch=1, fp8=False):
        dev = "cuda"
        self.h, self.nh, self.hd, self.fp8, self.layers = hidden, heads, hidden // heads, fp8, layers

        def w(n, k):
            t = torch.randn(n, k, device=dev, dtype=BF16) * 0.02
            return t.to(FP8) if fp8 else t
        self.embed = torch.randn(vocab, hidden, device=dev, dtype=BF16) * 0.02
        self.lw = [dict(q=w(hidden, hidden), k=w(hidden, hidden), v=w(hidden, hidden), o=w(hidden, hidden),
                        g=w(inter, hidden), u=w(inter, hidden), d=w(hidden, inter),
                        n1=torch.ones(hidden, device=dev, dtype=BF16),
                        n2=torch.ones(hidden, device=dev, dtype=BF16)) for _ in range(layers)]
        self.norm = torch.ones(hidden, device=dev, dtype=BF16)
        self.head = w(vocab, hidden)
        self.kc = [torch.zeros(batch, heads, max_ctx, self.hd, device=dev, dtype=BF16) for _ in range(layers)]
        self.vc = [torch.zeros(batch, heads, max_ctx, self.hd, device=dev, dtype=BF16) for _ in range(layers)]
        inv = 1.0 / (10000 ** (torch.arange(0, self.hd, 2, device=dev).float() / self.hd))
        ang = torch.outer(torch.arange(max_ctx, device=dev).float(), inv)
        self.cos, self.sin = ang.cos().to(BF16), ang.sin().to(BF16)
        self.one = torch.ones((), device=dev)

    def lin(self, x, wt):
        if not self.fp8:
            return x @ wt.t()
        shp = x.shape
        y = torch._scaled_mm(x.reshape(-1, shp[-1]).to(FP8), wt.t(), scale_a=self.one, scale_b=self.one,
                             out_dtype=BF16)
        return y.reshape(*shp[:-1], wt.shape[0])

    def rope(self, x, pos0):
        s = x.shape[2]
        cos, sin = self.cos[pos0:pos0 + s], self.sin[pos0:pos0 + s]
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)

    def forward(self, ids, cached: int):
        b, s = ids.shape
        x = F.embedding(ids, self.embed)
        for i, L in enumerate(self.lw):
            y = _rms(x, L["n1"])
            q = self.lin(y, L["q"]).view(b, s, self.nh, self.hd).transpose(1, 2)
            k = self.lin(y, L["k"]).view(b, s, self.nh, self.hd).transpose(1, 2)
            v = self.lin(y, L["v"]).view(b, s, self.nh, self.hd).transpose(1, 2)
            q, k = self.rope(q, cached), self.rope(k, cached)
            self.kc[i][:, :, cached:cached + s] = k
            self.vc[i][:, :, cached:cached + s] = v
            kk, vv = self.kc[i][:, :, :cached + s], self.vc[i][:, :, :cached + s]
            a = F.scaled_dot_product_attention(q, kk, vv, is_causal=cached == 0)
            x = x + self.lin(a.transpose(1, 2).reshape(b, s, self.h), L["o"])
            y = _rms(x, L["n2"])
            x = x + self.lin(F.silu(self.lin(y, L["g"])) * self.lin(y, L["u"]), L["d"])
        return self.lin(_rms(x, self.norm), self.head)


def run_networks(meter, out, window, llama_layers: int):
    import torchvision

    torch.backends.cudnn.benchmark = True
    nets = []
    for name, ctor in (("resnet18", torchvision.models.resnet18), ("resnet50", torchvision.models.resnet50),
                       ("mobilenet_v2", torchvision.models.mobilenet_v2)):
        for batch in (1, 32, 256):
            nets.append((name, {"batch": batch}, ctor))
    for name, params, ctor in nets:
        try:
            m = ctor(weights=None).to("cuda", BF16).eval().to(memory_format=torch.channels_last)
            x = torch.randn(params["batch"], 3, 224, 224, device="cuda", dtype=BF16).to(
                memory_format=torch.channels_last)
            res = measure(meter, lambda m=m, x=x: m(x), 1, window)
        except Exception as exc:  # noqa: BLE001
            print(f"{name} {params}: not run ({type(exc).__name__}: {exc})", flush=True)
            continue
        emit(out, {"id": f"{name}-b{params['batch']}", "kind": "network", "family": "cnn",
                   "model": f"{name}:batch={params['batch']}", "activations": "bf16", "weights": "bf16",
                   "params": params, "library": "torchvision (weights=None), cuDNN, channels_last", **res})
        del m
        torch.cuda.empty_cache()
    try:
        from transformers import BertConfig, BertModel

        bert = BertModel(BertConfig()).to("cuda", BF16).eval()
        for batch in (1, 32):
            ids = torch.randint(0, 30522, (batch, 128), device="cuda")
            res = measure(meter, lambda ids=ids: bert_forward(bert, ids), 1, window)
            emit(out, {"id": f"bert-base-b{batch}-s128", "kind": "network", "family": "transformer",
                       "model": f"bert-base:batch={batch},sequence=128", "activations": "bf16", "weights": "bf16",
                       "params": {"batch": batch, "sequence": 128},
                       "library": "transformers BertModel(BertConfig()) random init", **res})
        del bert
        torch.cuda.empty_cache()
    except Exception as exc:  # noqa: BLE001
        print(f"bert: not run ({type(exc).__name__}: {exc})", flush=True)
    for fp8 in (False, True):
        try:
            llm = LlamaShaped(layers=llama_layers, fp8=fp8)
        except Exception as exc:  # noqa: BLE001
            print(f"llama fp8={fp8}: not built ({type(exc).__name__}: {exc})", flush=True)
            continue
        fmt = "fp8_e4m3fn" if fp8 else "bf16"
        for phase, ctx in (("decode", 128), ("decode", 2048), ("prefill", 512)):
            ids = torch.randint(0, 32000, (1, 1 if phase == "decode" else ctx), device="cuda")
            cached = ctx if phase == "decode" else 0
            try:
                res = measure(meter, lambda ids=ids, cached=cached: llm.forward(ids, cached), 1, window)
            except Exception as exc:  # noqa: BLE001
                print(f"llama {phase} {ctx} fp8={fp8}: not run ({type(exc).__name__}: {exc})", flush=True)
                continue
            emit(out, {"id": f"llama2-7b-L{llama_layers}-{phase}-ctx{ctx}-{'fp8' if fp8 else 'bf16'}",
                       "kind": "network", "family": "llm",
                       "model": f"llama2-7b:phase={phase},context={ctx},layers={llama_layers}",
                       "activations": fmt, "weights": fmt,
                       "params": {"phase": phase, "context": ctx, "layers": llama_layers, "batch": 1},
                       "library": "Llama-2-7B-shaped decoder in benchmarks/measure/h100_measure.py (torch.mm "
                                  "/ torch._scaled_mm, SDPA), random weights", **res})
        del llm
        torch.cuda.empty_cache()


def bert_forward(bert, ids):
    """BertModel's forward without an attention mask (embeddings, encoder, pooler): the kernels an eager
    ``bert(input_ids=ids)`` runs (flash SDPA). Called inside a CUDA-graph capture, ``bert(input_ids=ids)``
    itself cannot drop the all-ones mask (transformers 5.17 does not read it while a stream captures) and runs a
    float32 math attention instead: 425 kernels and 5.4 ms against 178 and 2.0 ms at batch 32 (session 3,
    h100/session3/h100_profiles.jsonl). Sessions 1-2 measured that path; their BERT records were replaced."""
    seq = bert.encoder(bert.embeddings(input_ids=ids))[0]
    return bert.pooler(seq)


def _net_record(name, params, model, family, library, res, fmt="bf16"):
    return {"id": name, "kind": "network", "family": family, "model": model, "activations": fmt,
            "weights": fmt, "params": params, "library": library, **res}


def measure_llamas(meter, out, window, llama_layers: int, configs) -> None:
    """Time the Llama-2-7B-shaped decoder once per (fp8, batch, phase, context) in configs and emit a
    network record for each; a configuration that fails is reported and skipped."""
    for fp8, batch, phase, ctx in configs:
        try:
            llm = LlamaShaped(layers=llama_layers, fp8=fp8, batch=batch, max_ctx=ctx + 8)
            ids = torch.randint(0, 32000, (batch, 1 if phase == "decode" else ctx), device="cuda")
            cached = ctx if phase == "decode" else 0
            res = measure(meter, lambda ids=ids, cached=cached, llm=llm: llm.forward(ids, cached), 1, window)
        except Exception as exc:  # noqa: BLE001
            print(f"llama {phase} {ctx} b{batch} fp8={fp8}: not run ({type(exc).__name__}: {exc})", flush=True)
            continue
        fmt = "fp8_e4m3fn" if fp8 else "bf16"
        emit(out, _net_record(f"llama2-7b-L{llama_layers}-{phase}-ctx{ctx}-b{batch}-{'fp8' if fp8 else 'bf16'}",
                              {"phase": phase, "context": ctx, "layers": llama_layers, "batch": batch},
                              f"llama2-7b:phase={phase},context={ctx},layers={llama_layers},batch={batch}", "llm",
                              "Llama-2-7B-shaped decoder in benchmarks/measure/h100_measure.py (torch.mm "
                              "/ torch._scaled_mm, SDPA), random weights", res, fmt))
        del llm
        torch.cuda.empty_cache()


def run_networks2(meter, out, window, llama_layers: int):
    """More whole networks (second session): other batches of the CNNs, VGG-16, ViT-B/16, MiniLM-L6,
    BERT-base at batch 8, and the Llama-2-7B-shaped decoder at decode batch 8 and prefill 128."""
    import torchvision

    torch.backends.cudnn.benchmark = True
    cnns = [(n, b) for n in ("resnet18", "resnet50", "mobilenet_v2") for b in (8, 64)]
    cnns += [("vgg16", 1), ("vgg16", 32), ("vit_b_16", 1), ("vit_b_16", 32)]
    for name, batch in cnns:
        try:
            m = getattr(torchvision.models, name)(weights=None).to("cuda", BF16).eval()
            x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=BF16)
            if not name.startswith("vit"):
                m, x = m.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
            res = measure(meter, lambda m=m, x=x: m(x), 1, window)
        except Exception as exc:  # noqa: BLE001
            print(f"{name} b{batch}: not run ({type(exc).__name__}: {exc})", flush=True)
            continue
        zoo = {"vit_b_16": "vit-b16"}.get(name, name)
        emit(out, _net_record(f"{zoo}-b{batch}", {"batch": batch}, f"{zoo}:batch={batch}",
                              "transformer" if name.startswith("vit") else "cnn",
                              f"torchvision {name} (weights=None)" + ("" if name.startswith("vit") else
                                                                      ", cuDNN, channels_last"), res))
        del m
        torch.cuda.empty_cache()
    try:
        from transformers import BertConfig, BertModel

        for zoo, cfg, batch in (("minilm-l6", dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                                   intermediate_size=1536), 1),
                                ("minilm-l6", dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                                   intermediate_size=1536), 32),
                                ("bert-base", {}, 8)):
            bert = BertModel(BertConfig(**cfg)).to("cuda", BF16).eval()
            ids = torch.randint(0, 30522, (batch, 128), device="cuda")
            res = measure(meter, lambda ids=ids, bert=bert: bert_forward(bert, ids), 1, window)
            emit(out, _net_record(f"{zoo}-b{batch}-s128", {"batch": batch, "sequence": 128},
                                  f"{zoo}:batch={batch},sequence=128", "transformer",
                                  f"transformers BertModel(BertConfig({cfg})) random init", res))
            del bert
            torch.cuda.empty_cache()
    except Exception as exc:  # noqa: BLE001
        print(f"bert: not run ({type(exc).__name__}: {exc})", flush=True)
    measure_llamas(meter, out, window, llama_layers,
                   ((False, 8, "decode", 512), (False, 1, "prefill", 128), (True, 1, "prefill", 128)))


ALIGN_GEMMS = [("int8", 4096, 4096, 1000), ("int8", 4096, 4096, 1008), ("int8", 16384, 1024, 1000),
               ("bf16", 16384, 2048, 1004), ("bf16", 16384, 2048, 1008), ("int8", 1024, 4104, 4096)]


def run_align(meter, out, window):
    """GEMMs whose output row (n elements) or reduction (k) is, or is not, a multiple of 16 bytes."""
    for fmt, m, k, n in ALIGN_GEMMS:
        try:
            step, reps = gemm_step(fmt, m, k, n)
            r = measure(meter, step, reps, window)
        except Exception as exc:  # noqa: BLE001
            print(f"gemm {fmt} m={m} k={k} n={n}: not run ({type(exc).__name__}: {str(exc)[:100]})", flush=True)
            continue
        f = HWSIM_FMT[fmt]
        emit(out, {"id": f"gemm-{fmt}-m{m}-k{k}-n{n}", "kind": "gemm", "family": "align",
                   "model": f"gemm:m={m},k={k},n={n}", "activations": f, "weights": f,
                   "params": {"m": m, "k": k, "n": n}, "weights_resident": False,
                   "library": "cuBLASLt via " + ("torch._int_mm" if fmt == "int8" else "torch.mm"), **r})
        torch.cuda.empty_cache()


def run_ops_cnn(meter, out, window):
    """The non-MAC kernels of a torchvision CNN (eval batch norm, ReLU, residual add) on NHWC tensors."""
    for b, c, h in ((1, 64, 112), (1, 256, 56), (32, 64, 56), (32, 256, 56), (256, 64, 56)):
        x = torch.randn(b, c, h, h, device="cuda", dtype=BF16).to(memory_format=torch.channels_last)
        bn = torch.nn.BatchNorm2d(c).to("cuda", BF16).eval()
        params = {"batch": b, "c": c, "h": h, "w": h}
        nbytes = 4 * b * c * h * h
        for op, fn in (("batchnorm", lambda x=x, bn=bn: bn(x)), ("relu", lambda x=x: F.relu(x)),
                       ("add", lambda x=x: x + x)):
            _measure_op(meter, out, window, f"{op} {params}", fn, nbytes,
                        {"id": f"{op}-nhwc-b{b}-c{c}-h{h}", "kind": "op", "family": op, "model": None,
                         "activations": "bf16", "weights": "bf16", "params": params,
                         "library": "torch eager kernels, channels_last"})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for h100_*.jsonl")
    ap.add_argument("--only", default="networks,gemm,conv,ops,networks_repeat")
    ap.add_argument("--window", type=float, default=1.2, help="seconds per timed window")
    ap.add_argument("--llama-layers", type=int, default=32)
    ap.add_argument("--budget-s", type=float, default=500, help="stop starting new sections after this")
    args = ap.parse_args(argv)
    if pynvml is None or not torch.cuda.is_available():
        print("needs a CUDA GPU and nvidia-ml-py", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    meter = Meter()
    start = time.time()
    time.sleep(4.0)
    idle = meter.idle_power_w()
    sm, pw, temp = meter.sample()
    info = {"device": meter.name, "idle_power_w": idle, "idle_sm_clock_mhz": sm, "power_limit_w": meter.power_limit_w,
            "max_sm_clock_mhz": meter.max_sm_mhz, "torch": torch.__version__, "cuda": torch.version.cuda,
            "sms": torch.cuda.get_device_properties(0).multi_processor_count,
            "l2_bytes": getattr(torch.cuda.get_device_properties(0), "L2_cache_size", None),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(info), flush=True)
    with open(os.path.join(args.out, "h100_device.json"), "w") as f:
        json.dump(info, f, indent=1)
    # warm the card to a steady state before the first window
    a = torch.randn(8192, 8192, device="cuda", dtype=BF16)
    t0 = time.time()
    while time.time() - t0 < 3:
        a @ a
    torch.cuda.synchronize()
    sections = {"networks": lambda o: run_networks(meter, o, args.window, args.llama_layers),
                "networks_repeat": lambda o: run_networks(meter, o, args.window, args.llama_layers),
                "gemm": lambda o: run_gemms(meter, o, args.window),
                "conv": lambda o: run_convs(meter, o, args.window),
                "ops": lambda o: run_ops(meter, o, args.window),
                "networks2": lambda o: run_networks2(meter, o, args.window, args.llama_layers),
                "align": lambda o: run_align(meter, o, args.window),
                "ops_cnn": lambda o: run_ops_cnn(meter, o, args.window)}
    for name in args.only.split(","):
        if time.time() - start > args.budget_s:
            print(f"section {name}: skipped, time budget spent", flush=True)
            continue
        with open(os.path.join(args.out, f"h100_{name}.jsonl"), "a") as out:
            t = time.time()
            sections[name](out)
            print(f"section {name}: {time.time() - t:.0f} s", flush=True)
    info["idle_power_end_w"] = meter.idle_power_w(5.0)
    info["idle_sm_clock_end_mhz"] = meter.sample()[0]
    print(json.dumps(info), flush=True)
    with open(os.path.join(args.out, "h100_device.json"), "w") as f:
        json.dump(info, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
