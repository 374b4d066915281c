"""``hwsim export``: write a model with its quant config or solved plan as an ONNX QDQ model."""

from __future__ import annotations

import argparse

import numpy as np

from hwsim.errors import ConfigError


def add_parsers(sub) -> None:
    from hwsim.commands.common import add_model_args, seed_int

    p = sub.add_parser("export", help="write the (quantized) model as an ONNX QDQ model onnxruntime runs",
                       description="Write MODEL, quantized by --weights/--activations or --config (a quant config "
                                   "or a plan written by 'hwsim solve --write-config'), as an ONNX model with "
                                   "QuantizeLinear/DequantizeLinear pairs holding the scales the simulator uses. "
                                   "Missing activation scales are calibrated on --inputs (zoo models: seeded "
                                   "random inputs).")
    add_model_args(p)
    p.add_argument("--inputs", metavar="IN.npz", help="calibration inputs by graph input name "
                   "(default for zoo models: seeded random inputs)")
    p.add_argument("--out", metavar="MODEL.onnx", required=True, help="the ONNX file to write")
    p.add_argument("--dequantize-unsupported", action="store_true",
                   help="write weights of formats ONNX cannot carry (ternary, binary, VQ, MX...) as float32 "
                        "dequantized values instead of refusing")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of synthetic weights and random inputs")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    import onnx

    from hwsim.commands.common import check_output, load_graph, write_output
    from hwsim.sim.export import export_onnx

    check_output(args.out, "--out")
    graph = load_graph(args)
    if args.inputs:
        from hwsim.commands.simulate import load_npz

        inputs = load_npz(args.inputs, graph, "labels")
        inputs.pop("labels", None)
    elif str(args.model).endswith(".onnx"):
        raise ConfigError(f"an ONNX model needs --inputs IN.npz to calibrate on (arrays named {graph.inputs})")
    else:
        from hwsim.sim.boundary import random_inputs

        inputs = random_inputs(graph, np.random.default_rng(args.seed))
    model, notes = export_onnx(graph, inputs, seed=args.seed, dequantize_unsupported=args.dequantize_unsupported)
    write_output(args.out, "--out", lambda path: onnx.save(model, path))
    for n in notes:
        print(f"note: {n}")
    return 0
