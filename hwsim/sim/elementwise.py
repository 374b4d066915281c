"""Executors of the non-MAC ops: elementwise, norms, pooling and data movement (float64).

With ``requant="onnxruntime"`` a global_avgpool between 8-bit per-tensor QuantSpecs runs as
onnxruntime's fused QLinearGlobalAveragePool, otherwise on a dequantized float32 input as
onnxruntime's float32 kernel sums (:mod:`hwsim.sim.ortfused`).
"""

from __future__ import annotations

import numpy as np

from hwsim import kernel_api
from hwsim.sim import codetable, mlas_math, ortfused, qspec, refvalues
from hwsim.sim.registry import register_exec


def _out_shape(ctx, op):
    return ctx.graph.tensors[op.outputs[0]].shape


_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
           "pow": np.power, "max": np.maximum, "min": np.minimum}


@register_exec("binary", coded_inputs=True)
def _binary(ctx, op, xs):
    if ortfused.one_pass_binary(ctx, op, xs):
        return _binary_values(ctx, op, xs)
    y = codetable.lookup(ctx, op, xs, _binary_values)
    return _binary_values(ctx, op, xs) if y is None else y


def _binary_values(ctx, op, xs):
    if ortfused.qlinear_add_applies(ctx, op, xs):  # reads codes, returns codes
        return ortfused.qlinear_add(ctx, op, xs)
    if ortfused.qlinear_mul_applies(ctx, op, xs):
        return ortfused.qlinear_mul(ctx, op, xs)
    if not ctx.reference and op.fn == "add":
        y = _coded_plus_vector(ctx, op, xs)  # a MatMul's codes plus its bias, straight to codes
        if y is not None:
            return y
    if ctx.reference and op.fn == "add":
        y = refvalues.add(xs[0], xs[1])  # a product plus its bias added as it is read
        if y is not None:
            return y
    xs = [ortfused.dequantized_value(ctx, t, x) for t, x in zip(op.inputs, xs)]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _BINARY[op.fn](xs[0], xs[1])


def _coded_plus_vector(ctx, op, xs) -> qspec.Coded | None:
    """The output codes of the quantized run's Add of 8-bit per-tensor codes (read as DequantizeLinear
    outputs them, float32) and a float vector along their last axis (a MatMul's bias), rounded onto
    the output's 8-bit per-tensor grid as the runner rounds it, in one pass
    (:func:`hwsim.kernels.quantize._add_vector_codes_f32`): the values of
    :func:`hwsim.sim.ortfused.dequantized_real`, numpy's float64 add and
    :func:`hwsim.sim.qspec.quantize_coded` (BERT-base's 24 bias adds per 4 layers: 26 -> 6 ms per
    run, 2026-11-27). None where that does not apply (the caller computes the same values)."""
    from hwsim.sim import boundary

    coded = [i for i, x in enumerate(xs) if isinstance(x, qspec.Coded)]
    if len(coded) != 1 or isinstance(xs[1 - coded[0]], qspec.Deferred):
        return None
    i = coded[0]
    x, v, name = xs[i], np.asarray(xs[1 - i]), op.inputs[i]
    out = ctx.graph.tensors[op.outputs[0]]
    pt, so = x.per_tensor(), out.quant
    if pt is None or not x.shape or x.codes.dtype.itemsize != 1 or not x.codes.flags.c_contiguous or not x.codes.size \
            or v.dtype != np.float64 or v.size != x.shape[-1] or v.ndim > x.ndim or v.shape[-1:] != x.shape[-1:] \
            or tuple(out.shape) != x.shape or {name, op.inputs[1 - i], out.name} & set(ctx.specs) \
            or not ortfused.is_dequantized_float32(ctx, name) or qspec.scale_array(x.spec.scale).dtype != np.float32 \
            or so.granularity != "tensor" or qspec.code_dtype(so) is None or so.scale is None \
            or (boundary.is_integer_type(out.dtype) and qspec.is_passthrough(so)):
        return None
    s_out = qspec.scale_array(so.scale)[0]
    if s_out.dtype != np.float32 or not (np.isfinite(s_out) and s_out > 0):
        return None
    from hwsim import formats
    from hwsim.kernels.quantize import _add_vector_codes_f32

    fmt = formats.get(so.format)
    codes = np.empty(x.shape, qspec.code_dtype(so))
    zp = 0 if so.zero_point is None else int(so.zero_point[0])
    if _add_vector_codes_f32(x.codes.reshape(-1), np.int64(pt[0]), qspec.scale_array(x.spec.scale)[0],
                             np.ascontiguousarray(v.reshape(-1)), s_out, np.float64(zp), np.float64(fmt.qmin),
                             np.float64(fmt.qmax), codes.reshape(-1)):
        return None  # NaN: the plain path says what is wrong
    return qspec.Coded(codes, so)


def erf(x):
    """scipy's float64 erf, imported on first use (scipy.special takes a few tenths of a second to
    import, and only GELU / Erf models need it)."""
    from scipy.special import erf as _erf

    return _erf(x)


def reference_erf(x) -> np.ndarray:
    """float64 erf of the float reference's values in one vectorised pass
    (:mod:`hwsim.kernels.referf`): within 5.2e-15 relative of scipy's :func:`erf` (61% of values
    equal; tests/kernels/test_referf.py), about 4x faster on BERT's GELU. The quantized run keeps
    :func:`erf`, whose values its codes are rounded from."""
    from hwsim.float32_ops import erfc_coefficients
    from hwsim.kernels.referf import _erf

    x = np.ascontiguousarray(x, np.float64)
    out = np.empty_like(x)
    _erf(x.reshape(-1), out.reshape(-1), erfc_coefficients())
    return out


def _gelu(x, erf_of):
    return 0.5 * x * (1.0 + erf_of(x / np.sqrt(2.0)))


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


_UNARY = {
    "relu": lambda x, op: np.maximum(x, 0.0),
    "relu6": lambda x, op: np.clip(x, 0.0, 6.0),
    "gelu": lambda x, op: _gelu(x, erf),
    "gelu_tanh": lambda x, op: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3))),
    "silu": lambda x, op: x * _sigmoid(x),
    "sigmoid": lambda x, op: _sigmoid(x),
    "tanh": lambda x, op: np.tanh(x),
    # (the float64 reference's; a simulated float32 tensor takes ONNX's float32 formula, _FLOAT32_UNARY)
    "hardswish": lambda x, op: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "hardsigmoid": lambda x, op: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "sqrt": lambda x, op: np.sqrt(x),
    "rsqrt": lambda x, op: 1.0 / np.sqrt(x),
    "exp": lambda x, op: np.exp(x),
    "log": lambda x, op: np.log(x),
    "neg": lambda x, op: -x,
    "abs": lambda x, op: np.abs(x),
    "reciprocal": lambda x, op: 1.0 / x,
    "erf": lambda x, op: erf(x),
    "clip": lambda x, op: np.clip(x, -np.inf if op.lo is None else op.lo, np.inf if op.hi is None else op.hi),
    "identity": lambda x, op: x,
}


@register_exec("unary", coded_inputs=True)
def _unary(ctx, op, xs):
    y = codetable.lookup(ctx, op, xs, _unary_values)
    if y is None:
        y = codetable.lookup16(ctx, op, xs, _unary_values)
    return _unary_values(ctx, op, xs) if y is None else y


#: the float reference's own erf (:func:`reference_erf`) where an op's formula has one
_REFERENCE_UNARY = {"gelu": lambda x, op: _gelu(x, reference_erf), "erf": lambda x, op: reference_erf(x)}


#: onnxruntime's float32 Sigmoid and Tanh (``ort_activations``; :mod:`hwsim.sim.mlas_math`)
_ORT_UNARY = {"sigmoid": mlas_math.logistic, "tanh": mlas_math.tanh}
#: said (requant onnxruntime) where a run computes a float32 Sigmoid / Tanh without ``ort_activations``
ORT_ACTIVATIONS_NOTE = ("float32 Sigmoid / Tanh are computed as the float64 function rounded once; onnxruntime "
                        "approximates them (MLAS, a few ulps off), which can move a code of a quantizer after "
                        "them (ort_activations models it)")


#: ONNX HardSwish / HardSigmoid (alpha 1/6, beta 0.5) on float32 tensors with requant="onnxruntime"
#: (the default keeps the float64 function rounded once, which solve's float tails mirror): the formula
#: ``x * max(0, min(1, alpha * x + beta))`` in float32 arithmetic, each operation rounded, as the
#: ONNX reference evaluator and onnxruntime compute it (measured: 0 of 1,002,400 float32 values
#: differ from onnxruntime 1.32; the float64 function rounded once differs in 22% / 12% of them,
#: by an ulp, enough to move a code of a quantizer after them)
_F32_SIXTH, _F32_HALF, _F32_0, _F32_1 = np.float32(1 / 6), np.float32(0.5), np.float32(0), np.float32(1)
_FLOAT32_UNARY = {
    "hardswish": lambda x: x * np.minimum(np.maximum(x * _F32_SIXTH + _F32_HALF, _F32_0), _F32_1),
    "hardsigmoid": lambda x: np.minimum(np.maximum(x * _F32_SIXTH + _F32_HALF, _F32_0), _F32_1),
}


def _unary_values(ctx, op, xs):
    x = ortfused.dequantized_value(ctx, op.inputs[0], xs[0])
    if not ctx.reference and ctx.requant == "onnxruntime" and op.fn in _FLOAT32_UNARY \
            and ctx.graph.tensors[op.inputs[0]].dtype == "float32":
        with np.errstate(invalid="ignore", over="ignore"):
            return _FLOAT32_UNARY[op.fn](np.asarray(qspec.real_of(x), np.float32)).astype(np.float64)
    if not ctx.reference and op.fn in _ORT_UNARY and ctx.graph.tensors[op.inputs[0]].dtype == "float32":
        if ctx.ort_activations:
            return _ORT_UNARY[op.fn](np.asarray(x, np.float32)).astype(np.float64)
        if ctx.requant == "onnxruntime":
            ctx.note(ORT_ACTIVATIONS_NOTE)
    fn = _REFERENCE_UNARY.get(op.fn) if ctx.reference else None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return (fn or _UNARY[op.fn])(np.asarray(x, np.float64), op)


@register_exec("batchnorm")
def _batchnorm(ctx, op, xs):
    x, gamma, beta, mean, var = xs
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if ctx is not None and not ctx.reference and ctx.requant == "onnxruntime" \
            and ortfused.reads_float32(ctx, op.inputs[0]):
        return _batchnorm_f32(x, gamma, beta, mean, var, op.eps, shape)
    inv = gamma / np.sqrt(var + op.eps)
    y = _channel_affine(x, mean, inv, beta)
    return (x - mean.reshape(shape)) * inv.reshape(shape) + beta.reshape(shape) if y is None else y


def _batchnorm_f32(x, gamma, beta, mean, var, eps: float, shape) -> np.ndarray:
    """Inference BatchNormalization of float32 values as onnxruntime's CPU kernel computes it
    (``requant="onnxruntime"``; the default keeps the float64 formula rounded once), in
    float32 arithmetic without fused multiply-adds: ``inv = 1 / sqrt(var + eps)``,
    ``a = gamma * inv``, ``b = beta - mean * a``, ``y = x * a + b`` (measured: 0 of 32,768 values
    differ from onnxruntime 1.32; the float64 formula rounded once differed in 48%, by an ulp)."""
    f32 = np.float32
    g, bt, m, v = (np.asarray(t, f32) for t in (gamma, beta, mean, var))
    a = g * (f32(1) / np.sqrt(v + f32(eps)))
    b = bt - m * a
    y = np.asarray(x, f32) * a.reshape(shape)
    y += b.reshape(shape)
    return y.astype(np.float64)


def _channel_affine(x, mean, inv, beta) -> np.ndarray | None:
    """``(x - mean) * inv + beta`` along axis 1 of float64 ``x`` (N, C, ...) in one pass
    (:func:`hwsim.kernels.onepass._channel_affine`, the same values as numpy's three passes), in
    ``x``'s memory order when it is C-contiguous or channels last; None otherwise."""
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim >= 2 and x.size) or \
            not all(a.dtype == np.float64 and a.shape == (x.shape[1],) for a in (mean, inv, beta)):
        return None
    if x.flags.c_contiguous:
        out = np.empty(x.shape)
        src, dst, inner = x, out, x.size // (x.shape[0] * x.shape[1])
    elif x.ndim == 4 and x.transpose(0, 2, 3, 1).flags.c_contiguous:  # channels last: channel fastest
        out = np.empty_like(x)
        src, dst, inner = x.transpose(0, 2, 3, 1), out.transpose(0, 2, 3, 1), 1
    else:
        return None
    from hwsim.kernels import onepass

    onepass._channel_affine(src.reshape(-1), inner, *(_read_only(a) for a in (mean, inv, beta)), dst.reshape(-1))
    return out


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: numba compiles a kernel once per argument type, and a read-only
    array (a model's constant) is another type than a writable one; handing every small parameter
    read-only keeps one compiled signature (a second one cost 0.3-0.4 s CPU on a first run)."""
    view = a.view()
    view.flags.writeable = False
    return view


@register_exec("softmax", coded_inputs=True)
def _softmax(ctx, op, xs):
    x = xs[0]
    if not ctx.reference and ctx.requant == "onnxruntime" and ortfused.qlinear_applies(ctx, op):
        return ortfused.qlinear_softmax(ctx, op, x)  # reads codes
    x = ortfused.dequantized_value(ctx, op.inputs[0], x)
    y = _softmax_rows(x, op.axis)
    if y is not None:
        return y
    e = np.exp(x - np.max(x, axis=op.axis, keepdims=True))
    return e / np.sum(e, axis=op.axis, keepdims=True)


def _softmax_rows(x, axis: int) -> np.ndarray | None:
    """:func:`_softmax`'s values over the last axis of a C-contiguous float64 ``x``: the shift by
    the row maximum and the division by numpy's pairwise row sum in numba
    (:func:`hwsim.kernels.refnorm._shifted_rows`, :func:`~hwsim.kernels.refnorm._divided_rows`),
    numpy's own ``exp`` between them, in place (BERT's 12 x 128 x 128 attention: 0.95 -> ~0.5 ms,
    2026-11-27); the same values (NaN as NaN). None for anything else."""
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim and axis % x.ndim == x.ndim - 1
            and x.shape[-1] and x.flags.c_contiguous):
        return None
    from hwsim.kernels.refnorm import _divided_rows, _shifted_rows

    c = x.shape[-1]
    e = np.empty(x.shape)
    _shifted_rows(x.reshape(-1, c), e.reshape(-1, c))
    np.exp(e, out=e)
    _divided_rows(e.reshape(-1, c))
    return e


@register_exec("layernorm")
def _layernorm(ctx, op, xs):
    x = xs[0]
    if op.rms:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + op.eps) * xs[1]
    y = _layernorm_rows(x, xs[1], xs[2] if len(xs) > 2 else None, op.eps)
    if y is not None:
        return y
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + op.eps) * xs[1]
    return y + xs[2] if len(xs) > 2 else y


def _layernorm_rows(x, gamma, beta, eps: float) -> np.ndarray | None:
    """:func:`_layernorm`'s values (numpy's means, in numpy's order of additions, and its
    elementwise steps) in one kernel over the rows of a C-contiguous float64 ``x`` with float64
    ``gamma`` and ``beta`` of one value per column (:func:`hwsim.kernels.refnorm._layernorm_rows`;
    BERT-base's LayerNorm of 128 x 768: 0.8-1.3 ms -> ~0.2 ms, 2026-11-27); None for anything else."""
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim and x.shape[-1] and x.flags.c_contiguous):
        return None
    c = x.shape[-1]
    if any(not isinstance(v, np.ndarray) or v.dtype != np.float64 or v.shape != (c,)
           for v in ((gamma,) if beta is None else (gamma, beta))):
        return None
    from hwsim.kernels.refnorm import _layernorm_rows as rows

    out = np.empty(x.shape)
    rows(x.reshape(-1, c), _read_only(gamma), _read_only(gamma if beta is None else beta), beta is not None,
         np.float64(eps), out.reshape(-1, c))
    return out


@register_exec("rotary")
def _rotary(ctx, op, xs):
    """Hugging Face Llama rotary embedding (rotate_half convention) on the first rotary_dim dims."""
    x = xs[0]
    rd = op.rotary_dim or x.shape[-1]
    inv = op.base ** (-np.arange(0, rd, 2, dtype=np.float64) / rd)
    ang = np.outer(op.offset + np.arange(x.shape[2], dtype=np.float64), inv)
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    xr = x[..., :rd]
    half = rd // 2
    rot = np.concatenate([-xr[..., half:], xr[..., :half]], -1)
    return np.concatenate([xr * cos + rot * sin, x[..., rd:]], -1)


@register_exec("pool", coded_inputs=True)
def _pool(ctx, op, xs):
    x = xs[0]
    if op.kind == "max":
        return _max_pool(ctx, op, x)
    if not ctx.reference and ctx.requant == "onnxruntime" and ortfused.qlinear_applies(ctx, op):
        if ortfused.qlinear_avgpool_is_global(op, x.shape):  # onnxruntime's fallback_to_global
            return ortfused.qlinear_global_avgpool(ctx, op, np.asarray(qspec.real_of(x)))
        return ortfused.qlinear_avgpool(ctx, op, x, _out_shape(ctx, op)[2:])
    x = ortfused.dequantized_value(ctx, op.inputs[0], x)
    if not ctx.reference and ortfused.reads_float32(ctx, op.inputs[0]):  # onnxruntime's float32 order
        return ortfused.float32_avgpool(x, op, _out_shape(ctx, op)[2:]).astype(np.float64)
    n, c, h, w = x.shape
    _, _, oh, ow = _out_shape(ctx, op)
    (kh, kw), (sh, sw) = op.kernel, op.stride
    pt, pl, pb, pr = op.padding
    eh = max(0, (oh - 1) * sh + kh - (h + pt + pb))
    ew = max(0, (ow - 1) * sw + kw - (w + pl + pr))
    xp = np.full((n, c, h + pt + pb + eh, w + pl + pr + ew), np.nan)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    total = np.nansum(win, axis=(-2, -1))
    if op.count_include_pad:
        inside = np.zeros(xp.shape[2:])
        inside[:h + pt + pb, :w + pl + pr] = 1.0
    else:
        inside = np.isfinite(xp[0, 0]).astype(np.float64)
    cnt = np.lib.stride_tricks.sliding_window_view(inside, (kh, kw))[::sh, ::sw][:oh, :ow].sum(axis=(-2, -1))
    return total / cnt


def _max_pool(ctx, op, x):
    """Max pooling, padding ignored (``np.nanmax`` over each NaN-padded window), by
    :func:`hwsim.kernel_api.max_pool2d`. Without rounding anything it pools what it is given:
    the codes of a :class:`~hwsim.sim.qspec.Coded` input whose output keeps its spec (the largest
    code is the code of the largest real; the runner's rounding onto the same grid would give it
    back), and the float product of a reference :class:`~hwsim.sim.refvalues.Biased` (its
    per-channel bias added after the max, which ``float64(y) + bias`` being monotone in ``y``
    leaves unchanged); anything else as real values."""
    oh, ow = _out_shape(ctx, op)[2:]
    pool = lambda v: kernel_api.max_pool2d(v, op.kernel, op.stride, op.padding, (oh, ow))  # noqa: E731
    if isinstance(x, qspec.Coded) and not ctx.reference and x.per_tensor() is not None \
            and ctx.spec(op.outputs[0]) == x.spec and x.codes.dtype.itemsize == 1 \
            and kernel_api.max_pool_windows_inside(x.shape[2:], op.kernel, op.stride, op.padding, (oh, ow)):
        ctx.mark_on_grid(op.outputs[0])
        return qspec.Coded(pool(x.codes), x.spec)
    if isinstance(x, refvalues.Biased) and x.axis == 1:
        return refvalues.Biased(pool(x.y), x.bias, 1)
    return pool(np.asarray(ortfused.dequantized_value(ctx, op.inputs[0], x), np.float64))


@register_exec("global_avgpool")
def _gap(ctx, op, xs):
    if not ctx.reference and ctx.requant == "onnxruntime" and ortfused.qlinear_applies(ctx, op):
        return ortfused.qlinear_global_avgpool(ctx, op, xs[0])
    if not ctx.reference and ortfused.reads_float32(ctx, op.inputs[0]):
        return ortfused.float32_global_avgpool(xs[0])
    return np.mean(xs[0], axis=(2, 3), keepdims=True)


_REDUCE = {"mean": np.mean, "sum": np.sum, "max": np.max, "min": np.min}


@register_exec("reduce")
def _reduce(ctx, op, xs):
    return _REDUCE[op.fn](xs[0], axis=tuple(op.axes), keepdims=op.keepdims)


@register_exec("embedding", own_rounding=True)
def _embedding(ctx, op, xs):
    """Rows of the table; in the quantized run each row gathered is rounded as a DequantizeLinear
    output (the same values as rounding the whole table first: the rounding is elementwise), so
    a 30,522-row vocabulary is not rounded whole for 1,024 ids."""
    if not ctx.reference:
        xs = [ortfused.dequantized_input(ctx, op.inputs[0], xs[0]), *xs[1:]]
    table = xs[1].table if isinstance(xs[1], qspec.TableRows) else xs[1]  # rows quantized as read
    ids, rows = np.asarray(xs[0]).astype(np.int64), np.shape(table)[0]
    if ids.size and not -rows <= int(ids.min()) <= int(ids.max()) < rows:  # negative ids count from the end (ONNX)
        from hwsim.errors import InputDataError

        bad = int(ids.max()) if int(ids.max()) >= rows else int(ids.min())
        raise InputDataError(f"embedding '{op.name}': id {bad} is outside the table of {rows} rows; "
                             f"inputs feeding it must hold ids in [0, {rows - 1}]")
    if isinstance(xs[1], qspec.TableRows):
        return ortfused.dequantized_input(ctx, op.inputs[1], xs[1].take(ids))
    return xs[1][ids] if ctx.reference else ortfused.dequantized_input(ctx, op.inputs[1], xs[1][ids])


@register_exec("gather")
def _gather(ctx, op, xs):
    return np.take(xs[0], np.asarray(xs[1]).astype(np.int64), axis=op.axis)


@register_exec("concat")
def _concat(ctx, op, xs):
    return np.concatenate(xs, axis=op.axis)


def _moved(ctx, op, x, move):
    """``move`` (a reshape or transpose) of ``x``: of its codes when ``x`` is a
    :class:`~hwsim.sim.qspec.Coded` whose spec the output keeps (per tensor: moving elements
    changes no code, and rounding the moved reals onto the same grid would give them back; see
    :func:`hwsim.sim.qspec._stored_codes_on_grid`), else of its real values."""
    if isinstance(x, qspec.Coded) and not ctx.reference and x.per_tensor() is not None \
            and ctx.spec(op.outputs[0]) == x.spec and op.inputs[0] not in ctx.specs:
        ctx.mark_on_grid(op.outputs[0])
        return qspec.Coded(move(x.codes), x.spec)
    if isinstance(x, refvalues.Product):  # the reference's product moved as it is (its float32 values)
        return refvalues.Product(move(x.y))
    return move(ortfused.dequantized_value(ctx, op.inputs[0], x))


def _reshape_to_output(ctx, op, xs):
    return _moved(ctx, op, xs[0], lambda v: np.reshape(v, _out_shape(ctx, op)))


for _kind in ("reshape", "flatten", "squeeze", "unsqueeze"):
    register_exec(_kind, coded_inputs=True)(_reshape_to_output)


@register_exec("transpose", coded_inputs=True)
def _transpose(ctx, op, xs):
    return _moved(ctx, op, xs[0], lambda v: np.transpose(v, op.perm))


@register_exec("slice")
def _slice(ctx, op, xs):
    x = xs[0]
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(op.starts, op.ends, op.axes, op.steps):
        idx[a % x.ndim] = slice(s, e, st)
    return x[tuple(idx)]


@register_exec("kv_cache_read")
def _kv_read(ctx, op, xs):
    return xs[0]


@register_exec("kv_cache_append")
def _kv_append(ctx, op, xs):
    return np.concatenate(xs, axis=2)
from hwsim.sim import blockint8, macops, onnxnode  # noqa: E402,F401  (register the executors of imported-ONNX ops)
