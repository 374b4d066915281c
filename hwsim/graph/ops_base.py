"""The base of every IR op: fields, the per-op interface (infer, macs, elementwise_ops) and
shape helpers. The op kinds themselves are in :mod:`hwsim.graph.ops_compute` and
:mod:`hwsim.graph.ops_data`; :mod:`hwsim.graph.ops` gathers them."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hwsim.errors import ShapeError

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
    #: Axis of the main weight that indexes output channels (per-channel weight scales).
    weight_out_axis: ClassVar[int] = 0

    def infer(self, shapes: list[Shape]) -> list[Shape]:
        """Output shapes for the given input shapes; raises ShapeError on mismatch."""
        raise NotImplementedError

    def macs(self, in_shapes: list[Shape], out_shapes: list[Shape]) -> int:
        """Multiply-accumulates performed (see module docstring)."""
        return 0

    def elementwise_ops(self, in_shapes: list[Shape], out_shapes: list[Shape]) -> int:
        """Non-MAC arithmetic operations (one per output element by default)."""
        return 0 if self.is_view else sum(numel(s) for s in out_shapes)

    @property
    def is_compute(self) -> bool:
        """True for the dot-product ops whose formats the solver chooses."""
        return False

    def _fail(self, msg: str) -> ShapeError:
        return ShapeError(f"{self.op} '{self.name}': {msg}")


def numel(shape: Shape) -> int:
    return int(math.prod(shape))


def broadcast_shapes(op: OpBase, *shapes: Shape) -> Shape:
    """Numpy broadcasting, with an error that names the op."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise op._fail(f"shapes {list(shapes)} do not broadcast") from None


def norm_axis(op: OpBase, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise op._fail(f"axis {axis} out of range for rank {rank}")
    return axis % rank
