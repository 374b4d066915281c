"""How the small com.microsoft-quantized models in tests/data were made (onnxruntime 1.32;
``python tests/data/make_ms_quant_models.py`` rewrites them here). Each starts from a seeded float
model built below and goes through one of onnxruntime's own quantizers:

- ``mlp_nbits4.onnx``: two MatMuls (K = 80, not a multiple of the block) through
  ``MatMulNBitsQuantizer`` (4 bits, block 32, asymmetric: packed zero points) -> ``MatMulNBits``.
- ``mlp_nbits4_sym.onnx``: the same, symmetric (no zero points: the default 8) with bias-free 2-D input.
- ``lstm_qdynamic.onnx``: an embedding, a bidirectional LSTM and a MatMul through ``quantize_dynamic``
  (the text2tashkeel shape) -> ``DynamicQuantizeLSTM`` with int8 weights, per-tensor scales.
- ``lstm_qdynamic_pc.onnx``: the same LSTM with ``per_channel=True`` (per-gate-row weight scales).
- ``attention_qdynamic.onnx``: onnxruntime's com.microsoft Attention (4 heads, hidden 32, a raw key
  mask input) between two MatMuls through ``quantize_dynamic`` -> ``QAttention``.
- ``attention_causal_qdynamic.onnx``: the same with ``unidirectional=1`` and no mask, per-channel weights.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hwsim-tests")
    model.ir_version = 9
    return model


def mlp_float(rank: int = 3) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w1 = (rng.standard_normal((80, 48)) * 0.2).astype(np.float32)
    w2 = (rng.standard_normal((48, 24)) * 0.2).astype(np.float32)
    shape = ["batch", "seq", 80] if rank == 3 else ["batch", 80]
    out = shape[:-1] + [24]
    return _model([helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
                   helper.make_node("MatMul", ["r", "w2"], ["y"])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
                  [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])


def _nbits(model: onnx.ModelProto, symmetric: bool) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(model, bits=4, block_size=32, is_symmetric=symmetric)
    q.process()
    return q.model.model


def lstm_float() -> onnx.ModelProto:
    """ids (batch, seq) -> Gather(embedding 30 x 12) -> Transpose -> bidirectional LSTM (hidden 10)
    -> Transpose/Reshape -> MatMul (20 -> 7) logits."""
    rng = np.random.default_rng(5)
    vocab, emb, hid, classes = 30, 12, 10, 7
    inits = [numpy_helper.from_array((rng.standard_normal((vocab, emb)) * 0.8).astype(np.float32), "table"),
             numpy_helper.from_array((rng.standard_normal((2, 4 * hid, emb)) * 0.4).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((2, 4 * hid, hid)) * 0.4).astype(np.float32), "R"),
             numpy_helper.from_array((rng.standard_normal((2, 8 * hid)) * 0.2).astype(np.float32), "B"),
             numpy_helper.from_array((rng.standard_normal((2 * hid, classes)) * 0.5).astype(np.float32), "head"),
             numpy_helper.from_array(np.array([0, 0, 2 * hid], np.int64), "shape")]
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]),
             helper.make_node("Transpose", ["e"], ["e_t"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["e_t", "W", "R", "B"], ["Y", "", ""], hidden_size=hid,
                              direction="bidirectional"),
             helper.make_node("Transpose", ["Y"], ["y_t"], perm=[2, 0, 1, 3]),
             helper.make_node("Reshape", ["y_t", "shape"], ["feat"]),
             helper.make_node("MatMul", ["feat", "head"], ["logits"])]
    return _model(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", classes])], inits)


def attention_float(causal: bool) -> onnx.ModelProto:
    """x (batch, seq, 32) -> Attention (4 heads; mask (batch, seq) int32 unless causal) -> MatMul (32 -> 16)."""
    rng = np.random.default_rng(9)
    d, heads = 32, 4
    inits = [numpy_helper.from_array((rng.standard_normal((d, 3 * d)) * 0.3).astype(np.float32), "qkv_w"),
             numpy_helper.from_array((rng.standard_normal(3 * d) * 0.1).astype(np.float32), "qkv_b"),
             numpy_helper.from_array((rng.standard_normal((d, 16)) * 0.3).astype(np.float32), "out_w")]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", d])]
    attn_in = ["x", "qkv_w", "qkv_b"]
    if not causal:
        ins.append(helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "seq"]))
        attn_in.append("mask")
    nodes = [helper.make_node("Attention", attn_in, ["a"], domain="com.microsoft", num_heads=heads,
                              unidirectional=int(causal)),
             helper.make_node("MatMul", ["a", "out_w"], ["y"])]
    graph = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 16])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              producer_name="hwsim-tests")
    model.ir_version = 9
    return model


def _qdynamic(model: onnx.ModelProto, **kw) -> onnx.ModelProto:
    from onnxruntime.quantization import quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
        onnx.save(model, src)
        quantize_dynamic(str(src), str(dst), **kw)
        return onnx.load(dst)


MODELS = {
    "mlp_nbits4": lambda: _nbits(mlp_float(3), symmetric=False),
    "mlp_nbits4_sym": lambda: _nbits(mlp_float(2), symmetric=True),
    "lstm_qdynamic": lambda: _qdynamic(lstm_float()),
    "lstm_qdynamic_pc": lambda: _qdynamic(lstm_float(), per_channel=True),
    "attention_qdynamic": lambda: _qdynamic(attention_float(False)),
    "attention_causal_qdynamic": lambda: _qdynamic(attention_float(True), per_channel=True),
}


def main(out: Path = HERE) -> None:
    for name, build in MODELS.items():
        (out / f"{name}.onnx").write_bytes(build().SerializeToString())


if __name__ == "__main__":
    main()
