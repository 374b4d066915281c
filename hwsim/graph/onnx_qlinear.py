"""QLinearMatMul, MatMulInteger, DynamicQuantizeLinear and onnxruntime's com.microsoft quantized ops
-> IR ops with integer QuantSpecs (the contract is in :mod:`hwsim.graph.onnx`); the pieces QLinearConv
and ConvInteger share with them (:mod:`hwsim.graph.onnx_qconv`)."""

from __future__ import annotations

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _one, attrs, converter
from hwsim.graph.onnx_values import (Act, Const, QConst, activation_spec, array_dtype, broadcast_param,
                                     format_of)
from hwsim.graph.quant import FP32, QuantSpec

INT32 = QuantSpec(format="int32", scale=(1.0,), zero_point=(0,))


def _act_in(ctx, node, i: int, scale, zp, axis: int | None) -> str:
    """Activation input ``i`` with its integer QuantSpec put on the tensor."""
    t = ctx.act(node.input[i])
    dtype = ctx.g.tensors[t].dtype
    fmt = format_of(dtype)
    if fmt is None or not fmt.startswith(("int", "uint")):
        raise ctx.fail(node, f"input {i} ('{node.input[i]}') has type {dtype}, expected uint8 or int8")
    shape = ctx.g.tensors[t].shape
    ctx.annotate(node, t, activation_spec(fmt, np.asarray(scale, np.float32), zp, shape,
                                          None if axis is None else axis % len(shape)))
    return t


def _weight(ctx, node, i: int, scale, zp, axis: int, perm=None, as_2d: bool = False) -> str:
    """Constant integer weight input ``i`` as codes with its QuantSpec (per-tensor or along ``axis``);
    ``as_2d``: a 1-D conv's (O, I, K) weight placed as (O, I, 1, K)."""
    v = ctx.values[node.input[i]]
    if not isinstance(v, Const):
        raise ctx.fail(node, f"weight input {i} ('{node.input[i]}') must be an initializer")
    codes = np.expand_dims(v.value, 2) if as_2d else v.value
    scale = np.asarray(scale, np.float32).ravel()
    zp = None if zp is None else np.asarray(zp).ravel()
    n = max(scale.size, 1 if zp is None else zp.size)
    scale = np.broadcast_to(scale, (n,))
    zp = None if zp is None else np.broadcast_to(zp, (n,))
    per_axis = axis if n > 1 else None
    q = QConst(codes, array_dtype(codes), node.input[i], broadcast_param(scale, codes.ndim, per_axis),
               None if zp is None else broadcast_param(zp, codes.ndim, per_axis))
    return ctx.place(node.input[i] + (".2d" if as_2d else ""), q, "weight", perm,
                     where=f"{node.op_type} (node '{node.name}')")


def _out_spec(ctx, node, s_i: int, zp_i: int) -> tuple[QuantSpec, str]:
    zp = ctx.const(node, zp_i, "y_zero_point")
    dtype = "uint8" if zp is None else array_dtype(np.asarray(zp))
    spec = activation_spec(format_of(dtype), np.asarray(ctx.const(node, s_i, "y_scale"), np.float32), zp, (1,), None)
    return spec, dtype


#: ONNX input position of each scale / zero point, by the role it has on the IR op
#: (:data:`hwsim.graph.ops_compute.QParamRole`: x = input 0, w = the weight / second operand, y = output)
QPARAM_INPUTS = {
    "QLinearConv": {"x_scale": 1, "x_zero_point": 2, "w_scale": 4, "w_zero_point": 5, "y_scale": 6, "y_zero_point": 7},
    "QLinearMatMul": {"x_scale": 1, "x_zero_point": 2, "w_scale": 4, "w_zero_point": 5, "y_scale": 6,
                      "y_zero_point": 7},
    "MatMulInteger": {"x_zero_point": 2, "w_zero_point": 3},
    "ConvInteger": {"x_zero_point": 2, "w_zero_point": 3},
    "QGemm": {"x_scale": 1, "x_zero_point": 2, "w_scale": 4, "w_zero_point": 5, "y_scale": 7, "y_zero_point": 8},
}


def _runtime_params(ctx, node, *also: int) -> bool:
    """True when a scale or zero point of ``node`` (or one of its inputs ``also``) is not a constant."""
    idx = list(QPARAM_INPUTS[node.op_type].values()) + list(also)
    return any(not ctx.is_const(n) for n in (ctx.input(node, i) for i in idx) if n is not None)


def _runtime_op(ctx, node, op_cls, operands: list[int | str], out_dtype: str, out_quant: QuantSpec | None,
                roles: dict[str, int] | None = None, **kw) -> None:
    """``node`` as ``op_cls`` reading its scales and zero points as run-time inputs (constant or
    not: all of them, so that every value the node was given is the one computed with).

    ``operands`` are ONNX input positions of x, w (and the bias), or IR tensor names. Operands
    and parameters become IR inputs as they are (graph inputs, computed tensors or constants);
    the op lists the parameters' roles in ``runtime_quant`` and the simulator builds the
    QuantSpecs from their values (:func:`hwsim.sim.qdq.run_with_runtime_quant`). Scales and zero
    points of x and y must hold one value, the weight's one or one per output channel; anything
    else is refused naming the input. ``roles`` (role -> ONNX input position) defaults to
    :data:`QPARAM_INPUTS` of the node's type.
    """
    ins = [ctx.act(node.input[i]) if isinstance(i, int) else i for i in operands]
    if isinstance(operands[1], int) and isinstance(ctx.values[node.input[operands[1]]], Const):
        ins[1] = ctx.place(node.input[operands[1]], ctx.values[node.input[operands[1]]], "weight")  # stored: a weight
    for t in ins[:2]:
        dtype = ctx.g.tensors[t].dtype
        fmt = format_of(dtype)
        if fmt is None or not fmt.startswith(("int", "uint")) or dtype == "int32":
            raise ctx.fail(node, f"input '{t}' has type {dtype}, expected an 8-bit (or narrower) integer type")
        if ctx.g.tensors[t].quant == FP32:  # codes: their format (for pricing), no scale (values are codes)
            ctx.g.set_quant(t, QuantSpec(format=fmt))
    w_shape = ctx.g.tensors[ins[1]].shape
    channels = w_shape[-1] if op_cls is O.MatMul else w_shape[0]
    given, params = [], []
    for role, i in (roles or QPARAM_INPUTS[node.op_type]).items():
        name = ctx.input(node, i)
        if name is None:
            continue
        size = int(np.prod(ctx.shape(name)))
        if size != 1 and not (role.startswith("w_") and len(ctx.shape(name)) == 1 and size == channels):
            per = "per row" if role.startswith("x_") and op_cls is O.MatMul else "several"
            raise ctx.fail(node, f"{role} (input {i}, '{name}') holds {size} values ({per}); hwsim takes one"
                                 + (f", or one per output channel ({channels})" if role.startswith("w_") else ""))
        given.append(role)
        params.append(ctx.act(name))
    _one(ctx, node, op_cls, ins + params, dtype=out_dtype, quant=out_quant, runtime_quant=tuple(given), **kw)


def _runtime_out(ctx, node, zp_i: int) -> tuple[str, QuantSpec]:
    """(dtype, spec holding only the format) of a QLinear output whose scale is given at run time:
    the type of y_zero_point, else of input 0 (the ONNX rule)."""
    name = ctx.input(node, zp_i) or node.input[0]
    v = ctx.values[name]
    dtype = array_dtype(np.asarray(v.value)) if isinstance(v, Const) else ctx.g.tensors[ctx.act(name)].dtype
    return dtype, QuantSpec(format=format_of(dtype))


def _int32_bias(ctx, node, i: int, scale: np.ndarray) -> str:
    b = np.asarray(ctx.const(node, i, "bias"))
    if b.dtype != np.int32:
        raise ctx.fail(node, f"bias has type {b.dtype}, expected int32")
    v = QConst(b, "int32", node.input[i], scale.reshape(-1) if scale.size > 1 else scale.reshape(1),
               np.zeros(scale.size, np.int64))
    return ctx.place(node.input[i], v, "bias", where=f"{node.op_type} (node '{node.name}')")


@converter("QLinearMatMul")
def _qlinear_matmul(ctx, node):
    if _runtime_params(ctx, node):
        dtype, spec = _runtime_out(ctx, node, 7)
        _runtime_op(ctx, node, O.MatMul, [0, 3], dtype, spec)
        return
    c = lambda i, what: ctx.const(node, i, what)  # noqa: E731
    a = _act_in(ctx, node, 0, c(1, "a_scale"), c(2, "a_zero_point"), -2)
    spec, dtype = _out_spec(ctx, node, 6, 7)
    if isinstance(ctx.values[node.input[3]], Act) or len(ctx.shape(node.input[3])) != 2:
        b = _act_in(ctx, node, 3, c(4, "b_scale"), c(5, "b_zero_point"), -1)
        _one(ctx, node, O.MatMul, [a, b], dtype=dtype, quant=spec)
    else:
        w = _weight(ctx, node, 3, c(4, "b_scale"), c(5, "b_zero_point"), 1, perm=(1, 0))
        _one(ctx, node, O.Linear, [a, w], dtype=dtype, quant=spec)


def _integer_in(ctx, node, i: int, zp_i: int, axis: int, w: str, op_cls, view=None, **kw) -> None:
    """MatMulInteger / ConvInteger with a constant weight ``w`` (placed, with its zero point on
    its spec): input ``i`` carries its zero point on its spec when that is a constant; a zero point
    known only at run time (the one DynamicQuantizeLinear computes in ``quantize_dynamic`` models)
    is the op's ``x_zero_point`` input instead. ``view`` (tensor -> tensor) reshapes the input
    (a 1-D conv's unsqueeze)."""
    view = view or (lambda t: t)
    if ctx.is_const(ctx.input(node, zp_i)) or ctx.input(node, zp_i) is None:
        x = view(_act_in(ctx, node, i, 1.0, ctx.const(node, zp_i, "zero point"), axis))
        _one(ctx, node, op_cls, [x, w], dtype="int32", quant=INT32, **kw)
    else:
        _runtime_op(ctx, node, op_cls, [view(ctx.act(node.input[i])), w], "int32", INT32,
                    roles={"x_zero_point": zp_i}, **kw)


def _weight_runtime(ctx, node) -> bool:
    """True when MatMulInteger's B / ConvInteger's W, or its zero point, is not a constant."""
    return any(not ctx.is_const(n) for n in (ctx.input(node, 1), ctx.input(node, 3)) if n is not None)


@converter("MatMulInteger")
def _matmul_integer(ctx, node):
    if _weight_runtime(ctx, node) or len(ctx.shape(node.input[1])) != 2:
        if _runtime_params(ctx, node, 1):
            _runtime_op(ctx, node, O.MatMul, [0, 1], "int32", INT32)
            return
        a = _act_in(ctx, node, 0, 1.0, ctx.const(node, 2, "a_zero_point"), -2)
        b = _act_in(ctx, node, 1, 1.0, ctx.const(node, 3, "b_zero_point"), -1)
        _one(ctx, node, O.MatMul, [a, b], dtype="int32", quant=INT32)
        return
    w = _weight(ctx, node, 1, 1.0, ctx.const(node, 3, "b_zero_point"), 1, perm=(1, 0))
    _integer_in(ctx, node, 0, 2, -2, w, O.Linear)


@converter("DynamicQuantizeLinear")
def _dynamic_quantize(ctx, node):
    x = ctx.act(node.input[0])
    kinds = (("y", "uint8"), ("scale", "float32"), ("zero_point", "uint8"))
    for out, (part, dtype) in zip(node.output, kinds):
        if out:
            quant = QuantSpec(format=format_of(dtype)) if dtype == "uint8" else None
            _one(ctx, node, O.DynamicQuantize, [x], f".{part}", out=out, dtype=dtype, quant=quant, part=part)


@converter("QuantizeLinear")
def _quantize_runtime(ctx, node):
    """QuantizeLinear whose input is a dequantized constant: place codes + dequantize, then quantize."""
    from hwsim.graph.onnx_quant import _quantize

    ctx.act(node.input[0])
    ctx.values[node.input[0]] = Act(ctx.act(node.input[0]))
    _quantize(ctx, node)


# ------------------------------------------------------------------ com.microsoft ops (onnxruntime's quantizers)
def _expand(ctx, node, nodes) -> None:
    """Import ``node`` as the standard nodes ``nodes`` that define it (names prefixed by the node's)."""
    from hwsim.graph.onnx import _convert
    from hwsim.graph.onnx_generic import _opset

    for n in nodes:
        for t in n.input:
            ctx.consumers.setdefault(t, []).append(n)
    ctx.expanding = True
    try:
        for n in nodes:
            _convert(ctx, n, _opset(ctx), "")
    finally:
        ctx.expanding = False


def _mk(op_type, ins, outs, **kw):
    from onnx import helper

    return helper.make_node(op_type, ins, outs, name=outs[0], **kw)


@converter("com.microsoft.QGemm")
def _qgemm(ctx, node):
    """QGemm = DequantizeLinear(A), DequantizeLinear(B), int32 bias C at scale a_scale * b_scale,
    Gemm, QuantizeLinear(y) (float output without y_scale): the QDQ Gemm onnxruntime fuses into it,
    so the same integer path and requantization (bit-exact with ``requant="onnxruntime"``)."""
    a = attrs(node)
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
        raise ctx.fail(node, "transA=1 or alpha != 1 is not supported (onnxruntime's quantizer writes neither)")
    if _runtime_params(ctx, node, 3, 6):
        _qgemm_runtime(ctx, node, bool(a.get("transB", 0)))
        return
    p = (node.name or node.output[0]) + "."
    b_axis = 0 if a.get("transB", 0) else 1
    nodes = [_mk("DequantizeLinear", list(node.input[0:3]), [p + "a"]),
             _mk("DequantizeLinear", list(node.input[3:6]), [p + "b"], axis=b_axis)]
    ins = [p + "a", p + "b"]
    if ctx.input(node, 6):
        s = (np.asarray(ctx.const(node, 1, "a_scale"), np.float32) * np.asarray(ctx.const(node, 4, "b_scale"), np.float32))
        ctx.values[p + "c_scale"] = Const(np.asarray(s, np.float32).reshape(-1) if s.size > 1 else s.reshape(()))
        ctx.values[p + "c_zp"] = Const(np.zeros(s.shape, np.int32).reshape(-1) if s.size > 1 else np.zeros((), np.int32))
        nodes.append(_mk("DequantizeLinear", [node.input[6], p + "c_scale", p + "c_zp"], [p + "c"], axis=0))
        ins.append(p + "c")
    quantized = bool(ctx.input(node, 7))
    nodes.append(_mk("Gemm", ins, [p + "y" if quantized else node.output[0]], transB=int(a.get("transB", 0))))
    if quantized:
        nodes.append(_mk("QuantizeLinear", [p + "y"] + [n for n in node.input[7:9]], [node.output[0]]))
    _expand(ctx, node, nodes)


def _qgemm_runtime(ctx, node, trans_b: bool) -> None:
    """QGemm with run-time scales / zero points (or B, C not constants): a linear op over B laid
    out (N, K) (a transpose first when transB=0), the int32 bias C, and the parameters as run-time
    inputs; y is requantized, or without y_scale the int32 result is scaled in float32."""
    if isinstance(ctx.values[node.input[3]], Const):  # a stored B: a weight, laid out (N, K)
        b = ctx.place(node.input[3], ctx.values[node.input[3]], "weight", perm=None if trans_b else (1, 0))
        trans_b = True
    else:
        b = ctx.act(node.input[3])
    if not trans_b:
        k, n = ctx.g.tensors[b].shape
        b = _one(ctx, node, O.Transpose, [b], ".transB", out=f"{node.output[0]}.transB",
                 dtype=ctx.g.tensors[b].dtype, quant=QuantSpec(format=format_of(ctx.g.tensors[b].dtype)), perm=(1, 0))
    operands = [0, b] + ([6] if ctx.input(node, 6) else [])
    if ctx.input(node, 7):
        _runtime_op(ctx, node, O.Linear, operands, *_runtime_out(ctx, node, 8))
        return
    # float output: float32(int32 accumulator + C) * float32(a_scale * b_scale), onnxruntime's order
    p = (node.name or node.output[0]) + "."
    _runtime_op(ctx, node, O.Linear, operands, "int32", INT32, roles={"x_zero_point": 2, "w_zero_point": 5},
                out=p + "acc")
    _expand(ctx, node, [_mk("Cast", [p + "acc"], [p + "accf"], to=1),
                        _mk("Mul", [node.input[1], node.input[4]], [p + "scale"]),
                        _mk("Mul", [p + "accf", p + "scale"], [node.output[0]])])


def _integer_matmul_to_float(p: str, a: str, b: str, a_scale: str, b_scale: str, a_zp: str | None,
                             b_zp: str | None, bias: str | None, out: str) -> list:
    """Standard nodes of onnxruntime's integer matmul with float output, in its order:
    MatMulInteger, the int32 product cast to float32 and multiplied by ``float32(a_scale *
    b_scale)``, then the bias added. Names of new values start with ``p``."""
    zps = [a_zp or "", b_zp] if b_zp else ([a_zp] if a_zp else [])
    nodes = [_mk("MatMulInteger", [a, b] + zps, [p + "acc"]),
             _mk("Cast", [p + "acc"], [p + "accf"], to=1),
             _mk("Mul", [a_scale, b_scale], [p + "s"]),
             _mk("Mul", [p + "accf", p + "s"], [p + "y" if bias else out])]
    if bias:
        nodes.append(_mk("Add", [p + "y", bias], [out]))
    return nodes


@converter("com.microsoft.DynamicQuantizeMatMul")
def _dynamic_quantize_matmul(ctx, node):
    """DynamicQuantizeMatMul(A, B, b_scale, b_zero_point, bias) = DynamicQuantizeLinear(A), then
    :func:`_integer_matmul_to_float` with A's computed scale and zero point."""
    p = (node.name or node.output[0]) + "."
    nodes = [_mk("DynamicQuantizeLinear", [node.input[0]], [p + "aq", p + "as", p + "az"])]
    nodes += _integer_matmul_to_float(p, p + "aq", node.input[1], p + "as", node.input[2], p + "az",
                                      ctx.input(node, 3), ctx.input(node, 4), node.output[0])
    _expand(ctx, node, nodes)


@converter("com.microsoft.MatMulIntegerToFloat")
def _matmul_integer_to_float(ctx, node):
    """MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zero_point, b_zero_point, bias) (what
    onnxruntime fuses MatMulInteger -> Cast -> Mul into): :func:`_integer_matmul_to_float`; scales
    and zero points may be constants or run-time values."""
    p = (node.name or node.output[0]) + "."
    _expand(ctx, node, _integer_matmul_to_float(p, *node.input[:4], ctx.input(node, 4), ctx.input(node, 5),
                                                ctx.input(node, 6), node.output[0]))


#: com.microsoft QLinear elementwise ops -> (standard op, number of quantized inputs): each one is
#: DequantizeLinear of its inputs, the float op, QuantizeLinear of the output (what onnxruntime
#: fuses into it, and the simulator models at requant="onnxruntime"; :mod:`hwsim.sim.ortfused`)
_QLINEAR_ELEMENTWISE = {"QLinearAdd": ("Add", 2), "QLinearMul": ("Mul", 2), "QLinearSigmoid": ("Sigmoid", 1),
                        "QLinearGlobalAveragePool": ("GlobalAveragePool", 1), "QLinearSoftmax": ("Softmax", 1),
                        "QLinearLeakyRelu": ("LeakyRelu", 1), "QLinearAveragePool": ("AveragePool", 1)}
#: attributes each float op keeps from its QLinear node
_KEPT_ATTRS = {"Softmax": ("axis",), "LeakyRelu": ("alpha",),
               "AveragePool": ("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides")}


def _qlinear_elementwise(ctx, node):
    op_type, n_in = _QLINEAR_ELEMENTWISE[node.op_type]
    a = attrs(node)
    if a.get("channels_last", 0):
        raise ctx.fail(node, "channels_last=1 (NHWC) is not supported")
    if node.op_type == "QLinearSoftmax" and int(a.get("opset", 13)) < 13:
        # opsets < 13 flatten the axes from ``axis`` on (default 1): the same rows only over the last axis
        rank = len(ctx.shape(node.input[0]))
        axis = int(a.get("axis", 1)) % max(rank, 1)
        if axis != rank - 1:
            raise ctx.fail(node, f"opset-{int(a['opset'])} softmax over axis {axis} of a rank-{rank} tensor "
                                 "(softmax over flattened trailing axes) is not supported")
        a = {**a, "axis": axis}
    p = (node.name or node.output[0]) + "."
    nodes, ins = [], []
    for i in range(n_in):
        trio = list(node.input[3 * i:3 * i + 3])
        nodes.append(_mk("DequantizeLinear", trio if trio[2] else trio[:2], [f"{p}x{i}"]))
        ins.append(f"{p}x{i}")
    kw = {k: v for k, v in a.items() if k in _KEPT_ATTRS.get(op_type, ())}
    nodes.append(_mk(op_type, ins, [p + "y"], **kw))
    out = [n for n in node.input[3 * n_in:3 * n_in + 2] if n]
    nodes.append(_mk("QuantizeLinear", [p + "y"] + out, [node.output[0]]))
    _expand(ctx, node, nodes)


@converter("com.microsoft.QLinearConcat")
def _qlinear_concat(ctx, node):
    """QLinearConcat(Y_scale, Y_zero_point, (X, X_scale, X_zero_point)...) = DequantizeLinear of every
    input, Concat, QuantizeLinear (onnxruntime requantizes each input that way, by a lookup table)."""
    p = (node.name or node.output[0]) + "."
    if (len(node.input) - 2) % 3:
        raise ctx.fail(node, f"{len(node.input)} inputs; QLinearConcat takes Y_scale, Y_zero_point and triples")
    nodes, ins = [], []
    for i in range((len(node.input) - 2) // 3):
        trio = list(node.input[2 + 3 * i:5 + 3 * i])
        nodes.append(_mk("DequantizeLinear", trio if trio[2] else trio[:2], [f"{p}x{i}"]))
        ins.append(f"{p}x{i}")
    nodes.append(_mk("Concat", ins, [p + "y"], axis=int(attrs(node)["axis"])))
    nodes.append(_mk("QuantizeLinear", [p + "y"] + [n for n in node.input[:2] if n], [node.output[0]]))
    _expand(ctx, node, nodes)


for _name in _QLINEAR_ELEMENTWISE:
    converter(f"com.microsoft.{_name}")(_qlinear_elementwise)
