#!/usr/bin/env python3
"""Kernel breakdown of a few whole networks (torch.profiler, eager, after warm-up): which kernels take the
time hwsim's per-layer model misses (issue 11 residual analysis). Prints the top kernels by CUDA time.

Run: python3 benchmarks/measure/h100_profile.py
"""

from __future__ import annotations

import torch
import torchvision
from torch.profiler import ProfilerActivity, profile

BF16 = torch.bfloat16


def nets():
    from transformers import BertConfig, BertModel

    torch.backends.cudnn.benchmark = True
    bert = BertModel(BertConfig()).to("cuda", BF16).eval()
    ids = torch.randint(0, 30522, (32, 128), device="cuda")
    yield "bert-base-b32-s128", lambda: bert(input_ids=ids)
    vit = torchvision.models.vit_b_16(weights=None).to("cuda", BF16).eval()
    xv = torch.randn(32, 3, 224, 224, device="cuda", dtype=BF16)
    yield "vit-b16-b32", lambda: vit(xv)
    r18 = torchvision.models.resnet18(weights=None).to("cuda", BF16).eval().to(memory_format=torch.channels_last)
    for b in (1, 32):
        xr = torch.randn(b, 3, 224, 224, device="cuda", dtype=BF16).to(memory_format=torch.channels_last)
        yield f"resnet18-b{b}", lambda xr=xr: r18(xr)


def main():
    with torch.inference_mode():
        for name, fn in nets():
            for _ in range(5):
                fn()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    fn()
                torch.cuda.synchronize()
            print(f"==== {name} (5 runs; CUDA time per kernel name)")
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=90))


if __name__ == "__main__":
    main()
