"""``hwsim simulate``: run a quantized model bit-accurately on inputs from an .npz file."""

from __future__ import annotations

import argparse
import json

import numpy as np

from hwsim.errors import ConfigError, MemoryLimitError


def add_parsers(sub) -> None:
    from hwsim.commands.common import add_model_args, seed_int
    from hwsim import requant

    p = sub.add_parser("simulate", help="bit-accurate simulation with per-layer SQNR against the float model",
                       description="Run MODEL layer by layer bit-accurately beside a float reference. Integer "
                                   "graph inputs/outputs travel as codes (int4/int2 in int8, uint4/uint2 in "
                                   "uint8); fp8/fp6/fp4/bf16 ones as float32 values.")
    add_model_args(p)
    p.add_argument("--inputs", metavar="IN.npz", help="input arrays by graph input name "
                   "(default for zoo models: seeded random inputs)")
    p.add_argument("--out", metavar="OUT.npz", help="write the outputs, by graph output name")
    p.add_argument("--requant", default="exact", choices=requant.names(),
                   help="requantization of integer layers (default exact)")
    p.add_argument("--pairwise-int16", action="store_true",
                   help="model x86 AVX2 integer kernels without VNNI (onnxruntime's u8*s8 MatMul/Conv/Gemm): "
                        "each pair of uint8*int8 products saturates to int16 before it is summed")
    p.add_argument("--ort-activations", action="store_true",
                   help="compute float32 Sigmoid and Tanh ops as onnxruntime does on x86-64 (MLAS's rational "
                        "approximations, within a few ulps; default: each value in float64, rounded once)")
    p.add_argument("--ort-threads", type=int, default=1, metavar="N",
                   help="onnxruntime intra-op threads to model where its result depends on them "
                        "(DynamicQuantizeLSTM with batch >= 2 quantizes each thread's share of the batch on its own)")
    p.add_argument("--report-json", metavar="R.json", help="write the per-layer report as JSON")
    p.add_argument("--labels", metavar="KEY", default=None,
                   help="array in IN.npz holding class labels for the first output: top-1 accuracy of the "
                        "simulated and the float model is reported (default key: labels, used when present)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of synthetic weights and random inputs")
    p.add_argument("--all-ops", action="store_true", help="list every op, not only compute layers and outputs")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the float reference run: no per-layer SQNR table or float accuracy, only the "
                        "simulated outputs (about half the time on conv nets; the reference still runs when "
                        "activation scales must be calibrated on it)")
    p.add_argument("--reference-model", metavar="FLOAT.onnx",
                   help="the float model to compare with (per-layer SQNR, output SQNR, float accuracy), matched "
                        "by tensor name, instead of MODEL run without its quantizers: e.g. the file "
                        "onnxruntime's quantize_static quantized, which by default removes each Relu or Clip a "
                        "quantizer clamps anyway, so MODEL without quantizers lacks them. Takes --shape as MODEL "
                        "does; it must read MODEL's inputs and compute its outputs")
    p.add_argument("--reference-precision", choices=("float32", "float64"), default="float32",
                   help="type of the float reference's convolutions and matrix products (default float32: "
                        "float32 BLAS, about twice as fast, its rounding far below 8-bit quantization noise; "
                        "float64 to measure formats near float32's own precision). Other ops run in float64, "
                        "and a reference that calibrates missing scales always runs in float64")
    p.set_defaults(run=run_simulate)


def load_npz(path: str, graph, labels: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file that ``graph`` reads, plus ``labels``; InputDataError if it cannot
    be read or holds names the graph does not know (checked before anything is decompressed)."""
    from hwsim.sim.boundary import check_names
    from hwsim.sim.npzio import npz_names, read_npz

    check_names(graph, npz_names(path), extra=(labels,))
    return read_npz(path)


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def accuracy(result, labels: np.ndarray) -> dict[str, float]:
    """Top-1 accuracy of the first graph output, simulated and float reference, with the number
    of rows holding NaN (scored wrong)."""
    from hwsim.sim.metrics import top1

    name = result.graph.outputs[0]
    sim = top1(result.output_values[name], labels)
    out = {"simulated": sim.accuracy, "rows": sim.rows, "simulated_nan_rows": sim.nan_rows}
    if name in result.reference_outputs:  # not in a run without float reference
        ref = top1(result.reference_outputs[name], labels)
        out.update({"float": ref.accuracy, "float_nan_rows": ref.nan_rows})
    return out


def memory_report(result) -> dict:
    """Estimated peak memory of the run by part, and this process's measured peak RSS (bytes)."""
    from dataclasses import asdict

    from hwsim.sim.memory import peak_rss_bytes

    est = result.memory
    return {"estimated_peak_bytes": est.total_bytes, **asdict(est), "peak_rss_bytes": peak_rss_bytes()}


def report(result, model: str, requant: str, acc: dict | None = None) -> dict:
    """The --report-json object (SQNR null = not finite: identical outputs give +inf)."""
    return {
        "model": model, "requant": requant, **({"accuracy": acc} if acc else {}),
        "memory": memory_report(result),
        "layers": [{"name": e.name, "op": e.op, "activations": act_formats(result.graph, result.graph.op(e.name)),
                    "sqnr_db": _num(e.sqnr_db), "mse": _num(e.mse)} for e in result.layers],
        "outputs": {n: {"shape": list(a.shape), "dtype": str(a.dtype)} for n, a in result.outputs.items()},
        "notes": result.notes,
    }


def act_formats(g, op) -> str:
    """``in -> out``: formats of an op's activation inputs and of its output (which were quantized)."""
    ins = ",".join(dict.fromkeys(t.quant.format for t in g.activation_inputs(op))) or "-"
    return f"{ins} -> {g.tensors[op.outputs[0]].quant.format}"


def _rows(result, all_ops: bool):
    g = result.graph
    ops = {op.name: op for op in g.ops() if all_ops or op.is_compute or op.outputs[0] in g.outputs}
    return [(e.name, e.op, "inf" if e.sqnr_db == float("inf") else f"{e.sqnr_db:.2f}", f"{e.mse:.3g}",
             act_formats(g, ops[e.name])) for e in result.layers if e.name in ops]


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def run_simulate(args: argparse.Namespace) -> int:
    from hwsim.commands.common import check_output, load_graph, write_output
    from hwsim.render import table
    from hwsim.sim import run
    from hwsim.sim.elementwise import ORT_ACTIVATIONS_NOTE
    from hwsim.sim.ortfused import HOST_PAIRS_NOTE

    check_output(args.out, "--out")
    check_output(args.report_json, "--report-json")
    if args.labels is not None and not args.inputs:
        raise ConfigError(f"--labels {args.labels}: give the labels in --inputs IN.npz as an array named "
                          f"'{args.labels}'")
    if args.reference_model and args.no_reference:
        raise ConfigError("--reference-model names the float model to compare with; --no-reference runs no "
                          "comparison: give one of them")
    graph = load_graph(args)
    ref_graph = None
    if args.reference_model:
        from hwsim.commands.common import input_values, parse_shape_args
        from hwsim.graph.zoo import load_model

        ref_graph = load_model(args.reference_model, parse_shape_args(args.shape), values=input_values(args))
    notes = []
    labels = None
    key = args.labels or "labels"
    if args.inputs:
        inputs = load_npz(args.inputs, graph, key)
        if args.labels is not None and key not in inputs:
            raise ConfigError(f"--labels {key}: {args.inputs} has no array '{key}' (it holds {sorted(inputs)})")
        if key in inputs and key not in graph.inputs:
            labels = inputs.pop(key)
    elif str(args.model).endswith(".onnx"):
        raise ConfigError("an ONNX model needs --inputs IN.npz (arrays named like the graph inputs "
                          f"{graph.inputs})")
    else:
        from hwsim.sim.boundary import random_inputs

        inputs = random_inputs(graph, np.random.default_rng(args.seed))
        notes.append(f"no --inputs: seeded random inputs (seed {args.seed})")
    try:
        result = run(graph, inputs, requant=args.requant, seed=args.seed, pairwise_int16=args.pairwise_int16,
                     ort_activations=args.ort_activations,
                     float_reference=not args.no_reference, ort_threads=args.ort_threads,
                     reference_precision=args.reference_precision, reference_graph=ref_graph,
                     keep_reference=False)  # nothing here reads the reference after the run but its outputs
    except MemoryLimitError as exc:
        raise MemoryLimitError(f"{exc}. Model parameters are set with --shape, e.g. --shape layers=2,context=128 "
                               "(zoo models), or --shape batch=1 (ONNX dims)") from None
    result.notes[:0] = notes
    print(f"{graph.name}: simulated with requant={args.requant}")
    if result.layers:
        print(table(["layer", "op", "SQNR dB", "MSE", "activations in -> out"], _rows(result, args.all_ops), "llrrl"))
    acc = accuracy(result, labels) if labels is not None else None
    if acc:
        flt = f", {acc['float']:.2%} float" if "float" in acc else ""
        print(f"top-1 accuracy on {labels.shape[0]} labelled inputs: {acc['simulated']:.2%} simulated{flt}")
        for kind in ("simulated", "float"):
            if acc.get(f"{kind}_nan_rows"):
                print(f"note: {kind}: {acc[f'{kind}_nan_rows']} of {acc['rows']} rows hold NaN logits and "
                      "count as wrong")
    for n in result.notes:
        flag = {HOST_PAIRS_NOTE: " [--pairwise-int16]", ORT_ACTIVATIONS_NOTE: " [--ort-activations]"}.get(n, "")
        print(f"note: {n}{flag}")
    mem = memory_report(result)
    rss = f", peak resident {mem['peak_rss_bytes'] / 2**30:.2f} GiB" if mem["peak_rss_bytes"] else ""
    print(f"memory: estimated peak {mem['estimated_peak_bytes'] / 2**30:.2f} GiB{rss}")
    if args.out:
        from hwsim.sim.npzio import write_npz

        write_output(args.out, "--out", lambda p: write_npz(p, result.outputs))
    if args.report_json:
        text = json.dumps(report(result, args.model, args.requant, acc), indent=2)
        write_output(args.report_json, "--report-json", lambda p: _write_text(p, text))
    return 0
