#!/usr/bin/env python3
"""Held-out fidelity of the H100 fit (issue 11): refit a starting target on a seeded 70% of the measurement file
and report, per class, the fraction of held-out records within +-15% latency and +-20% energy (the issue's
goal), and the same on files no fit reads (the never-fitted records of a later session).

Run: python3 benchmarks/measure/h100_heldout.py START.yaml targets/measurements/h100-sxm.jsonl \\
         --seeds 0 7 --extra targets/measurements/h100-sxm-session3.jsonl [--fix elementwise_ops_per_cycle=256]
Prints one markdown row per (seed, set). Run it from another checkout (PYTHONPATH) for a 'before' row.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hwsim.fidelity.calibrate import calibrate
from hwsim.fidelity.validate import validate

GOAL_LATENCY, GOAL_ENERGY = 0.15, 0.20
CLASSES = ("gemm", "network", "conv2d")


def row(rows, label: str) -> str:
    cells = []
    for kind in CLASSES:
        rs = [r for r in rows if r.kind == kind]
        en = [r for r in rs if r.energy_error is not None]
        lat = sum(abs(r.latency_error) <= GOAL_LATENCY for r in rs)
        ein = sum(abs(r.energy_error) <= GOAL_ENERGY for r in en)
        cells.append(f"{lat}/{len(rs)}, {ein}/{len(en)}" if rs else "-")
    main = [r for r in rows if r.kind in ("gemm", "network")]
    en = [r for r in main if r.energy_error is not None]
    lat = sum(abs(r.latency_error) <= GOAL_LATENCY for r in main) / max(1, len(main))
    eng = sum(abs(r.energy_error) <= GOAL_ENERGY for r in en) / max(1, len(en))
    return f"| {label} | " + " | ".join(cells) + f" | {lat:.0%}, {eng:.0%} |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target")
    ap.add_argument("measurements")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--extra", nargs="*", default=[])
    ap.add_argument("--fix", nargs="*", default=[])
    ap.add_argument("--label", default="")
    ap.add_argument("--out", help="write the first seed's fitted target here")
    args = ap.parse_args(argv)
    fixed = {k: float(v) for k, v in (f.split("=", 1) for f in args.fix)}
    print("| model, set | GEMM lat, energy | network lat, energy | conv lat, energy | GEMM+network within goal |")
    print("|---|---|---|---|---|")
    for seed in args.seeds:
        t = time.time()
        cal = calibrate(args.target, args.measurements, holdout=0.3, seed=seed, fixed=fixed or None)
        if args.out and seed == args.seeds[0]:
            from hwsim.fidelity.yaml_out import target_yaml

            Path(args.out).write_text(target_yaml(cal.target))
        print(row(cal.holdout.rows, f"{args.label} seed {seed} held out"), flush=True)
        for extra in args.extra:
            print(row(validate(cal.target, [extra]).rows, f"{args.label} seed {seed} fit, {Path(extra).name}"),
                  flush=True)
        print(f"<!-- seed {seed}: fit {time.time() - t:.0f} s -->", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
