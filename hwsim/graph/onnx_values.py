"""What an ONNX tensor is while the importer walks the graph (see :mod:`hwsim.graph.onnx`).

Every ONNX tensor name maps to one of:

- :class:`Const`: a value known at import time (initializer, Constant, folded shape arithmetic).
- :class:`Act`: an IR tensor computed at run time (graph input or output of an IR op).
- :class:`QAct`: the output of a QuantizeLinear on an activation, not yet placed in the IR; a
  matching DequantizeLinear turns it back into its source activation, annotated.
- :class:`QConst`: a real-valued constant stored as integer (or low-precision float) codes with a
  scale and zero point: a DequantizeLinear of an initializer, or the weight-only pattern
  ``Cast(int initializer) [- zero_point] * scale``. Compute ops place the codes as their weight.
- :class:`Codes`: ``Cast(integer initializer)`` to float, the start of the weight-only pattern.

Also: ONNX element types -> numpy spellings (``Tensor.dtype``) and hwsim format names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from hwsim.errors import UnsupportedOpError
from hwsim.graph.quant import QuantSpec, canonical_format

_SPECIAL = {"FLOAT": "float32", "DOUBLE": "float64"}
#: ONNX element type number -> numpy spelling used in Tensor.dtype ("float8e4m3fn", "int4", ...)
DTYPES: dict[int, str] = {v: _SPECIAL.get(k, k.lower()) for k, v in TensorProto.DataType.items()}

_FORMAT_ALIASES = {"float32": "fp32", "float16": "fp16", "float64": "fp64", "bfloat16": "bf16",
                   "float4e2m1": "float4_e2m1fn"}
_NARROW = ("uint8", "int8", "uint16", "int16", "int32", "uint4", "int4", "uint2", "int2")


def dtype_name(elem_type: int) -> str:
    """Numpy spelling of an ONNX element type number."""
    return DTYPES.get(elem_type, f"onnx_type_{elem_type}")


def array_dtype(a: np.ndarray) -> str:
    """Numpy spelling of an array's element type, in the ONNX names for ml_dtypes types."""
    name = a.dtype.name
    return {"float8_e4m3fn": "float8e4m3fn", "float8_e4m3fnuz": "float8e4m3fnuz", "float8_e5m2": "float8e5m2",
            "float8_e5m2fnuz": "float8e5m2fnuz", "float4_e2m1fn": "float4e2m1",
            "float8_e8m0fnu": "float8e8m0"}.get(name, name)


def format_of(dtype: str) -> str | None:
    """hwsim format name of an element type, or None (int64, bool, strings have none)."""
    name = _FORMAT_ALIASES.get(dtype, dtype)
    if name.startswith("float8") and "_" not in name:
        name = "float8_" + name[len("float8"):]
    try:
        return canonical_format(name)
    except Exception:
        return None


def is_code_dtype(dtype: str) -> bool:
    """True for the element types quantized tensors store codes in (not fp32/fp16/int64/bool)."""
    return dtype in _NARROW or dtype.startswith(("float8", "float4", "float6"))


def codes_array(a: np.ndarray) -> np.ndarray:
    """Integer codes as a numpy integer array (int4/uint4/int2/uint2 widened to int8/uint8)."""
    name = a.dtype.name
    if name in ("int4", "int2"):
        return a.astype(np.int8)
    if name in ("uint4", "uint2"):
        return a.astype(np.uint8)
    return a


@dataclass(frozen=True)
class Const:
    """A value known at import time; ``param`` marks trained parameters (float initializers)."""

    value: np.ndarray
    param: bool = False


@dataclass(frozen=True)
class Act:
    """A run-time tensor already in the IR graph, by IR tensor name."""

    name: str


@dataclass(frozen=True)
class QAct:
    """QuantizeLinear of activation ``src``; ``out`` is the ONNX name of the codes tensor."""

    src: str
    out: str
    spec: QuantSpec
    dtype: str
    saturate: bool = True


@dataclass(frozen=True)
class Codes:
    """Cast of an integer initializer to float (weight-only pattern), optional zero point."""

    codes: np.ndarray
    dtype: str
    src: str
    zero_point: np.ndarray | None = None


@dataclass(frozen=True)
class QConst:
    """Real-valued constant = scale * (codes - zero_point).

    ``scale`` and ``zero_point`` have the rank of ``codes``; each dim is 1 (shared), the full
    dim (per channel) or, on ``block[0]``, ``ceil(dim / block[1])`` (per group of ``block[1]``).
    """

    codes: np.ndarray
    dtype: str
    src: str
    scale: np.ndarray
    zero_point: np.ndarray | None = None
    block: tuple[int, int] | None = None

    def spec(self, where: str) -> QuantSpec:
        """The IR QuantSpec of the codes; UnsupportedOpError if no granularity fits."""
        fmt = format_of(self.dtype)
        if fmt is None:
            raise UnsupportedOpError(f"{where}: quantized constant of type {self.dtype} is not supported")
        varying = [a for a, d in enumerate(self.scale.shape) if d != 1]
        zp = self._zero_point_for(varying, where)
        if self.block is not None:
            axis, size = self.block
            full = list(self.codes.shape)
            full[axis] = math.ceil(full[axis] / size)
            scale = np.broadcast_to(self.scale, full).ravel()
            zp = None if zp is None else np.broadcast_to(zp, full).ravel()
            return _spec(fmt, scale, zp, granularity="group", axis=axis, group_size=size)
        if not varying:
            return _spec(fmt, self.scale.ravel()[:1], None if zp is None else zp.ravel()[:1])
        if len(varying) == 1:
            return _spec(fmt, self.scale.ravel(), None if zp is None else zp.ravel(),
                         granularity="channel", axis=varying[0])
        raise UnsupportedOpError(f"{where}: scales of shape {self.scale.shape} for weights {self.codes.shape} vary "
                                 "along more than one axis; hwsim supports per-tensor, per-channel and per-group")

    def _zero_point_for(self, varying: list[int], where: str) -> np.ndarray | None:
        zp = self.zero_point
        if zp is None:
            return None
        if any(d != 1 and d != self.scale.shape[a] for a, d in enumerate(zp.shape)):
            raise UnsupportedOpError(f"{where}: zero points of shape {zp.shape} do not follow scales {self.scale.shape}")
        return np.broadcast_to(zp, self.scale.shape)

    def real(self) -> np.ndarray:
        """float32 values as DequantizeLinear computes them: (codes - zero_point) * scale."""
        s, z = self.scale, self.zero_point
        if self.block is not None:
            axis, size = self.block
            n = self.codes.shape[axis]
            s = np.repeat(s, size, axis).take(range(n), axis)
            z = None if z is None else np.repeat(z, size, axis).take(range(n), axis)
        x = codes_array(self.codes).astype(np.float32)
        if z is not None:
            x = x - np.asarray(z, np.float32)
        return (x * np.asarray(s, np.float32)).astype(np.float32)

    def transpose(self, perm: tuple[int, ...]) -> "QConst":
        block = None if self.block is None else (perm.index(self.block[0]), self.block[1])
        zp = None if self.zero_point is None else self.zero_point.transpose(perm)
        return QConst(self.codes.transpose(perm), self.dtype, self.src, self.scale.transpose(perm), zp, block)


def _spec(fmt: str, scale: np.ndarray, zp: np.ndarray | None, **kw) -> QuantSpec:
    if not fmt.startswith(("int", "uint")):
        # float zero points are 0 in ONNX, but their presence matters: x/scale + 0.0 turns -0 into +0
        zps = None if zp is None else tuple(int(v) for v in np.asarray(zp, np.float64).ravel())
    elif zp is None:
        zps = (0,) * np.asarray(scale).size
    else:
        zps = tuple(int(v) for v in np.asarray(zp, np.int64).ravel())
    return QuantSpec(format=fmt, scale=tuple(float(v) for v in np.asarray(scale, np.float64).ravel()),
                     zero_point=zps, **kw)


def broadcast_param(p: np.ndarray, rank: int, axis: int | None) -> np.ndarray:
    """A 0-D or 1-D ONNX scale/zero point, reshaped to broadcast against a rank-``rank`` tensor."""
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1 and p.ndim == 1 and axis is None:
        return p.reshape((1,) * rank)
    if p.ndim == 1 and axis is not None:
        shape = [1] * rank
        shape[axis] = p.size
        return p.reshape(shape)
    return p


def activation_spec(fmt: str, scale: np.ndarray, zp: np.ndarray | None, shape: tuple[int, ...],
                    axis: int | None, block_size: int = 0) -> QuantSpec:
    """QuantSpec of an activation from ONNX (scale, zero point, axis, block_size) inputs."""
    scale = np.asarray(scale)
    if block_size:
        return _spec(fmt, scale, zp, granularity="group", axis=axis % len(shape), group_size=block_size)
    if scale.size == 1 and scale.ndim <= 1 and not (axis is not None and scale.ndim == 1 and len(shape) > 0
                                                     and shape[axis % len(shape)] == 1):
        return _spec(fmt, scale.ravel(), None if zp is None else np.asarray(zp).ravel())
    return _spec(fmt, scale, zp, granularity="channel", axis=(1 if axis is None else axis) % len(shape))
