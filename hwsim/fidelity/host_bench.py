"""The workloads ``hwsim calibrate --host`` times in onnxruntime, as measurement records.

Microbenchmarks (the fit reads only these), one op class each:

- GEMMs and convolutions in three forms: fp32; int8 QDQ exactly as ``hwsim export`` writes it
  (DequantizeLinear on int8 weights and on the int8-quantized input, scope ``mac_inputs``); and
  ``MatMulInteger`` / ``ConvInteger`` (uint8 activations x int8 weights, what ``quantize_dynamic``
  models run). Shapes cover the classes networks have: matrix-vector, transformer projections,
  square GEMMs, 3x3 / 1x1 / strided 7x7 convolutions and depthwise convolutions.
- Elementwise, softmax and layer-norm ops on tensors of network size (bandwidth-bound classes).
- A chain of tiny ReLUs: onnxruntime's fixed time per node.

The GEMMs and convolutions are zoo models (``gemm:...``, ``conv2d:...``), so a record names the
workload hwsim prices; the other ops are small ONNX files written next to the records.

Whole networks (held out: never fitted): zoo models written by :func:`hwsim.sim.export.export_onnx`
in fp32 and int8 QDQ, and any real ONNX files the caller passes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.fidelity.host_timing import Timing, random_feeds, session, time_model

#: GEMM shapes (m, k, n): matrix-vector, transformer projections at 128 tokens, square
GEMMS = ((1, 384, 1536), (16, 384, 384), (128, 384, 1536), (128, 1536, 384), (512, 512, 512))
#: convolutions (c, hw, k, r, stride, groups): 3x3, late 3x3, 7x7 stem; 1x1 expand, square, reduce;
#: depthwise 3x3 early, strided, middle, late
CONVS = ((64, 56, 64, 3, 1, 1), (256, 14, 256, 3, 1, 1), (3, 224, 64, 7, 2, 1),
         (32, 56, 192, 1, 1, 1), (256, 14, 256, 1, 1, 1), (1024, 7, 256, 1, 1, 1),
         (144, 56, 144, 3, 1, 144), (64, 112, 64, 3, 2, 64), (256, 28, 256, 3, 1, 256), (960, 7, 960, 3, 1, 960))
#: onnxruntime's layout conversions (NCHW <-> its blocked NCHWc) at a float convolution model's edges; a
#: convolution microbenchmark's record leaves them out: inside a network, convolutions hand the blocked
#: layout to each other (the networks are timed whole, their edge reorders included)
LAYOUT_REORDERS = ("ReorderInput", "ReorderOutput")
#: formats of the MAC microbenchmarks: (activations, weights, how onnxruntime runs them)
MAC_FORMS = (("fp32", "fp32", "MatMul / Conv fp32"),
             ("int8", "int8", "int8 QDQ (hwsim export, scope mac_inputs)"),
             ("uint8", "int8", "MatMulInteger / ConvInteger u8 x s8"))
#: elementwise-class ops: (name, ONNX op, input shapes)
STREAM_OPS = (("add", "Add", ((1, 64, 56, 56), (1, 64, 56, 56))), ("relu", "Relu", ((1, 144, 56, 56),)),
              ("mul", "Mul", ((1, 256, 28, 28), (1, 256, 28, 28))),
              ("softmax", "Softmax", ((1, 12, 128, 128),)), ("layernorm", "LayerNormalization", ((128, 384),)))
#: ReLUs in the per-node overhead chain
CHAIN = 64
#: zoo networks validated in fp32 and int8 QDQ
ZOO_NETWORKS = ("resnet18", "mobilenet_v2", "minilm-l6")
SCOPE = "mac_inputs"


@dataclass(frozen=True)
class Bench:
    """One workload: what hwsim prices (``ref``), what onnxruntime runs (``onnx``), how it is named."""

    id: str
    kind: str
    family: str
    ref: str
    activations: str
    weights: str
    onnx: object          # ModelProto
    library: str
    scope: str | None = None
    formats_from_file: bool = False
    file: str | None = None   # where ``onnx`` is written, relative to the records (None: not written)
    shapes: tuple = ()
    macs: int = 0             # MACs of a GEMM / convolution microbenchmark
    skip_ops: tuple = ()      # onnxruntime node types left out of the timing (LAYOUT_REORDERS)


def _ref(name: str, params: dict) -> str:
    return name + ":" + ",".join(f"{k}={v}" for k, v in params.items())


def _exported(ref: str, act: str, wgt: str, seed: int = 0):
    """The ONNX model ``hwsim export`` writes for zoo ``ref`` at these formats (scope :data:`SCOPE`)."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.zoo import load_model
    from hwsim.sim.boundary import random_inputs
    from hwsim.sim.export import export_onnx

    g = quantize_graph(load_model(ref), wgt, act, scope=None if act == "fp32" else SCOPE)
    return export_onnx(g, random_inputs(g, np.random.default_rng(seed)), seed=seed)[0]


def _macs(kind: str, s: tuple) -> int:
    if kind == "gemm":
        return s[0] * s[1] * s[2]
    c, hw, k, r, stride, groups = s
    return (c // groups) * k * r * r * (-(-hw // stride)) ** 2


def _integer_op(kind: str, shape: tuple):
    """MatMulInteger (kind gemm) or ConvInteger (conv2d) with uint8 input and int8 weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if kind == "gemm":
        m, k, n = shape
        w = rng.integers(-128, 128, (k, n)).astype(np.int8)
        node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
        xs, ys = [m, k], [m, n]
    else:
        c, hw, k, r, stride, groups = shape
        w = rng.integers(-128, 128, (k, c // groups, r, r)).astype(np.int8)
        pad = r // 2
        node = helper.make_node("ConvInteger", ["x", "w"], ["y"], strides=[stride] * 2, pads=[pad] * 4,
                                group=groups)
        o = (hw + 2 * pad - r) // stride + 1
        xs, ys = [1, c, hw, hw], [1, k, o, o]
    g = helper.make_graph([node], kind, [helper.make_tensor_value_info("x", TensorProto.UINT8, xs)],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, ys)],
                          [numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _stream_op(op: str, shapes: tuple):
    from onnx import TensorProto, helper

    names = [f"x{i}" for i in range(len(shapes))]
    attrs = {"axis": -1} if op in ("Softmax", "LayerNormalization") else {}
    if op == "LayerNormalization":  # scale and bias as graph inputs keep the file free of weights
        names += ["scale", "bias"]
        shapes = shapes + ((shapes[0][-1],), (shapes[0][-1],))
    g = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], op.lower(),
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in zip(names, shapes)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shapes[0]))])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _relu_chain(n: int):
    from onnx import TensorProto, helper

    names = ["x"] + [f"t{i}" for i in range(1, n)] + ["y"]
    nodes = [helper.make_node("Relu", [names[i]], [names[i + 1]]) for i in range(n)]
    g = helper.make_graph(nodes, f"relu{n}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _family(kind: str, s: tuple) -> str:
    """Record family: gemm, or the convolution class whose efficiency it measures (hwsim.fidelity.host_fit)."""
    if kind == "gemm":
        return kind
    return "depthwise" if s[5] > 1 else "pointwise" if s[3] == 1 else "conv2d"


def micro_benches(folder: str) -> list[Bench]:
    """The microbenchmarks; ONNX files of non-zoo ops go to ``folder`` (relative to the records)."""
    out = []
    for act, wgt, how in MAC_FORMS:
        for kind, shapes in (("gemm", GEMMS), ("conv2d", CONVS)):
            for s in shapes:
                if kind == "gemm":
                    params = dict(zip("mkn", s)) | {"bias": "false"}
                else:
                    params = dict(zip(("c", "h", "k", "r", "stride", "groups"), s)) | {"w": s[1]}
                ref = _ref(kind, params)
                model = _integer_op(kind, s) if act == "uint8" else _exported(ref, act, wgt)
                family = _family(kind, s)
                skip = LAYOUT_REORDERS if kind == "conv2d" else ()
                out.append(Bench(f"{kind}-{act}x{wgt}-" + "-".join(map(str, s)), kind, family, ref, act, wgt,
                                 model, f"onnxruntime {how}" + (f" ({', '.join(skip)} nodes left out)" if skip else ""),
                                 scope=SCOPE if act == "int8" else None, macs=_macs(kind, s), skip_ops=skip))
    for name, op, shapes in STREAM_OPS:
        file = f"{folder}/{name}.onnx"
        out.append(Bench(f"op-{name}", "op", "stream", file, "fp32", "fp32", _stream_op(op, shapes),
                         f"onnxruntime {op} fp32", file=file))
    file = f"{folder}/relu-chain{CHAIN}.onnx"
    out.append(Bench(f"op-relu-chain{CHAIN}", "op", "overhead", file, "fp32", "fp32", _relu_chain(CHAIN),
                     f"onnxruntime {CHAIN} Relus on 8 floats (per-node overhead)", file=file))
    return out


def zoo_networks() -> list[Bench]:
    """The zoo networks in fp32 and int8 QDQ, as ``hwsim export`` writes them."""
    out = []
    for name in ZOO_NETWORKS:
        for fmt in ("fp32", "int8"):
            out.append(Bench(f"{name}-{fmt}", "network", "zoo", name, fmt, fmt, _exported(name, fmt, fmt),
                             f"onnxruntime, hwsim export {name} ({fmt}" + (f" QDQ, scope {SCOPE})" if fmt != "fp32" else ")"),
                             scope=SCOPE if fmt != "fp32" else None))
    return out


def onnx_network(path: str, shapes: dict[str, int], ref: str) -> Bench:
    """A real ONNX file as a network workload (priced with the formats its file carries)."""
    import onnx

    model = onnx.load(path)
    tag = "-".join(f"{k}{v}" for k, v in shapes.items())
    ops = {n.op_type for n in model.graph.node}
    fmt = "int8" if ops & _INTEGER_OPS or any(o.startswith("QLinear") for o in ops) else "fp32"
    return Bench(f"onnx-{Path(path).stem}" + (f"-{tag}" if tag else ""), "network", "onnx", ref, fmt, fmt,
                 model, "onnxruntime, ONNX file as given", formats_from_file=True, shapes=tuple(shapes.items()))


#: ONNX ops that mark a file as quantized (its records then say int8; the file's own formats are priced)
_INTEGER_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}


def record(b: Bench, t: Timing, threads: int, device: str, load: float | None = None) -> dict:
    """The measurement record (:class:`hwsim.fidelity.records.Measurement`) of one timed workload;
    ``load``: the 1-minute load average while it was timed (None: now)."""
    rec = {"id": b.id, "kind": b.kind, "family": b.family, "model": b.ref, "activations": b.activations,
           "weights": b.weights, "params": dict(b.shapes), "library": b.library + (f"; {t.note}" if t.note else ""),
           "latency_s": t.latency_s,
           "conditions": {"runtime": "onnxruntime CPUExecutionProvider, per-node minima (hwsim.fidelity.host_timing)"
                                     + (", dynamic dims bound at session creation" if b.shapes else ""),
                          "device": device, "threads": threads, "replays": t.runs, "run_min_s": t.run_min_s,
                          "run_median_s": t.run_median_s, "load_average": round(os.getloadavg()[0] if load is None else load, 2)}}
    if t.energy_j is not None:
        rec["energy_j"] = t.energy_j
        rec["conditions"].update(energy_scope="chip", energy_source="package RAPL energy_uj over whole runs "
                                 "(includes everything else the machine ran meanwhile)")
    if b.scope:
        rec["scope"] = b.scope
    if b.formats_from_file:
        rec["formats_from_file"] = True
    return rec


def time_bench(b: Bench, threads: int, runs: int, energy=None) -> Timing:
    """Time one workload with random inputs.

    Raises
    ------
    ConfigError
        onnxruntime cannot load or run it (e.g. a dynamic dimension left unbound).
    """
    from hwsim.errors import ConfigError

    try:
        sess, _ = session(b.onnx, threads, dims=dict(b.shapes))
        feeds = random_feeds(sess, dict(b.shapes))
        return time_model(b.onnx, feeds, threads, runs=runs, energy=energy, dims=dict(b.shapes), skip_ops=b.skip_ops)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types; say which workload failed
        dims = ", ".join(f"{k}={v}" for k, v in b.shapes) or "none bound"
        raise ConfigError(f"onnxruntime could not run {b.id} (dynamic dims: {dims}): {str(exc)[:300]}; bind "
                          f"its dynamic dimensions (e.g. M.onnx:batch=1,sequence=128)") from None
