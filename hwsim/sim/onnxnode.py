"""Executor of the generic ``onnx`` op: the node run by its ONNX definition.

Inputs are converted to the element types the node was imported with (float tensors as float32,
as onnxruntime runs them; integer constants straight from the graph, so int64 sentinels survive;
integer activations that hold codes of other real values, such as a QOperator graph's uint8
tensors, as their codes, the output's codes read back as real values),
then the node runs through a numpy implementation when one is registered in :data:`FAST` (ops
whose reference implementation loops in Python per element: Resize) and otherwise through
``onnx.reference.ReferenceEvaluator``. The ``FAST`` versions are tested against onnxruntime.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hwsim.errors import InputDataError
from hwsim.sim.registry import register_exec

# onnx is imported where a generic node first runs: simulating a zoo model does not load it


@lru_cache(maxsize=512)
def _evaluator(node_b64: str, names: tuple[str, ...], types: tuple[int, ...], opset: int):
    """A ReferenceEvaluator of the single node (cached per distinct node), and the node."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from hwsim.graph.onnx_generic import decode_node

    node = decode_node(node_b64)
    ins = [helper.make_tensor_value_info(n, t, None) for n, t in zip(names, types)]
    extra = {}
    if node.op_type == "Loop" and not node.input[1]:  # onnx.reference runs no iteration for an omitted
        node.input[1] = "hwsim.loop.cond.true"      # condition; ONNX means "true" (onnxruntime agrees)
        extra[node.input[1]] = np.array(True)
        ins.append(helper.make_tensor_value_info(node.input[1], 9, []))
    outs = [helper.make_tensor_value_info(o, 0, None) for o in node.output if o]
    model = helper.make_model(helper.make_graph([node], "node", ins, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model), node, extra


def _scaled_codes(t) -> bool:
    """True when integer-typed tensor ``t`` holds codes of real values other than the codes
    themselves (a scale other than 1 or a zero point other than 0: e.g. the uint8 activations of
    a QOperator graph that a Resize or Pad reads); the runner carries its real values."""
    from hwsim.sim.boundary import _int_spec, is_integer_type

    spec = _int_spec(t) if is_integer_type(t.dtype) else None
    return spec is not None and (any(float(s) != 1.0 for s in spec.scale)
                                 or any(int(z) != 0 for z in (spec.zero_point or ())))


def _inputs(ctx, op, xs) -> list[np.ndarray]:
    from onnx import helper

    from hwsim.sim import boundary, qspec

    out = []
    for name, x, et in zip(op.inputs, xs, op.elem_types):
        t = ctx.graph.tensors[name]
        dtype = helper.tensor_dtype_to_np_dtype(et)
        if t.data is not None and np.asarray(t.data).dtype.kind in "iub":
            out.append(np.asarray(t.data).astype(dtype, copy=False))
        elif _scaled_codes(t):  # the node runs on the codes, as ONNX defines it
            out.append(boundary.from_real(t, qspec.real_of(x)).astype(dtype, copy=False))
        else:
            out.append(np.asarray(x).astype(dtype))
    return out


def _real_output(ctx, op, out: np.ndarray) -> np.ndarray:
    """The node's output as the runner carries it: the real values of codes (:func:`_scaled_codes`)."""
    from hwsim.sim import boundary

    t = ctx.graph.tensors[op.outputs[0]]
    return boundary.to_real(t, out) if _scaled_codes(t) else out


@register_exec("onnx")
def _onnx(ctx, op, xs):
    ins = _inputs(ctx, op, xs)
    evaluator, node, extra = _evaluator(op.node_b64, op.names, op.elem_types, op.opset)
    fast = FAST.get(op.op_type)
    try:
        if fast is not None:
            res = fast(node, op, ins)
            if res is not None:
                return _real_output(ctx, op, np.asarray(res))
        results = evaluator.run(None, {**dict(zip(op.names, ins)), **extra})
    except InputDataError:
        raise
    except Exception as exc:
        raise InputDataError(f"{op.op_type} '{op.name}': its ONNX definition fails on these inputs "
                             f"({type(exc).__name__}: {str(exc)[:300]})") from None
    k = [o for o in node.output if o].index(node.output[op.index])
    out = np.asarray(results[k])
    if out.shape != tuple(op.out_shape):
        raise InputDataError(f"{op.op_type} '{op.name}' gives shape {out.shape} on these inputs; the model was "
                             f"imported for {tuple(op.out_shape)} (its output shape depends on values: import it "
                             "again with these inputs)")
    return _real_output(ctx, op, out)


# ------------------------------------------------------------------ Resize in numpy
def _attr(node, name, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _source_coords(mode: str, out_len: int, in_len: int, scale: float) -> np.ndarray | None:
    """Input coordinate of every output index along one axis (ONNX coordinate_transformation_mode)."""
    x = np.arange(out_len, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_len > 1 else np.zeros(out_len)
    if mode == "align_corners":
        return x * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros(out_len)
    if mode == "asymmetric":
        return x / scale
    if mode == "half_pixel_symmetric":
        adj = out_len / (scale * in_len)
        center = in_len / 2
        return center * (1 - adj) + (x + 0.5) / scale - 0.5
    return None


def _nearest(coords: np.ndarray, rule: str, in_len: int) -> np.ndarray | None:
    if rule == "round_prefer_floor":
        idx = np.where(coords - np.floor(coords) == 0.5, np.floor(coords), np.round(coords))
    elif rule == "round_prefer_ceil":
        idx = np.where(coords - np.floor(coords) == 0.5, np.ceil(coords), np.round(coords))
    elif rule == "floor":
        idx = np.floor(coords)
    elif rule == "ceil":
        idx = np.ceil(coords)
    else:
        return None
    return np.clip(idx, 0, in_len - 1).astype(np.int64)


def _resize(node, op, ins):
    """Nearest and (bi)linear Resize, separable per axis; None for the cases left to the reference
    (cubic, antialias, tf_crop_and_resize, axes, keep_aspect_ratio_policy)."""
    mode = _attr(node, "mode", "nearest")
    ctm = _attr(node, "coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear") or _attr(node, "antialias", 0) or _attr(node, "axes", None) is not None \
            or _attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch" or ctm == "tf_crop_and_resize":
        return None
    x = ins[0]
    given = {n: a for n, a in zip(op.names, ins)}
    args = [given.get(n) if n else None for n in node.input]
    scales = args[1] if op.opset < 11 else (args[2] if len(args) > 2 else None)
    sizes = args[3] if op.opset >= 11 and len(args) > 3 else None
    out_shape = op.out_shape
    if scales is not None and np.asarray(scales).size:
        scales = np.asarray(scales, np.float64)
    else:
        scales = np.asarray(out_shape, np.float64) / np.asarray(x.shape, np.float64)
    if sizes is not None and np.asarray(sizes).size:
        scales = np.asarray(out_shape, np.float64) / np.asarray(x.shape, np.float64)
    y = x
    rule = _attr(node, "nearest_mode", "round_prefer_floor")
    for axis, (n_in, n_out) in enumerate(zip(x.shape, out_shape)):
        if n_in == n_out and scales[axis] == 1.0:
            continue
        coords = _source_coords(ctm, n_out, n_in, float(scales[axis]))
        if coords is None:
            return None
        if mode == "nearest":
            idx = _nearest(coords, rule, n_in)
            if idx is None:
                return None
            y = np.take(y, idx, axis=axis)
            continue
        lo = np.floor(coords)
        w = (coords - lo).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
        i0 = np.clip(lo, 0, n_in - 1).astype(np.int64)
        i1 = np.clip(lo + 1, 0, n_in - 1).astype(np.int64)
        a0, a1 = np.take(y, i0, axis=axis).astype(np.float64), np.take(y, i1, axis=axis).astype(np.float64)
        y = a0 * (1 - w) + a1 * w
    return y.astype(x.dtype)


#: op type -> numpy implementation ``fn(node, op, inputs) -> output or None`` (None: use the reference)
FAST = {"Resize": _resize}
