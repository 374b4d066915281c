"""Small ONNX models built with onnx.helper for the import tests (no torch needed)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

D, HEADS, HEAD_DIM, VOCAB, MAX_POS = 16, 2, 8, 50, 32


def _f(rng, name, shape, scale=0.1):
    return nh.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _i64(name, v):
    return nh.from_array(np.asarray(v, np.int64), name)


def _model(nodes, inputs, outputs, inits, opset=17) -> onnx.ModelProto:
    m = h.make_model(h.make_graph(nodes, "test", inputs, outputs, inits),
                     opset_imports=[h.make_opsetid("", opset)])
    onnx.checker.check_model(m, full_check=True)
    return m


def cnn(batch="batch") -> onnx.ModelProto:
    """Conv(pad 1)+bias -> BatchNorm -> Relu -> MaxPool -> Conv -> Clip(0,6) -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    n = h.make_node
    nodes = [
        n("Conv", ["x", "c1.w", "c1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[1, 1]),
        n("BatchNormalization", ["c1", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn1"),
        n("Relu", ["bn"], ["r1"], name="relu1"),
        n("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "c2.w"], ["c2"], name="conv2", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Clip", ["c2", "zero", "six"], ["r2"], name="relu6"),
        n("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        n("Flatten", ["gap"], ["flat"], name="flatten"),
        n("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1),
    ]
    inits = [_f(rng, "c1.w", (8, 3, 3, 3)), _f(rng, "c1.b", (8,)), _f(rng, "bn.s", (8,)), _f(rng, "bn.b", (8,)),
             _f(rng, "bn.m", (8,)), nh.from_array(np.abs(rng.standard_normal(8)).astype(np.float32) + 0.5, "bn.v"),
             _f(rng, "c2.w", (16, 8, 3, 3)), nh.from_array(np.float32(0), "zero"),
             nh.from_array(np.float32(6), "six"), _f(rng, "fc.w", (10, 16)), _f(rng, "fc.b", (10,))]
    return _model(nodes, [h.make_tensor_value_info("x", TP.FLOAT, [batch, 3, 16, 16])],
                  [h.make_tensor_value_info("y", TP.FLOAT, [batch, 10])], inits)


def cnn_macs(batch: int) -> int:
    """conv1 8x16x16 outputs x 27, conv2 16x4x4 outputs x 72, fc 10 x 16 (per image)."""
    return batch * (8 * 16 * 16 * 27 + 16 * 4 * 4 * 72 + 10 * 16)


def transformer() -> onnx.ModelProto:
    """Token + position embedding, one attention block with Shape->Gather->Concat reshapes (and
    Expand / ConstantOfShape / Equal / Where on constants),
    LayerNormalization, then a decomposed layer norm; input ids (batch, sequence)."""
    rng = np.random.default_rng(1)
    n = h.make_node
    nodes = [
        n("Gather", ["tok.w", "ids"], ["emb"], name="tok_emb"),
        n("Shape", ["ids"], ["ids_shape"], name="shape_ids"),
        n("Gather", ["ids_shape", "one"], ["seq"], name="get_seq", axis=0),
        n("Range", ["zero_i", "seq", "one"], ["pos"], name="range"),
        n("Gather", ["pos.w", "pos"], ["pos_emb"], name="pos_emb"),
        n("Add", ["emb", "pos_emb"], ["x"], name="add_pos"),
        n("Shape", ["x"], ["xs"], name="shape_x"),
        n("Gather", ["xs", "zero_i"], ["b"], name="get_b", axis=0),
        n("Gather", ["xs", "one"], ["t"], name="get_t", axis=0),
        n("Unsqueeze", ["b", "ax0"], ["b1"], name="unsq_b"),
        n("Unsqueeze", ["t", "ax0"], ["t1"], name="unsq_t"),
        n("Expand", ["minus1", "one_vec"], ["hd"], name="expand"),
        n("Concat", ["b1", "t1", "heads", "hd"], ["hshape0"], name="cat_hshape", axis=0),
        n("Equal", ["hshape0", "minus1"], ["eqm"], name="eq"),
        n("ConstantOfShape", ["four"], ["ones4"], name="cos", value=h.make_tensor("v", TP.INT64, [1], [1])),
        n("Mul", ["ones4", "hd_val"], ["fill"], name="fill"),
        n("Where", ["eqm", "fill", "hshape0"], ["hshape"], name="where"),
        n("Concat", ["b1", "t1", "dmodel"], ["oshape"], name="cat_oshape", axis=0),
    ]
    for p in "qkv":
        nodes += [n("MatMul", ["x", f"{p}.w"], [f"{p}0"], name=f"{p}_proj"),
                  n("Add", [f"{p}0", f"{p}.b"], [f"{p}1"], name=f"{p}_bias"),
                  n("Reshape", [f"{p}1", "hshape"], [f"{p}2"], name=f"{p}_split")]
    nodes += [
        n("Transpose", ["q2"], ["qh"], name="q_t", perm=[0, 2, 1, 3]),
        n("Transpose", ["k2"], ["kt"], name="k_t", perm=[0, 2, 3, 1]),
        n("Transpose", ["v2"], ["vh"], name="v_t", perm=[0, 2, 1, 3]),
        n("MatMul", ["qh", "kt"], ["s0"], name="qk"),
        n("Div", ["s0", "sqrt_hd"], ["s1"], name="scale"),
        n("Softmax", ["s1"], ["pr"], name="softmax", axis=-1),
        n("MatMul", ["pr", "vh"], ["c0"], name="av"),
        n("Transpose", ["c0"], ["c1"], name="c_t", perm=[0, 2, 1, 3]),
        n("Reshape", ["c1", "oshape"], ["c2"], name="merge"),
        n("MatMul", ["c2", "o.w"], ["o0"], name="o_proj"),
        n("Add", ["o0", "o.b"], ["o1"], name="o_bias"),
        n("Add", ["x", "o1"], ["r"], name="residual"),
        n("LayerNormalization", ["r", "ln.g", "ln.b"], ["ln"], name="ln", axis=-1, epsilon=1e-5),
        n("ReduceMean", ["ln"], ["mu"], name="rm1", axes=[-1]),
        n("Sub", ["ln", "mu"], ["dlt"], name="sub"),
        n("Pow", ["dlt", "two"], ["sq"], name="pow"),
        n("ReduceMean", ["sq"], ["var"], name="rm2", axes=[-1]),
        n("Add", ["var", "eps"], ["ve"], name="add_eps"),
        n("Sqrt", ["ve"], ["sd"], name="sqrt"),
        n("Div", ["dlt", "sd"], ["y0"], name="div"),
        n("Erf", ["y0"], ["y1"], name="erf"),
        n("Dropout", ["y1"], ["y2"], name="dropout"),
        n("Identity", ["y2"], ["y"], name="out"),
    ]
    inits = [_f(rng, "tok.w", (VOCAB, D)), _f(rng, "pos.w", (MAX_POS, D)), _i64("zero_i", 0), _i64("one", 1),
             _i64("ax0", [0]), _i64("heads", [HEADS]), _i64("one_vec", [1]), _i64("minus1", -1),
             _i64("four", [4]), _i64("hd_val", HEAD_DIM), _i64("dmodel", [D]),
             nh.from_array(np.float32(np.sqrt(HEAD_DIM)), "sqrt_hd"), _f(rng, "ln.g", (D,)), _f(rng, "ln.b", (D,)),
             nh.from_array(np.float32(2), "two"), nh.from_array(np.float32(1e-5), "eps"),
             _f(rng, "o.w", (D, D)), _f(rng, "o.b", (D,))]
    for p in "qkv":
        inits += [_f(rng, f"{p}.w", (D, D)), _f(rng, f"{p}.b", (D,))]
    return _model(nodes, [h.make_tensor_value_info("ids", TP.INT64, ["batch", "sequence"])],
                  [h.make_tensor_value_info("y", TP.FLOAT, ["batch", "sequence", D])], inits)


def transformer_macs(b: int, t: int) -> int:
    """Four D x D projections plus QK^T and AV (dense)."""
    return 4 * b * t * D * D + 2 * b * HEADS * t * t * HEAD_DIM


def transformer_params() -> int:
    """Embedding tables, four projections with biases, the LayerNormalization gamma and beta."""
    return VOCAB * D + MAX_POS * D + 4 * (D * D + D) + 2 * D


def single(op_type: str, inputs: list, outputs: list, inits: list, opset: int = 21, **attrs) -> onnx.ModelProto:
    """A one-node model; ``inputs``/``outputs`` are (name, elem_type, shape) triples."""
    node = h.make_node(op_type, [i for i in attrs.pop("node_inputs")], [o[0] for o in outputs],
                       name=attrs.pop("node_name", op_type.lower()), **attrs)
    return _model([node], [h.make_tensor_value_info(*i) for i in inputs],
                  [h.make_tensor_value_info(*o) for o in outputs], inits, opset)
