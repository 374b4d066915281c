"""QDQ semantics of the non-MAC ops, and what onnxruntime's fused QLinear kernels do instead.

A QDQ graph ``DequantizeLinear -> op -> QuantizeLinear`` literally means: dequantize to float32
(``(code - zp) * scale``, rounded to float32), run the float op in float32, quantize with
``round_half_even(y / scale) + zp`` (division in float32). onnxruntime runs it so with
``graph_optimization_level=ORT_DISABLE_ALL``; with the default ``ORT_ENABLE_ALL`` its QDQ
transformer fuses the pattern into a com.microsoft QLinear op with its own arithmetic (MLAS).

What the simulator does (measured against onnxruntime 1.32, CPU, x86-64 AVX2/AVX-512 host; tests in
``tests/sim/test_sim_qdq_ort.py``):

``requant="exact"`` (the default) and ``"onnxruntime"`` alike
    A float op (anything but conv2d / linear / matmul and the explicit quantize / dequantize /
    cast ops) reading a tensor with an integer QuantSpec whose scales are float32 sees that
    tensor's value rounded to float32 (:func:`dequantized_input`), as DequantizeLinear outputs
    it; the op runs in float64 and the runner rounds its output onto the output's QuantSpec via
    float32, so for add / sub / mul / max / min of two such inputs the result is the correctly
    rounded float32 operation, i.e. the literal QDQ semantics.
Conv / Gemm / MatMul (QLinearConv, QGemm, QLinearMatMul)
    Modelled in :mod:`hwsim.sim.compute` (``MlasRequantizeOutput``: float32(acc) times the float32
    multiplier ``s_x * s_w / s_y``, half-even); bit-exact with ``requant="onnxruntime"``.
    On x86 without VNNI (AVX2) MLAS multiplies uint8 activations by int8 weights with VPMADDUBSW,
    which saturates each pair of products to int16 before summing; ``pairwise_int16=True`` models it
    (k pairs (2t, 2t+1); for QLinearConv k = (kh, kw, c) per group as in MLAS's NHWC im2col,
    padding holding the input zero point; depthwise convs use an exact kernel). Measured against
    onnxruntime 1.32 on an AMD EPYC AVX2 host: MatMulInteger and QLinearConv u8*s8 saturate;
    u8*u8, s8*s8, s8*u8 and ConvInteger sum exactly. With VNNI or on ARM leave it off. On x86,
    onnxruntime's QDQ transformer also rewrites int8 activations of the ops it fuses to uint8 (+128),
    which then saturate too: with ``pairwise_int16`` the simulator applies that rewrite to exactly
    the convs, gemms and matmuls onnxruntime fuses (:func:`fused_as_u8`).
QLinearGlobalAveragePool (``requant="onnxruntime"``)
    :func:`qlinear_global_avgpool`: integer sum of codes minus ``zp_x * N``, times the float32
    multiplier ``s_x / (s_y * float32(N))``, both in float32, round half-even, plus ``zp_y``,
    saturate (MLAS ``MlasQLinearGlobalAveragePoolNchw``).
QLinearAveragePool (``requant="onnxruntime"``, 8-bit per-tensor QDQ AveragePool)
    :func:`qlinear_avgpool`: codes dequantized to float32, :func:`float32_avgpool`, then
    ``nearbyint(y / s_y + zp_y)`` in float32 (``zp_y + 128`` for an int8 output the x86 transformer
    rewrites to uint8); a window the size of the image without padding runs as
    QLinearGlobalAveragePool, as onnxruntime does. AveragePool on dequantized float32 values
    (``exact``): :func:`float32_avgpool`, each window summed in float32 row by row, divided in
    float32. Both 0 mismatches in the tests (u8 and s8, six kernel / stride / padding / ceil-mode
    cases); found by ``benchmarks/bench_process.py`` on PP-OCRv4's recogniser quantized by
    ``quantize_static`` (1527 of 2,120,000 outputs differed from onnxruntime; now 0).
GlobalAveragePool on dequantized float32 values (``exact``, and ``onnxruntime`` when not fused)
    :func:`float32_global_avgpool`: the float32 sum in MLAS's order, measured to match onnxruntime's
    float kernel on every element (a float64 mean differs on about 70% of float outputs, and after
    requantization on 0.3% of codes where the exact mean is a tie): four float32 lanes over the
    first ``4 * (N // 4)`` values of each channel, lanes reduced as ``(l0 + l2) + (l1 + l3)``, the
    remaining ``N % 4`` values added one by one, then divided by ``float32(N)``.
QLinearAdd (``requant="onnxruntime"``: a QDQ Add whose inputs and output are 8-bit per tensor)
    :func:`qlinear_add`: MLAS's x86 AVX2 kernel (``MlasQLinearAddKernelAvx2Helper``), not the
    literal formula: float32 ratios ``s_a / s_c``, ``s_b / s_c``, a fixed part holding the zero
    points, two FMAs per element on the raw codes (int8 codes that the x86 QDQ transformer rewrites
    read as uint8). Measured against onnxruntime 1.32 (AMD EPYC, AVX2): 0 of 2 x 1,310,720 code pairs
    differ (20 scale draws, u8 and s8), where the literal formula differed in 7 (u8) and 4 (s8),
    each one output step at a rounding tie; and the bench_sim QDQ models that differed from
    onnxruntime (residual and GELU adds) now match.
QLinearMul (``requant="onnxruntime"``: a QDQ Mul of 8-bit per-tensor inputs and output)
    :func:`qlinear_mul`: MLAS's x86 kernel (SSE2), the exact integer product of the zero-point-free
    codes times the float32 ratio ``s_a * s_b / s_c``, plus ``zp_c`` in float32, half-even,
    saturated. Found on PP-OCRv4's recogniser (its hard-swish Muls; 17 of 115,200 codes of the
    first differed by one step at ties, 146 of its 265,000 outputs); now 0.
QLinearSoftmax near exact ties
    1-2 of 196,608 codes per softmax of the bench_sim BERT differ by one step where the float32
    quotient is exactly x.5: onnxruntime's float32 row sum is not added in the sequential order
    used here, and no single lane order tried fits every layer; not modelled.
Float Conv / Gemm that onnxruntime leaves unfused (all of them under ORT_DISABLE_ALL; s8-activation
    Convs under ORT_ENABLE_ALL) sum in float32 in MLAS's blocked order; the simulator's integer
    path is exact, so codes can differ by one where the exact result is within float32 error of
    a tie: not modelled (see the test module for measured rates).
QLinearSoftmax (``requant="onnxruntime"``, 8-bit per-tensor QDQ Softmax, onnxruntime >= 1.16)
    :func:`qlinear_softmax`: a 256-entry float32 table ``exp((i - 255 + shift) * s_x)`` (computed in
    double, ``shift = max(0, log(FLT_MAX / D) - 5) / s_x``), indexed by ``code + 255 - max(row)``
    (int8: ``code + 127 - max(row)`` into a table stored from -128); the float32 row sum in order;
    ``rint(t * floor(1 / s_y) / sum) + zp_y`` in float32, clamped; where ``t * floor(1 / s_y)``
    overflows float32 (a small output scale: near-uniform attention) the code saturates to the
    top, as measured on onnxruntime 1.32 (255 for uint8, 127 for int8, whatever the zero point;
    before, hwsim cast the infinity to an integer and got 0). ``floor(1 / s_y)`` rather than
    ``1 / s_y``: with ``s_y = 1/255`` as float32 it is 254, not 255, one step below the literal
    QDQ result near the top of the range. Transcribed from onnxruntime's
    ``contrib_ops/cpu/quantization/qlinear_softmax.cc``; tested against onnxruntime.
MaxPool, Relu, Flatten / Reshape, Concat (QLinearConcat), Sigmoid (QLinearSigmoid table)
    Exact by construction or measured bit-exact (0 mismatches) with the literal semantics.
"""

from __future__ import annotations

import functools

import numpy as np

from hwsim import formats
from hwsim.sim import qspec


def _int_scaled(spec) -> bool:
    return spec.scale is not None and formats.get(spec.format).integer_codes


def dequantized_input(ctx, name: str, x: np.ndarray) -> np.ndarray:
    """``x`` as DequantizeLinear outputs it: rounded to float32 when its spec has float32 scales.
    A deferred value (:class:`~hwsim.sim.qspec.Deferred`) is returned as it is: the executor that
    takes it reads its codes, or its reals through :func:`dequantized_value`."""
    if isinstance(x, qspec.Deferred):
        return x
    return rounded_f32(x) if is_dequantized_float32(ctx, name) else x


def rounded_f32(x) -> np.ndarray:
    """``x`` rounded to float32, as float64 (``x``'s memory order); a float64 array in one pass
    (:mod:`hwsim.kernels.onepass`), same values as ``x.astype(float32).astype(float64)``."""
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        out = np.empty_like(x)
        flat = qspec.flat_pair(x, out)
        if flat is not None:
            from hwsim.kernels import onepass

            onepass._round_f32(*flat)
            return out
    return np.asarray(x, np.float32).astype(np.float64)


def dequantized_value(ctx, name: str, x) -> np.ndarray:
    """The value an executor that takes deferred inputs reads: a deferred value's reals, rounded
    by :func:`dequantized_input` in the quantized run (the float reference's as they are); an
    array as it is (the runner has passed it through :func:`dequantized_input`)."""
    if not isinstance(x, qspec.Deferred):
        return x
    return x.real() if ctx.reference else dequantized_real(ctx, name, x)


def dequantized_real(ctx, name: str, x) -> np.ndarray:
    """:func:`dequantized_input` of ``x``'s real values (:func:`hwsim.sim.qspec.real_of`): for
    the codes of a :class:`~hwsim.sim.qspec.Coded` rounded to float32, made from the codes in one
    pass (:meth:`~hwsim.sim.qspec.Coded.real_f32`, the same values) where that applies."""
    if isinstance(x, qspec.Coded) and is_dequantized_float32(ctx, name):
        y = x.real_f32()
        if y is not None:
            return y
    return dequantized_input(ctx, name, qspec.real_of(x))


def u8_rewritten(ctx, name: str) -> bool:
    """True when onnxruntime's x86 QDQ transformer (``QDQS8ToU8Transformer``) rewrites the int8
    Q -> DQ pair of tensor ``name`` to uint8 (codes + 128, zero point + 128): a float32 tensor (a
    QDQ pair, not the int8 codes a QLinear op reads) with a per-tensor int8 spec and a constant
    scalar zero point, whose QuantizeLinear feeds exactly one DequantizeLinear.
    onnxruntime gives every consumer its own DequantizeLinear first, so a tensor read by two nodes
    keeps int8 (its Q has two DQs); a graph output read by none is rewritten. The codes of a
    QOperator graph's QLinear ops are no QDQ pair (``Graph.qlinear_codes``): never rewritten."""
    spec, g = ctx.spec(name), ctx.graph
    if name in getattr(g, "qlinear_codes", ()):
        return False
    if spec.format != "int8" or spec.scale is None or spec.granularity != "tensor" or \
            spec.zero_point is None or len(spec.zero_point) != 1 or g.tensors[name].dtype not in ("float32", "float"):
        return False  # a float32 tensor with an int8 spec is a Q -> DQ pair; int8 codes feed QLinear ops
    return len(g.consumers(name)) + (name in g.outputs) == 1


def fused_as_u8(ctx, op) -> bool:
    """True when onnxruntime (``requant="onnxruntime"`` with ``pairwise_int16``: x86 without VNNI)
    runs int8-activation conv / gemm / matmul ``op`` as a fused QLinear kernel on uint8 codes: on
    x86 its QDQ selectors fuse a Conv, Gemm or MatMul only when activation input and output have
    the same type and that type is uint8, i.e. only when the s8 -> u8 rewrite (:func:`u8_rewritten`)
    reached both. Such an op multiplies ``code + 128`` by the int8 weights, and those pairs
    saturate like any uint8 x int8 product (measured: the quantize_static CNNs with int8
    activations in tests/sim/test_sim_qdq_ort.py then match ORT_ENABLE_ALL bit for bit)."""
    if ctx.requant != "onnxruntime" or ctx.reference or not (
            u8_rewritten(ctx, op.inputs[0]) and u8_rewritten(ctx, op.outputs[0])):
        return False
    if not ctx.pairwise_int16:
        note_host_pairs(ctx)
    return ctx.pairwise_int16


def runs_in_float(ctx, op) -> bool:
    """True when onnxruntime (``requant="onnxruntime"``) leaves conv / gemm / matmul ``op`` in float32
    between its DequantizeLinear and QuantizeLinear instead of fusing it: its activation input and
    output are 8-bit per-tensor QDQ tensors of different types as the kernel would read them, which
    happens where the x86 int8 -> uint8 rewrite (:func:`u8_rewritten`) reached one side only (a
    tensor read by two nodes keeps int8); its selectors fuse only ops whose activation input and
    output are of one type. Seen in PP-OCRv4's detector quantized with quantize_static's default
    int8 activations (onnxruntime's optimized graph keeps 14 such convs as float Conv nodes)."""
    if ctx.requant != "onnxruntime" or ctx.reference:
        return False
    types = _in_out_kernel_types(ctx, op)
    return types is not None and len(types) == 2


def _per_tensor_8bit(spec) -> bool:
    """True for a scaled 8-bit integer QuantSpec (int8 / uint8) with one scale."""
    return _int_scaled(spec) and spec.granularity == "tensor" and formats.get(spec.format).bits == 8


def _in_out_kernel_types(ctx, op) -> set[str] | None:
    """The 8-bit types onnxruntime's kernels read ``op``'s activation input and its output as
    (:func:`_kernel_type`), or None unless both are :func:`_per_tensor_8bit`. One type: its
    selectors fuse a DequantizeLinear -> op -> QuantizeLinear unit; two: they leave it in float."""
    names = (op.inputs[0], op.outputs[0])
    specs = [ctx.spec(n) for n in names]
    if not all(_per_tensor_8bit(s) for s in specs):
        return None
    return {_kernel_type(ctx, n, s) for n, s in zip(names, specs)}


#: the start of :func:`note_runs_in_float`'s note
RUNS_IN_FLOAT_NOTE = "onnxruntime runs int8-activation convs / matmuls in float32 between their DequantizeLinear and "


def note_runs_in_float(ctx, op) -> None:
    """Note, once per run, the first op that onnxruntime leaves in float (:func:`runs_in_float`):
    hwsim sums its products exactly, onnxruntime in float32 in MLAS's order, which is not modelled."""
    if runs_in_float(ctx, op) and not any(n.startswith(RUNS_IN_FLOAT_NOTE) for n in ctx.notes):
        ctx.note(RUNS_IN_FLOAT_NOTE + "QuantizeLinear where its x86 QDQ transformer rewrites their int8 input and "
                 f"output to uint8 on one side only (a tensor read by two nodes keeps int8), e.g. {op.op} '{op.name}'. "
                 "hwsim sums their products exactly; onnxruntime sums float32 values in an order not modelled here, "
                 "so an output code within float32 rounding of a rounding tie can differ by one (quantize with "
                 "uint8 activations, activation_type=QuantType.QUInt8, to have every such op fused)")


#: what a run that sums uint8 x int8 products exactly says on a host whose onnxruntime does not
HOST_PAIRS_NOTE = ("uint8 x int8 products are summed exactly; onnxruntime on this CPU (x86 AVX2 without VNNI) "
                   "saturates each pair of them to int16, and runs the int8-activation convs / matmuls it "
                   "fuses on uint8 codes, so its outputs can differ (pairwise_int16 models this host)")


def note_host_pairs(ctx) -> None:
    """Note, once per run, that this host's onnxruntime saturates uint8 x int8 pairs and the run
    does not (called where a product would saturate with ``pairwise_int16``)."""
    if host_saturates_pairs():
        ctx.note(HOST_PAIRS_NOTE)


@functools.cache
def host_saturates_pairs() -> bool:
    """True when onnxruntime's uint8 x int8 kernels on this CPU saturate pairs of products to int16:
    x86 with AVX2 and no VNNI (VPMADDUBSW; AVX-VNNI and AVX-512 VNNI hosts, and ARM, sum exactly)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    from llvmlite import binding

    f = binding.get_host_cpu_features()
    return bool(f.get("avx2", False)) and not (f.get("avxvnni", False) or f.get("avx512vnni", False))


#: K up to which MLAS's SGEMM sums in one pass (its K stride); beyond it the blocks are added
#: into C in an order not modelled here
MLAS_SGEMM_ONE_PASS_K = 128


def mlas_sgemm_applies(ctx, op, a: np.ndarray) -> bool:
    """True when a float32 x float32 MatMul is to be summed as onnxruntime's MLAS SGEMM does
    (``requant="onnxruntime"``, both inputs plain float32 tensors, K within one pass)."""
    g = ctx.graph
    return ctx.requant == "onnxruntime" and not ctx.reference and a.shape[-1] <= MLAS_SGEMM_ONE_PASS_K and \
        all(g.tensors[t].dtype in ("float32", "float") and ctx.spec(t).format == "fp32" for t in op.inputs[:2])


def mlas_sgemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (float32 values, broadcast batch dims) as MLAS's SGEMM kernel sums it: one float32
    accumulator per output, from zero, one fused multiply-add per k in ascending order (float32
    products are exact in float64, so each step is the float64 sum rounded to float32). Measured
    against onnxruntime 1.32's float MatMul (AMD EPYC, FMA3 kernel) on the attention scores of
    tests/data/tiny_bert_qdynamic.onnx: 0 of 512 differ; the correctly rounded product differs in
    273 (up to thousands of ulps near zero)."""
    a = np.asarray(a, np.float32).astype(np.float64)
    b = np.asarray(b, np.float32).astype(np.float64)
    acc = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]), np.float64)
    for k in range(a.shape[-1]):
        acc = (acc + a[..., :, k:k + 1] * b[..., k:k + 1, :]).astype(np.float32).astype(np.float64)
    return acc


def qlinear_applies(ctx, op) -> bool:
    """True when onnxruntime fuses unary QDQ ``op`` (DequantizeLinear -> op -> QuantizeLinear:
    AveragePool, GlobalAveragePool, Softmax) into its QLinear kernel: input and output have 8-bit
    integer per-tensor QuantSpecs of one type as the kernel would read them. Its selectors require
    the DequantizeLinear's input and the QuantizeLinear's output to be of one type, after the x86
    int8 -> uint8 rewrite (:func:`_kernel_type`): an int8 pair rewritten on one side only (e.g. an
    output read by two nodes keeps int8, :func:`u8_rewritten`) leaves the op in float between its
    DequantizeLinear and QuantizeLinear (measured: such an AveragePool in PP-OCRv4's recogniser
    quantized with quantize_static's default int8 activations)."""
    types = _in_out_kernel_types(ctx, op)
    return types is not None and len(types) == 1


def qlinear_add_applies(ctx, op, xs) -> bool:
    """True when onnxruntime (``requant="onnxruntime"``) fuses QDQ ``Add`` ``op`` into QLinearAdd
    and :func:`qlinear_add` models it (:func:`_qlinear_binary_applies`)."""
    return _qlinear_binary_applies(ctx, op, xs, "add")


def _qlinear_binary_applies(ctx, op, xs, fn: str) -> bool:
    """True when binary ``op`` is ``fn`` in a ``requant="onnxruntime"`` quantized run, both inputs
    dequantized float32 tensors (or DequantizeLinear of quantized constants) and the output with
    8-bit per-tensor QuantSpecs of one type as the kernel reads them (int8 tensors that
    onnxruntime's x86 QDQ transformer rewrites to uint8, :func:`u8_rewritten`, count as uint8),
    and inputs of shapes numpy broadcasts: onnxruntime then fuses it into QLinearAdd / QLinearMul."""
    if ctx.requant != "onnxruntime" or ctx.reference or op.fn != fn:
        return False
    specs = _add_specs(ctx, op)
    if specs is None or any(s.format not in ("uint8", "int8") or s.granularity != "tensor" or s.scale is None
                            for s in specs):
        return False
    if len({_kernel_type(ctx, t, s) for t, s in zip(_add_names(ctx, op), specs)}) != 1:
        return False
    try:
        np.broadcast_shapes(np.shape(xs[0]), np.shape(xs[1]))
    except ValueError:
        return False
    return True


def qlinear_add(ctx, op, xs) -> np.ndarray:
    """onnxruntime's QLinearAdd on x86-64 (MLAS ``MlasQLinearAddKernelAvx2Helper``, the kernel of
    every AVX2 host) on real values: real output values. Not the literal QDQ formula: with float32
    ratios ``r_a = s_a / s_c``, ``r_b = s_b / s_c`` and the fixed part
    ``f = float32(zp_c) - fma(r_a, zp_a, r_b * zp_b)`` (the C expression
    ``zp_c - (r_a * zp_a + r_b * zp_b)``, which GCC contracts into one FMA in this
    ``-mfma`` file), each element is ``fma(a, r_a, fma(b, r_b, f))`` on the raw codes, converted
    half-even and saturated. A single-element input is folded into the fixed part with a separate
    multiply and add (``f + a * r_a``), then ``fma(b, r_b, f')``. Other broadcasts (a per-channel
    (1, C, 1, 1) addend, a row) take the two-FMA form element by element: measured against
    onnxruntime over every code pair, (256, 1) and (1, 256) against (256, 256), u8 and s8, 30 draws
    each: 0 mismatches, where folding a per-row constant into the fixed part gave 1 (one draw) and
    the literal formula 1-2 in 5 (s8) and 10 (u8) of the draws; found on PP-OCRv5's recogniser
    (a depthwise conv plus its per-channel bias: 2 of 61,440 codes)."""
    from hwsim.sim.mlas_math import fma32

    names, (sa, sb, sc) = _add_names(ctx, op), _add_specs(ctx, op)
    shift = 128 if _kernel_type(ctx, names[0], sa) != sa.format else 0  # int8 read as uint8: code + 128
    f32 = np.float32
    ra, rb = f32(sa.scale[0]) / f32(sc.scale[0]), f32(sb.scale[0]) / f32(sc.scale[0])
    za, zb, zc = (f32((int(s.zero_point[0]) if s.zero_point is not None else 0) + shift) for s in (sa, sb, sc))
    fixed = f32(zc - fma32(ra, za, f32(rb * zb)))
    fmt, narrow = formats.get(sc.format), qspec.code_dtype(sc)
    ca, cb = (_codes_of(ctx, t, x, s) for t, x, s in zip(op.inputs[:2], xs[:2], (sa, sb)))
    own = names[2] == op.outputs[0]  # else the codes of the QuantizeLinear after it: real values out
    if own and narrow is not None and op.outputs[0] not in ctx.specs:
        codes = _qlinear_add_codes(ca, cb, shift, ra, rb, fixed, fmt, narrow)
        if codes is not None:
            ctx.mark_on_grid(op.outputs[0])
            return qspec.Coded(codes, sc)
    ca, cb = ca.astype(f32), cb.astype(f32)
    if shift:
        ca += f32(shift)
        cb += f32(shift)
    scalar = "a" if ca.size == 1 and cb.size != 1 else "b" if cb.size == 1 and ca.size != 1 else None
    if scalar == "a":
        t = fma32(cb, rb, (fixed + (ca * ra).astype(f32)).astype(f32))
    elif scalar == "b":
        t = fma32(ca, ra, (fixed + (cb * rb).astype(f32)).astype(f32))
    else:
        t = fma32(ca, ra, fma32(cb, rb, fixed))
    np.rint(t, out=t)  # in place: whole float32 values from here on, each step exact
    np.clip(t, fmt.qmin + shift, fmt.qmax + shift, out=t)
    if shift:
        t -= f32(shift)
    if not own or narrow is None or op.outputs[0] in ctx.specs:
        return qspec.from_codes(t.astype(np.int64), sc)
    ctx.mark_on_grid(op.outputs[0])  # the output's own codes: the runner's rounding is the identity
    return qspec.Coded(t.astype(narrow), sc)


def qlinear_mul_applies(ctx, op, xs) -> bool:
    """True when onnxruntime (``requant="onnxruntime"``) fuses QDQ ``Mul`` ``op`` into QLinearMul
    and :func:`qlinear_mul` models it (:func:`_qlinear_binary_applies`; each element's arithmetic
    does not depend on the broadcast)."""
    return _qlinear_binary_applies(ctx, op, xs, "mul")


def qlinear_mul(ctx, op, xs) -> np.ndarray:
    """onnxruntime's QLinearMul on x86-64 (MLAS ``MlasQLinearMulKernel``, its SSE2 kernel) on real
    values: real output values. Not the literal QDQ formula: the exact integer product
    ``(a - zp_a) * (b - zp_b)`` converted to float32, times the float32 ratio
    ``float32(s_a * s_b) / s_c``, plus ``float32(zp_c)`` (a separate multiply and add), converted
    half-even and saturated. Codes as the kernel reads them (int8 rewritten to uint8 on x86:
    ``zp_c + 128``, which can round a sum within half a float32 step of a tie onto it)."""
    names, (sa, sb, sc) = _add_names(ctx, op), _add_specs(ctx, op)
    shift = 128 if _kernel_type(ctx, names[0], sa) != sa.format else 0  # int8 read as uint8: code + 128
    f32 = np.float32
    ratio = f32(f32(f32(sa.scale[0]) * f32(sb.scale[0])) / f32(sc.scale[0]))
    za, zb, zc = ((int(s.zero_point[0]) if s.zero_point is not None else 0) for s in (sa, sb, sc))
    ca, cb = (_codes_of(ctx, t, x, s) for t, x, s in zip(op.inputs[:2], xs[:2], (sa, sb)))
    narrow = qspec.code_dtype(sc)
    if names[2] == op.outputs[0] and narrow is not None and op.outputs[0] not in ctx.specs:
        codes = _qlinear_mul_codes(ca, cb, za, zb, ratio, f32(zc + shift), formats.get(sc.format), shift, narrow)
        if codes is not None:
            ctx.mark_on_grid(op.outputs[0])  # the output's own codes
            return qspec.Coded(codes, sc)
    prod = ((ca.astype(np.int32) - za) * (cb.astype(np.int32) - zb)).astype(f32)  # |prod| <= 65025: exact
    t = np.multiply(prod, ratio, dtype=f32)
    t += f32(zc + shift)
    np.rint(t, out=t)
    fmt = formats.get(sc.format)
    np.clip(t, fmt.qmin + shift, fmt.qmax + shift, out=t)
    return qspec.from_codes(t.astype(np.int64) - shift, sc)


def _qlinear_add_codes(ca, cb, shift: int, ra, rb, fixed, fmt, narrow) -> np.ndarray | None:
    """:func:`qlinear_add`'s output codes (``narrow``, 8-bit) from two code arrays in one pass:
    of one shape and memory order, 8-bit (:func:`hwsim.kernels.fma._qlinear_add`; BERT's 128 x 768
    residual adds 0.38 -> ~0.05 ms, 2026-11-27), or one of them broadcast along the other's leading
    axes in its memory order (:func:`_trailing_period`: a linear's bias row, a conv's per-channel
    bias in channels-last codes; :func:`hwsim.kernels.fma._qlinear_add_rows`, 2026-11-28); None
    where neither applies (JIT off, a single-element input, other broadcasts or layouts: the numpy
    passes give the same codes)."""
    import numba

    if numba.config.DISABLE_JIT or not ca.size or not cb.size:
        return None
    from hwsim.kernels.canon import readonly
    from hwsim.kernels.fma import _qlinear_add, _qlinear_add_rows

    f32 = np.float32
    consts = (f32(shift), f32(ra), f32(rb), f32(fixed), f32(fmt.qmin + shift), f32(fmt.qmax + shift))
    if ca.shape != cb.shape:
        broadcast = _broadcast_period(ca, cb)
        if broadcast is None:
            return None
        big, rows, small_first = broadcast
        out = np.empty_like(big, dtype=narrow)  # big's memory order
        flat_big, flat_out = qspec.flat_pair(big, big), qspec.flat_pair(big, out)
        _qlinear_add_rows(readonly(flat_big[0]), readonly(rows), small_first, *consts, flat_out[1])
        return out
    if ca.dtype.itemsize != 1 or cb.dtype.itemsize != 1:
        return None
    out = np.empty_like(ca, dtype=narrow)  # ca's memory order
    pair, pair_out = qspec.flat_pair(ca, cb), qspec.flat_pair(ca, out)
    if pair is None or pair_out is None:
        return None
    _qlinear_add(readonly(pair[0]), readonly(pair[1]), *consts, pair_out[1])
    return out


def _qlinear_mul_codes(ca, cb, za: int, zb: int, ratio, zc, fmt, shift: int, narrow) -> np.ndarray | None:
    """:func:`qlinear_mul`'s output codes (``narrow``, 8-bit) in one pass
    (:func:`hwsim.kernels.fma._qlinear_mul_rows`) from two 8-bit code arrays of one shape and
    memory order, or one of them broadcast along the other's leading axes in its memory order
    (:func:`_trailing_period`); None where neither applies (the numpy passes give the same codes)."""
    import numba

    if numba.config.DISABLE_JIT or not ca.size or not cb.size:
        return None
    if ca.shape == cb.shape:
        if ca.dtype.itemsize != 1 or cb.dtype.itemsize != 1:
            return None
        pair = qspec.flat_pair(ca, cb)
        if pair is None:
            return None
        big, period, first, out = ca, pair[1], False, np.empty_like(ca, dtype=narrow)
    else:
        broadcast = _broadcast_period(ca, cb)
        if broadcast is None:
            return None
        big, period, first = broadcast
        out = np.empty_like(big, dtype=narrow)  # big's memory order
    from hwsim.kernels.canon import readonly
    from hwsim.kernels.fma import _qlinear_mul_rows

    f32 = np.float32
    _qlinear_mul_rows(readonly(qspec.flat_pair(big, big)[0]), readonly(period), first, np.int32(za), np.int32(zb),
                      f32(ratio), f32(zc), f32(fmt.qmin + shift), f32(fmt.qmax + shift), f32(shift),
                      qspec.flat_pair(big, out)[1])
    return out


def one_pass_binary(ctx, op, xs) -> bool:
    """True where :func:`qlinear_add` / :func:`qlinear_mul` run ``op`` on two code arrays of more than
    one element each, in one pass over them (no table of every code pair is worth building:
    :mod:`hwsim.sim.codetable` built 65,536 entries per run for BERT's GELU products and
    (1, 128, 3072) adds, 2026-11-28)."""
    return all(np.size(x) > 1 for x in xs[:2]) and (qlinear_add_applies(ctx, op, xs) or qlinear_mul_applies(ctx, op, xs))


def _broadcast_period(ca: np.ndarray, cb: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """(the larger operand, the smaller one as a period of its memory order
    (:func:`_trailing_period`), whether the smaller is the first operand) of two code arrays of
    different shapes; None where the smaller is no such period."""
    small_first = ca.size < cb.size
    big, small = (cb, ca) if small_first else (ca, cb)
    period = _trailing_period(big, small)
    return None if period is None else (big, period, small_first)


def _trailing_period(big: np.ndarray, small: np.ndarray) -> np.ndarray | None:
    """The codes of ``small`` (more than one element, broadcast to ``big``'s shape) as one period
    of ``big``'s flat memory order: element ``i`` of that order reads ``period[i % period.size]``.
    That holds when ``big`` (8-bit codes) is laid out densely in some axis order and ``small``'s
    varying axes are the last ones of that order: a (768,) bias row against (1, 128, 768) codes, a
    (1, C, 1, 1) per-channel addend against a conv's channels-last codes. The period is copied
    into 8-bit codes when ``small``'s values fit (they are codes of an 8-bit spec: int64 from a
    constant); None otherwise (the numpy passes run)."""
    if big.dtype.itemsize != 1 or small.size <= 1 or small.dtype.kind not in "iu":
        return None
    try:
        if np.broadcast_shapes(big.shape, small.shape) != big.shape:
            return None
    except ValueError:
        return None
    order = sorted(range(big.ndim), key=lambda i: -big.strides[i])
    if not big.transpose(order).flags.c_contiguous:
        return None
    sb = np.broadcast_to(small, big.shape).transpose(order)
    varying = [i for i, n in enumerate(sb.shape) if n > 1 and sb.strides[i] != 0]
    if not varying:
        return None
    lead = varying[0]
    if any(sb.shape[i] > 1 and sb.strides[i] == 0 for i in range(lead, sb.ndim)):
        return None  # a broadcast axis after a varying one: no period of the flat order
    period = np.ascontiguousarray(sb[(0,) * lead]).reshape(-1)
    lo, hi = int(period.min()), int(period.max())
    for dt in (np.uint8, np.int8):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return period.astype(dt)
    return None


def _codes_of(ctx, name: str, x, spec) -> np.ndarray:
    """The codes of input ``x`` (tensor ``name``) under ``spec``: a :class:`~hwsim.sim.qspec.Coded`
    of that spec gives its own, anything else is divided (its dequantized float32 values)."""
    if isinstance(x, qspec.Coded) and x.spec == spec and name not in ctx.specs:
        return x.codes
    return qspec.codes(dequantized_value(ctx, name, x), spec)


def _kernel_type(ctx, name: str, spec) -> str:
    """The 8-bit type onnxruntime's fused kernel reads tensor ``name`` (QuantSpec ``spec``) as on
    x86: uint8 for an int8 activation its QDQ transformer rewrites (:func:`u8_rewritten`), else
    the spec's own format."""
    return "uint8" if spec.format == "int8" and name in ctx.graph.tensors and ctx.graph.tensors[name].data is None \
        and u8_rewritten(ctx, name) else spec.format


def _add_names(ctx, op) -> tuple:
    """The tensors whose codes a fused QLinearAdd / QLinearMul reads and writes: each input, or the
    quantized tensor behind a DequantizeLinear of one (:func:`_dq_source`), and the output, or the
    codes a QuantizeLinear makes of it (:func:`_q_target`)."""
    return tuple(_dq_source(ctx, t) or t for t in op.inputs[:2]) + (_q_target(ctx, op.outputs[0]) or op.outputs[0],)


def _add_specs(ctx, op):
    """QuantSpecs of :func:`_add_names`, or None when an input is neither a QDQ float32 tensor nor
    a DequantizeLinear of a quantized constant, or the output has no integer spec."""
    names = _add_names(ctx, op)
    if not all(n != t or is_dequantized_float32(ctx, t) for n, t in zip(names, op.inputs[:2])):
        return None
    specs = tuple(ctx.spec(t) for t in names)
    return specs if all(_int_scaled(s) for s in specs) else None


def _dq_source(ctx, name: str) -> str | None:
    """The quantized tensor that tensor ``name`` dequantizes (a DequantizeLinear with its scale and
    zero point in that tensor's QuantSpec): a quantized constant, or the 8-bit codes of a QOperator
    graph (onnxruntime's com.microsoft QLinear ops, imported as DequantizeLinear -> op ->
    QuantizeLinear; the same kernels its QDQ fusion makes); else None."""
    g = ctx.graph
    prod = g.producer(name)
    if prod is None:
        return None
    op = g.op(prod)
    if op.op != "dequantize" or len(op.inputs) != 1:
        return None
    src = op.inputs[0]
    if g.tensors[src].data is not None or _codes_tensor(ctx, src):
        return src
    return None


def _q_target(ctx, name: str) -> str | None:
    """The 8-bit codes that a QuantizeLinear, the only reader of tensor ``name`` (not a graph
    output), makes of it in a QOperator graph (see :func:`_dq_source`); else None."""
    g = ctx.graph
    if name in g.outputs:
        return None
    readers = g.consumers(name)
    if len(readers) != 1 or readers[0].op != "quantize" or len(readers[0].inputs) != 1:
        return None
    out = readers[0].outputs[0]
    return out if _codes_tensor(ctx, out) else None


def _codes_tensor(ctx, name: str) -> bool:
    """True for an activation held as 8-bit integer codes with a per-tensor scale (a QOperator
    graph's tensors between its QLinear ops)."""
    from hwsim.sim.boundary import is_integer_type

    return is_integer_type(ctx.graph.tensors[name].dtype) and _per_tensor_8bit(ctx.spec(name))


def qlinear_global_avgpool(ctx, op, x: np.ndarray) -> np.ndarray:
    """MLAS QLinearGlobalAveragePool on real values ``x`` (N, C, H, W): real output values."""
    sx, sy = ctx.spec(op.inputs[0]), ctx.spec(op.outputs[0])
    fmt = formats.get(sy.format)
    n = x.shape[2] * x.shape[3]
    zx = 0 if sx.zero_point is None else int(sx.zero_point[0])
    zy = 0 if sy.zero_point is None else int(sy.zero_point[0])
    acc = qspec.codes(x, sx).sum(axis=(2, 3), keepdims=True) - zx * n
    s_x, s_y = np.float32(sx.scale[0]), np.float32(sy.scale[0])
    mult = np.float32(s_x / np.float32(s_y * np.float32(n)))
    q = np.rint(acc.astype(np.float32) * mult).astype(np.int64) + zy
    return qspec.from_codes(np.clip(q, fmt.qmin, fmt.qmax), sy)


def qlinear_avgpool_is_global(op, x_shape) -> bool:
    """True when onnxruntime's QLinearAveragePool runs ``op`` as QLinearGlobalAveragePool: a
    window the size of the whole image and no padding (its ``fallback_to_global``)."""
    return tuple(op.kernel) == tuple(x_shape[2:]) and not any(op.padding)


def qlinear_avgpool(ctx, op, x, out_hw: tuple) -> np.ndarray:
    """onnxruntime's QLinearAveragePool (2-D, NCHW or its channels-last twin, same values) on input
    ``x`` (real values or a :class:`~hwsim.sim.qspec.Coded`), windows that are not the whole image
    (:func:`qlinear_avgpool_is_global`): real output values. Each input code dequantized to float32
    ``s_x * float32(code - zp_x)`` (:func:`dequantized_value`, as DequantizeLinear does), averaged as
    :func:`float32_avgpool`, then
    ``nearbyint(y / s_y + zp_y)`` in float32 (ties to even), saturated
    (contrib_ops/cpu/quantization/qlinear_pool.cc, QLinearPool2DTask). An int8 output that the x86
    QDQ transformer rewrites to uint8 (:func:`u8_rewritten`) adds ``zp_y + 128`` there instead,
    which can round a quotient within half a float32 step of a tie onto the tie: measured to decide
    codes on this project's Xeon."""
    sy = ctx.spec(op.outputs[0])
    fmt = formats.get(sy.format)
    zy = 0 if sy.zero_point is None else int(sy.zero_point[0])
    s_y = np.float32(sy.scale[0])
    y = float32_avgpool(dequantized_value(ctx, op.inputs[0], x), op, out_hw)  # DequantizeLinear's float32 values
    off = 128 if _kernel_type(ctx, op.outputs[0], sy) != sy.format else 0  # x86's int8 -> uint8 rewrite
    q = np.rint((y / s_y).astype(np.float32) + np.float32(zy + off)).astype(np.int64)
    return qspec.from_codes(np.clip(q, fmt.qmin + off, fmt.qmax + off) - off, sy)


def float32_avgpool(x: np.ndarray, op, out_hw: tuple) -> np.ndarray:
    """2-D average pooling of float32 (N, C, H, W) ``x`` as onnxruntime computes it, float32 out:
    each window summed in float32 from 0, row by row in order (elements outside the unpadded input
    are not added; adding 0.0 here changes no sum), divided in float32 by the count (the kernel's
    size with ``count_include_pad``, else the window's elements inside the input). Its float
    AveragePool (MLAS) and QLinearAveragePool alike: measured 0 of 54,144 outputs differing after
    QuantizeLinear (u8 and s8, five kernel / stride / padding / ceil-mode cases, three draws), where a
    float64 mean differed in 213 and a product with ``float32(1 / count)`` in 182."""
    x = np.asarray(x, np.float32)
    n, c, h, w = x.shape
    oh, ow = out_hw
    (kh, kw), (sh, sw) = op.kernel, op.stride
    pt, pl = op.padding[0], op.padding[1]
    hp, wp = max(h + pt, (oh - 1) * sh + kh), max(w + pl, (ow - 1) * sw + kw)
    xp = np.zeros((n, c, hp, wp), np.float32)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    acc = np.zeros((n, c, oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            acc += xp[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]
    if op.count_include_pad:
        cnt = np.full((oh, ow), kh * kw, np.float32)
    else:
        hs, ws = np.arange(oh) * sh - pt, np.arange(ow) * sw - pl
        rows = np.minimum(hs + kh, h) - np.maximum(hs, 0)
        cols = np.minimum(ws + kw, w) - np.maximum(ws, 0)
        cnt = np.outer(rows, cols).astype(np.float32)
    return (acc / cnt).astype(np.float32)


def float32_global_avgpool(x: np.ndarray) -> np.ndarray:
    """onnxruntime's float32 GlobalAveragePool of (N, C, H, W) float32 values (order in the module doc)."""
    flat = np.asarray(x, np.float32).reshape(x.shape[0], x.shape[1], -1)
    n = flat.shape[-1]
    k = n - n % 4
    lanes = np.zeros(flat.shape[:2] + (4,), np.float32)
    for i in range(0, k, 4):
        lanes = lanes + flat[..., i:i + 4]
    total = (lanes[..., 0] + lanes[..., 2]) + (lanes[..., 1] + lanes[..., 3])
    for i in range(k, n):
        total = total + flat[..., i]
    return (total / np.float32(n)).astype(np.float64).reshape(x.shape[:2] + (1, 1))


def reads_float32(ctx, name: str) -> bool:
    """True when an op of the quantized run reads tensor ``name`` as onnxruntime's float kernels
    read it, float32 values: a float32 DequantizeLinear output (:func:`is_dequantized_float32`), or
    with ``requant="onnxruntime"`` a plain float32 activation too (fp32 spec; the default keeps
    the simulator's float64 arithmetic there, which solve's float tails mirror); pooling then sums
    in onnxruntime's float32 order (:func:`float32_avgpool`, :func:`float32_global_avgpool`)."""
    return is_dequantized_float32(ctx, name) or (ctx.requant == "onnxruntime" and plain_float32(ctx, name))


def plain_float32(ctx, name: str) -> bool:
    """True for an unquantized float32 activation (fp32 spec, float32 tensor)."""
    spec = ctx.spec(name)
    return spec.format == "fp32" and spec.scale is None and ctx.graph.tensors[name].dtype in ("float32", "float")


def is_dequantized_float32(ctx, name: str) -> bool:
    """True when tensor ``name`` is read as a float32 DequantizeLinear output (see :func:`dequantized_input`)."""
    spec = ctx.spec(name)
    return _int_scaled(spec) and qspec.scale_array(spec.scale).dtype == np.float32 \
        and ctx.graph.tensors[name].dtype in ("float32", "float")


def qlinear_softmax(ctx, op, x) -> np.ndarray | qspec.Coded:
    """onnxruntime's QLinearSoftmax (module docstring) on ``x``, real values or a
    :class:`~hwsim.sim.qspec.Coded` (its codes read as they are): the output's codes as a Coded
    where they are 8-bit and the output's own spec (the runner would round its reals back to
    them), else real output values."""
    sx, sy = ctx.spec(op.inputs[0]), ctx.spec(op.outputs[0])
    fmt_x, fmt_y = formats.get(sx.format), formats.get(sy.format)
    raw = np.moveaxis(_codes_of(ctx, op.inputs[0], x, sx), op.axis, -1)
    d = raw.shape[-1]
    s_x = float(np.float32(sx.scale[0]))
    shift = max(0.0, float(np.log(np.float64(np.float32(np.finfo(np.float32).max) / np.float32(d)))) - 5.0) / s_x
    table = np.exp((np.arange(256, dtype=np.float64) - 255 + shift) * s_x).astype(np.float32)
    top = 127 if fmt_x.signed else 255
    y_scale = np.float32(np.floor(np.float32(1.0) / np.float32(sy.scale[0])))
    zy = 0 if sy.zero_point is None else int(sy.zero_point[0])
    narrow = qspec.code_dtype(sy)
    if narrow is not None and op.outputs[0] not in ctx.specs and raw.size:  # one pass per row, the same codes
        from hwsim.kernels.qsoftmax import _rows

        q = np.empty(raw.shape, narrow)
        _rows(np.ascontiguousarray(raw).reshape(-1, d), table, top + (128 if fmt_x.signed else 0), y_scale,
              np.float64(zy), np.float64(fmt_y.qmin), np.float64(fmt_y.qmax), q.reshape(-1, d))
        ctx.mark_on_grid(op.outputs[0])
        return qspec.Coded(np.moveaxis(q, -1, op.axis), sy)
    c = raw.astype(np.int64)
    idx = c + (top - c.max(axis=-1, keepdims=True)) + (128 if fmt_x.signed else 0)
    t = table[idx]
    total = np.zeros(c.shape[:-1] + (1,), np.float32)
    for k in range(d):  # float32 sum in element order
        total = total + t[..., k:k + 1]
    with np.errstate(over="ignore", invalid="ignore"):  # t * y_scale can overflow float32, as in onnxruntime
        v = np.rint((t * y_scale) / total).astype(np.float64) + zy
    q = np.clip(v, fmt_y.qmin, fmt_y.qmax).astype(np.int64)  # inf saturates (measured: 255 / 127)
    if narrow is None or op.outputs[0] in ctx.specs:
        return np.moveaxis(qspec.from_codes(q, sy), -1, op.axis)
    ctx.mark_on_grid(op.outputs[0])
    return qspec.Coded(np.moveaxis(q.astype(narrow), -1, op.axis), sy)
