"""Ops that move data without arithmetic (views, gathers, KV cache) and explicit quantization ops."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from hwsim.graph.ops_base import OpBase, norm_axis, numel


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
        a = norm_axis(self, self.axis, len(x))
        return [x[:a] + idx + x[a + 1:]]


class Concat(OpBase):
    """Concatenate along ``axis``."""

    op: Literal["concat"] = "concat"
    axis: int
    arity: ClassVar = (1, 1 << 16)
    is_view: ClassVar = True

    def infer(self, shapes):
        a = norm_axis(self, self.axis, len(shapes[0]))
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
            if known == 0 or numel(x) % known:
                raise self._fail(f"cannot reshape {x} to {self.shape}")
            dims[dims.index(-1)] = numel(x) // known
        if math.prod(dims) != numel(x):
            raise self._fail(f"cannot reshape {x} ({numel(x)} elements) to {tuple(dims)}")
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
        return [(numel(x[:a]), numel(x[a:]))]


class Squeeze(OpBase):
    """Remove size-1 ``axes``."""

    op: Literal["squeeze"] = "squeeze"
    axes: tuple[int, ...]
    is_view: ClassVar = True

    def infer(self, shapes):
        x = shapes[0]
        axes = {norm_axis(self, a, len(x)) for a in self.axes}
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
        for a in sorted(norm_axis(self, a, rank) for a in self.axes):
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
            a = norm_axis(self, a, len(x))
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
    #: with run-time scale / zero point inputs (1, 2): ONNX ``axis`` of a 1-D scale, ``block_size``
    axis: int | None = None
    block_size: int = 0
    arity: ClassVar = (1, 3)

    def infer(self, shapes):
        return [shapes[0]]


class Dequantize(OpBase):
    """ONNX DequantizeLinear: the input tensor's QuantSpec holds format, scale and zero point."""

    op: Literal["dequantize"] = "dequantize"
    #: with run-time scale / zero point inputs (1, 2): ONNX ``axis`` of a 1-D scale, ``block_size``
    axis: int | None = None
    block_size: int = 0
    arity: ClassVar = (1, 3)

    def infer(self, shapes):
        return [shapes[0]]


class Cast(OpBase):
    """ONNX Cast to the format ``to`` (rounding half-even; ``saturate`` as ONNX for float8;
    ``round_mode`` as ONNX opset 24 for e8m0, the only format it applies to)."""

    op: Literal["cast"] = "cast"
    to: str
    saturate: bool = True
    round_mode: Literal["up", "down", "nearest"] = "up"

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
        return 2 * numel(in_shapes[0]) if self.part == "y" else 1
