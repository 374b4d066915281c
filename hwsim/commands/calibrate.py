"""``hwsim calibrate``: fit a target's physical parameters to measurements and write a target YAML."""

from __future__ import annotations

import argparse

from hwsim.commands.common import check_output, write_error


def add_parsers(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a target's rates, overheads and energies to measurements")
    p.add_argument("target", metavar="TARGET", nargs="?", help="starting target (bundled name or .yaml path)")
    p.add_argument("measurements", metavar="MEASUREMENTS.jsonl", nargs="?",
                   help="measurement file (hwsim/fidelity/records.py)")
    p.add_argument("--host", action="store_true", help="measure this machine instead (onnxruntime, caches, "
                                                       "bandwidth) and write a target for it")
    p.add_argument("--models", nargs="*", metavar="M.onnx[:dim=v,...]", default=[],
                   help="--host: ONNX networks to time in onnxruntime and validate against")
    p.add_argument("--seconds", type=float, default=1.0, help="--host: seconds per microbenchmark (default 1)")
    p.add_argument("--out", required=True, metavar="FITTED.yaml", help="where to write the fitted target")
    p.add_argument("--holdout", type=float, default=0.3, help="fraction of records kept out of the fit (default 0.3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split")
    p.set_defaults(run=run_calibrate)


def _line(name, s) -> str:
    if s is None:
        return f"  {name}: none"
    return (f"  {name}: n={s.n}, {100 * s.within_10:.0f}% within +-10%, {100 * s.within_25:.0f}% within +-25%, "
            f"median error {100 * s.median_error:+.1f}%, median |error| {100 * s.median_abs_error:.1f}%")


def _by_kind(v) -> list[str]:
    from hwsim.fidelity.validate import summarize

    out = []
    for kind in sorted({r.kind for r in v.rows}):
        rows = [r for r in v.rows if r.kind == kind]
        lat = summarize([r.latency_error for r in rows], 0.15)
        en = summarize([r.energy_error for r in rows if r.energy_error is not None], 0.20)
        e = f", energy {100 * en.within_tolerance:.0f}% within +-20%" if en else ""
        out.append(f"    {kind:8s} n={lat.n:3d}: latency {100 * lat.within_tolerance:.0f}% within +-15%{e}")
    return out


def run_calibrate(args: argparse.Namespace) -> int:
    from hwsim.errors import ConfigError
    from hwsim.fidelity.calibrate import calibrate
    from hwsim.fidelity.yaml_out import target_yaml

    check_output(args.out, "--out")
    if args.host:
        if args.target or args.measurements:
            raise ConfigError("--host measures this machine: give no TARGET or MEASUREMENTS.jsonl")
        return run_host(args)
    if args.target is None or args.measurements is None:
        raise ConfigError("give TARGET and MEASUREMENTS.jsonl, or --host (e.g. hwsim calibrate h100-sxm runs.jsonl "
                          "--out fit.yaml)")
    c = calibrate(args.target, args.measurements, holdout=args.holdout, seed=args.seed)
    try:
        with open(args.out, "w") as f:
            f.write(target_yaml(c.target, f"written by: hwsim calibrate {args.target} {args.measurements} "
                                          f"--holdout {args.holdout} --seed {args.seed}"))
    except OSError as exc:
        raise write_error(args.out, "--out", exc) from None
    print("fitted parameters:")
    for k, v in c.parameters.items():
        print(f"  {k:44s} {v:.4g}")
    print(f"train ({len(c.train_ids)} records):")
    print(_line("latency", c.train.latency))
    print(_line("energy", c.train.energy))
    print("\n".join(_by_kind(c.train)))
    if c.holdout is not None:
        print(f"held out ({len(c.holdout_ids)} records, seed {args.seed}):")
        print(_line("latency", c.holdout.latency))
        print(_line("energy", c.holdout.energy))
        print("\n".join(_by_kind(c.holdout)))
    print(f"fitted target written to {args.out}")
    return 0


def run_host(args: argparse.Namespace) -> int:
    """``hwsim calibrate --host``: measure this machine, write host.yaml and host.jsonl, validate."""
    import json
    import time
    from pathlib import Path

    from hwsim.fidelity.host import host_target, kernel_overhead_s, measure_host, time_onnx_model
    from hwsim.fidelity.validate import validate
    from hwsim.fidelity.yaml_out import target_yaml
    from hwsim.targets import load_target
    from hwsim.targets.schema import Target

    date = time.strftime("%Y-%m-%d", time.gmtime())
    facts = measure_host(args.seconds)
    overhead = kernel_overhead_s(facts.cores, args.seconds)
    out = Path(args.out)
    runs = out.with_suffix(".jsonl")
    t = Target.model_validate(host_target(facts, overhead, date))
    t = t.model_validate({**t.model_dump(), "validation": {
        "measurements": [runs.name], "latency_tolerance": 0.2, "energy_tolerance": None,
        "min_fraction_within": 0.9, "source": f"onnxruntime whole-network runs on this machine, {date}"}})
    records = []
    for spec in args.models:
        path, _, shape_text = spec.partition(":")
        shapes = dict((k, int(v)) for k, v in (kv.split("=") for kv in shape_text.split(",") if kv))
        lat = time_onnx_model(path, shapes, facts.cores, args.seconds)
        records.append({"id": f"ort-{Path(path).stem}-{'-'.join(f'{k}{v}' for k, v in shapes.items()) or 'default'}",
                        "kind": "network", "family": "onnx", "model": str(Path(path).resolve()),
                        "activations": "fp32", "weights": "fp32", "params": shapes,
                        "library": "onnxruntime CPUExecutionProvider", "latency_s": lat,
                        "conditions": {"runtime": "onnxruntime", "device": "host", "threads": facts.cores}})
    try:
        out.write_text(target_yaml(t, f"written by: hwsim calibrate --host ({date}); measured on this machine"))
        runs.write_text("".join(json.dumps(r) + "\n" for r in records))
    except OSError as exc:
        raise write_error(str(out), "--out", exc) from None
    print(f"{facts.cores} physical cores at {facts.clock_hz / 1e9:.3g} GHz; caches "
          f"{', '.join(f'L{lv} {size // 1024} KB' for lv, size in facts.caches)}")
    print("bandwidth: " + ", ".join(f"{m.name} {m.bandwidth_bytes_per_s / 1e9:.3g} GB/s" for m in t.memory))
    print(f"onnxruntime: fp32 MatMul {facts.rates['fp32'] / 1e9:.3g} GMAC/s, int8 MatMulInteger "
          f"{facts.rates['int8'] / 1e9:.3g} GMAC/s; per-node overhead {overhead * 1e6:.3g} us")
    print("energy: " + ("package RAPL readable" if facts.rapl else "uncalibrated (RAPL not readable)"))
    if records:
        v = validate(load_target(out), [runs])
        for r in v.rows:
            print(f"  {r.id}: measured {r.measured_latency_s * 1e3:.3g} ms, predicted "
                  f"{r.predicted_latency_s * 1e3:.3g} ms ({100 * r.latency_error:+.0f}%)")
        print(f"whole networks: {100 * v.latency.within_tolerance:.0f}% within +-20%")
    print(f"target written to {out}, runs to {runs}")
    return 0
