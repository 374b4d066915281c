"""ONNX import: ``load_onnx(path, shapes) -> Graph``.

How a file becomes an IR graph
------------------------------
1. The file is read with ``onnx.load`` (a file that is not ONNX, or is truncated, raises
   ``ConfigError``). Dynamic dims of graph inputs are bound from ``shapes``: a symbolic dim
   (``dim_param``) by its name, an anonymous dim (no name, ``?``, or Paddle's ``-1`` written as a
   size) by ``INPUT.INDEX`` (e.g. ``input_ids.1``), or a whole input by its name and a shape
   (``{"x": (1, 3, 48, 192)}``; also taken from ``values``, the arrays the model will run on).
   An unbound dim raises ``ShapeError`` naming the input and dim; a ``shapes`` key that names
   nothing is ignored with a note on the graph. Graph inputs that decide control flow (an If
   condition, a Loop trip count) are specialized to their value when ``values`` has it.
2. Nodes are walked in file order. A node whose inputs are all constants is folded with
   ``onnx.reference.ReferenceEvaluator``; an If whose condition is known is replaced by the taken
   branch's nodes; other nodes go to their converter (below). A standard-domain node without MACs
   that has no converter, or that its converter declines (e.g. a Where with a run-time
   condition), takes the generic path (:mod:`hwsim.graph.onnx_generic`): one ``onnx`` IR op per
   used output, shapes from onnx shape inference, run by its ONNX definition, priced as
   elementwise work. Every node no path takes (custom domains, MAC ops in forms without a kernel,
   If/Loop decided at run time whose bodies hold MAC ops), subgraphs included, is collected and
   all are reported in one ``UnsupportedOpError`` (nodes that only read failed nodes are not).
3. Shape/Size read the IR's inferred shapes. Identity (also of constants: exporters dedupe shared
   weights through Identity) and Dropout alias their input; ``Expand`` to the shape it already has
   aliases too. ``load_onnx(..., constants={name: array})`` treats those graph inputs as
   constants (ONNX's node tests feed scales and zero points as inputs).
4. Graph inputs and outputs keep their ONNX names and element types. An output that ends up as
   another tensor (Identity at the end) gets an ``identity`` unary op. The graph is verified.

Float ops
---------
Conv (2-D) -> conv2d; Gemm -> linear (weight (out, in) = B or B.T; constant C over the outputs
becomes the bias times beta; alpha != 1 and other C become a mul / add after it; a run-time B ->
matmul); MatMul with a 2-D constant B -> linear with weight B.T (and a following Add of a constant (N,)
initializer, when it is the MatMul's only reader, becomes its bias), otherwise matmul; Add/Sub/Mul/
Div/Pow/Max/Min -> binary; Relu/Sigmoid/Tanh/Erf/Sqrt/Exp/Neg/Reciprocal/Abs/Log/HardSwish/Gelu ->
unary; Clip -> relu6 (0, 6), relu (0, inf) or clip; HardSigmoid (1/6, 0.5) -> hardsigmoid, other
alpha/beta -> mul, add, clip; MaxPool/AveragePool (2-D) -> pool; GlobalAveragePool ->
global_avgpool; GlobalMaxPool and ReduceMean/Sum/Max/Min -> reduce; Softmax; LayerNormalization
(last axis) -> layernorm (a missing bias becomes a zero constant); BatchNormalization ->
batchnorm; Gather of a 2-D constant by run-time ids, or of a float initializer table by constant
ids (position embeddings; ids out of the table raise ShapeError) -> embedding, else gather;
Concat, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Slice; Split -> one slice per output;
Cast/CastLike -> cast; Where with a constant condition and one constant branch (causal masks) ->
``x * keep + fill`` (binary mul, add; exact for finite x); Expand of a run-time tensor to a larger
shape -> binary mul by a ones constant. Conv 1-D (through conv2d views) / 3-D, ConvTranspose
1-D / 2-D / 3-D, LSTM, GRU and RNN: :mod:`hwsim.graph.onnx_macs`. Einsum of two operands:
:mod:`hwsim.graph.onnx_einsum`. com.microsoft MatMulNBits, DynamicQuantizeLSTM, QAttention and
Attention: :mod:`hwsim.graph.onnx_msops`. Everything else without MACs (comparisons, logic, Pad,
Resize, TopK, GatherND, 1-D/3-D pooling, Einsum of one operand...): the generic path. Not handled
(reported): Einsum of three or more operands, custom-domain ops without a converter. A decomposed
LayerNorm stays as its primitive ops. Float initializers become tensors of role weight (bias for conv/linear biases,
buffer for batch-norm statistics) with float32 data; scalars and integer constants role const.

IR contract for quantized tensors
---------------------------------
``QuantSpec(format, scale, zero_point, granularity, axis)`` on a tensor means
``real = scale * (code - zero_point)``. Integer QuantSpecs made by the importer always carry an
explicit zero_point tuple (zeros when the file has none).

- ``Tensor.dtype`` is the ONNX element type in numpy spelling ("uint8", "int8", "int32",
  "float32", "float16", "int64", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz",
  "float4e2m1", "int4", "uint4", "int2", "uint2", "bfloat16").
- Weight ``Tensor.data`` of an integer-quantized initializer holds the integer codes as in the
  file (numpy integer dtype; int4/uint4/int2/uint2 widened to int8/uint8, ``dtype`` says "int4"),
  transposed when the IR layout needs it; never dequantized. Float initializers hold float32
  values. Float8/float4 quantized initializers hold float32 real values (as DequantizeLinear
  computes them: on the format's grid times the scale; ``Tensor.data`` of a non-integer dtype is
  real values in the IR) with ``dtype`` "float8e4m3fn" etc. and the fp8 spec with its scale.
- conv2d weights are (O, I, H, W), linear weights (out, in): a MatMul/QLinearMatMul B (K, N) is
  transposed and its per-column axis 1 becomes axis 0. Per-group (DequantizeLinear
  ``block_size``, or codes (O, G, g) * scale (O, G, 1) reshaped to (O, G*g)) becomes
  ``granularity="group"``, ``axis`` = the blocked axis, ``group_size`` = the block, and ``scale`` the
  scale array (codes shape with the blocked dim divided by the block) flattened in C order.
- Folded QDQ: ``x -> QuantizeLinear -> DequantizeLinear -> op`` disappears and ``x`` (the producer's
  output, or the graph input) carries the QuantSpec; ops read ``x``. Not where another node reads
  ``x`` as it is, or ``x`` is a graph output (explicit quantization puts Q -> DQ on some readers
  only): the pair then stays an explicit ``quantize`` -> ``dequantize``, and those readers read
  ``x`` unquantized. A DequantizeLinear whose
  output is a graph output renames the producer's output to that name. A QuantizeLinear output
  read by anything but a matching DequantizeLinear (or a graph output) becomes an explicit
  ``quantize`` op whose output (dtype uint8/int8...) carries the spec; a DequantizeLinear of a
  run-time tensor becomes a ``dequantize`` op whose input carries the spec.
- DequantizeLinear of an integer initializer: the consuming conv2d/linear/embedding weight (or
  bias, or batchnorm/layernorm parameter) is a tensor named as the integer initializer holding
  the codes and the spec (per-tensor, per-channel ``axis``, or per-group). An int32 bias
  via DequantizeLinear is role "bias" with ``QuantSpec("int32", scale=s_x*s_w as in the file, 0)``.
  Read by any other op, the codes become a weight tensor named as the initializer plus a
  ``dequantize`` op writing the DequantizeLinear output.
- QLinearConv / QLinearMatMul: the activation input carries (x dtype, x_scale, x_zero_point); the
  weight carries int8/uint8 codes with per-tensor or per-channel (axis 0) w_scale/w_zero_point;
  the OUTPUT tensor carries (y_zero_point dtype, y_scale, y_zero_point) and that dtype: this tells
  the simulator to run the integer path and requantize. QLinearConv's bias: role "bias",
  ``QuantSpec("int32", scale=float32(x_scale * w_scale) per channel, zero_point 0)``, int32 codes.
  A run-time B of QLinearMatMul makes a matmul with both inputs annotated (b per column = axis -1).
- MatMulInteger / ConvInteger: inputs carry integer specs with scale (1.0,) (per-channel weight
  zero points give per-channel specs with scales 1.0); the output is ``QuantSpec("int32",
  scale=(1.0,), zero_point=(0,))`` with dtype "int32".
- Scales and zero points known only at run time (graph inputs, or computed: the zero point a
  DynamicQuantizeLinear gives in ``quantize_dynamic`` models) cannot sit on a spec: they become
  trailing inputs of the conv2d / linear / matmul, whose ``runtime_quant`` names their roles
  (x_scale, x_zero_point, w_scale, w_zero_point, y_scale, y_zero_point). The codes tensors they
  quantize carry their integer format and no scale (their values are codes). For QLinear* nodes
  every scale and zero point becomes an input once one of them (or the weight) is not a constant;
  for *Integer nodes with a constant weight only the run-time input zero point does.
- A QuantizeLinear of a dequantized constant (Q(DQ(codes))) is folded to the new codes with the
  ONNX reference, so the re-quantized constant is again codes + spec.
- Weight-only: ``Cast(int initializer) -> [Sub zero point] -> Mul scale -> MatMul/Gemm/Conv``
  (also with a Transpose, or a Reshape merging (groups, group) axes, after the Mul) puts the codes
  and the spec on the weight; activations stay fp32. A Cast integer initializer used directly
  as a weight is scale 1.0.
- Standalone QuantizeLinear / DequantizeLinear / Cast -> ``quantize`` / ``dequantize`` / ``cast``
  ops (``Cast.to`` is the hwsim format name when the type has one, e.g. "fp16", "fp8_e4m3fn",
  "int8", else the numpy spelling, e.g. "int64"; the output's ``dtype`` is always the numpy
  spelling). DynamicQuantizeLinear -> one ``dynamic_quantize`` op per output (part y / scale /
  zero_point), y annotated uint8 with no scale.
- Scales are stored as Python floats (float16 scales are widened).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx.reference.ops import load_op
from pydantic import ValidationError

from hwsim.errors import ConfigError, ShapeError, UnsupportedOpError
from hwsim.graph import ops as O
from hwsim.graph import (onnx_einsum, onnx_generic, onnx_macs, onnx_movement, onnx_msops,  # noqa: F401  (register)
                         onnx_qconv, onnx_qlinear)
from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.onnx_check import check_structure
from hwsim.graph.onnx_ctx import Importer
from hwsim.graph.onnx_ops import CONVERTERS
from hwsim.graph.onnx_quant import PRE, reads_unquantized
from hwsim.graph.onnx_values import Act, Const, dtype_name

_STANDARD = ("", "ai.onnx")


def load_onnx(path: str | Path, shapes: dict[str, int | tuple[int, ...]],
              constants: dict[str, np.ndarray] | None = None,
              values: dict[str, np.ndarray] | None = None) -> Graph:
    """Import an ONNX file as a verified IR graph, binding dynamic dims from ``shapes``.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file (external data next to it is read by ``onnx.load``).
    shapes : dict
        Dynamic dim bindings by dim name, e.g. ``{"batch": 1, "sequence": 128}``, or whole
        inputs by input name, e.g. ``{"x": (1, 3, 48, 192)}`` (``--shape``).
    constants : dict of str to numpy.ndarray, optional
        Graph inputs to treat as constants with these values (e.g. the scale and zero-point
        inputs of ONNX's node conformance tests, so QLinear ops get their QuantSpecs).
    values : dict of str to numpy.ndarray, optional
        The inputs the model will run on (``--inputs``): each binds the shape of its graph input
        (unless ``shapes`` names it), and inputs that decide control flow (an If condition, a
        Loop trip count) are specialized to their value (the IR input keeps it as ``data``).

    Returns
    -------
    Graph
        Verified graph; tensor names are the ONNX names. See the module docstring. Its
        constants' ``data`` are read-only (:func:`hwsim.kernels.packcache.frozen`: the simulator
        finds their packed forms by identity); to change one, give the tensor a new array.
    """
    model = read_model(path)
    check_structure(model, str(path))
    _keep_output_names(model)
    ctx = Importer(model, Path(path).stem)
    ctx.elem_types = _elem_types(model)
    ctx.run_values = dict(values or {})
    _bind_inputs(ctx, model, dict(shapes), constants or {}, values or {})
    _walk(ctx, model)
    _outputs(ctx, model)
    opset = next((o.version for o in model.opset_import if o.domain in _STANDARD), None)
    ctx.g.notes.append(f"imported from ONNX (opset {opset}) with {len(model.graph.node)} nodes")
    generic = sorted({o.op_type for o in ctx.g.ops() if o.op == "onnx"})
    if generic:
        ctx.g.notes.append(f"ops run by their ONNX definition and priced as elementwise work: {', '.join(generic)}")
    return ctx.g.verify()


#: the last ONNX file parsed, ``{(resolved path, blake2b of its bytes): ModelProto}``: a command
#: reads its model's input names, then imports it, often at several shapes (solve: priced,
#: measured, stacked), and every one of these reads this one parse (the bytes are hashed, not
#: dated: a file rewritten within a clock tick with the same size is still read again)
_LAST_PARSED: dict = {}


def _parsed(path: str | Path) -> onnx.ModelProto:
    """The file's parse, as ``onnx.load`` makes it (shared; never edit it); its exception if it fails."""
    from onnx.external_data_helper import load_external_data_for_model

    p = Path(path)
    data = p.read_bytes()
    key = (str(p.resolve()), hashlib.blake2b(data, digest_size=16).digest())
    if key not in _LAST_PARSED:
        model = onnx.load_model_from_string(data)
        load_external_data_for_model(model, str(p.parent))
        _LAST_PARSED.clear()
        _LAST_PARSED[key] = model
    return _LAST_PARSED[key]


def read_model(path: str | Path) -> onnx.ModelProto:
    """``onnx.load`` (a copy of the file's one parse, see :data:`_LAST_PARSED`) with a ConfigError
    for files that are not (complete) ONNX models."""
    try:
        parsed = _parsed(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable ONNX model (truncated or another format?): "
                          f"{type(exc).__name__}: {exc}") from None
    if not parsed.graph.output or not parsed.opset_import:
        raise ConfigError(f"{path}: not an ONNX model (no graph outputs or opset); export it again "
                          "with torch.onnx.export or check the file")
    model = onnx.ModelProto()
    model.CopyFrom(parsed)  # the import edits its model
    return model


def input_names(path: str | Path) -> list[str]:
    """Names of the graph inputs (not initializers) of an ONNX file."""
    try:
        model = _parsed(path)
    except Exception:
        return []  # load_onnx reports the unreadable file
    inits = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor from onnx shape inference, run on a copy whose large
    initializers are replaced by typed graph inputs (their values do not decide any type)."""
    light = onnx.ModelProto()
    _light_copy(model, light)
    try:
        inferred = onnx.shape_inference.infer_shapes(light)
    except Exception:  # inference is only a source of element types; fall back to the file
        inferred = model
    g = inferred.graph
    return {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)
            if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type}


def _light_copy(model: onnx.ModelProto, light: onnx.ModelProto) -> None:
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g = light.graph
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    g.value_info.extend(model.graph.value_info)
    declared = {i.name for i in model.graph.input}
    for t in model.graph.initializer:
        if len(t.dims) and int(np.prod(t.dims)) > 4096:
            if t.name not in declared:
                g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            g.initializer.append(t)


def _label(node: onnx.NodeProto, where: str = "") -> str:
    kind = node.op_type if node.domain in _STANDARD else f"{node.domain}.{node.op_type}"
    return f"{kind} (node '{node.name or node.output[0]}'{where})"


def _known(node: onnx.NodeProto, opset: int) -> bool:
    """True when some path can take the node's op type: a converter, a PRE handler, or (standard
    domain, no MACs) the ONNX reference implementation behind the generic path."""
    if node.domain not in _STANDARD:
        return f"{node.domain}.{node.op_type}" in CONVERTERS
    if node.op_type in CONVERTERS or node.op_type in PRE:
        return True
    if node.op_type in onnx_generic.MAC_OPS:
        return False
    try:
        load_op("", node.op_type, opset)
    except Exception:
        return False
    return True


def _unknown_inside(node: onnx.NodeProto, opset: int, where: str) -> list[str]:
    """Labels of the nodes of unknown op type in ``node``'s subgraphs, at any depth."""
    out = []
    for attr, g in onnx_generic.subgraphs(node):
        inner = f" in {node.op_type} '{node.name or node.output[0]}' {attr}{where}"
        for n in g.node:
            if not _known(n, opset):
                out.append(_label(n, inner))
            out += _unknown_inside(n, opset, inner)
    return out


def _walk(ctx: Importer, model: onnx.ModelProto) -> None:
    """Convert every node (the taken branch of an If known at import included); collect every
    node of an unknown op type, at any depth, and every node a converter rejects unless it only
    reads outputs of failed nodes; raise them together."""
    failed: list[str] = []
    _walk_nodes(ctx, list(model.graph.node), failed, set(), "")
    if failed:
        raise UnsupportedOpError(
            f"unsupported ONNX ops: {', '.join(failed)}. hwsim imports every standard-domain ONNX op "
            "(opsets 13-21) that the ONNX reference implements; MAC ops need a dedicated kernel (Conv 1-D/2-D/3-D, "
            "ConvTranspose 1-D/2-D, MatMul, Gemm, LSTM, GRU and the quantized forms); replace or remove these "
            "nodes (custom-domain ops, MAC ops in other forms) before import")


def _walk_nodes(ctx: Importer, nodes: list, failed: list[str], poisoned: set[str], where: str) -> None:
    opset = onnx_generic._opset(ctx)
    for node in nodes:
        if any(n in poisoned for n in list(node.input) + onnx_generic.outer_names(node) if n):
            poisoned.update(node.output)
            if not _known(node, opset):  # unknown op types are listed wherever they are
                failed.append(_label(node, where))
            failed += _unknown_inside(node, opset, where)
            continue
        try:
            branch = _convert(ctx, node, opset, where)
        except UnsupportedOpError as exc:
            item = getattr(exc, "item", None) or str(exc).removeprefix("unsupported ONNX op: ")
            failed.append(item if not where else f"{item} ({where.strip()})")
            poisoned.update(node.output)
            continue
        if branch is not None:
            attr, branch = branch
            onnx_generic.bind_branch_initializers(ctx, branch)
            ctx.add_readers(branch.node, [o.name for o in branch.output])
            inner = f" in If '{node.name or node.output[0]}' {attr}"
            before = len(failed)
            _walk_nodes(ctx, list(branch.node), failed, poisoned, inner + where)
            if len(failed) > before:
                poisoned.update(node.output)
            else:
                onnx_generic.bind_branch_outputs(ctx, node, branch)


def _bind_inputs(ctx: Importer, model: onnx.ModelProto, shapes: dict, constants: dict[str, np.ndarray],
                 values: dict[str, np.ndarray]) -> None:
    inits = {t.name for t in model.graph.initializer}
    for t in model.graph.initializer:
        ctx.values[t.name] = Const(onnx.numpy_helper.to_array(t), t.data_type in (1, 10, 11, 16))
    control = onnx_generic.control_inputs(model) if values else set()
    missing, known = [], set()
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        if inp.name in constants:
            ctx.values[inp.name] = Const(np.asarray(constants[inp.name]))
            continue
        if not inp.type.HasField("tensor_type") or not inp.type.tensor_type.HasField("shape"):
            raise ShapeError(f"graph input '{inp.name}' has no tensor shape; hwsim needs tensors of known rank")
        dims = _input_dims(inp, shapes, values, known, missing)
        dtype = dtype_name(inp.type.tensor_type.elem_type)
        data = None
        if inp.name in control and inp.name in values:  # decides control flow: specialize to the value
            data = np.asarray(values[inp.name])
            if tuple(data.shape) != tuple(dims):
                raise ShapeError(f"input '{inp.name}' has shape {tuple(data.shape)}; the model declares {tuple(dims)}")
            ctx.values[inp.name] = Const(data)
            ctx.g.notes.append(f"input '{inp.name}' decides control flow: the model is specialized to its "
                               f"value {data.reshape(-1)[:4].tolist()}")
        ctx.g.add_tensor(Tensor(inp.name, tuple(dims), "input", dtype=dtype, data=data))
        if data is None:
            ctx.values[inp.name] = Act(inp.name)
    if missing:
        raise ShapeError("; ".join(missing), param="shapes")
    unused = sorted(set(shapes) - known)
    if unused:  # harmless (every dim is bound), so a note rather than an error
        ctx.g.notes.append(f"shapes {', '.join(unused)} matched no dynamic dim or input of this model "
                           f"(its dynamic dims: {', '.join(sorted(known - {i.name for i in model.graph.input})) or 'none'})")


#: dim names that name nothing (exporters write them for every dynamic dim): bound per input and index
_ANONYMOUS = ("", "?", "-1", "None", "none")


def _input_dims(inp, shapes: dict, values: dict, known: set, missing: list) -> list[int]:
    """Dims of one graph input: a whole-input binding (``shapes[name]`` as a shape, or the shape of
    ``values[name]``), else per dim: static, by dim name, or ``INPUT.INDEX`` for anonymous dims
    (no name, ``?``, or Paddle's ``-1`` written as a size)."""
    decl = inp.type.tensor_type.shape.dim
    whole = shapes.get(inp.name)
    if isinstance(whole, int) and len(decl) == 1:
        whole = (whole,)
    if inp.name in values:
        _check_value_shape(inp.name, decl, shapes, tuple(np.shape(values[inp.name])), whole)
        whole = tuple(np.shape(values[inp.name]))
    if whole is not None and not isinstance(whole, int):
        known.add(inp.name)
        known.update(_dim_key(inp.name, i, d) for i, d in enumerate(decl)  # bound too: a shape key that
                     if not (d.HasField("dim_value") and d.dim_value >= 0))  # names one is not unused
        whole = tuple(int(v) for v in whole)
        fixed = [d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None for d in decl]
        if len(whole) != len(decl) or any(f is not None and f != w for f, w in zip(fixed, whole)) or min(whole, default=1) < 1:
            want = "x".join("?" if f is None else str(f) for f in fixed)
            raise ShapeError(f"input '{inp.name}' bound to {'x'.join(map(str, whole)) or '()'}, but the model declares "
                             f"{want or 'a scalar'} (rank {len(decl)}, every dim >= 1)")
        return list(whole)
    dims = []
    for i, d in enumerate(decl):
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(int(d.dim_value))
            continue
        key = _dim_key(inp.name, i, d)
        known.add(key)
        if key in shapes and isinstance(shapes[key], int):
            if int(shapes[key]) < 1:
                raise ShapeError(f"shapes {key}={shapes[key]}: input '{inp.name}' dim {i} must be >= 1, "
                                 f"e.g. {key}=1", param="shapes")
            dims.append(int(shapes[key]))
        else:
            missing.append(f"input '{inp.name}' dim {i} ('{key}') is dynamic: bind it in shapes as {key}=VALUE "
                           f"or the whole input as {inp.name}=" + "x".join(
                               str(x.dim_value) if x.HasField("dim_value") and x.dim_value >= 0 else "N" for x in decl))
            dims.append(1)
    return dims


def _dim_key(name: str, i: int, d) -> str:
    """The ``shapes`` key of dynamic dim ``i`` of input ``name``: its name, or ``INPUT.INDEX``."""
    return d.dim_param if d.HasField("dim_param") and d.dim_param not in _ANONYMOUS else f"{name}.{i}"


def _check_value_shape(name: str, decl, shapes: dict, given: tuple, whole) -> None:
    """ShapeError when ``shapes`` binds input ``name`` (whole, or one of its dynamic dims by name or
    ``INPUT.INDEX``) to other sizes than the array given for it in ``values``: one would be ignored."""
    if whole is not None and not isinstance(whole, int) and tuple(int(v) for v in whole) != given:
        raise ShapeError(f"input '{name}' is bound to {'x'.join(map(str, whole))} but the array given for it has "
                         f"shape {'x'.join(map(str, given))}; give one of the two", param="shapes")
    for i, d in enumerate(decl):
        if (d.HasField("dim_value") and d.dim_value >= 0) or i >= len(given):
            continue
        key = _dim_key(name, i, d)
        if isinstance(shapes.get(key), int) and int(shapes[key]) != given[i]:
            raise ShapeError(f"{key}={shapes[key]}, but the array given for input '{name}' has {given[i]} in dim {i} "
                             f"(shape {'x'.join(map(str, given))}); give one of the two", param="shapes")


def _keep_output_names(model: onnx.ModelProto) -> None:
    """Q -> DQ -> graph output: rename the quantized producer's output to the output name (not
    where other nodes read the producer's output as it is: the pair then stays explicit, see
    :func:`hwsim.graph.onnx_quant._read_unquantized`)."""
    outs = {o.name for o in model.graph.output}
    produced = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for n in dict.fromkeys(node.input):
            readers.setdefault(n, []).append(node)
    inits = {t.name: t for t in model.graph.initializer}

    def value(name: str):
        return onnx.numpy_helper.to_array(inits[name]) if name in inits else None
    for dq in model.graph.node:
        if dq.op_type != "DequantizeLinear" or dq.output[0] not in outs:
            continue
        q = produced.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] in outs or q.input[0] not in produced \
                or reads_unquantized(readers.get(q.input[0], []), q, value):
            continue
        old, new = q.input[0], dq.output[0]
        for node in model.graph.node:
            for seq in (node.input, node.output):
                for k, n in enumerate(seq):
                    if n == old and node is not dq:
                        seq[k] = new


def _convert(ctx: Importer, node: onnx.NodeProto, opset: int, where: str):
    """Convert one node; returns (attribute, branch) to walk when it is an If decided at import."""
    if node.output and node.output[0] in ctx.fused:
        return None
    std = node.domain in _STANDARD
    if not _known(node, opset):
        if std and node.op_type in onnx_generic.MAC_OPS:
            raise ctx.fail(node, "a MAC op hwsim has no kernel for")
        raise UnsupportedOpError(_label(node, where))
    try:
        handler = PRE.get(node.op_type) if std else None
        if handler is not None and handler(ctx, node):
            return None
        branch = onnx_generic.taken_branch(ctx, node)
        if branch is not None:  # its nodes are walked (and checked) like any others
            return branch
        inside = _unknown_inside(node, opset, where)
        if inside:
            raise UnsupportedOpError(", ".join(inside))
        if not std:  # a custom-domain op with a converter (com.microsoft ops of onnxruntime's quantizers)
            CONVERTERS[f"{node.domain}.{node.op_type}"](ctx, node)
        elif all(ctx.is_const(n) for n in list(node.input) + onnx_generic.outer_names(node) if n):
            ctx.fold(node)
        elif std and node.op_type in CONVERTERS:
            before = len(ctx.g.nx)
            try:
                CONVERTERS[node.op_type](ctx, node)
            except UnsupportedOpError:
                if node.op_type in onnx_generic.MAC_OPS or len(ctx.g.nx) != before:
                    raise
                onnx_generic.convert_generic(ctx, node)
        else:
            onnx_generic.convert_generic(ctx, node)
    except (ValidationError, ValueError) as exc:
        raise UnsupportedOpError(f"ONNX node {node.op_type} '{node.name or node.output[0]}' could not be imported: "
                                 f"{exc}") from None
    return None


def _outputs(ctx: Importer, model: onnx.ModelProto) -> None:
    for out in model.graph.output:
        v = ctx.values.get(out.name)
        if isinstance(v, Const) and out.name in ctx.g.tensors:  # a constant an op reads as well
            held = ctx.g.tensors[out.name].data
            if held is None or held.shape != v.value.shape or not np.array_equal(held, v.value):
                raise ConfigError(f"graph output '{out.name}' is an initializer that an op also reads, stored "
                                  "transformed for that op (a MatMul's weight is kept transposed): hwsim cannot "
                                  "output it under its own name; drop it from the graph outputs")
            # held as it is: the simulator outputs the stored constant (hwsim.sim.runner.run)
        if isinstance(v, Const) and out.name not in ctx.g.tensors:  # a constant output: placed under
            ctx.values[f"{out.name}.value"] = v                      # another name, copied by identity
            t = ctx.act(f"{out.name}.value")
        else:
            t = ctx.act(out.name)
        if t != out.name:
            ctx.add(O.Unary(name=ctx._unique(f"{out.name}.identity"), fn="identity", inputs=(t,),
                            outputs=(out.name,)), dtype=ctx.g.tensors[t].dtype, quant=ctx.g.tensors[t].quant)
        ctx.g.outputs.append(out.name)
