"""``hwsim calibrate``: fit a target's physical parameters to measurements and write a target YAML."""

from __future__ import annotations

import argparse

from hwsim.commands.common import check_output, write_error


def add_parsers(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a target's rates, overheads and energies to measurements")
    p.add_argument("target", metavar="TARGET", help="starting target (bundled name or .yaml path)")
    p.add_argument("measurements", metavar="MEASUREMENTS.jsonl", help="measurement file (hwsim/fidelity/records.py)")
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
    from hwsim.fidelity.calibrate import calibrate
    from hwsim.fidelity.yaml_out import target_yaml

    check_output(args.out, "--out")
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
