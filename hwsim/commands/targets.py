"""``hwsim targets``: the bundled hardware targets with a one-line description."""

from __future__ import annotations

import argparse
import json

from hwsim.render import table


def add_parsers(sub) -> None:
    p = sub.add_parser("targets", help="list the bundled hardware targets")
    p.add_argument("--json", action="store_true", help="print the full target records as JSON")
    p.set_defaults(run=run_targets)


def _fidelity(t) -> str:
    """'validated' (see `hwsim validate NAME`) or 'uncalibrated'."""
    return "uncalibrated" if t.validation is None else "validated"


def run_targets(args: argparse.Namespace) -> int:
    from hwsim.targets import bundled_targets

    ts = bundled_targets()
    if args.json:
        print(json.dumps({n: t.model_dump() for n, t in ts.items()}))
        return 0
    rows = [(n, f"{t.peak_macs_per_s * 2 / 1e12:.3g}", t.memory[-1].name,
             f"{t.memory[-1].bandwidth_bytes_per_s / 1e9:.4g}", t.energy_scope or "unstated", _fidelity(t),
             t.description) for n, t in ts.items()]
    print(table(["target", "peak TOPS", "backing", "GB/s", "energy", "fidelity", "description"], rows, "lrlrlll"))
    print("\nuse a name with --target, or copy targets/<name>.yaml, edit it and pass its path")
    return 0
