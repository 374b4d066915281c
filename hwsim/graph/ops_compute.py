"""Ops with arithmetic: dot products (conv2d, linear, matmul), elementwise, norms, pooling.

See :mod:`hwsim.graph.ops` for what counts as a MAC.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from hwsim.graph.ops_base import OpBase, Shape, broadcast_shapes, norm_axis, numel
from hwsim.graph.quant import NO_PRUNING, Pruning


# ---------------------------------------------------------------- dot-product (compute) ops
#: what a trailing run-time quantization input of a compute op holds: x = input 0, w = input 1
#: (the weight, or MatMul's second operand), y = the output
QParamRole = Literal["x_scale", "x_zero_point", "w_scale", "w_zero_point", "y_scale", "y_zero_point"]


class ComputeOp(OpBase):
    """A dot-product op: the layers whose formats, accumulator and pruning the solver chooses.

    ``runtime_quant`` names the trailing inputs that hold scales and zero points known only at run
    time (ONNX QLinear* / *Integer nodes whose parameters are graph inputs or computed): the op's
    operands are the inputs before them, and the simulator quantizes with the values they carry
    (:func:`hwsim.sim.qdq.run_with_runtime_quant`). Empty (the usual case): the QuantSpecs on the
    tensors hold every scale and zero point.
    """

    accumulator: str | None = Field(None, description="Accumulator format; None = default for the formats.")
    runtime_quant: tuple[QParamRole, ...] = Field(
        (), description="Roles of the trailing inputs holding run-time scales / zero points, in input order.")

    @property
    def is_compute(self) -> bool:
        return True

    @property
    def operands(self) -> tuple[str, ...]:
        """The inputs without the trailing run-time quantization parameters."""
        return self.inputs[:len(self.inputs) - len(self.runtime_quant)]


class WeightedComputeOp(ComputeOp):
    """A compute op with a weight (input 1) and an optional bias (input 2), which may be pruned."""

    pruning: Pruning = Field(NO_PRUNING, description="Weight pruning applied to this layer.")
    weight_slots: ClassVar = (1,)
    bias_slots: ClassVar = (2,)
    arity: ClassVar = (2, 3)

    def _check_bias(self, shapes: list[Shape], out_channels: int) -> None:
        if len(self.operands) == 3 and shapes[2] != (out_channels,):
            raise self._fail(f"bias shape {shapes[2]} != ({out_channels},)")

    def elementwise_ops(self, in_shapes, out_shapes):
        return numel(out_shapes[0]) if len(self.operands) == 3 else 0


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
        return numel(out_shapes[0]) * i * kh * kw


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
        return numel(out_shapes[0]) * in_shapes[1][1]


class MatMul(ComputeOp):
    """Batched matmul of two activations (attention QK^T and AV), numpy broadcasting of batch dims."""

    op: Literal["matmul"] = "matmul"
    arity: ClassVar = (2, 2)

    def infer(self, shapes):
        a, b = shapes[0], shapes[1]
        if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
            raise self._fail(f"cannot multiply {a} by {b}")
        batch = broadcast_shapes(self, a[:-2], b[:-2])
        return [batch + (a[-2], b[-1])]

    def macs(self, in_shapes, out_shapes):
        return numel(out_shapes[0]) * in_shapes[0][-1]

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
        norm_axis(self, self.axis, len(shapes[0]))
        return [shapes[0]]

    def elementwise_ops(self, in_shapes, out_shapes):
        return 3 * numel(out_shapes[0])


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
        return (3 if self.rms else 5) * numel(out_shapes[0])


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
        return 3 * numel(x[:-1]) * (self.rotary_dim or x[-1])


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
        return numel(out_shapes[0]) * self.kernel[0] * self.kernel[1]


class GlobalAvgPool(OpBase):
    """Mean over H and W, keeping dims: (N, C, H, W) -> (N, C, 1, 1)."""

    op: Literal["global_avgpool"] = "global_avgpool"

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            raise self._fail(f"expects NCHW input, got {x}")
        return [(x[0], x[1], 1, 1)]

    def elementwise_ops(self, in_shapes, out_shapes):
        return numel(in_shapes[0])


class Reduce(OpBase):
    """Reduction (mean, sum, max, min) over ``axes``."""

    op: Literal["reduce"] = "reduce"
    fn: Literal["mean", "sum", "max", "min"]
    axes: tuple[int, ...]
    keepdims: bool = True

    def infer(self, shapes):
        x = shapes[0]
        axes = {norm_axis(self, a, len(x)) for a in self.axes}
        if self.keepdims:
            return [tuple(1 if i in axes else d for i, d in enumerate(x))]
        return [tuple(d for i, d in enumerate(x) if i not in axes)]

    def elementwise_ops(self, in_shapes, out_shapes):
        return numel(in_shapes[0])
