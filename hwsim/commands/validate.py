"""``hwsim validate``: a target's predictions against measured runs (see hwsim/fidelity)."""

from __future__ import annotations

import argparse
import json

from hwsim.commands.common import check_output, write_error
from hwsim.render import table


def add_parsers(sub) -> None:
    p = sub.add_parser("validate", help="predicted vs measured latency and energy of a target, per record")
    p.add_argument("target", metavar="TARGET", help="bundled target name or target .yaml path")
    p.add_argument("measurements", metavar="MEASUREMENTS.jsonl", nargs="*",
                   help="measurement files (default: the ones the target documents under 'validation:')")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--plot", metavar="OUT.png", help="write a log-log predicted-vs-measured scatter with the "
                                                     "+-25%% band (needs matplotlib)")
    p.set_defaults(run=run_validate)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def _summary_line(name: str, s, tol) -> str:
    if s is None:
        return f"{name}: no records compared"
    extra = f", {100 * s.within_tolerance:.0f}% within +-{100 * tol:.0f}% (tolerance)" if tol is not None else ""
    return (f"{name}: n={s.n}, {100 * s.within_10:.0f}% within +-10%, {100 * s.within_25:.0f}% within +-25%"
            f"{extra}, median error {_pct(s.median_error)}, median |error| {100 * s.median_abs_error:.1f}%")


def run_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwsim.fidelity.validate import target_measurements, validate
    from hwsim.targets import load_target

    check_output(args.plot, "--plot", plot=True)
    target = load_target(args.target)
    where = Path(args.target).parent if str(args.target).endswith((".yaml", ".yml")) else None
    files = args.measurements or target_measurements(target, where)
    v = validate(target, files)
    if args.plot:
        from hwsim.fidelity.plot import plot_validation

        try:
            plot_validation(v, args.plot)
        except OSError as exc:
            raise write_error(args.plot, "--plot", exc) from None
    if args.json:
        print(json.dumps(v.to_json()))
    else:
        rows = [(r.id, f"{r.measured_latency_s * 1e3:.4g}", f"{r.predicted_latency_s * 1e3:.4g}",
                 _pct(r.latency_error), "-" if r.measured_energy_j is None else f"{r.measured_energy_j * 1e3:.4g}",
                 "-" if r.predicted_energy_j is None else f"{r.predicted_energy_j * 1e3:.4g}",
                 _pct(r.energy_error)) for r in v.rows]
        print(table(["record", "measured ms", "predicted ms", "error", "measured mJ", "predicted mJ", "error"],
                    rows, "lrrrrrr"))
        print()
        print(_summary_line("latency", v.latency, v.latency_tolerance))
        print(_summary_line("energy", v.energy, v.energy_tolerance))
        if v.energy_note:
            print(f"note: {v.energy_note}")
        if v.unpredicted:
            print(f"note: {len(v.unpredicted)} record(s) have no hwsim model and were not predicted: "
                  f"{', '.join(v.unpredicted[:8])}{' ...' if len(v.unpredicted) > 8 else ''}")
        if v.passed is not None:
            print(f"{'PASS' if v.passed else 'FAIL'}: the target documents agreement for at least "
                  f"{100 * v.min_fraction_within:.0f}% of records")
        if args.plot:
            print(f"plot written to {args.plot}")
    return 1 if v.passed is False else 0
