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

import math
from typing import Annotated, ClassVar, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hwsim.errors import ShapeError
from hwsim.graph.quant import NO_PRUNING, Pruning

Shape = tuple[int, ...]


class OpBase(BaseModel):
    """Fields every op has. ``inputs``/``outputs`` are tensor names in the graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique op name; layer names in quant configs match this.")
    inputs: tuple[str, ...] = Field(description="Input tensor names, in the op's argument order.")
    outputs: tuple[str, ...] = Field(description="Output tensor names.")

    #: Argument positions that hold parameters (weights) rather than activations.
    weight_slots: ClassVar[tuple[int, ...]] = ()
    #: Argument positions that hold biases.
    bias_slots: ClassVar[tuple[int, ...]] = ()
    #: Number of inputs allowed (min, max).
    arity: ClassVar[tuple[int, int]] = (1, 1)
    #: True for ops that move no data arithmetic (views, copies).
    is_view: ClassVar[bool] = False

    def infer(self, shapes: list[Shape]) -> list[Shape]:
        """Output shapes for the given input shapes; raises ShapeError on mismatch."""
        raise NotImplementedError

    def macs(self, in_shapes: list[Shape], out_shapes: list[Shape]) -> int:
        """Multiply-accumulates performed (see module docstring)."""
        return 0

    def elementwise_ops(self, in_shapes: list[Shape], out_shapes: list[Shape]) -> int:
        """Non-MAC arithmetic operations (one per output element by default)."""
        return 0 if self.is_view else sum(_numel(s) for s in out_shapes)

    @property
    def is_compute(self) -> bool:
        """True for the dot-product ops whose formats the solver chooses."""
        return False

    def _fail(self, msg: str) -> ShapeError:
        return ShapeError(f"{self.op} '{self.name}': {msg}")


def _numel(shape: Shape) -> int:
    return int(math.prod(shape))


def broadcast_shapes(op: OpBase, *shapes: Shape) -> Shape:
    """Numpy broadcasting, with an error that names the op."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise op._fail(f"shapes {list(shapes)} do not broadcast") from None


def _norm_axis(op: OpBase, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise op._fail(f"axis {axis} out of range for rank {rank}")
    return axis % rank


# ---------------------------------------------------------------- dot-product (compute) ops
class ComputeOp(OpBase):
    """A dot-product op: the layers whose formats, accumulator and pruning the solver chooses."""

    accumulator: str | None = Field(None, description="Accumulator format; None = default for the formats.")

    @property
    def is_compute(self) -> bool:
        return True


class WeightedComputeOp(ComputeOp):
    """A compute op with a weight (input 1) and an optional bias (input 2), which may be pruned."""

    pruning: Pruning = Field(NO_PRUNING, description="Weight pruning applied to this layer.")
    weight_slots: ClassVar = (1,)
    bias_slots: ClassVar = (2,)
    arity: ClassVar = (2, 3)

    def _check_bias(self, shapes: list[Shape], out_channels: int) -> None:
        if len(shapes) == 3 and shapes[2] != (out_channels,):
            raise self._fail(f"bias shape {shapes[2]} != ({out_channels},)")

    def elementwise_ops(self, in_shapes, out_shapes):
        return _numel(out_shapes[0]) if len(in_shapes) == 3 else 0


class Conv2d(WeightedComputeOp):
    """2-D convolution, NCHW activations, OIHW weights (I = in_channels / groups).

    Depthwise is ``groups == in_channels``. ``padding`` is (top, left, bottom, right).
    """

    op: Literal["conv2d"] = "conv2d"
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = Field(1, ge=1)

    def infer(self, shapes):
        x, w = shapes[0], shapes[1]
        if len(x) != 4 or len(w) != 4:
            raise self._fail(f"expects 4-D input and weight, got {x} and {w}")
        n, c, h, wd = x
        o, i, kh, kw = w
        if c != i * self.groups:
            raise self._fail(f"input has {c} channels but weight expects {i} x groups {self.groups}")
        if o % self.groups:
            raise self._fail(f"{o} output channels not divisible by groups {self.groups}")
        self._check_bias(shapes, o)
        pt, pl, pb, pr = self.padding
        sh, sw = self.stride
        dh, dw = self.dilation
        oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
        ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
        if oh <= 0 or ow <= 0:
            raise self._fail(f"kernel {kh}x{kw} does not fit input {h}x{wd} with padding {self.padding}")
        return [(n, o, oh, ow)]

    def macs(self, in_shapes, out_shapes):
        _, i, kh, kw = in_shapes[1]
        return _numel(out_shapes[0]) * i * kh * kw


class Linear(WeightedComputeOp):
    """y = x @ W.T + b with W of shape (out_features, in_features); x is (..., in_features)."""

    op: Literal["linear"] = "linear"

    def infer(self, shapes):
        x, w = shapes[0], shapes[1]
        if len(w) != 2 or not x or x[-1] != w[1]:
            raise self._fail(f"input {x} does not match weight (out, in) = {w}")
        self._check_bias(shapes, w[0])
        return [x[:-1] + (w[0],)]

    def macs(self, in_shapes, out_shapes):
        return _numel(out_shapes[0]) * in_shapes[1][1]


class MatMul(ComputeOp):
    """Batched matmul of two activations (attention QK^T and AV), numpy broadcasting of batch dims."""

    op: Literal["matmul"] = "matmul"
    arity: ClassVar = (2, 2)

    def infer(self, shapes):
        a, b = shapes
        if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
            raise self._fail(f"cannot multiply {a} by {b}")
        batch = broadcast_shapes(self, a[:-2], b[:-2])
        return [batch + (a[-2], b[-1])]

    def macs(self, in_shapes, out_shapes):
        return _numel(out_shapes[0]) * in_shapes[0][-1]

    def elementwise_ops(self, in_shapes, out_shapes):
        return 0


# ---------------------------------------------------------------- elementwise
class Binary(OpBase):
    """Elementwise binary op with numpy broadcasting."""

    op: Literal["binary"] = "binary"
    fn: Literal["add", "sub", "mul", "div", "pow", "max", "min"]
    arity: ClassVar = (2, 2)

    def infer(self, shapes):
        return [broadcast_shapes(self, *shapes)]


class Unary(OpBase):
    """Elementwise activation or math function. ``clip`` uses ``lo``/``hi``."""

    op: Literal["unary"] = "unary"
    fn: Literal[
        "relu", "relu6", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
        "sqrt", "rsqrt", "exp", "log", "neg", "abs", "reciprocal", "erf", "clip", "identity",
    ]
    lo: float | None = None
    hi: float | None = None

    def infer(self, shapes):
        return [shapes[0]]


class BatchNorm(OpBase):
    """Inference batch-norm over axis 1: y = (x - mean) / sqrt(var + eps) * gamma + beta.

    Inputs: x, gamma, beta, mean, var. gamma and beta are parameters; mean and var are buffers
    (stored, not trained: not counted as parameters, as in torchvision).
    """

    op: Literal["batchnorm"] = "batchnorm"
    eps: float = 1e-5
    weight_slots: ClassVar = (1, 2, 3, 4)
    arity: ClassVar = (5, 5)

    def infer(self, shapes):
        c = shapes[0][1] if len(shapes[0]) > 1 else None
        for s in shapes[1:]:
            if s != (c,):
                raise self._fail(f"per-channel parameter shape {s} != ({c},)")
        return [shapes[0]]


class Softmax(OpBase):
    """Softmax along ``axis`` (exp, sum, divide: 3 ops per element)."""

    op: Literal["softmax"] = "softmax"
    axis: int = -1

    def infer(self, shapes):
        _norm_axis(self, self.axis, len(shapes[0]))
        return [shapes[0]]

    def elementwise_ops(self, in_shapes, out_shapes):
        return 3 * _numel(out_shapes[0])


class LayerNorm(OpBase):
    """LayerNorm over the last axis; inputs x, gamma[, beta]. RMSNorm is ``rms=True`` (no mean, no beta)."""

    op: Literal["layernorm"] = "layernorm"
    eps: float = 1e-5
    rms: bool = False
    weight_slots: ClassVar = (1, 2)
    arity: ClassVar = (2, 3)

    def infer(self, shapes):
        d = shapes[0][-1]
        for s in shapes[1:]:
            if s != (d,):
                raise self._fail(f"norm parameter shape {s} != ({d},)")
        return [shapes[0]]

    def elementwise_ops(self, in_shapes, out_shapes):
        return (3 if self.rms else 5) * _numel(out_shapes[0])


class Rotary(OpBase):
    """Rotary position embedding on x (batch, heads, seq, head_dim), rotating the first ``rotary_dim``.

    Positions start at ``offset`` (the number of tokens already in the KV cache in decode).
    Cost: 2 multiplies + 1 add per rotated element.
    """

    op: Literal["rotary"] = "rotary"
    rotary_dim: int | None = None
    base: float = 10000.0
    offset: int = Field(0, ge=0)

    def infer(self, shapes):
        x = shapes[0]
        rd = self.rotary_dim or x[-1]
        if len(x) != 4 or rd % 2 or rd > x[-1]:
            raise self._fail(f"expects (batch, heads, seq, head_dim) with even rotary_dim <= head_dim, got {x}")
        return [x]

    def elementwise_ops(self, in_shapes, out_shapes):
        x = in_shapes[0]
        return 3 * _numel(x[:-1]) * (self.rotary_dim or x[-1])


# ---------------------------------------------------------------- pooling
class Pool(OpBase):
    """Max or average pooling, NCHW; ``padding`` is (top, left, bottom, right)."""

    op: Literal["pool"] = "pool"
    kind: Literal["max", "avg"]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = False

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            raise self._fail(f"expects NCHW input, got {x}")
        oh = self._out_len(x[2], self.padding[0], self.padding[2], self.kernel[0], self.stride[0])
        ow = self._out_len(x[3], self.padding[1], self.padding[3], self.kernel[1], self.stride[1])
        if oh <= 0 or ow <= 0:
            raise self._fail(f"kernel {self.kernel} does not fit input {x}")
        return [(x[0], x[1], oh, ow)]

    def _out_len(self, n: int, pad_begin: int, pad_end: int, k: int, s: int) -> int:
        """Output length; in ceil mode a last window that would start in the end padding is dropped
        (the PyTorch / ONNX rule)."""
        rnd = math.ceil if self.ceil_mode else math.floor
        out = int(rnd((n + pad_begin + pad_end - k) / s)) + 1
        if self.ceil_mode and (out - 1) * s >= n + pad_begin:
            out -= 1
        return out

    def elementwise_ops(self, in_shapes, out_shapes):
        return _numel(out_shapes[0]) * self.kernel[0] * self.kernel[1]


class GlobalAvgPool(OpBase):
    """Mean over H and W, keeping dims: (N, C, H, W) -> (N, C, 1, 1)."""

    op: Literal["global_avgpool"] = "global_avgpool"

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            raise self._fail(f"expects NCHW input, got {x}")
        return [(x[0], x[1], 1, 1)]

    def elementwise_ops(self, in_shapes, out_shapes):
        return _numel(in_shapes[0])


class Reduce(OpBase):
    """Reduction (mean, sum, max, min) over ``axes``."""

    op: Literal["reduce"] = "reduce"
    fn: Literal["mean", "sum", "max", "min"]
    axes: tuple[int, ...]
    keepdims: bool = True

    def infer(self, shapes):
        x = shapes[0]
        axes = {_norm_axis(self, a, len(x)) for a in self.axes}
        if self.keepdims:
            return [tuple(1 if i in axes else d for i, d in enumerate(x))]
        return [tuple(d for i, d in enumerate(x) if i not in axes)]

    def elementwise_ops(self, in_shapes, out_shapes):
        return _numel(in_shapes[0])


# ---------------------------------------------------------------- data movement (no arithmetic)
class Embedding(OpBase):
    """Table lookup: ids (any integer shape) into table (vocab, dim) -> ids.shape + (dim,)."""

    op: Literal["embedding"] = "embedding"
    weight_slots: ClassVar = (1,)
    arity: ClassVar = (2, 2)
    is_view: ClassVar = True

    def infer(self, shapes):
        if len(shapes[1]) != 2:
            raise self._fail(f"table must be (vocab, dim), got {shapes[1]}")
        return [shapes[0] + (shapes[1][1],)]


class Gather(OpBase):
    """Gather along ``axis`` of an activation with integer indices (ONNX Gather)."""

    op: Literal["gather"] = "gather"
    axis: int = 0
    arity: ClassVar = (2, 2)
    is_view: ClassVar = True

    def infer(self, shapes):
        x, idx = shapes
        a = _norm_axis(self, self.axis, len(x))
        return [x[:a] + idx + x[a + 1:]]


class Concat(OpBase):
    """Concatenate along ``axis``."""

    op: Literal["concat"] = "concat"
    axis: int
    arity: ClassVar = (1, 1 << 16)
    is_view: ClassVar = True

    def infer(self, shapes):
        a = _norm_axis(self, self.axis, len(shapes[0]))
        base = list(shapes[0])
        for s in shapes[1:]:
            if len(s) != len(base) or any(s[i] != base[i] for i in range(len(s)) if i != a):
                raise self._fail(f"shapes {shapes} differ outside axis {self.axis}")
            base[a] += s[a]
        return [tuple(base)]


class Reshape(OpBase):
    """Reshape to ``shape`` (one -1 allowed, 0 copies the input dim as in ONNX)."""

    op: Literal["reshape"] = "reshape"
    shape: tuple[int, ...]
    is_view: ClassVar = True

    def infer(self, shapes):
        x = shapes[0]
        dims = [x[i] if d == 0 and i < len(x) else d for i, d in enumerate(self.shape)]
        if dims.count(-1) > 1:
            raise self._fail("at most one -1 in target shape")
        known = math.prod(d for d in dims if d != -1)
        if -1 in dims:
            if known == 0 or _numel(x) % known:
                raise self._fail(f"cannot reshape {x} to {self.shape}")
            dims[dims.index(-1)] = _numel(x) // known
        if math.prod(dims) != _numel(x):
            raise self._fail(f"cannot reshape {x} ({_numel(x)} elements) to {tuple(dims)}")
        return [tuple(dims)]


class Transpose(OpBase):
    """Permute axes (``perm`` as numpy.transpose)."""

    op: Literal["transpose"] = "transpose"
    perm: tuple[int, ...]
    is_view: ClassVar = True

    def infer(self, shapes):
        x = shapes[0]
        if sorted(self.perm) != list(range(len(x))):
            raise self._fail(f"perm {self.perm} is not a permutation of rank {len(x)}")
        return [tuple(x[p] for p in self.perm)]


class Flatten(OpBase):
    """Flatten to 2-D at ``axis`` (ONNX Flatten)."""

    op: Literal["flatten"] = "flatten"
    axis: int = 1
    is_view: ClassVar = True

    def infer(self, shapes):
        x = shapes[0]
        a = self.axis + len(x) if self.axis < 0 else self.axis
        if not 0 <= a <= len(x):
            raise self._fail(f"axis {self.axis} out of range for rank {len(x)}")
        return [(_numel(x[:a]), _numel(x[a:]))]


class Squeeze(OpBase):
    """Remove size-1 ``axes``."""

    op: Literal["squeeze"] = "squeeze"
    axes: tuple[int, ...]
    is_view: ClassVar = True

    def infer(self, shapes):
        x = shapes[0]
        axes = {_norm_axis(self, a, len(x)) for a in self.axes}
        if any(x[a] != 1 for a in axes):
            raise self._fail(f"cannot squeeze axes {self.axes} of {x}")
        return [tuple(d for i, d in enumerate(x) if i not in axes)]


class Unsqueeze(OpBase):
    """Insert size-1 ``axes`` (positions in the output)."""

    op: Literal["unsqueeze"] = "unsqueeze"
    axes: tuple[int, ...]
    is_view: ClassVar = True

    def infer(self, shapes):
        x = list(shapes[0])
        rank = len(x) + len(self.axes)
        for a in sorted(_norm_axis(self, a, rank) for a in self.axes):
            x.insert(a, 1)
        return [tuple(x)]


class Slice(OpBase):
    """numpy-style slice per axis: ``starts``, ``ends``, ``axes``, ``steps`` (ONNX Slice, constant)."""

    op: Literal["slice"] = "slice"
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    axes: tuple[int, ...]
    steps: tuple[int, ...]
    is_view: ClassVar = True

    def infer(self, shapes):
        x = list(shapes[0])
        for s, e, a, st in zip(self.starts, self.ends, self.axes, self.steps):
            a = _norm_axis(self, a, len(x))
            x[a] = len(range(*slice(s, e, st).indices(x[a])))
        return [tuple(x)]


class KVCacheRead(OpBase):
    """Read the cached keys or values: cache (batch, kv_heads, context, head_dim) -> the same.

    The cache tensor has role ``kv_cache``; its bytes at its format are read from memory.
    """

    op: Literal["kv_cache_read"] = "kv_cache_read"
    is_view: ClassVar = True

    def infer(self, shapes):
        if len(shapes[0]) != 4:
            raise self._fail(f"cache must be (batch, kv_heads, context, head_dim), got {shapes[0]}")
        return [shapes[0]]


class KVCacheAppend(OpBase):
    """Append new keys/values along the sequence axis: (cached, new) -> cached ++ new.

    ``cached`` is the output of a :class:`KVCacheRead`; the new entries are written to memory.
    """

    op: Literal["kv_cache_append"] = "kv_cache_append"
    arity: ClassVar = (2, 2)
    is_view: ClassVar = True

    def infer(self, shapes):
        c, n = shapes
        if len(c) != 4 or len(n) != 4 or c[:2] != n[:2] or c[3] != n[3]:
            raise self._fail(f"new entries {n} do not match cache {c}")
        return [(c[0], c[1], c[2] + n[2], c[3])]


# ---------------------------------------------------------------- explicit quantization
class Quantize(OpBase):
    """ONNX QuantizeLinear: the output tensor's QuantSpec holds format, scale and zero point."""

    op: Literal["quantize"] = "quantize"
    saturate: bool = True
    arity: ClassVar = (1, 3)

    def infer(self, shapes):
        return [shapes[0]]


class Dequantize(OpBase):
    """ONNX DequantizeLinear: the input tensor's QuantSpec holds format, scale and zero point."""

    op: Literal["dequantize"] = "dequantize"
    arity: ClassVar = (1, 3)

    def infer(self, shapes):
        return [shapes[0]]


class Cast(OpBase):
    """ONNX Cast to the format ``to`` (rounding half-even; ``saturate`` as ONNX for float8)."""

    op: Literal["cast"] = "cast"
    to: str
    saturate: bool = True

    def infer(self, shapes):
        return [shapes[0]]


class DynamicQuantize(OpBase):
    """ONNX DynamicQuantizeLinear, one op per output; ``part`` picks which output this op writes.

    ONNX computes, from x (float): ``scale = (max(0, max(x)) - min(0, min(x))) / 255``,
    ``zero_point = saturate(round_half_even(-min(0, min(x)) / scale))`` (uint8) and
    ``y = saturate(round_half_even(x / scale) + zero_point)`` (uint8, same shape as x).
    ``part="y"`` outputs y, ``"scale"`` the float32 scalar, ``"zero_point"`` the uint8 scalar
    (shape ``()``). Cost: the min/max pass plus one quantize step per element for ``y``.
    """

    op: Literal["dynamic_quantize"] = "dynamic_quantize"
    part: Literal["y", "scale", "zero_point"] = Field(description="Which ONNX output this op writes.")

    def infer(self, shapes):
        return [shapes[0] if self.part == "y" else ()]

    def elementwise_ops(self, in_shapes, out_shapes):
        return 2 * _numel(in_shapes[0]) if self.part == "y" else 1


Op = Annotated[
    Union[
        Conv2d, Linear, MatMul, Binary, Unary, BatchNorm, Softmax, LayerNorm, Rotary, Pool,
        GlobalAvgPool, Reduce, Embedding, Gather, Concat, Reshape, Transpose, Flatten, Squeeze,
        Unsqueeze, Slice, KVCacheRead, KVCacheAppend, Quantize, Dequantize, Cast, DynamicQuantize,
    ],
    Field(discriminator="op"),
]

#: op kind -> class; the table verify() and the registries of sim and cost are checked against.
OP_CLASSES: dict[str, type[OpBase]] = {
    c.model_fields["op"].default: c
    for c in Op.__origin__.__args__  # type: ignore[attr-defined]
}
