"""``hwsim calibrate``: fit a target's physical parameters to measurements and write a target YAML."""

from __future__ import annotations

import argparse

from hwsim.commands.common import check_output, positive_int, write_error


def add_parsers(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a target's rates, overheads and energies to measurements")
    p.add_argument("target", metavar="TARGET", nargs="?", help="starting target (bundled name or .yaml path)")
    p.add_argument("measurements", metavar="MEASUREMENTS.jsonl", nargs="?",
                   help="measurement file (hwsim/fidelity/records.py)")
    p.add_argument("--host", action="store_true", help="measure this machine instead (onnxruntime, caches, "
                                                       "bandwidth) and write a target for it")
    p.add_argument("--models", nargs="*", metavar="M.onnx[:dim=v,...]", default=[],
                   help="--host: ONNX networks to time in onnxruntime and validate against")
    p.add_argument("--no-zoo", action="store_true", help="--host: validate on --models only, not on the zoo "
                                                          "networks (resnet18, mobilenet_v2, minilm-l6 in fp32 and int8)")
    p.add_argument("--seconds", type=float, default=0.5, help="--host: seconds of copy timings per memory level "
                                                              "(default 0.5)")
    p.add_argument("--runs", type=positive_int, default=20, help="--host: profiled onnxruntime runs per microbenchmark "
                                                        "and round (networks: half; default 20)")
    p.add_argument("--rounds", type=positive_int, default=2, help="--host: rounds over all workloads, spread in time; "
                                                          "per-node minima over all of them (default 2)")
    p.add_argument("--out", required=True, metavar="FITTED.yaml", help="where to write the fitted target")
    p.add_argument("--holdout", type=float, default=0.3, help="fraction of records kept out of the fit (default 0.3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split")
    p.add_argument("--fix", nargs="*", default=[], metavar="NAME=VALUE",
                   help="hold fitted parameters at these values (names as printed under 'fitted parameters', "
                        "e.g. elementwise_ops_per_cycle=256 for a datasheet peak)")
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


def _fixed(items: list[str]) -> dict[str, float]:
    from hwsim.errors import ConfigError

    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise ConfigError(f"--fix {item!r}: write NAME=VALUE with a number, e.g. "
                              f"elementwise_ops_per_cycle=256") from None
        if out[name] <= 0:
            raise ConfigError(f"--fix {item!r}: the value must be positive")
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
    fixed = _fixed(args.fix)
    c = calibrate(args.target, args.measurements, holdout=args.holdout, seed=args.seed, fixed=fixed)
    fix = f" --fix {' '.join(args.fix)}" if args.fix else ""
    try:
        with open(args.out, "w") as f:
            f.write(target_yaml(c.target, f"written by: hwsim calibrate {args.target} {args.measurements} "
                                          f"--holdout {args.holdout} --seed {args.seed}{fix}"))
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


def _table(v) -> list[str]:
    lines = [f"    {'record':44s} {'measured ms':>12s} {'predicted ms':>13s} {'error':>7s}"]
    for r in v.rows:
        lines.append(f"    {r.id:44s} {r.measured_latency_s * 1e3:12.3f} {r.predicted_latency_s * 1e3:13.3f} "
                     f"{100 * r.latency_error:+6.0f}%")
    return lines


def run_host(args: argparse.Namespace) -> int:
    """``hwsim calibrate --host``: measure this machine, fit on microbenchmarks, validate on networks."""
    import sys
    from pathlib import Path

    from hwsim.errors import ConfigError
    from hwsim.fidelity.host_run import calibrate_host
    from hwsim.fidelity.yaml_out import target_yaml

    models = []
    for spec in args.models:
        path, _, shape_text = spec.partition(":")
        try:
            shapes = dict((k, int(v)) for k, v in (kv.split("=") for kv in shape_text.split(",") if kv))
        except ValueError:
            raise ConfigError(f"--models {spec!r}: write M.onnx or M.onnx:dim=value,... (e.g. "
                              f"bert.onnx:batch=1,sequence=128)") from None
        if not Path(path).is_file():
            raise ConfigError(f"--models: ONNX file {path!r} not found")
        models.append((path, shapes))
    c = calibrate_host(args.out, models, zoo=not args.no_zoo, seconds=args.seconds, runs=args.runs, rounds=args.rounds,
                       progress=lambda line: print(line, file=sys.stderr))
    try:
        with open(args.out, "w") as f:
            f.write(target_yaml(c.target, f"written by: hwsim calibrate --host; measured on this machine"))
    except OSError as exc:
        raise write_error(args.out, "--out", exc) from None
    f = c.facts
    print(f"{f.cores} physical cores at {f.clock_hz / 1e9:.3g} GHz; caches "
          f"{', '.join(f'L{lv} {size // 1024} KB' for lv, size in f.caches)}; load average {c.load[0]:.2f} "
          f"before, {c.load[1]:.2f} after")
    print("fitted: " + ", ".join(f"{m.name} {m.bandwidth_bytes_per_s / 1e9:.3g} GB/s" for m in c.target.memory)
          + f"; per-node overhead {c.target.layer_overhead_s * 1e6:.3g} us")
    for r in c.target.compute.rates:
        peak = r.macs_per_cycle * f.cores * c.target.clock_hz
        print(f"  {r.activation} x {r.weight}: peak {peak / 1e9:.3g} GMAC/s, efficiency gemm {r.efficiency:.3g}, "
              f"conv {r.conv_efficiency or r.efficiency:.3g}, 1x1 {r.pointwise_efficiency or r.conv_efficiency or r.efficiency:.3g}, "
              f"depthwise {r.depthwise_efficiency or r.conv_efficiency or r.efficiency:.3g}"
              + (f" + {r.depthwise_overhead_s * 1e6:.3g} us" if r.depthwise_overhead_s else ""))
    print("energy: " + ("package RAPL readable" if f.rapl else "uncalibrated (RAPL not readable)"))
    print(f"microbenchmarks (fitted on), {c.micro_path.name}:")
    print(_line("latency", c.micro.latency))
    if c.networks is not None:
        print(f"whole networks (held out), {c.networks_path.name}:")
        print("\n".join(_table(c.networks)))
        print(f"  {100 * c.networks.latency.within_tolerance:.0f}% of {c.networks.latency.n} within +-20% "
              f"(median error {100 * c.networks.latency.median_error:+.1f}%)")
    print(f"target written to {args.out}")
    return 0
