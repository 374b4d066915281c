"""``hwsim export`` then ``hwsim simulate --requant onnxruntime`` of the file, against onnxruntime on it.

For zoo ResNet-18 and MiniLM-L6 (synthetic weights), int8 weights (per channel) and uint8
activations, each scope: export (activation scales calibrated on one seeded input), then on
``--inputs`` other seeded inputs compare hwsim's simulation of the exported file with onnxruntime's
ORT_ENABLE_ALL run of it (``pairwise_int16`` as this CPU's onnxruntime does). Prints, per model and
scope, the share of output elements that are bit-exact and the largest difference in output steps
(the scale of the output's QuantizeLinear; in float32 ulps of the output range where the output is
not quantized).

Run: ``python benchmarks/export_fidelity.py [--inputs 3] [--models resnet18] [--scopes all]`` (a few minutes on 2 shared cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = [("resnet18", {"batch": 1}), ("minilm-l6", {"batch": 1, "sequence": 16})]


def _ort(path, feeds):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _step(model, out_name: str) -> float | None:
    """Scale of the QuantizeLinear whose DequantizeLinear feeds the graph output, if any."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    by_out = {o: n for n in model.graph.node for o in n.output}
    n = by_out.get(out_name)
    while n is not None and n.op_type == "Identity":
        n = by_out.get(n.input[0])
    if n is None or n.op_type != "DequantizeLinear":
        return None
    return float(numpy_helper.to_array(inits[n.input[1]]))


def measure(name: str, params: dict, scope: str, n_inputs: int) -> str:
    import onnx

    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.onnx import load_onnx
    from hwsim.graph.zoo import load_model
    from hwsim.sim import run
    from hwsim.sim.boundary import random_inputs
    from hwsim.sim.export import export_onnx
    from tests.sim.ort_cpu import ort_u8s8_pairs_saturate

    g = quantize_graph(load_model(name, params), "int8", "uint8", scope=scope)
    model, _ = export_onnx(g, random_inputs(g, np.random.default_rng(0)))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.onnx"
        onnx.save(model, path)
        g2 = load_onnx(path, {})
        out = model.graph.output[0].name
        step = _step(model, out)
        same = total = 0
        worst = 0.0
        for seed in range(n_inputs):
            feeds = random_inputs(g, np.random.default_rng(100 + seed))
            want = _ort(path, feeds).astype(np.float64)
            got = run(g2, feeds, requant="onnxruntime", pairwise_int16=ort_u8s8_pairs_saturate(),
                      float_reference=False).outputs[out].astype(np.float64)
            same += int((got == want).sum())
            total += got.size
            unit = step if step else np.ptp(want) * np.finfo(np.float32).eps
            worst = max(worst, float(np.abs(got - want).max() / unit))
    what = "output steps" if step else "float32 ulps of the output range"
    return f"| {name} | {scope} | {same}/{total} ({same / total:.1%}) | {worst:.3g} {what} |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=3)
    ap.add_argument("--models", default=",".join(m for m, _ in MODELS))
    ap.add_argument("--scopes", default="all,mac_inputs")
    args = ap.parse_args(argv)
    print("| model | scope | bit-exact outputs | max difference |")
    print("|---|---|---|---|")
    for name, params in MODELS:
        if name not in args.models.split(","):
            continue
        for scope in args.scopes.split(","):
            print(measure(name, params, scope, args.inputs), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
