"""Typed ops of the hwsim IR.

Every op is a frozen pydantic model discriminated by its ``op`` field. An op knows three things
about itself and nothing else: how to infer its output shapes from its input shapes, how many
multiply-accumulates it performs, and which of its inputs are parameters. Execution (``hwsim.sim``)
and pricing (``hwsim.cost``) live elsewhere and dispatch on ``op``.

What counts as a MAC
--------------------
One MAC is one multiply whose product is added into a running sum of a dot product: conv2d,
linear and matmul perform ``output elements x reduction length`` MACs (for conv2d the reduction is
``in_channels / groups x kh x kw``). Biases, batch-norm, activations, pooling, softmax, norms and
elementwise ops are *not* MACs; they are counted separately as ``elementwise_ops`` (one per output
element per arithmetic step, documented per op). This is the convention behind the published
torchvision counts (resnet18 = 1,814,073,344 MACs). Attention matmuls are counted dense (a causal
mask saves no MACs on hardware that computes the full tile).
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from hwsim.graph.ops_base import OpBase, Shape, broadcast_shapes
from hwsim.graph.ops_compute import (
    BatchNorm, Binary, ComputeOp, Conv2d, GlobalAvgPool, LayerNorm, Linear, MatMul, Pool, Reduce,
    Rotary, Softmax, Unary, WeightedComputeOp,
)
from hwsim.graph.ops_data import (
    Cast, Concat, Dequantize, DynamicQuantize, Embedding, Flatten, Gather, KVCacheAppend, KVCacheRead,
    Quantize, Reshape, Slice, Squeeze, Transpose, Unsqueeze,
)
from hwsim.graph.ops_onnx import GRU, LSTM, RNN, BlockInt8Linear, Conv3d, ConvTranspose, ConvTranspose3d, DynamicQuantizeLSTM, OnnxNode

Op = Annotated[
    Union[
        Conv2d, Linear, MatMul, Binary, Unary, BatchNorm, Softmax, LayerNorm, Rotary, Pool,
        GlobalAvgPool, Reduce, Embedding, Gather, Concat, Reshape, Transpose, Flatten, Squeeze,
        Unsqueeze, Slice, KVCacheRead, KVCacheAppend, Quantize, Dequantize, Cast, DynamicQuantize,
        OnnxNode, Conv3d, ConvTranspose, ConvTranspose3d, LSTM, GRU, RNN, DynamicQuantizeLSTM,
        BlockInt8Linear,
    ],
    Field(discriminator="op"),
]

#: op kind -> class; the table verify() and the registries of sim and cost are checked against.
OP_CLASSES: dict[str, type[OpBase]] = {
    c.model_fields["op"].default: c
    for c in Op.__origin__.__args__  # type: ignore[attr-defined]
}


__all__ = ["Op", "OP_CLASSES", "OpBase", "Shape", "broadcast_shapes", "ComputeOp", "WeightedComputeOp",
           *sorted(c.__name__ for c in OP_CLASSES.values())]
