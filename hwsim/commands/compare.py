"""``hwsim compare-formats``: INT vs FP vs MX formats on hardware cost and accuracy, side by side."""

from __future__ import annotations

import argparse
import math

from hwsim.commands.common import seed_int
from hwsim.render import si, table

_FORMATS_HELP = ("comma-separated formats (default int8,fp8_e4m3fn,fp8_e5m2,int4,fp4_e2m1fn,mxfp4_e2m1); "
                 "any fpN_eXmY works, e.g. fp8_e3m4")
_ACC_HELP = ("accumulators for every format, e.g. fx,fp16,fp32 (default: fx for integer and discrete "
             "formats, fp16 and fp32 for float formats, fp32 for MX block formats)")


def add_parsers(sub) -> None:
    p = sub.add_parser("compare-formats", help="number formats side by side: gates, energy/MAC, throughput, SQNR",
                       description="Compare number formats on the cost of one MAC (gates, energy, MACs/cycle on "
                                   "a target) and on accuracy (SQNR at the MSE-optimal scale on Gaussian, "
                                   "Laplace, Student-t nu=3 and uniform samples; the INT/FP crossover over "
                                   "Student-t nu; per layer of a model).")
    p.add_argument("--formats", metavar="F,...", help=_FORMATS_HELP)
    p.add_argument("--accumulators", metavar="A,...", help=_ACC_HELP)
    p.add_argument("--target", metavar="T", help="bundled target name or target YAML path")
    p.add_argument("--model", metavar="M", help="zoo name, model .yaml or .onnx: per-layer SQNR (and cost with --target)")
    p.add_argument("--shape", metavar="K=V,...", action="append", help="model parameter overrides, e.g. batch=1,sequence=128")
    p.add_argument("--crossover", metavar="INT,FP", default="int8,fp8_e4m3fn",
                   help="integer and float format of the Student-t crossover sweep (default int8,fp8_e4m3fn)")
    p.add_argument("--samples", type=int, default=65536, help="samples per distribution (default 65536)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of samples, synthetic weights and inputs")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--plot", metavar="OUT.png", help="write accuracy vs energy per MAC (and per-layer SQNR) here")
    p.set_defaults(run=run_compare)


def _pair(text: str):
    from hwsim.errors import ConfigError

    parts = [t.strip() for t in text.split(",") if t.strip()]
    if len(parts) != 2:
        raise ConfigError(f"--crossover takes two formats INT,FP (e.g. int8,fp8_e4m3fn), got {text!r}")
    return parts[0], parts[1]


def _db(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.1f}"


def run_compare(args: argparse.Namespace) -> int:
    from hwsim.commands.common import check_output, parse_shape_args, write_output
    from hwsim.compare import compare_formats

    check_output(args.plot, "--plot", plot=True)

    res = compare_formats(args.formats, args.accumulators, args.target, args.model, samples=args.samples,
                          seed=args.seed, crossover_formats=_pair(args.crossover),
                          shape=parse_shape_args(args.shape))
    if args.plot:
        from hwsim.compare.plot import plot_comparison

        write_output(args.plot, "--plot", lambda p: plot_comparison(res, p))
    if args.json:
        print(res.to_json())
        return 0
    _print_rows(res)
    _print_crossover(res.crossover)
    if res.model is not None:
        _print_model(res.model)
    return 0


def _print_rows(res) -> None:
    t = res.target
    head = ["format", "acc", "mult", "align+add", "norm+acc", "gates", "x int8", "pJ/MAC"]
    head += ["MAC/cycle", "peak MAC/s"] if t else []
    head += ["SQNR gauss", "laplace", "t3", "uniform"]
    rows = []
    for r in res.rows:
        row = [r.format, r.accumulator, f"{r.gates.multiply:.0f}", f"{r.gates.align_add:.0f}",
               f"{r.gates.normalize_accumulate:.0f}", f"{r.gates.total:.0f}", f"{r.relative_gates_int8:.2f}",
               f"{r.energy_pj_per_mac:.3f}"]
        if t:
            mark = "*" if r.format in t.fallbacks else ""
            row += [f"{r.macs_per_cycle:g}{mark}", si(t.peak_macs_per_s[r.format])]
        row += [_db(r.sqnr_db.get(k)) for k in ("gaussian", "laplace", "student_t3", "uniform")]
        rows.append(row)
    print(table(head, rows, "ll" + "r" * (len(head) - 2)))
    where = f"of a native unit at {t.name}'s gate energy ({t.technology_nm:g} nm)" if t else "at 45 nm (no target)"
    if t and t.fallbacks:
        print("\n* no native pair on " + t.name + "; runs as " +
              ", ".join(f"{f} -> {p}" for f, p in t.fallbacks.items()) + " (unpacking costs in the model estimate)")
    print(f"\ngates: 2-input gate equivalents of one MAC (van Baalen et al. 2023 method), x int8 = vs "
          f"int8 with fx accumulator; energy {where}; SQNR in dB at the MSE-optimal scale")


def _print_crossover(c) -> None:
    if c.crossover_nu is None:
        print(f"crossover: {c.int_format} and {c.float_format} do not swap for Student-t nu in "
              f"[{c.nu[0]:g}, {c.nu[-1]:g}]")
        return
    lo, hi = (c.float_format, c.int_format) if c.float_better_below else (c.int_format, c.float_format)
    print(f"crossover: {lo} is more accurate for Student-t nu < {c.crossover_nu:.2f} (heavier tails), "
          f"{hi} above ({c.samples} samples per distribution)")


def _print_model(m) -> None:
    print(f"\nmodel {m.name}: SQNR per layer (dB), weights / activations; activations from {m.activation_source}")
    for note in m.notes:
        print(f"note: {note}")
    fmts = list(m.layers[0].weights_sqnr_db) if m.layers else []
    rows = [[l.name, l.op] + [f"{_db(l.weights_sqnr_db.get(f))} / {_db(l.activations_sqnr_db.get(f))}"
                              for f in fmts] for l in m.layers]
    print(table(["layer", "op"] + fmts, rows, "ll" + "r" * len(fmts)))
    if m.estimates:
        print()
        print("estimated on the target, weights and activations in each format:")
        print(table(["format", "latency (ms)", "energy (mJ)"],
                    [[e.format, f"{e.latency_s * 1e3:.4g}", f"{e.energy_j * 1e3:.4g}"] for e in m.estimates], "lrr"))
