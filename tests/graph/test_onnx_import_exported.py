"""Import of a real PyTorch export (tests/data/tiny_bert.onnx, made by tests/data/make_tiny_bert.py
with torch.onnx.export, TorchScript exporter, opset 17, dynamic batch/sequence), float and after
onnxruntime's quantize_static (QDQ, per-channel)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper as h

from hwsim.errors import ShapeError
from hwsim.graph.onnx import load_onnx

MODEL = Path(__file__).parents[1] / "data" / "tiny_bert.onnx"
D, HEADS, FF, BLOCKS, VOCAB, CLASSES = 32, 4, 64, 2, 64, 3
TORCH_PARAMS = 21_283  # sum(p.numel() for p in model.parameters()) at export time


def _macs(b: int, t: int) -> int:
    per_block = b * t * D * (3 * D + D + 2 * FF) + 2 * b * HEADS * t * t * (D // HEADS)
    return BLOCKS * per_block + b * t * D * CLASSES


def _ort_shapes(path, feeds) -> dict[str, tuple]:
    model = onnx.load(path)
    known = {o.name for o in model.graph.output}
    for n in model.graph.node:
        model.graph.output.extend(h.make_empty_tensor_value_info(t) for t in n.output if t and t not in known)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return {o.name: tuple(v.shape) for o, v in zip(sess.get_outputs(), sess.run(None, feeds))}


@pytest.mark.parametrize("batch,seq", [(3, 11), (1, 64)])
def test_exported_bert_shapes_macs_params(batch, seq):
    g = load_onnx(MODEL, {"batch": batch, "sequence": seq})
    ref = _ort_shapes(str(MODEL), {"input_ids": np.zeros((batch, seq), np.int64)})
    checked = [n for n in ref if n in g.tensors and g.tensors[n].role == "activation"]
    assert len(checked) > 40
    for name in checked:
        assert g.tensors[name].shape == ref[name], name
    assert g.total_macs == _macs(batch, seq)
    assert g.total_params == TORCH_PARAMS
    kinds = [o.op for o in g.ops()]
    assert kinds.count("linear") == BLOCKS * 4 + 1 and kinds.count("matmul") == BLOCKS * 2
    assert kinds.count("layernorm") == BLOCKS * 2 and kinds.count("embedding") == 2
    assert g.outputs == ["logits"] and g.tensors["logits"].shape == (batch, seq, CLASSES)


def test_sequence_longer_than_position_table_is_a_shape_error():
    with pytest.raises(ShapeError, match="64 rows"):
        load_onnx(MODEL, {"batch": 1, "sequence": 65})


def test_exported_bert_after_quantize_static(tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.it = iter([{"input_ids": rng.integers(0, VOCAB, (1, 8))} for _ in range(2)])

        def get_next(self):
            return next(self.it, None)

    out = str(tmp_path / "q.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(MODEL), out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    g = load_onnx(out, {"batch": 2, "sequence": 8})
    assert g.total_macs == _macs(2, 8)
    linears = [o for o in g.layers() if o.op == "linear"]
    assert len(linears) == BLOCKS * 4 + 1
    for lin in linears:
        w = g.weight(lin)
        assert w.quant.format == "int8" and w.quant.granularity == "channel" and w.quant.axis == 0
        assert w.data.dtype == np.int8 and len(w.quant.scale) == w.shape[0]
        assert g.tensors[lin.inputs[0]].quant.format == "uint8"
    for mm in (o for o in g.layers() if o.op == "matmul"):
        assert all(g.tensors[t].quant.format == "uint8" for t in mm.inputs)
    assert g.outputs == ["logits"]
