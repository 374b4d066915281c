"""verify(): the IR's rules, one table of per-op checks plus graph-wide checks.

Run after every pass (import, quant config, pruning). Each rule returns an error message or None.
"""

from __future__ import annotations

import math
from typing import Callable

import networkx as nx

from hwsim.errors import GraphError, ShapeError
from hwsim.graph.ops import OP_CLASSES, OpBase
from hwsim.graph.quant import pruning_problem

Rule = Callable[["object", OpBase], "str | None"]


def _operands(op) -> tuple[str, ...]:
    """Inputs without a compute op's trailing run-time quantization parameters."""
    return getattr(op, "operands", op.inputs)


def _arity(g, op):
    lo, hi = type(op).arity
    if not lo <= len(_operands(op)) <= hi:
        return f"takes {lo}..{hi} inputs, has {len(_operands(op))}"
    if len(op.outputs) != 1:
        return f"must have exactly one output, has {len(op.outputs)}"
    return None


def _inputs_defined(g, op):
    missing = [t for t in op.inputs + op.outputs if t not in g.tensors]
    return f"refers to undefined tensors {missing}" if missing else None


def _shapes(g, op):
    try:
        inferred = op.infer([g.tensors[t].shape for t in op.inputs])
    except ShapeError as exc:
        return str(exc)
    stored = [g.tensors[t].shape for t in op.outputs]
    return None if inferred == stored else f"stored output shapes {stored} != inferred {inferred}"


def _weight_roles(g, op):
    """Weights and biases are constants, except in an op with run-time quantization parameters
    (ONNX QLinearConv / ConvInteger whose weight is a graph input, as ONNX allows)."""
    ins = _operands(op)
    runtime = ("input", "activation") if getattr(op, "runtime_quant", ()) else ()
    for i in type(op).weight_slots:
        if i < len(ins) and g.tensors[ins[i]].role not in ("weight", "bias", "buffer", "const") + runtime:
            return f"input {i} ('{ins[i]}') must be a weight, is {g.tensors[ins[i]].role}"
    for i in type(op).bias_slots:
        if i < len(ins) and g.tensors[ins[i]].role not in ("bias", "weight", "const") + runtime:
            return f"input {i} ('{op.inputs[i]}') must be a bias, is {g.tensors[op.inputs[i]].role}"
    return None


def _data_shapes(g, op):
    for t in op.inputs:
        ten = g.tensors[t]
        if ten.data is not None and tuple(ten.data.shape) != ten.shape:
            return f"data of '{t}' has shape {ten.data.shape}, tensor declares {ten.shape}"
    return None


def _quant_axes(g, op):
    for t in op.inputs + op.outputs:
        q, shape = g.tensors[t].quant, g.tensors[t].shape
        if q.granularity == "tensor":
            continue
        if not -len(shape) <= q.axis < len(shape):
            return f"quant axis {q.axis} of '{t}' out of range for shape {shape}"
        if q.granularity == "channel" and q.scale is not None and len(q.scale) != shape[q.axis]:
            return f"'{t}' has {len(q.scale)} per-channel scales for {shape[q.axis]} channels"
    return None


def _kv_cache(g, op):
    role = g.tensors[op.inputs[0]].role
    return None if role == "kv_cache" else f"first input must be a kv_cache tensor, is {role}"


def _pruning(g, op):
    p = getattr(op, "pruning", None)
    w = g.weight(op)
    return None if p is None or w is None else pruning_problem(p, w.quant.format, tuple(w.shape))


def _runtime_quant(g, op):
    """Run-time quantization inputs: distinct roles, scalar parameters (a weight's may hold one
    value per output channel), float scales, integer zero points."""
    roles = op.runtime_quant
    if len(set(roles)) != len(roles) or len(roles) > len(op.inputs) - 2:
        return f"runtime_quant {roles} must name distinct roles of trailing inputs after the operands"
    for role, name in zip(roles, op.inputs[len(op.inputs) - len(roles):]):
        t = g.tensors[name]
        if math.prod(t.shape) != 1 and not (role.startswith("w_") and len(t.shape) == 1):
            return f"{role} '{name}' has shape {t.shape}: a scalar (or one value per output channel for w_)"
        if t.dtype.startswith(("float", "bfloat")) != role.endswith("scale"):
            return f"{role} '{name}' has type {t.dtype}"
    return None


COMMON: tuple[Rule, ...] = (_arity, _inputs_defined, _shapes, _weight_roles, _data_shapes, _quant_axes)

#: op kind -> extra rules beyond COMMON
RULES: dict[str, tuple[Rule, ...]] = {k: () for k in OP_CLASSES}
RULES.update({
    "conv2d": (_pruning, _runtime_quant),
    "linear": (_pruning, _runtime_quant),
    "matmul": (_runtime_quant,),
    "conv3d": (_runtime_quant,),
    "kv_cache_read": (_kv_cache,),
})


def verify_graph(g) -> None:
    """Raise on the first broken rule, naming the op and what to change."""
    if not nx.is_directed_acyclic_graph(g.nx):
        raise GraphError(f"model '{g.name}' has a cycle: {nx.find_cycle(g.nx)}")
    for name, t in g.tensors.items():
        if any(d < 0 for d in t.shape):
            raise GraphError(f"tensor '{name}' has negative dims {t.shape}; every dim must be >= 0")
    for op in g.ops():
        if op.op not in RULES or type(op) is not OP_CLASSES[op.op]:
            raise GraphError(f"op '{op.name}' has unknown kind {op.op!r}")
        for rule in COMMON + RULES[op.op]:
            msg = rule(g, op)
            if msg:
                prefix = f"{op.op} '{op.name}': "
                raise GraphError(msg if msg.startswith(prefix) else prefix + msg)
    for t in g.inputs:
        if g.producer(t) is not None or g.tensors[t].role != "input":
            raise GraphError(f"graph input '{t}' must have role 'input' and no producer")
    for name, t in g.tensors.items():
        if t.role == "activation" and g.producer(name) is None:
            raise GraphError(f"activation '{name}' has no producer; mark it as an input or constant")
    for t in g.outputs:
        if t not in g.tensors:
            raise GraphError(f"graph output '{t}' is not a tensor of the model")
