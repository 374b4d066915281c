"""Executors of the explicit quantization ops: ONNX QuantizeLinear, DequantizeLinear and Cast.

Real-value view (see :mod:`hwsim.sim.qspec`): ``quantize`` rounds its input onto the grid of its
output tensor's QuantSpec (``saturate`` as the op says; integers and FP4/FP6 always saturate);
``dequantize`` only changes the type, so it rounds to its output's float type (float32 / float16);
``cast`` to a float format rounds half-even with the op's ``saturate``; cast to an integer format
truncates toward zero and wraps two's complement (ml_dtypes / numpy ``astype``, what the ONNX
reference does). Scales and zero points normally sit on the QuantSpecs; when the importer passes
them as run-time inputs (inputs 1 and 2: graph inputs, or computed), the values given are used,
always, and in the float reference too (the op then works on codes, which the reference cannot
undo).

The float reference treats quantize, dequantize and casts to float formats as identities (it is
the unquantized model); casts to integer formats keep their meaning there too.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwsim import formats
from hwsim.errors import InputDataError
from hwsim.graph.quant import QuantSpec
from hwsim.sim import qspec
from hwsim.sim.registry import register_exec


_NUMPY_INTS = ("uint8", "int8", "uint16", "int16", "int32", "uint4", "int4", "uint2", "int2")


def _scale_values(ctx, name: str, x) -> np.ndarray:
    """Run-time scale values in their tensor's own float type (bfloat16 read as float32)."""
    return np.asarray(x).astype(ctx.graph.tensors[name].dtype.replace("bfloat16", "float32"))


def _zero_point_values(ctx, name: str, x) -> np.ndarray:
    """Run-time zero-point codes (int64) of tensor ``name`` whatever its own spec."""
    return np.asarray(_domain(x, ctx.spec(name))).astype(np.int64)


def _runtime_spec(ctx, op, name: str, xs: list) -> QuantSpec | None:
    """The QuantSpec of tensor ``name`` with the scale / zero point given at run time as the op's
    inputs 1 and 2 (a Q/DQ whose parameters are graph inputs or computed), else None.

    The values given are always the ones used: the tensor's own spec (which calibration fills
    with scale 1.0 for integer boundary types) only contributes format and granularity.
    """
    if len(xs) < 2:
        return None
    base = ctx.spec(name)
    if op.block_size:
        base = base.model_copy(update={"granularity": "group", "axis": op.axis % np.ndim(xs[0]),
                                       "group_size": op.block_size})
    elif op.axis is not None:
        base = base.model_copy(update={"granularity": "channel", "axis": op.axis % np.ndim(xs[0])})
    scale = _scale_values(ctx, op.inputs[1], xs[1])
    divides = op.op == "quantize"
    if not np.all(np.isfinite(scale)) or (divides and np.any(scale == 0)):
        bad = scale[~np.isfinite(scale) | ((scale == 0) if divides else False)].reshape(-1)[0]
        raise InputDataError(f"{op.op} '{op.name}': scale '{op.inputs[1]}' holds {float(bad):g}; a run-time scale "
                             f"must be finite{' and non-zero (the op divides by it)' if divides else ''}")
    upd: dict = {"scale": tuple(float(v) for v in scale.reshape(-1))}
    if len(xs) > 2:
        if ctx.graph.tensors[op.inputs[2]].dtype in _NUMPY_INTS:
            upd["zero_point"] = tuple(int(v) for v in _zero_point_values(ctx, op.inputs[2], xs[2]).reshape(-1))
        else:  # float8/float4 zero points are 0; their presence matters (-0 -> +0)
            upd["zero_point"] = (0,) * scale.size
    elif formats.get(base.format).integer_codes:
        upd["zero_point"] = (0,) * scale.size
    else:
        upd["zero_point"] = None
    return base.model_copy(update=upd)


#: codes of an int32 bias read by an op with run-time scales (its scale s_x * s_w is applied by the op)
_BIAS_CODES = QuantSpec(format="int32", scale=(1.0,), zero_point=(0,))


def run_with_runtime_quant(ctx, op, xs: list, executor) -> np.ndarray:
    """Run compute op ``op`` (conv2d, conv3d, linear, matmul) whose scales and zero points, some or all,
    are the values of its trailing ``runtime_quant`` inputs.

    For each of x (input 0), w (input 1) and y (the output) that has a run-time scale or zero
    point, a QuantSpec is built from the values given (a missing scale is 1.0, a missing zero
    point 0; more than one value for w: one per output channel). The operands' codes are read
    under their tensors' own specs (codes are what ONNX passes, whatever grid hwsim keeps them
    on), turned into real values under the run-time specs, and the op's own executor runs on
    them with those specs standing in for the tensors' (``ctx.specs``): the same integer
    kernels and the same requantization (``ctx.requant``) as constant scales. An output with a
    run-time spec is returned as codes in its tensor's own domain. The float reference runs the
    same arithmetic: inputs and output are codes, which a float model cannot stand in for.
    """
    n = len(op.operands)
    params = {role: (name, x) for role, name, x in zip(op.runtime_quant, op.inputs[n:], xs[n:])}
    specs = {}
    for key, name in (("x", op.inputs[0]), ("w", op.inputs[1]), ("y", op.outputs[0])):
        if f"{key}_scale" in params or f"{key}_zero_point" in params:
            specs[name] = _operand_spec(ctx, op, key, name, params)
    if n > 2:
        specs[op.inputs[2]] = _BIAS_CODES
    values = [_from_domain(_domain(x, ctx.spec(t)), specs[t]) if t in specs else x
              for t, x in zip(op.inputs[:n], xs[:n])]
    sub = replace(ctx, reference=False, specs=specs)
    y = qspec.real_of(executor(sub, op.model_copy(update={"inputs": op.operands, "runtime_quant": ()}), values))
    out = op.outputs[0]
    return _from_domain(_domain(y, specs[out]), ctx.spec(out)) if out in specs else y


def _operand_spec(ctx, op, key: str, name: str, params: dict) -> QuantSpec:
    """Per-tensor spec of ``name`` from the run-time ``{key}_scale`` / ``{key}_zero_point``; for
    the weight (``key == "w"``) per output channel when either holds more than one value."""
    base, dtype = ctx.spec(name), ctx.graph.tensors[name].dtype
    if not formats.get(base.format).integer_codes:  # an integer-typed tensor kept as its codes
        fmt = _format_or_none(dtype)
        if fmt is None or not fmt.integer_codes:
            raise InputDataError(f"{op.op} '{op.name}': '{name}' has type {dtype}; run-time scales and "
                                 "zero points apply to integer codes")
        base = QuantSpec(format=fmt.name)
    scale = (_scale_values(ctx, *params[f"{key}_scale"]).reshape(-1) if f"{key}_scale" in params
             else np.ones(1, np.float32))
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise InputDataError(f"{op.op} '{op.name}': {key}_scale '{params[f'{key}_scale'][0]}' is {scale.tolist()}; "
                             "scales must be finite and positive")
    zp = (_zero_point_values(ctx, *params[f"{key}_zero_point"]).reshape(-1) if f"{key}_zero_point" in params
          else np.zeros(1, np.int64))
    count = max(scale.size, zp.size)
    if key != "w" and count > 1:
        raise InputDataError(f"{op.op} '{op.name}': {key}_scale / {key}_zero_point of '{name}' hold {count} "
                             "values; hwsim takes one per tensor here")
    upd = {"scale": tuple(float(v) for v in np.broadcast_to(scale, (count,))),
           "zero_point": tuple(int(v) for v in np.broadcast_to(zp, (count,))),
           "granularity": "tensor", "axis": None, "group_size": None}
    if count > 1:
        upd.update(granularity="channel", axis=-1 if op.op == "matmul" else type(op).weight_out_axis)
    return base.model_copy(update=upd)


def _view(spec: QuantSpec) -> QuantSpec:
    """A codes tensor's own spec: calibration gives integer boundary tensors scale 1.0 (one value,
    whatever their granularity): that is a per-tensor view."""
    if spec.scale is not None and len(spec.scale) == 1 and spec.granularity != "tensor":
        return spec.model_copy(update={"granularity": "tensor", "axis": None, "group_size": None,
                                       "zero_point": None if spec.zero_point is None else spec.zero_point[:1]})
    return spec


def _domain(x: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Values of tensor ``x`` in its format's own domain: integer codes, or unscaled float values."""
    spec = _view(spec)
    if formats.get(spec.format).integer_codes:
        return qspec.codes(x, spec).astype(np.float64) if spec.scale is not None else np.rint(np.asarray(x, np.float64))
    return qspec.unscaled(x, spec) if spec.scale is not None else np.asarray(x, np.float64)


def _from_domain(v: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Inverse of :func:`_domain`: real values of domain values ``v`` under ``spec``."""
    spec = _view(spec)
    if spec.scale is None:
        return np.asarray(v, np.float64)
    if formats.get(spec.format).integer_codes:
        return qspec.from_codes(np.rint(v).astype(np.int64), spec)
    return np.asarray(v, np.float64) * qspec._broadcast(qspec.spec_params(spec, np.shape(v))[0], spec,
                                                        np.shape(v), 1.0).astype(np.float64)


@register_exec("quantize")
def _quantize(ctx, op, xs):
    runtime = _runtime_spec(ctx, op, op.outputs[0], xs)
    if ctx.reference and runtime is None:
        return xs[0]
    spec = runtime or ctx.spec(op.outputs[0])
    fmt = formats.get(spec.format)
    try:
        if isinstance(fmt, formats.FloatFormat) and fmt.bits < 8 and spec.zero_point is not None and spec.scale is not None:
            y = _quantize_fp4_fp6(xs[0], spec)
        else:
            y = qspec.quantize(xs[0], spec, saturate=op.saturate, seed=ctx.seed)
    except InputDataError as exc:
        raise InputDataError(f"quantize '{op.name}' -> '{op.outputs[0]}': {exc}") from None
    return y if runtime is None else _from_domain(_domain(y, runtime), ctx.spec(op.outputs[0]))


def _quantize_fp4_fp6(x, spec: QuantSpec) -> np.ndarray:
    """FP4/FP6 QuantizeLinear with a zero point: ONNX adds it (0.0) before the cast, so -0 -> +0."""
    scale, _, axis, gs = qspec.spec_params(spec, np.shape(x))
    s = qspec._broadcast(scale, spec, np.shape(x), 1.0)
    t = np.asarray(x, np.float64).astype(s.dtype) / s + s.dtype.type(0.0)
    v = formats.get(spec.format).quantize(t)
    return v * s.astype(np.float64)


@register_exec("dequantize")
def _dequantize(ctx, op, xs):
    x = xs[0]
    runtime = _runtime_spec(ctx, op, op.inputs[0], xs)
    if runtime is not None:  # run-time scale: (code - zero point) * scale, also in the reference
        x = _from_domain(_domain(x, ctx.spec(op.inputs[0])), runtime)
    return round_to_dtype(x, ctx.graph.tensors[op.outputs[0]].dtype)


def round_to_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round real values to a float graph type (float16, bfloat16, float32; float64 unchanged)."""
    key = dtype.lower().replace("_", "")
    if key in ("float16", "half"):
        return np.asarray(x).astype(np.float16).astype(np.float64)
    if key == "bfloat16":
        return formats.cast(np.asarray(x, np.float64), "bf16", saturate=False)
    if key in ("float32", "float"):
        return np.asarray(x).astype(np.float32).astype(np.float64)
    return np.asarray(x, np.float64)


def _ort_e4m3fn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """onnxruntime's FLOAT8E4M3FN saturate=0 cast: |x| in [480, 496) gives +-448, not NaN."""
    band = (np.abs(x) >= 480) & (np.abs(x) < 496)
    return np.where(band, np.copysign(448.0, x), y)


def _format_or_none(name: str):
    from hwsim.errors import UnknownFormatError

    try:
        return formats.get(name)
    except UnknownFormatError:
        return None


def cast_values(x: np.ndarray, to: str, saturate: bool, ort_e4m3fn: bool = False,
                round_mode: str = "up") -> np.ndarray:
    """ONNX Cast of real values ``x`` to the format ``to`` (float64 values of the result).

    ``saturate`` applies to formats of at most 8 bits, as in ONNX (fp16/bf16 overflow to inf);
    ``round_mode`` to e8m0 only (ONNX opset 24).
    """
    x = np.asarray(x, np.float64)
    fmt = _format_or_none(to)
    if fmt is None:  # a numpy type without a hwsim format (int64, bool, float64)
        with np.errstate(invalid="ignore", over="ignore"):
            return x.astype(np.dtype(to)).astype(np.float64)
    if fmt.integer_codes:
        with np.errstate(invalid="ignore"):
            t = np.trunc(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)).astype(np.int64)
        t = t & ((1 << fmt.bits) - 1)
        if fmt.signed:
            t = np.where(t >= (1 << (fmt.bits - 1)), t - (1 << fmt.bits), t)
        return t.astype(np.float64)
    if fmt.name == "e8m0":
        return fmt.quantize(x, rounding=round_mode, saturate=saturate)
    if not isinstance(fmt, formats.FloatFormat):
        return qspec.quantize(x, QuantSpec(format=fmt.name), saturate=saturate)
    y = formats.cast(x, fmt, saturate=saturate if fmt.bits <= 8 else False)
    if ort_e4m3fn and fmt.name == "fp8_e4m3fn" and not saturate:
        y = _ort_e4m3fn(x, y)
    return y


@register_exec("cast")
def _cast(ctx, op, xs):
    fmt = _format_or_none(op.to)
    if ctx.reference and fmt is not None and not fmt.integer_codes:
        return xs[0]
    y = cast_values(xs[0], op.to, op.saturate, ctx.ort_e4m3fn_cast, op.round_mode)
    return round_to_dtype(y, ctx.graph.tensors[op.outputs[0]].dtype) if fmt is not None and fmt.name in ("fp32", "fp64") else y


def dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """ONNX DynamicQuantizeLinear in float32: (uint8 codes, scale, zero point)."""
    x32 = np.asarray(x, np.float32)
    lo = np.float32(min(0.0, float(x32.min()) if x32.size else 0.0))
    hi = np.float32(max(0.0, float(x32.max()) if x32.size else 0.0))
    scale = np.float32((hi - lo) / np.float32(255))
    if scale == 0:
        return np.zeros(x32.shape, np.uint8), scale, np.uint8(0)
    zp = np.uint8(np.clip(np.rint(np.float32(0) - lo / scale), 0, 255))
    y = np.clip(np.rint(x32 / scale) + np.float32(zp), 0, 255).astype(np.uint8)
    return y, scale, zp


@register_exec("dynamic_quantize")
def _dynamic_quantize(ctx, op, xs):
    """Outputs carry codes (their uint8 specs have no static scale: real value == code)."""
    y, scale, zp = dynamic_quantize(xs[0])
    return {"y": y, "scale": scale, "zero_point": zp}[op.part].astype(np.float64)
