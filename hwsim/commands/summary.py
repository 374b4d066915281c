"""``hwsim summary`` and ``hwsim models``."""

from __future__ import annotations

import argparse
import json

from hwsim.commands.common import add_inputs_arg, add_model_args, check_shape_inputs, load_graph
from hwsim.render import shape_str, si, table


def add_parsers(sub) -> None:
    p = sub.add_parser("summary", help="per-layer table of a model: op, shapes, MACs, params, formats")
    add_model_args(p)
    p.add_argument("--all", action="store_true", help="list every op, not only those with MACs or parameters")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_inputs_arg(p)
    p.set_defaults(run=run_summary)
    m = sub.add_parser("models", help="list the bundled model zoo")
    m.add_argument("--json", action="store_true")
    m.set_defaults(run=run_models)


def run_summary(args: argparse.Namespace) -> int:
    from hwsim.graph.summary import summarize

    check_shape_inputs(args)
    s = summarize(load_graph(args), all_ops=args.all)
    if args.json:
        print(json.dumps(s.to_json()))
        return 0
    for note in s.notes:
        print(f"note: {note}")
    rows = [(r.name, r.op, ", ".join(shape_str(x) for x in r.input_shapes), shape_str(r.output_shape),
             f"{r.macs:,}", f"{r.params:,}", r.weight_format or "-", r.activation_format or "-")
            for r in s.layers]
    print(table(["layer", "op", "inputs", "output", "MACs", "params", "weights", "activations"], rows,
                "llllrrll"))
    print(f"\n{s.model}: {s.total_macs:,} MACs ({si(s.total_macs)}), {s.total_params:,} parameters, "
          f"{si(s.total_weight_bytes, 'B')} of weights")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from hwsim.graph.zoo import bundled_models

    zoo = bundled_models()
    if args.json:
        print(json.dumps({n: s.model_dump() for n, s in zoo.items()}))
        return 0
    rows = [(n, s.family, ",".join(f"{k}={v}" for k, v in s.params.items()), s.description) for n, s in zoo.items()]
    print(table(["model", "family", "parameters (override as NAME:key=value,...)", "description"], rows))
    return 0
