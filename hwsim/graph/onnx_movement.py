"""ONNX data-movement ops -> IR view ops (registered into :data:`hwsim.graph.onnx_ops.CONVERTERS`).

Shapes, axes and slice bounds given as inputs must be constants once dynamic dims are bound;
the shape subgraphs that compute them are folded before these converters run.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ShapeError, UnsupportedOpError

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _ints, _one, _param, attrs, converter
from hwsim.graph.onnx_quant import pre
from hwsim.graph.onnx_values import Act, Const, QConst, array_dtype, dtype_name, format_of
from hwsim.graph.quant import QuantSpec


@converter("Gather")
def _gather(ctx, node):
    axis = int(attrs(node).get("axis", 0))
    table, ids = ctx.values[node.input[0]], node.input[1]
    if isinstance(table, (Const, QConst)) and len(ctx.shape(node.input[0])) == 2 and axis == 0 \
            and isinstance(ctx.values[ids], Act):
        _one(ctx, node, O.Embedding, [ctx.act(ids), _param(ctx, node, 0, "weight")])
        return
    _one(ctx, node, O.Gather, [ctx.act(node.input[0]), ctx.act(ids)], axis=axis)


@pre("Gather")
def _gather_table(ctx, node) -> bool:
    """A float initializer table read at constant ids (position embeddings) stays an embedding."""
    table, ids = ctx.values[node.input[0]], ctx.values[node.input[1]]
    if not (isinstance(table, Const) and table.param and table.value.ndim == 2 and isinstance(ids, Const)
            and int(attrs(node).get("axis", 0)) == 0 and ids.value.dtype.kind in "iu"):
        return False
    rows = table.value.shape[0]
    if ids.value.size and not -rows <= int(ids.value.min()) <= int(ids.value.max()) < rows:
        raise ShapeError(f"Gather '{node.name}': constant indices up to {int(ids.value.max())} read a table of "
                         f"{rows} rows ('{node.input[0]}'); bind smaller shapes (e.g. a sequence <= {rows})", param="shapes")
    ins = [ctx.act(node.input[1]), _param(ctx, node, 0, "weight")]
    _one(ctx, node, O.Embedding, ins)
    return True


@converter("Concat")
def _concat(ctx, node):
    _one(ctx, node, O.Concat, [ctx.act(n) for n in node.input if n], axis=int(attrs(node)["axis"]))


@converter("Reshape")
def _reshape(ctx, node):
    shape = _ints(ctx.const(node, 1, "target shape"))
    if attrs(node).get("allowzero", 0) and 0 in shape:
        raise ctx.fail(node, "allowzero=1 with a 0 in the target shape")
    _one(ctx, node, O.Reshape, [ctx.act(node.input[0])], shape=shape)


@converter("Transpose")
def _transpose(ctx, node):
    rank = len(ctx.shape(node.input[0]))
    perm = tuple(attrs(node).get("perm", range(rank - 1, -1, -1)))
    _one(ctx, node, O.Transpose, [ctx.act(node.input[0])], perm=tuple(int(p) for p in perm))


@converter("Flatten")
def _flatten(ctx, node):
    axis = int(attrs(node).get("axis", 1))
    axis = axis + len(ctx.shape(node.input[0])) if axis < 0 else axis  # ONNX: -1 is rank - 1
    _one(ctx, node, O.Flatten, [ctx.act(node.input[0])], axis=axis)


@converter("Squeeze")
def _squeeze(ctx, node):
    axes = ctx.const(node, 1, "axes", attrs(node).get("axes"))
    shape = ctx.shape(node.input[0])
    axes = tuple(i for i, d in enumerate(shape) if d == 1) if axes is None else _ints(axes)
    _one(ctx, node, O.Squeeze, [ctx.act(node.input[0])], axes=axes)


@converter("Unsqueeze")
def _unsqueeze(ctx, node):
    axes = ctx.const(node, 1, "axes", attrs(node).get("axes"))
    if axes is None:
        raise ctx.fail(node, "no axes")
    _one(ctx, node, O.Unsqueeze, [ctx.act(node.input[0])], axes=_ints(axes))


@converter("Slice")
def _slice(ctx, node):
    a = attrs(node)
    starts = ctx.const(node, 1, "starts", a.get("starts"))
    ends = ctx.const(node, 2, "ends", a.get("ends"))
    axes = ctx.const(node, 3, "axes", a.get("axes"))
    axes = range(len(_ints(starts))) if axes is None else axes
    steps = ctx.const(node, 4, "steps", [1] * len(_ints(starts)))
    big = 2 ** 62
    clamp = tuple(max(min(int(v), big), -big) for v in _ints(ends))
    _one(ctx, node, O.Slice, [ctx.act(node.input[0])], starts=_ints(starts), ends=clamp,
         axes=_ints(axes), steps=_ints(steps))


@converter("Cast", "CastLike")
def _cast(ctx, node):
    a = attrs(node)
    if node.op_type == "CastLike":
        like = ctx.values[node.input[1]]
        dtype = array_dtype(like.value) if isinstance(like, Const) else ctx.g.tensors[ctx.act(node.input[1])].dtype
    else:
        dtype = dtype_name(int(a["to"]))
    fmt = format_of(dtype)
    quant = QuantSpec(format=fmt) if fmt and fmt != "fp32" else None
    mode = a.get("round_mode", b"up")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode not in ("up", "down", "nearest"):
        raise UnsupportedOpError(f"Cast node '{node.name}': round_mode {mode!r} is not an ONNX mode (up, down, nearest)")
    _one(ctx, node, O.Cast, [ctx.act(node.input[0])], dtype=dtype, quant=quant, to=fmt or dtype,
         saturate=bool(a.get("saturate", 1)), round_mode=mode)


@converter("Expand")
def _expand(ctx, node):
    """To its own shape: an alias; else ``x * ones`` (exact), ones only along the new dims."""
    shape = _ints(ctx.const(node, 1, "shape"))
    x = ctx.shape(node.input[0])
    out = tuple(int(d) for d in np.broadcast_shapes(x, shape))
    if out == x:
        ctx.values[node.output[0]] = ctx.values[node.input[0]]
        return
    aligned = (1,) * (len(out) - len(x)) + x
    ones = f"{node.output[0]}.ones"
    ctx.values[ones] = Const(np.ones([1 if a == o else o for a, o in zip(aligned, out)], np.float32))
    _one(ctx, node, O.Binary, [ctx.act(node.input[0]), ctx.act(ones)], fn="mul")


@converter("Where")
def _where(ctx, node):
    """Constant condition and one constant branch (attention masks): ``x * keep + fill``, exact
    for finite x, with ``keep`` = cond (or not cond) as 0/1 and ``fill`` the constant branch
    where x is not taken and 0 elsewhere. A run-time condition is not supported."""
    cond, a, b = node.input
    if not ctx.is_const(cond):
        raise ctx.fail(node, "the condition is computed at run time (hwsim has no select op)")
    c = np.asarray(ctx.const(node, 0, "condition"), bool)
    if ctx.is_const(b) and not ctx.is_const(a):
        x, keep, other = a, c, np.asarray(ctx.const(node, 2, "y"))
    elif ctx.is_const(a) and not ctx.is_const(b):
        x, keep, other = b, ~c, np.asarray(ctx.const(node, 1, "x"))
    else:
        raise ctx.fail(node, "both branches are computed at run time (hwsim has no select op)")
    out = node.output[0]
    ctx.values[f"{out}.keep"] = Const(keep.astype(np.float32))
    ctx.values[f"{out}.fill"] = Const(np.where(keep, np.float32(0), other).astype(np.float32))
    kept = _one(ctx, node, O.Binary, [ctx.act(x), ctx.act(f"{out}.keep")], ".keep", out=f"{out}.kept", fn="mul")
    _one(ctx, node, O.Binary, [kept, ctx.act(f"{out}.fill")], ".fill", fn="add")


@converter("Split")
def _split(ctx, node):
    """One slice op per output along ``axis`` (sizes from the split input / attribute, else equal)."""
    a = attrs(node)
    shape = ctx.shape(node.input[0])
    axis = int(a.get("axis", 0)) % len(shape)
    sizes = ctx.const(node, 1, "split", a.get("split"))
    outs = list(node.output)
    if sizes is None:
        n = int(a.get("num_outputs", len(outs)))
        step = -(-shape[axis] // n)
        sizes = [min(step, shape[axis] - i * step) for i in range(n)]
    x, start = ctx.act(node.input[0]), 0
    for out, size in zip(outs, _ints(sizes)):
        if out:
            _one(ctx, node, O.Slice, [x], f".{out}", out=out, starts=(start,), ends=(start + size,),
                 axes=(axis,), steps=(1,))
        start += size
