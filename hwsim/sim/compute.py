"""Executors of the dot-product ops (conv2d, linear, matmul): integer and float paths.

Integer path: every activation input and the weight carry an integer QuantSpec with a scale
(activations per tensor; weights per tensor or per output channel). Codes are recovered exactly
from the real values, the products are accumulated in the op's ``accumulator`` (default int32;
``intN`` for an N-bit accumulator) with ``ctx.overflow`` (wrap | saturate) via
:mod:`hwsim.kernel_api`; an int32 bias is added as codes at scale ``s_x * s_w``. If the output tensor is
integer with a scale, the accumulator is requantized with ``ctx.requant`` (exact | onnxruntime |
gemmlowp | tflite, multipliers computed as the reproduced library does); otherwise the output is
the dequantized accumulator ``acc * s_x * s_w``.

Float path (anything else): when both operands are low-precision (not fp32), the unscaled format
values are multiplied exactly and summed by :func:`hwsim.kernel_api.float_matmul` in the op's
accumulator (default fp32, ``ctx.float_order`` summation), then multiplied by the per-tensor /
per-channel scales; with an fp32 operand the product is taken in float64 (the output is rounded
to its tensor's format by the runner). The float reference holds float64 values; its dot
products run in ``ctx.reference_dtype`` (float32 BLAS by default in :func:`hwsim.sim.run`, float64
on request; see ``reference_precision`` there).
"""

from __future__ import annotations

import numpy as np

from hwsim import formats, kernel_api, requant
from hwsim.kernels import conv, packcache
from hwsim.kernels.intgemm import abs_bound
from hwsim.sim import ortfused, qspec, refblas, refcoded, refconv, refvalues
from hwsim.sim.registry import register_exec


# ------------------------------------------------------------------ shared pieces
def _coded_operands(xs: list) -> list:
    """The inputs with only the two operands possibly :class:`~hwsim.sim.qspec.Coded` (read
    through ``ctx.codes_of`` on the integer paths, ``qspec.real_of`` on the others)."""
    return xs[:2] + [qspec.real_of(x) for x in xs[2:]]


def _ref(ctx, *arrays) -> list[np.ndarray]:
    """The float reference's operands of a dot product in its precision (``ctx.reference_dtype``;
    a :class:`~hwsim.sim.refvalues.Biased` rounds to float32 in one pass; a weight stored as
    codes, :func:`_ref_weight_f32`)."""
    return [_ref_weight_f32(a) if isinstance(a, qspec.Coded) and np.dtype(ctx.reference_dtype) == np.float32
            else refvalues.as_dtype(a, ctx.reference_dtype) for a in arrays]


def _ref_operand(ctx, x) -> np.ndarray:
    """The left operand of a reference product on :mod:`hwsim.sim.refcoded`: a float64 array as it
    is (the kernel rounds it to float32 as it splits it: the values :func:`_ref` gives, without
    their pass), anything else :func:`_ref`'s float32 array."""
    return x if isinstance(x, np.ndarray) and x.dtype == np.float64 else _ref(ctx, x)[0]


def _ref_weight_f32(w: qspec.Coded) -> np.ndarray:
    """The float32 values of a constant held as codes (the reference keeps no other Coded: its
    ops' Coded outputs become reals), kept between runs by :mod:`hwsim.kernels.packcache`
    (found by the codes' bytes and the spec, read-only): BERT-base's four layers hold 28M
    weights, 23 ms of converting per reference run."""
    spec = w.spec
    key = ("reference float32", spec.format, spec.scale, spec.zero_point, spec.granularity, spec.axis, spec.group_size)
    return packcache.packed(np.ascontiguousarray(w.codes), key, lambda c: _read_only(qspec.Coded(c, spec).as_float32()))


def _ref_winograd_weights(w) -> np.ndarray:
    """:func:`hwsim.sim.refconv.winograd_weights` of the reference's float32 weight ``w`` (codes,
    or float32 values), kept between runs by :mod:`hwsim.kernels.packcache` as :func:`_ref_weight_f32`
    keeps those (found by the codes' bytes and the spec, or by the float32 values' bytes)."""
    if isinstance(w, qspec.Coded):
        spec = w.spec
        key = ("reference winograd", spec.format, spec.scale, spec.zero_point, spec.granularity, spec.axis, spec.group_size)
        return packcache.packed(np.ascontiguousarray(w.codes), key,  # its float32 weight made, not kept
                                lambda c: _read_only(refconv.winograd_weights(qspec.Coded(c, spec).as_float32())))
    return packcache.packed(np.ascontiguousarray(refvalues.as_dtype(w, np.float32)), ("reference winograd",),
                            lambda a: _read_only(refconv.winograd_weights(a)))


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _ref_bias(ctx, y: np.ndarray, xs: list, axis: int):
    """The float reference's ``y`` plus the op's bias ``xs[2]`` along ``axis``: with
    ``ctx.deferred_sums``, for a 1-D bias of one value per channel, a deferred
    :class:`~hwsim.sim.refvalues.Biased` (its float64 values made when read); ``y`` itself
    without a bias (a :class:`~hwsim.sim.refvalues.Product` with ``ctx.deferred_sums``)."""
    if len(xs) < 3:
        return refvalues.product(y) if ctx.deferred_sums else y
    b = np.asarray(xs[2])
    if b.ndim != 1 or b.size != y.shape[axis]:
        return y + b
    biased = refvalues.Biased(y, b, axis)
    return biased if ctx.deferred_sums else biased.real()


def _int_spec(spec, weight: bool = False) -> bool:
    if spec.scale is None or not formats.get(spec.format).integer_codes:
        return False
    return spec.granularity == "tensor" or (weight and spec.granularity == "channel")


def _acc(ctx, op) -> tuple[int, str]:
    """(accumulator bits, overflow) of an integer layer."""
    if op.accumulator:
        fmt = formats.get(op.accumulator)
        if fmt.integer_codes:
            return fmt.bits, ctx.overflow
        ctx.note(f"{op.name}: accumulator {op.accumulator} on an integer layer: int32 used")
    return 32, ctx.overflow


def _zp(spec) -> np.ndarray:
    return np.zeros(1, np.int64) if spec.zero_point is None else np.asarray(spec.zero_point, np.int64)


def _scales(*specs) -> list[np.ndarray]:
    return [qspec.scale_array(s.scale) for s in specs]


def _bias_codes(ctx, op, bias, s_acc: np.ndarray) -> np.ndarray:
    spec = ctx.spec(op.inputs[2])
    if spec.scale is not None and formats.get(spec.format).integer_codes:
        return qspec.codes(bias, spec)
    return np.rint(np.asarray(bias, np.float64) / s_acc).astype(np.int64)


def _nchw(a: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> contiguous (N, C, H, W) (:func:`hwsim.kernels.conv.nchw_into`)."""
    return conv.nchw_into(a, np.empty((a.shape[0], a.shape[3]) + a.shape[1:3], a.dtype))


def _finish_int(ctx, op, acc, sx, sw, axis: int, nhwc: bool = False):
    """Requantize (integer output) or dequantize (otherwise) an integer accumulator whose
    channels lie along ``axis``; ``nhwc``: ``acc`` is (N, OH, OW, O) (channels last) and the
    result is returned as (N, O, OH, OW).

    An integer output is returned as its codes (a :class:`~hwsim.sim.qspec.Coded`: the next
    integer op reads them, float readers get the reals made from them); 8-bit formats are
    requantized straight into their numpy type (saturating to uint8 / int8 is saturating to the
    format); channels-last codes and reals are returned as (N, C, H, W) views of channels-last
    memory."""
    spec_y = ctx.spec(op.outputs[0])
    axis = -1 if nhwc else axis
    shape = [1] * acc.ndim
    if sw.size > 1:
        shape[axis] = sw.size
    mode = requant.get(ctx.requant)
    if not _int_spec(spec_y, weight=True):
        if mode.name in ("gemmlowp", "tflite"):  # its fixed-point rounding has nothing to round here
            ctx.note(f"requant {mode.name}: layers with float outputs (scope mac_inputs leaves every layer "
                     "output float) dequantize their accumulators exactly; the mode's fixed-point rounding "
                     "applies only to layers with integer outputs")
        if mode.multiplier_dtype is np.float32:  # onnxruntime's float output: float32(acc) * float32(s_x * s_w)
            y = (acc.astype(np.float32) * mode.multiplier(sx, sw, np.ones(1, np.float32)).reshape(shape)).astype(np.float64)
        else:  # scaled in place: one array made, not two (acc's memory order)
            y = acc.astype(np.float64)
            y *= (sx.astype(np.float64) * sw.astype(np.float64)).reshape(shape)
        return _nchw(y) if nhwc else y
    (sy,) = _scales(spec_y)
    fmt = formats.get(spec_y.format)
    mult = mode.multiplier(sx, sw, sy).reshape(-1)
    zp = _zp(spec_y)
    if mode.int32_registers:
        acc = kernel_api.apply_overflow(acc, 32, "wrap")
    narrow = qspec.code_dtype(spec_y)
    # int16-range codes requantized straight to int16 (one clamp); not onnxruntime's float32 path:
    # there int32's top clamp bound rounds to 2**31 and its conversion gives -2**31, so a code
    # saturating high in int32 (then clipped to -32768) would read 32767 in int16
    wide = narrow or (_int16_range(fmt) if mode.multiplier_dtype is not np.float32 else None)
    q = kernel_api.requantize(acc, mult, zp if zp.size > 1 else zp[0], ctx.requant, wide or np.int32, axis)
    if narrow is None and not wide:  # saturating to int16 is saturating to such a format: one clamp, codes kept int16
        q = np.clip(q.astype(np.int64), fmt.qmin, fmt.qmax)
    return _codes_out(ctx, op, q, nhwc)


def _int16_range(fmt):
    """np.int16 when the integer format's codes span exactly int16's range, else None."""
    return np.int16 if (fmt.qmin, fmt.qmax) == (-32768, 32767) else None


def _epilogue_requant(ctx, op, sx, sw):
    """(multiplier (float32), output zero points, (lo, hi)) when the layer's integer output can be
    requantized in the GEMM's epilogue (:func:`hwsim.kernel_api.qgemm_codes`): the requant mode
    is one the GEMM computes there and the output codes are 8-bit; else None."""
    spec_y = ctx.spec(op.outputs[0])
    mode = requant.get(ctx.requant)
    narrow = qspec.code_dtype(spec_y) if _int_spec(spec_y, weight=True) else None
    if not mode.in_gemm_epilogue or mode.int32_registers or narrow is None:
        return None
    (sy,) = _scales(spec_y)
    info = np.iinfo(narrow)
    return mode.multiplier(sx, sw, sy).reshape(-1), _zp(spec_y), (int(info.min), int(info.max))


def _codes_out(ctx, op, q, nhwc: bool = False):
    """The output of an integer layer from its codes ``q`` (channels last, (N, OH, OW, O), with
    ``nhwc``): see :func:`_finish_int`."""
    spec_y = ctx.spec(op.outputs[0])
    if nhwc:  # a view: the next conv reads the codes channels last without a copy either way
        q = q.transpose(0, 3, 1, 2)
    ctx.mark_on_grid(op.outputs[0])
    y = qspec.Coded(q, spec_y)
    if op.outputs[0] in ctx.specs:  # a run-time spec (qdq.run_with_runtime_quant): real values
        return y.real()
    return y


def _add_bias_int(ctx, op, acc, xs, sx, sw, axis, bits, overflow, bound=None):
    """``acc`` plus the bias codes along ``axis`` under the overflow rule; ``bound`` (optional) a
    bound on ``|acc|``: when it and the bias cannot leave the accumulator the rule is the
    identity and is skipped (no passes over ``acc``)."""
    b = _bias_vec(ctx, op, xs, sx, sw)
    if b is None:
        return acc
    shape = [1] * acc.ndim
    shape[axis] = -1
    if acc.dtype == np.int64 and acc.flags.writeable:  # the executors' own accumulator: add in place
        acc += b.reshape(shape)
    else:
        acc = acc + b.reshape(shape)
    if bound is not None and bound + abs_bound(b) < 2 ** (bits - 1):
        return acc
    return kernel_api.apply_overflow(acc, bits, overflow)


def _bias_vec(ctx, op, xs, sx, sw) -> np.ndarray | None:
    """The bias as int64 codes at the accumulator's scale ``sx * sw`` (1-D), None without a bias."""
    if len(xs) < 3:
        return None
    return _bias_codes(ctx, op, xs[2], (sx.astype(np.float64) * sw.astype(np.float64)).reshape(-1))


def _dot_bound(k: int, a, az, b, bz, pairwise: bool) -> int:
    """A bound on ``|sum_k (a - az)(b - bz)|`` (from the dtype for 8-bit codes, no pass over
    them); ``pairwise``: of :func:`_int_dot`'s result, raw products saturated in int16 pairs
    (|raw| <= pairs * 2**15) plus the zero-point terms."""
    za, zb = abs(int(az)), int(np.max(np.abs(bz)))
    if pairwise:
        return (k + 1) // 2 * 2**15 + k * (za * abs_bound(b) + za * zb + zb * abs_bound(a))
    return k * (abs_bound(a) + za) * (abs_bound(b) + zb)


def _pairs_saturate(ctx, sa, sb) -> bool:
    """True when ``ctx.pairwise_int16`` applies: uint8 activations times int8 weights, the only
    pair of types whose x86 AVX2 kernel (VPMADDUBSW) saturates (measured against onnxruntime 1.32
    MatMulInteger and QLinearConv: u8*u8, s8*s8 and s8*u8 sum exactly; see :mod:`hwsim.sim.ortfused`)."""
    if not (sa.format == "uint8" and sb.format == "int8"):
        return False
    if not ctx.pairwise_int16:
        ortfused.note_host_pairs(ctx)
    return ctx.pairwise_int16


def _ort_u8(ctx, op, c: np.ndarray, zp: int, spec):
    """(codes, zero point, spec) as onnxruntime's fused kernel reads an int8 activation it has
    rewritten to uint8 (``code + 128``; :func:`hwsim.sim.ortfused.fused_as_u8`), else unchanged.
    Notes an op onnxruntime leaves in float32 (:func:`hwsim.sim.ortfused.note_runs_in_float`)."""
    ortfused.note_runs_in_float(ctx, op)
    if spec.format != "int8" or not ortfused.fused_as_u8(ctx, op):
        return c, zp, spec
    u = c.view(np.uint8) ^ np.uint8(128) if c.dtype == np.int8 else c.astype(np.int64) + 128  # code + 128
    return u, zp + 128, spec.model_copy(update={"format": "uint8", "zero_point": (zp + 128,)})


def _int_dot(ctx, a, az, b, bz, bits, overflow, pairwise=False, bias=None):
    """``(a - az) @ (b - bz)`` with a (M, K), b (K, N); MLAS-style pairs when ``pairwise``.
    ``bias`` (pairwise only; int64 (N,)) is added with the zero-point terms, in the same pass:
    the caller has proven with :func:`_dot_bound` that the sum cannot leave the accumulator."""
    k = a.shape[-1]
    if not pairwise:
        if (np.any(az) or np.any(bz)) and a.dtype.itemsize == b.dtype.itemsize == 1 \
                and _dot_bound(k, a, az, b, bz, False) < 2 ** (min(bits, 64) - 1):
            # 8-bit codes stay 8-bit (the VNNI route, not int16 pairs of an int64 copy): no partial sum can
            # leave the accumulator, so the exact sum is every overflow rule's result
            raw = kernel_api.int_matmul(a, b, 64, "none")
            raw += _zero_point_terms(a, az, b, bz)
            return raw
        return kernel_api.int_matmul(_less(a, az), _less(b, bz), bits, overflow)
    raw = kernel_api.int_matmul(a, b, bits, overflow, pairwise_int16=True)
    if not np.any(az) and not np.any(bz):
        if bias is None:
            return raw
        corr = bias
    else:
        corr = _zero_point_terms(a, az, b, bz)
        if bias is not None:
            corr = corr + bias
    # |raw| <= (pairs) * 2**15 and |corr| from the operands' bounds (from the dtype for 8-bit codes):
    # when the sum cannot leave the accumulator, the overflow rule is the identity (no passes)
    if _dot_bound(k, a, az, b, bz, True) < 2 ** (bits - 1) and raw.dtype == np.int64 and raw.flags.writeable:
        raw += corr
        return raw
    return kernel_api.apply_overflow(raw + corr, bits, overflow)


def _zero_point_terms(a, az, b, bz):
    """``(a - az) @ (b - bz) - a @ b`` (int64) for a (M, K), b (K, N), ``az`` one zero point, ``bz``
    (1, N) or one: ``-az colsum(b) - bz rowsum(a) + K az bz`` (the row sums only where ``bz`` has a
    non-zero zero point)."""
    corr = -az * b.sum(0, dtype=np.int64) + a.shape[-1] * az * bz
    if np.any(bz):
        corr = corr - bz * a.sum(-1, keepdims=True, dtype=np.int64)
    return corr


def _less(c: np.ndarray, z) -> np.ndarray:
    """Codes ``c`` minus zero points ``z``; zero zero points: the codes as they are (8-bit codes
    stay 8-bit, no int64 copies)."""
    return c - z if np.any(z) else c


def _int_dot_stack(ctx, a, az, b, bz, bits, overflow, pairwise=False):
    """:func:`_int_dot` of each matrix pair of ``a`` (B, M, K) and ``b`` (B, K, N): int64 (B, M, N);
    without int16 pairs all of them in one exact stacked product (:func:`hwsim.kernel_api.int_matmul_stack`)."""
    if not pairwise:
        return kernel_api.int_matmul_stack(_less(a, az), _less(b, bz), bits, overflow)
    return np.stack([_int_dot(ctx, a[i], az, b[i], bz, bits, overflow, True) for i in range(a.shape[0])])


def _lowp(*specs) -> bool:
    return all(not qspec.is_passthrough(s) for s in specs)


def _float_dot(ctx, op, a2, b2) -> np.ndarray:
    """Low-precision float product of 2-D unscaled values in the op's float accumulator."""
    acc = op.accumulator if op.accumulator in ("fp32", "fp16", "bf16") else "fp32"
    if op.accumulator and op.accumulator not in ("fp32", "fp16", "bf16"):
        ctx.note(f"{op.name}: accumulator {op.accumulator} on a float layer: fp32 used")
    if not (np.all(np.isfinite(a2)) and np.all(np.isfinite(b2))):
        ctx.note(f"{op.name}: non-finite operands: product taken in float64")
        return a2 @ b2
    return kernel_api.float_matmul(np.ascontiguousarray(a2), np.ascontiguousarray(b2), acc, ctx.float_order)


def _unscaled_weight(ctx, w, spec_w):
    """(unscaled weight, per-output-channel scale) when the scale factors out, else (w, 1)."""
    if spec_w.scale is None or spec_w.granularity == "group":
        return np.asarray(w, np.float64), np.ones(1)
    return qspec.unscaled(w, spec_w), qspec.scale_array(spec_w.scale).astype(np.float64)


# ------------------------------------------------------------------ linear
@register_exec("linear", coded_inputs=True)
def _linear(ctx, op, xs):
    xs = _coded_operands(xs)
    x, w = xs[0], xs[1]
    if ctx.reference:
        y = None
        if refcoded.applies(ctx, w, 0):  # AMX-BF16 on the codes (its values differ in the last bits)
            y = refcoded.dot(_ref_operand(ctx, x).reshape(-1, x.shape[-1]), w, 0)
        if y is None:
            xr, wr = _ref(ctx, x, w)
            y = refblas.wide_dot(xr.reshape(-1, x.shape[-1]), wr.T)
        return _ref_bias(ctx, y.reshape(x.shape[:-1] + (w.shape[0],)), xs, -1)
    sx, sw = ctx.spec(op.inputs[0]), ctx.spec(op.inputs[1])
    if _int_spec(sx) and _int_spec(sw, weight=True) and (sw.granularity == "tensor" or sw.axis % 2 == 0):
        bits, overflow = _acc(ctx, op)
        s_x, s_w = _scales(sx, sw)
        cx, zx = ctx.codes_of(op.inputs[0], x).reshape(-1, x.shape[-1]), _zp(sx)[0]
        cx, zx, sx = _ort_u8(ctx, op, cx, zx, sx)
        cw = ctx.codes_of(op.inputs[1], w)
        pairs = _pairs_saturate(ctx, sx, sw)
        ep = _epilogue_requant(ctx, op, s_x, s_w)
        q = None if ep is None else _fused_dot(cx, zx, cw.T, _zp(sw), _bias_vec(ctx, op, xs, s_x, s_w), ep, bits, pairs)
        if q is not None:
            return _codes_out(ctx, op, q.reshape(x.shape[:-1] + (w.shape[0],)))
        acc = _int_dot(ctx, cx, zx, cw.T, _zp(sw).reshape(1, -1), bits, overflow, pairs)
        acc = _add_bias_int(ctx, op, acc.reshape(x.shape[:-1] + (w.shape[0],)), xs, s_x, s_w, -1, bits, overflow)
        return _finish_int(ctx, op, acc, s_x, s_w, -1)
    x, w = qspec.real_of(x), qspec.real_of(w)
    if _lowp(sx, sw):
        xu, s_x = qspec.unscaled(x, sx), (1.0 if sx.scale is None else float(sx.scale[0]))
        wu, s_w = _unscaled_weight(ctx, w, sw)
        y = _float_dot(ctx, op, xu.reshape(-1, x.shape[-1]), wu.T) * (s_x * s_w)
        y = y.reshape(x.shape[:-1] + (w.shape[0],))
    else:
        y = _rows_dot(x, w.T)
    return y + xs[2] if len(xs) > 2 else y


def _rows_dot(x: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """``x @ wt`` for x (..., K) as one 2-D GEMM over all leading rows: numpy's batched matmul
    against a shared transposed weight runs 2.4x (float32) to 3.9x (float64) slower on
    (8, 128, 384) x (384, 1536) (measured 2026-11-26, AMD EPYC, OpenBLAS)."""
    if x.ndim <= 2:
        return x @ wt
    return (x.reshape(-1, x.shape[-1]) @ wt).reshape(x.shape[:-1] + (wt.shape[1],))


# ------------------------------------------------------------------ matmul (two activations)
@register_exec("matmul", coded_inputs=True)
def _matmul(ctx, op, xs):
    a, b = xs
    if ctx.reference:
        if refcoded.applies(ctx, b, 1):  # a weight as codes: AMX-BF16 (its values differ in the last bits)
            y = refcoded.dot(_ref_operand(ctx, a).reshape(-1, b.shape[0]), b, 1)
            if y is not None:
                return _ref_bias(ctx, y.reshape(a.shape[:-1] + (b.shape[1],)), xs, -1)
        return _ref_bias(ctx, refblas.matmul(*_ref(ctx, a, b)), xs, -1)
    sa, sb = ctx.spec(op.inputs[0]), ctx.spec(op.inputs[1])
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out_shape = batch + (a.shape[-2], b.shape[-1])
    if _int_spec(sa) and _int_spec(sb, weight=True) and (sb.granularity == "tensor" or sb.axis % b.ndim == b.ndim - 1):
        bits, overflow = _acc(ctx, op)
        s_a, s_b = _scales(sa, sb)
        ca = np.broadcast_to(ctx.codes_of(op.inputs[0], a), batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
        ca, za, sa = _ort_u8(ctx, op, ca, _zp(sa)[0], sa)
        cb = np.broadcast_to(ctx.codes_of(op.inputs[1], b), batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
        pairs = _pairs_saturate(ctx, sa, sb)
        q = _fused_stack(ctx, op, ca, za, cb, _zp(sb), s_a, s_b, bits, pairs)
        if q is not None:
            return _codes_out(ctx, op, q.reshape(out_shape))
        acc = _int_dot_stack(ctx, ca, za, cb, _zp(sb).reshape(1, -1), bits, overflow, pairs)
        return _finish_int(ctx, op, acc.reshape(out_shape), s_a, s_b, -1)
    a, b = qspec.real_of(a), qspec.real_of(b)
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    if _lowp(sa, sb) and sa.granularity == "tensor" and sb.granularity == "tensor":
        s = (1.0 if sa.scale is None else sa.scale[0]) * (1.0 if sb.scale is None else sb.scale[0])
        au, bu = qspec.unscaled(a3, sa), qspec.unscaled(b3, sb)
        return (np.stack([_float_dot(ctx, op, au[i], bu[i]) for i in range(au.shape[0])]) * s).reshape(out_shape)
    if ortfused.mlas_sgemm_applies(ctx, op, a):
        return ortfused.mlas_sgemm(a, b)
    return np.matmul(a, b)


def _fused_stack(ctx, op, ca, za, cb, zb, s_a, s_b, bits, pairs):
    """Output codes (B, M, N) of a stack of integer products ``ca[i] @ cb[i]`` (attention's
    Q K^T and P V) requantized in each GEMM's epilogue (:func:`hwsim.kernel_api.qgemm_codes_stack`,
    what :func:`_fused_dot` gives each matrix; the bound and the zero-point terms made once for
    the stack), or None where that does not apply (then :func:`_int_dot` per matrix and
    :func:`_finish_int`)."""
    ep = _epilogue_requant(ctx, op, s_a, s_b)
    if ep is None or not ca.shape[0]:
        return None
    if _dot_bound(ca.shape[-1], ca, za, cb, zb, pairs) >= 2 ** (min(bits, 32) - 1):  # the same for every matrix
        return None
    mult, zp, y_range = ep
    return kernel_api.qgemm_codes_stack(ca, cb, za, zb, None, mult, zp, y_range, pairs)


# ------------------------------------------------------------------ conv2d
def im2col(x: np.ndarray, kh: int, kw: int, op, channels=None, dtype=None, fill=0,
           channels_last: bool = False) -> np.ndarray:
    """(N, C, H, W) -> (N, OH, OW, C*kh*kw) patches, k = (c, kh, kw) in C order, by
    :func:`hwsim.kernel_api.im2col` (``channels``, ``fill``, ``channels_last`` as there)."""
    return kernel_api.im2col(x, (kh, kw), op.stride, op.padding, op.dilation, channels,
                             x.dtype if dtype is None else dtype, fill, channels_last)


def conv2d_float(x: np.ndarray, w: np.ndarray, op, dot=np.dot) -> np.ndarray:
    """Grouped conv2d by im2col and ``dot(cols (P, K), w (K, Og))``: (N, O, OH, OW) in ``x``'s float
    type (float32 or float64; depthwise convs in float64). ``dot`` np.dot or
    :func:`hwsim.sim.refblas.dot` (the float reference) take the direct paths below."""
    o, cg, kh, kw = w.shape
    og = o // op.groups
    plain = dot is np.dot or dot is refblas.dot  # exact float products: direct paths allowed
    if plain and kernel_api.small_groups(op.groups, w.shape):  # depthwise: a direct convolution
        return kernel_api.float_direct_conv2d(x, w, op.stride, op.padding, op.dilation, op.groups)
    if plain and op.groups == 1 and kh == kw == 1 and not any(op.padding):  # 1x1: no patches
        xs = x[:, :, ::op.stride[0], ::op.stride[1]]
        n, _, oh, ow = xs.shape  # one 2-D product (a broadcast np.matmul per image is ~5x slower)
        return dot(xs.transpose(0, 2, 3, 1).reshape(-1, cg), w.reshape(o, cg).T).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
    if op.groups > 1 and plain:  # every group in one stacked product
        cols = im2col(x, kh, kw, op)
        n, oh, ow, _ = cols.shape
        cols = cols.reshape(n * oh * ow, op.groups, -1).transpose(1, 0, 2)
        stacked = refblas.matmul if dot is refblas.dot else np.matmul
        res = stacked(cols, w.reshape(op.groups, og, -1).transpose(0, 2, 1))  # (groups, P, og)
        return res.transpose(1, 0, 2).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
    last = dot is refblas.dot  # the reference: channels-last patches (k = (kh, kw, c)), ~4x faster to copy
    outs = []
    for g in range(op.groups):
        cols = im2col(x, kh, kw, op, (g * cg, cg), channels_last=last)
        n, oh, ow, k = cols.shape
        wg = w[g * og:(g + 1) * og]
        res = dot(cols.reshape(-1, k), (wg.transpose(0, 2, 3, 1) if last else wg).reshape(og, -1).T)
        outs.append(res.reshape(n, oh, ow, og))
    return (outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)).transpose(0, 3, 1, 2)


def _bias4(y, xs):
    return y + xs[2].reshape(1, -1, 1, 1) if len(xs) > 2 else y


@register_exec("conv2d", coded_inputs=True)
def _conv2d(ctx, op, xs):
    xs = _coded_operands(xs)
    x, w = xs[0], xs[1]
    if ctx.reference:
        if ctx.deferred_sums and ctx.reference_dtype == "float32" and refconv.winograd_applies(op, w.shape):
            return _ref_bias(ctx, refconv.winograd(x, _ref_winograd_weights(w), op), xs, 1)
        if ctx.deferred_sums and refconv.applies(op, w.shape, x, ctx.reference_dtype):  # same values, fewer passes
            return _ref_bias(ctx, refconv.conv2d(x, *_ref(ctx, w), op), xs, 1)
        if ctx.deferred_sums and ctx.reference_dtype == "float32" and \
                refconv.depthwise_applies(op, w.shape, x.shape, xs[2] if len(xs) > 2 else None):
            return refconv.depthwise(x, *_ref(ctx, w), op, xs[2])
        return _ref_bias(ctx, conv2d_float(*_ref(ctx, x, w), op, refblas.dot), xs, 1)
    sx, sw = ctx.spec(op.inputs[0]), ctx.spec(op.inputs[1])
    if _int_spec(sx) and _int_spec(sw, weight=True) and (sw.granularity == "tensor" or sw.axis % 4 == 0):
        bits, overflow = _acc(ctx, op)
        s_x, s_w = _scales(sx, sw)
        zw = _zp(sw)
        cx0, cw = ctx.codes_of(op.inputs[0], x), ctx.codes_of(op.inputs[1], w)
        cx, zx, su = _ort_u8(ctx, op, cx0, _zp(sx)[0], sx)
        pairs = _pairs_saturate(ctx, su, sw)
        gemm = _int_spec(ctx.spec(op.outputs[0])) and w.shape[1] * (w.shape[0] // op.groups) > 1
        nhwc = pairs and gemm
        bias = _bias_vec(ctx, op, xs, s_x, s_w)
        k = int(np.prod(w.shape[1:]))
        adt = np.uint8 if pairs else qspec.code_dtype(su)  # the patches' type: 8-bit codes
        q = _conv2d_fused(ctx, op, cx, zx, cw, zw, bias, s_x, s_w, bits, pairs, adt) \
            if gemm and adt is not None else None
        if q is not None:
            return _codes_out(ctx, op, q, True)
        if nhwc and bias is not None and _dot_bound(k, cx, zx, cw, zw, True) + abs_bound(bias) < 2 ** (bits - 1):
            acc = _conv2d_pairwise(ctx, op, cx, zx, cw, zw, bits, overflow, bias)  # bias added in the product's pass
            return _finish_int(ctx, op, acc, s_x, s_w, 1, nhwc)
        q = None if nhwc else _depthwise_fused(ctx, op, cx0, _zp(sx)[0], cw, zw, bias, s_x, s_w, bits)
        if q is not None:
            return _codes_out(ctx, op, q)
        if nhwc:
            acc = _conv2d_pairwise(ctx, op, cx, zx, cw, zw, bits, overflow)
        else:
            acc = kernel_api.int_conv2d(cx0, cw, op.stride, op.padding, op.dilation,
                                        op.groups, bits, overflow, _zp(sx)[0], zw if zw.size > 1 else zw[0])
        bound = _dot_bound(k, cx, zx, cw, zw, nhwc) if cx.dtype.itemsize == 1 else None
        acc = _add_bias_int(ctx, op, acc, xs, s_x, s_w, -1 if nhwc else 1, bits, overflow, bound)
        return _finish_int(ctx, op, acc, s_x, s_w, 1, nhwc)
    x, w = qspec.real_of(x), qspec.real_of(w)
    if _lowp(sx, sw):
        xu, s_x = qspec.unscaled(x, sx), (1.0 if sx.scale is None else float(sx.scale[0]))
        wu, s_w = _unscaled_weight(ctx, w, sw)
        y = conv2d_float(xu, wu, op, lambda a, b: _float_dot(ctx, op, a, b))
        return _bias4(y * s_x * s_w.reshape(1, -1, 1, 1), xs)
    return _bias4(conv2d_float(x, w, op), xs)


def _conv2d_pairwise(ctx, op, cx, zx, cw, zw, bits, overflow, bias=None) -> np.ndarray:
    """onnxruntime's QLinearConv on x86 AVX2 for u8 x s8 (``ctx.pairwise_int16``): per group an
    NHWC im2col GEMM, k = (kh, kw, c) ascending, padding filled with the input zero point, raw
    code products saturated to int16 in pairs (k = 2t, 2t+1) and the zero-point terms added
    exactly afterwards (:func:`_int_dot`). Depthwise convs (one input and one output channel per
    group) use an exact kernel and do not come here. Measured bit-exact against onnxruntime 1.32
    (AMD EPYC, AVX2 without VNNI) on grouped, strided and padded convs. Returns the int64
    accumulators channels last, (N, OH, OW, O)."""
    o, cg, kh, kw = cw.shape
    og = o // op.groups
    outs = []
    for g in range(op.groups):
        cols = im2col(cx, kh, kw, op, (g * cg, cg), dtype=np.uint8, fill=zx, channels_last=True)  # u8 codes
        n, oh, ow, _ = cols.shape
        cols = cols.reshape(n * oh * ow, -1)
        wg = _group_weight_kxo(cw, g, og)  # int8 codes
        zg = zw[g * og:(g + 1) * og] if zw.size > 1 else zw
        bg = None if bias is None else bias[g * og:(g + 1) * og]
        acc = _int_dot(ctx, cols, zx, wg, zg.reshape(1, -1), bits, overflow, True, bg)
        outs.append(acc.reshape(n, oh, ow, og))
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)


def _fused_dot(a, az, b, bz, bias, ep, bits, pairwise):
    """The output codes of ``(a - az) @ (b - bz) + bias`` requantized in the GEMM's epilogue
    (:func:`hwsim.kernel_api.qgemm_codes`; the same codes as :func:`_int_dot`, the bias add and
    :func:`_finish_int`) with ``ep`` = (multiplier, zero points, range) of ``b``'s columns from
    :func:`_epilogue_requant`; None where the accumulator could overflow (its overflow rule would
    then act) or the kernel declines."""
    if _dot_bound(a.shape[-1], a, az, b, bz, pairwise) + (0 if bias is None else abs_bound(bias)) \
            >= 2 ** (min(bits, 32) - 1):
        return None
    mult, zp, y_range = ep
    return kernel_api.qgemm_codes(a, b, az, bz, bias, mult, zp, y_range, pairwise)


def _conv2d_fused(ctx, op, cx, zx, cw, zw, bias, sx, sw, bits, pairs, adt):
    """The integer conv and :func:`_finish_int` in one, patches of ``cx`` as 8-bit ``adt``: per group
    the NHWC im2col GEMM requantized in its epilogue (:func:`_fused_dot`); with ``pairs`` the
    products saturate in int16 pairs as in :func:`_conv2d_pairwise`, else every sum is exact (as
    :func:`hwsim.kernel_api.int_conv2d`: onnxruntime's QLinearConv where VNNI or its exact kernels
    run). Output codes channels last, (N, OH, OW, O), or None where the fused GEMM does not apply."""
    ep = _epilogue_requant(ctx, op, sx, sw)
    if ep is None:
        return None
    o, cg, kh, kw = cw.shape
    og = o // op.groups
    per = lambda v, g: v if v is None or v.size == 1 else v[g * og:(g + 1) * og]  # noqa: E731
    outs = []
    for g in range(op.groups):
        cols = _fused_patches(cx, kh, kw, op, (g * cg, cg), adt, zx)  # 8-bit codes
        n, oh, ow, _ = cols.shape
        wg = _group_weight_kxo(cw, g, og)  # 8-bit codes
        q = _fused_dot(cols.reshape(n * oh * ow, -1), zx, wg, per(zw, g), per(bias, g),
                       (per(ep[0], g), per(ep[1], g), ep[2]), bits, pairs)
        if q is None:
            return None
        outs.append(q.reshape(n, oh, ow, og))
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)


def _group_weight_kxo(cw: np.ndarray, g: int, og: int) -> np.ndarray:
    """Group ``g``'s weight codes of ``cw`` (O, C, KH, KW) as the (KH*KW*C, og) right operand of the
    channels-last patches' GEMM, C-contiguous and frozen (:func:`hwsim.kernels.packcache.frozen`: the
    GEMM's packing finds its panels by identity); a weight's (same bytes, found by
    :mod:`hwsim.kernels.packcache`) is transposed once and kept: transposing ResNet-18's weights
    took ~17 ms of each b8 run (2026-11-27)."""
    def make(c: np.ndarray) -> np.ndarray:
        return packcache.frozen(c[g * og:(g + 1) * og].transpose(0, 2, 3, 1).reshape(og, -1).T)

    return packcache.packed(np.ascontiguousarray(cw), ("conv weight (K, O)", g, og), make)


def _fused_patches(cx, kh, kw, op, channels, adt, fill):
    """The channels-last patches (N, OH, OW, K) of ``cx`` for :func:`_conv2d_fused`: for an
    unpadded, unstrided 1x1 conv of all channels whose codes are laid out channels last in ``adt``
    already (a fused conv's or depthwise conv's output), those codes themselves, read only (the
    patches would be a copy of them: 23 copies, ~3 ms CPU per MobileNetV2 b8 run, 2026-11-27); else
    :func:`im2col`'s."""
    if kh == kw == 1 and channels == (0, cx.shape[1]) and tuple(op.stride) == (1, 1) and not any(op.padding) \
            and cx.dtype == adt:
        xh = cx.transpose(0, 2, 3, 1)
        if xh.flags.c_contiguous:
            return xh
    return im2col(cx, kh, kw, op, channels, dtype=adt, fill=fill, channels_last=True)


def _depthwise_fused(ctx, op, cx, zx, cw, zw, bias, sx, sw, bits):
    """Output codes (N, C, OH, OW) of a depthwise conv with the bias and the requantization in
    the convolution's pass (:func:`hwsim.kernel_api.qdepthwise_codes`), or None where that does
    not apply (not depthwise, not a requantization the kernels compute, an accumulator bound
    that lets the overflow rule act, or the kernel declines)."""
    o, cg, kh, kw = cw.shape
    ep = _epilogue_requant(ctx, op, sx, sw) if cg == 1 and op.groups == o == cx.shape[1] > 1 else None
    if ep is None or _dot_bound(kh * kw, cx, zx, cw, zw, False) + (0 if bias is None else abs_bound(bias)) \
            >= 2 ** (min(bits, 32) - 1):
        return None
    return kernel_api.qdepthwise_codes(cx, zx, cw, zw if zw.size > 1 else zw[0], bias, ep[0], ep[1], ep[2],
                                       op.stride, op.padding, op.dilation)
