"""Ops added for imported ONNX models: the generic ONNX node, and the MAC ops beyond conv2d /
linear / matmul (3-D convolution, transposed convolution, LSTM, GRU).

The generic op
--------------
:class:`OnnxNode` carries one standard-domain ONNX node that has no MACs (comparisons, logic,
Pad, Resize, GatherND, Where, TopK, control flow without MAC ops in its bodies...). Its shapes
come from onnx shape inference on the bound input shapes (recorded at import: ``in_shapes``,
``out_shape``), it runs through numpy or the ONNX reference implementation
(:mod:`hwsim.sim.onnxnode`), and it is priced as elementwise work (one op per output element) plus
the bytes it reads and writes. A node with several outputs becomes one op per used output
(``index``).

MAC conventions (see :mod:`hwsim.graph.ops`)
--------------------------------------------
- conv3d: ``output elements x (in_channels / groups) x kd x kh x kw``.
- conv_transpose / conv_transpose3d: every input element is multiplied by every weight of its group's output
  channels: ``N x C_in x H x W x (C_out / groups) x kh x kw`` (and x D x kd in 3-D) (padding crops outputs, it saves no
  MACs on hardware that scatters the full products).
- lstm / gru: the gate GEMMs of every timestep and direction, input and recurrent parts:
  ``seq x dirs x batch x gates x hidden x (input_size + hidden)`` with 4 gates (LSTM), 3 (GRU) or 1 (RNN).
  Peepholes, biases and the gate nonlinearities are elementwise ops.
- dynamic_quantize_lstm: the recurrent GEMMs only, ``seq x dirs x batch x gates x hidden x hidden``;
  the input GEMMs are the ``linear`` before it (together: the LSTM count).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from hwsim.graph.ops_base import OpBase, numel
from hwsim.graph.ops_compute import Linear, WeightedComputeOp

Shape = tuple[int, ...]

#: ONNX control-flow op types (their bodies are subgraphs of the node)
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})


class OnnxNode(OpBase):
    """One output of a standard-domain ONNX node without MACs, executed by its ONNX definition.

    ``node_b64`` is the base64 of the serialized ``NodeProto`` (subgraphs included); ``names`` the
    ONNX names the node (and its subgraphs, for outer-scope values) reads, one per IR input, in
    ``inputs`` order. ``elem_types`` are their ONNX element types.
    """

    op: Literal["onnx"] = "onnx"
    op_type: str = Field(description="ONNX op type, e.g. 'Resize'.")
    node_b64: str = Field(description="base64 of the serialized ONNX NodeProto.")
    opset: int = Field(description="Standard-domain opset of the model.")
    names: tuple[str, ...] = Field(description="ONNX names of the values the node reads (IR inputs, in order).")
    elem_types: tuple[int, ...] = Field(description="ONNX element type of each input.")
    index: int = Field(0, ge=0, description="Which ONNX output of the node this op writes.")
    in_shapes: tuple[Shape, ...] = Field(description="Input shapes the output shape was inferred for.")
    out_shape: Shape = Field(description="Output shape from onnx shape inference.")
    arity: ClassVar = (0, 10_000)

    def infer(self, shapes):
        if tuple(tuple(s) for s in shapes) != self.in_shapes:
            raise self._fail(f"input shapes {shapes} differ from the shapes it was imported with {self.in_shapes}")
        return [self.out_shape]

    def elementwise_ops(self, in_shapes, out_shapes):
        return numel(out_shapes[0])


class Conv3d(WeightedComputeOp):
    """3-D convolution, NCDHW activations, OIDHW weights (I = in_channels / groups).

    ``padding`` is (front, top, left, back, bottom, right) as ONNX orders pads.
    """

    op: Literal["conv3d"] = "conv3d"
    stride: tuple[int, int, int] = (1, 1, 1)
    padding: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)
    dilation: tuple[int, int, int] = (1, 1, 1)
    groups: int = Field(1, ge=1)

    def infer(self, shapes):
        x, w = shapes[0], shapes[1]
        if len(x) != 5 or len(w) != 5:
            raise self._fail(f"expects 5-D input and weight, got {x} and {w}")
        if x[1] != w[1] * self.groups or w[0] % self.groups:
            raise self._fail(f"input channels {x[1]} / weight {w} do not fit groups {self.groups}")
        self._check_bias(shapes, w[0])
        out = []
        for i in range(3):
            size = x[2 + i] + self.padding[i] + self.padding[3 + i]
            o = (size - self.dilation[i] * (w[2 + i] - 1) - 1) // self.stride[i] + 1
            if o <= 0:
                raise self._fail(f"kernel {w[2:]} does not fit input {x[2:]} with padding {self.padding}")
            out.append(o)
        return [(x[0], w[0], *out)]

    def macs(self, in_shapes, out_shapes):
        return numel(out_shapes[0]) * numel(in_shapes[1][1:])


class ConvTranspose(WeightedComputeOp):
    """2-D transposed convolution (ONNX ConvTranspose), NCHW; weight (C_in, C_out / groups, kh, kw).

    ``padding`` is (top, left, bottom, right), ``output_padding`` (h, w) as ONNX; explicit
    ``output_shape`` attributes are turned into pads at import.
    """

    op: Literal["conv_transpose"] = "conv_transpose"
    weight_out_axis: ClassVar[int] = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = Field(1, ge=1)

    def infer(self, shapes):
        x, w = shapes[0], shapes[1]
        n = len(self.stride)
        if len(x) != n + 2 or len(w) != n + 2:
            raise self._fail(f"expects {n + 2}-D input and weight, got {x} and {w}")
        if x[1] != w[0] or w[0] % self.groups:
            raise self._fail(f"input has {x[1]} channels, weight {w} with groups {self.groups}")
        o = w[1] * self.groups
        self._check_bias(shapes, o)
        out = []
        for i in range(n):
            size = (self.stride[i] * (x[2 + i] - 1) + self.output_padding[i] + (w[2 + i] - 1) * self.dilation[i] + 1
                    - self.padding[i] - self.padding[n + i])
            if size <= 0:
                raise self._fail(f"output size {size} <= 0 for input {x} and padding {self.padding}")
            out.append(size)
        return [(x[0], o, *out)]

    def macs(self, in_shapes, out_shapes):
        return numel(in_shapes[0]) * numel(in_shapes[1][1:])


class ConvTranspose3d(ConvTranspose):
    """3-D transposed convolution, NCDHW; weight (C_in, C_out / groups, kd, kh, kw); ``padding``
    (front, top, left, back, bottom, right) as ONNX orders pads."""

    op: Literal["conv_transpose3d"] = "conv_transpose3d"
    stride: tuple[int, int, int] = (1, 1, 1)
    padding: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)
    output_padding: tuple[int, int, int] = (0, 0, 0)
    dilation: tuple[int, int, int] = (1, 1, 1)


class Recurrent(WeightedComputeOp):
    """Shared part of LSTM and GRU (ONNX semantics, layout 0).

    Inputs: X (seq, batch, input_size), WR (dirs, gates * hidden, input_size + hidden): the ONNX W
    and R concatenated along the last axis, B (dirs, 2 * gates * hidden: Wb then Rb), then the
    inputs named in ``extras`` ("initial_h", "initial_c", "P") in that order.
    The single output packs every ONNX output along axis 0: Y (seq rows), Y_h (one row) and, for
    LSTM, Y_c (one row): shape (seq + 2 or + 1, dirs, batch, hidden); the importer slices them.
    """

    direction: Literal["forward", "reverse", "bidirectional"] = "forward"
    hidden: int = Field(ge=1)
    activations: tuple[str, ...] = Field(description="ONNX activation names, per direction.")
    activation_alpha: tuple[float, ...] = ()
    activation_beta: tuple[float, ...] = ()
    clip: float | None = None
    extras: tuple[Literal["initial_h", "initial_c", "P"], ...] = ()
    arity: ClassVar = (3, 6)
    gates: ClassVar[int] = 4
    packed_rows: ClassVar[int] = 2

    @property
    def dirs(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    def infer(self, shapes):
        x, wr, b = shapes[:3]
        if len(x) != 3:
            raise self._fail(f"X must be (seq, batch, input_size), got {x}")
        want = (self.dirs, self.gates * self.hidden, x[2] + self.hidden)
        if wr != want:
            raise self._fail(f"W|R has shape {wr}, expected {want}")
        if b != (self.dirs, 2 * self.gates * self.hidden):
            raise self._fail(f"B has shape {b}, expected {(self.dirs, 2 * self.gates * self.hidden)}")
        for name, s in zip(self.extras, shapes[3:]):
            exp = (self.dirs, 3 * self.hidden) if name == "P" else (self.dirs, x[1], self.hidden)
            if s != exp:
                raise self._fail(f"{name} has shape {s}, expected {exp}")
        return [(x[0] + self.packed_rows, self.dirs, x[1], self.hidden)]

    def macs(self, in_shapes, out_shapes):
        seq, batch, _ = in_shapes[0]
        return seq * batch * numel(in_shapes[1])

    def elementwise_ops(self, in_shapes, out_shapes):
        seq, batch, _ = in_shapes[0]
        return seq * batch * self.dirs * self.hidden * (3 * self.gates)


class LSTM(Recurrent):
    """ONNX LSTM (gates i, o, f, c; activations f, g, h per direction; optional peepholes)."""

    op: Literal["lstm"] = "lstm"
    input_forget: bool = False


class GRU(Recurrent):
    """ONNX GRU (gates z, r, h; activations f, g per direction; ``linear_before_reset``)."""

    op: Literal["gru"] = "gru"
    linear_before_reset: bool = False
    gates: ClassVar[int] = 3
    packed_rows: ClassVar[int] = 1
    arity: ClassVar = (3, 4)


class RNN(Recurrent):
    """ONNX RNN (one gate: ``H = f(X W^T + H R^T + Wb + Rb)``, activation per direction)."""

    op: Literal["rnn"] = "rnn"
    gates: ClassVar[int] = 1
    packed_rows: ClassVar[int] = 1
    arity: ClassVar = (3, 4)


class DynamicQuantizeLSTM(Recurrent):
    """The recurrent half of onnxruntime's com.microsoft DynamicQuantizeLSTM (gates i, o, f, c).

    The input projection ``X @ W`` of every step is computed before it, by an ordinary integer
    ``linear`` (DynamicQuantizeLinear of the whole sequence, as onnxruntime does). Inputs: XW
    (seq, batch, dirs * 4 * hidden) float, R (dirs * 4 * hidden, hidden): the recurrent weight
    codes (int8 / uint8, scales per direction or per gate row), B (dirs, 8 * hidden), then the
    ``extras``. Every step quantizes the hidden state dynamically to uint8 (one scale for the
    batch) before the integer product with R. Output packed as :class:`LSTM`'s.
    """

    op: Literal["dynamic_quantize_lstm"] = "dynamic_quantize_lstm"

    def infer(self, shapes):
        xw, r, b = shapes[:3]
        rows = self.dirs * self.gates * self.hidden
        if len(xw) != 3 or xw[2] != rows:
            raise self._fail(f"XW must be (seq, batch, {rows}), got {xw}")
        if r != (rows, self.hidden):
            raise self._fail(f"R has shape {r}, expected {(rows, self.hidden)}")
        return super().infer([(xw[0], xw[1], 0), (self.dirs, self.gates * self.hidden, self.hidden), b,
                              *shapes[3:]])

    def macs(self, in_shapes, out_shapes):
        seq, batch, _ = in_shapes[0]
        return seq * batch * numel(in_shapes[1])


class BlockInt8Linear(Linear):
    """A ``linear`` whose activations are quantized to int8 inside the op, per block of
    ``block_size`` along the input features (scale ``amax / 127``, round half to even), each
    block's integer dot product with the weight codes scaled by ``s_a * s_w`` and summed in
    float32: onnxruntime's MatMulNBits at ``accuracy_level`` 4 (MLAS ``CompInt8``). MACs as
    ``linear``'s; the MAC unit runs int8 activations (:attr:`internal_act_format`)."""

    op: Literal["linear_block_int8"] = "linear_block_int8"
    block_size: int = Field(ge=1, description="Activation elements per int8 scale (the weight's block).")
    internal_act_format: ClassVar[str] = "int8"
