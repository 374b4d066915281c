"""``hwsim estimate``: per-layer latency, energy and bottleneck of a model on a target."""

from __future__ import annotations

import argparse
import json

from hwsim.commands.common import (add_inputs_arg, add_model_args, check_output, check_shape_inputs, input_values,
                                   parse_shape_args, seed_int, write_output)
from hwsim.render import si, table


def add_parsers(sub) -> None:
    p = sub.add_parser("estimate", help="latency, energy and bottleneck per layer on a hardware target")
    add_model_args(p)
    p.add_argument("--target", required=True, metavar="T",
                   help="bundled target name (see `hwsim targets`) or a target .yaml path")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--plot", metavar="OUT.png", help="write a roofline + energy-breakdown plot (needs matplotlib)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of synthetic weights (data-dependent targets)")
    add_inputs_arg(p)
    p.set_defaults(run=run_estimate)


def _rows(report):
    return [(r.name, r.op, f"{r.latency_s * 1e3:.4f}", si(r.energy_j, "J"), r.bottleneck,
             f"{r.utilization:.2f}", r.formats or "-") for r in report.layers]


def run_estimate(args: argparse.Namespace) -> int:
    from hwsim.cost import estimate
    from hwsim.targets import load_target

    check_output(args.plot, "--plot", plot=True)
    check_shape_inputs(args)
    target = load_target(args.target)
    report = estimate(args.model, target, weights=args.weights, activations=args.activations,
                      config=args.config, shapes=parse_shape_args(args.shape) or None, seed=args.seed,
                      inputs=input_values(args), scope=args.scope)
    if args.plot:
        from hwsim.cost.plot import plot_report

        write_output(args.plot, "--plot", lambda p: plot_report(report, target, p))
    if args.json:
        print(json.dumps(report.to_json()))
        return 0
    for note in report.notes:
        print(f"note: {note}")
    print(table(["layer", "op", "latency (ms)", "energy", "bottleneck", "util", "formats"], _rows(report),
                "llrrlrl"))
    tot = report.total
    levels = " + ".join(f"{k} {si(v, 'J')}" for k, v in tot.memory_energy_j.items() if v > 0)
    parts = ", ".join(f"{k} {si(v, 'J')}" + (f" = {levels}" if k == "memory" and levels else "")
                      for k, v in tot.energy_breakdown_j.items() if v > 0)
    print(f"\n{report.model} on {report.target}: {tot.latency_s * 1e3:.4g} ms, {si(tot.energy_j, 'J')} "
          f"({parts}), {si(tot.macs)} MACs, {si(tot.weight_bytes, 'B')} of weights")
    if report.area is not None:
        a = report.area
        print(f"area: {a.area_mm2:.3g} mm^2 (MAC array {a.mac_array_mm2:.3g}, registers {a.registers_mm2:.3g}, "
              f"SRAM {a.sram_mm2:.3g}, other {a.other_mm2:.3g})")
    return 0
