"""The generic path of the ONNX import, and control flow (see :mod:`hwsim.graph.onnx`).

Every standard-domain node without MACs that has no dedicated converter (or whose converter
declines it) becomes :class:`~hwsim.graph.ops_onnx.OnnxNode` ops: output shapes from
``onnx.shape_inference`` on the bound input shapes (constant inputs given as initializers, data
propagation on), execution by numpy or the ONNX reference implementation, cost from element
counts and bytes. MAC-bearing op types never take this path: they need their own kernel and cost.

Control flow: an ``If`` whose condition is known at import (constant, folded from the bound
shapes, or from graph inputs whose values were given) is replaced by the nodes of the taken
branch. An ``If``, ``Loop`` or ``Scan`` decided at run time goes through the generic path only when
its bodies hold no MAC op; otherwise it is refused, naming the graph inputs the condition depends
on (give their values) or the MAC ops of the bodies.
"""

from __future__ import annotations

import base64

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwsim.graph.onnx_ctx import Importer
from hwsim.graph.onnx_values import Codes, Const
from hwsim.graph.ops_onnx import CONTROL_FLOW, OnnxNode

#: standard-domain op types that perform multiply-accumulates: they need a dedicated converter
MAC_OPS = frozenset({"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv", "MatMul", "MatMulInteger",
                     "QLinearMatMul", "Gemm", "Einsum", "LSTM", "GRU", "RNN", "Attention"})
_STANDARD = ("", "ai.onnx")


def subgraphs(node: onnx.NodeProto) -> list[tuple[str, onnx.GraphProto]]:
    """(attribute name, graph) of every subgraph attribute of ``node``."""
    out = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            out.append((a.name, a.g))
        elif a.type == onnx.AttributeProto.GRAPHS:
            out.extend((a.name, g) for g in a.graphs)
    return out


def outer_names(node: onnx.NodeProto) -> list[str]:
    """Names a node's subgraphs read from the enclosing scopes (implicit inputs), in first-use order."""
    found: dict[str, None] = {}
    for _, g in subgraphs(node):
        _outer_of_graph(g, set(), found)
    return list(found)


def _outer_of_graph(g: onnx.GraphProto, scope: set[str], found: dict[str, None]) -> None:
    local = set(scope) | {i.name for i in g.input} | {t.name for t in g.initializer}
    local |= {t.values.name for t in g.sparse_initializer}
    for n in g.node:
        for name in n.input:
            if name and name not in local:
                found.setdefault(name, None)
        for _, sub in subgraphs(n):
            inner: dict[str, None] = {}
            _outer_of_graph(sub, local, inner)
            for name in inner:
                found.setdefault(name, None)
        local.update(o for o in n.output if o)


def body_mac_ops(node: onnx.NodeProto) -> list[str]:
    """'OpType (node 'name')' of every MAC op inside the node's subgraphs, at any depth."""
    out = []
    for _, g in subgraphs(node):
        for n in g.node:
            if n.op_type in MAC_OPS or n.domain not in _STANDARD:
                out.append(f"{n.op_type} (node '{n.name or n.output[0]}')")
            out += body_mac_ops(n)
    return out


def input_cone(model: onnx.ModelProto, name: str) -> list[str]:
    """Graph inputs (not initializers) whose values tensor ``name`` depends on (through any node
    but Shape and Size, whose outputs depend only on the bound shapes)."""
    producer = {o: n for n in model.graph.node for o in n.output if o}
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input} - inits
    seen, stack, hits = set(), [name], []
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in graph_inputs:
            hits.append(t)
        n = producer.get(t)
        if n is not None and n.op_type not in ("Shape", "Size"):
            stack.extend(i for i in list(n.input) + outer_names(n) if i)
    return sorted(hits)


def control_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs that decide control flow: the cones of If conditions and Loop trip counts /
    conditions (at any depth)."""
    out: set[str] = set()

    def visit(nodes):
        for n in nodes:
            if n.op_type == "If":
                out.update(input_cone(model, n.input[0]))
            elif n.op_type == "Loop":
                for i in n.input[:2]:
                    if i:
                        out.update(input_cone(model, i))
            for _, g in subgraphs(n):
                visit(g.node)

    visit(model.graph.node)
    return out


# ------------------------------------------------------------------ the generic op
def convert_generic(ctx: Importer, node: onnx.NodeProto, no_macs: bool = False) -> None:
    """Add :class:`OnnxNode` ops for every used output of ``node`` (see the module docstring);
    ``no_macs``: the caller checked that this node of a MAC op type multiplies nothing (Einsum of one operand)."""
    if node.op_type in MAC_OPS and not no_macs:
        raise ctx.fail(node, "a MAC op in a form hwsim has no kernel for")
    if node.op_type in CONTROL_FLOW:
        macs = body_mac_ops(node)
        if macs:
            cone = input_cone(ctx.model, node.input[0]) if node.op_type == "If" else []
            why = (f"its condition depends on graph input(s) {cone}, whose value(s) must be given at import"
                   if cone else "it is decided at run time")
            raise ctx.fail(node, f"{why}, and its bodies hold MAC ops ({', '.join(macs[:4])}"
                                 f"{', ...' if len(macs) > 4 else ''}) that hwsim cannot price without "
                                 "knowing the branch / trip count")
    names = [n for n in node.input if n] + [n for n in outer_names(node) if n not in node.input]
    ins = [ctx.act(n) for n in names]
    types = tuple(_elem_type(ctx, t) for t in ins)
    shapes = tuple(ctx.g.tensors[t].shape for t in ins)
    outs = infer_outputs(ctx, node, names, types, shapes)
    b64 = base64.b64encode(node.SerializeToString()).decode()
    used = [k for k, o in enumerate(node.output) if o and (ctx.consumers.get(o) or o in ctx.graph_outputs)]
    for k in used:
        et, shape = outs[k]
        op = OnnxNode(name=ctx.op_name(node, "" if k == 0 else f".{k}"), inputs=tuple(ins),
                      outputs=(node.output[k],), op_type=node.op_type, node_b64=b64, opset=_opset(ctx),
                      names=tuple(names), elem_types=types, index=k, in_shapes=shapes, out_shape=shape)
        ctx.add(op, dtype=helper.tensor_dtype_to_np_dtype(et).name if et != onnx.TensorProto.BOOL else "bool")


def _elem_type(ctx: Importer, tensor: str) -> int:
    """ONNX element type number of an IR tensor (from its numpy-spelled dtype)."""
    from hwsim.graph.onnx_values import DTYPES

    dtype = ctx.g.tensors[tensor].dtype
    found = [k for k, v in DTYPES.items() if v == dtype]
    if not found:
        raise ValueError(f"tensor '{tensor}' has element type {dtype!r}, which ONNX cannot carry")
    return found[0]


def _opset(ctx: Importer) -> int:
    return next((o.version for o in ctx.model.opset_import if o.domain in _STANDARD), 1)


def infer_outputs(ctx: Importer, node: onnx.NodeProto, names, types, shapes) -> list[tuple[int, tuple[int, ...]]]:
    """(element type, static shape) of every output of ``node``, by onnx shape inference."""
    inits, vis = [], []
    for n, et, s in zip(names, types, shapes):
        v = ctx.values.get(n)
        if isinstance(v, (Const, Codes)) and int(np.prod(s)) <= 1 << 16:
            from hwsim.graph.onnx_ctx import _codes_value

            inits.append(numpy_helper.from_array(np.asarray(v.value if isinstance(v, Const) else _codes_value(v)), n))
        vis.append(helper.make_tensor_value_info(n, et, list(s)))
    outs = [helper.make_tensor_value_info(o, 0, None) for o in node.output if o]
    g = helper.make_graph([node], "infer", vis, outs, inits)
    m = helper.make_model(g, opset_imports=list(ctx.model.opset_import), ir_version=ctx.model.ir_version)
    try:
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise ctx.fail(node, f"onnx shape inference rejects it ({type(exc).__name__}: {str(exc)[:200]})") from None
    found = {v.name: v.type.tensor_type for v in list(inferred.graph.output) + list(inferred.graph.value_info)
             if v.type.HasField("tensor_type")}
    declared = _body_shapes(ctx, node)
    result = []
    for k, o in enumerate(node.output):
        if not o:
            result.append((0, ()))
            continue
        tt = found.get(o)
        if declared and declared[k] is not None and (tt is None or not tt.HasField("shape")):
            result.append(declared[k])
            continue
        dims = None if tt is None or not tt.HasField("shape") else [
            d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if not tt or not tt.elem_type or dims is None or any(d is None for d in dims):
            seen = observed_outputs(ctx, node, names, types)
            if seen is None:
                raise ctx.fail(node, f"the shape of output '{o}' depends on run-time values (onnx shape inference "
                                     "cannot give it a static shape; give the inputs to import it for them)")
            ctx.g.notes.append(f"{node.op_type} '{node.name or o}': output shapes depend on values; imported for "
                               f"the given inputs ({', '.join(str(s) for _, s in seen if s)})")
            return seen
        result.append((tt.elem_type, tuple(int(d) for d in dims)))
    return result


def observed_outputs(ctx: Importer, node: onnx.NodeProto, names, types) -> list | None:
    """(type, shape) of the node's outputs for the inputs the model will run on (``values`` of
    load_onnx): the IR built so far runs its float reference on them and the node is evaluated by
    ``onnx.reference``. None when the inputs are not known."""
    from onnx.reference import ReferenceEvaluator

    from hwsim.sim.boundary import read_inputs
    from hwsim.sim.runner import float_reference

    run_values = ctx.run_values
    if not run_values or any(n not in run_values for n in ctx.g.inputs):
        return None
    real, _ = read_inputs(ctx.g, {n: run_values[n] for n in ctx.g.inputs})
    ref = float_reference(ctx.g, real).values
    feeds = {}
    for n, et in zip(names, types):
        v = ctx.values[n]
        arr = v.value if isinstance(v, Const) else ref[ctx.act(n)]
        feeds[n] = np.asarray(arr).astype(helper.tensor_dtype_to_np_dtype(et))
    ins = [helper.make_tensor_value_info(n, et, None) for n, et in zip(names, types)]
    outs = [helper.make_tensor_value_info(o, 0, None) for o in node.output if o]
    model = helper.make_model(helper.make_graph([node], "observe", ins, outs), opset_imports=list(ctx.model.opset_import))
    res = iter(ReferenceEvaluator(model).run(None, feeds))
    out = []
    for o in node.output:
        if not o:
            out.append((0, ()))
            continue
        a = np.asarray(next(res))
        out.append((helper.np_dtype_to_tensor_dtype(a.dtype), tuple(int(d) for d in a.shape)))
    return out


def _static(v: onnx.ValueInfoProto) -> tuple[int, tuple[int, ...]] | None:
    tt = v.type.tensor_type
    if not v.type.HasField("tensor_type") or not tt.HasField("shape") or not tt.elem_type:
        return None
    if any(not d.HasField("dim_value") for d in tt.shape.dim):
        return None
    return tt.elem_type, tuple(int(d.dim_value) for d in tt.shape.dim)


def _body_shapes(ctx: Importer, node: onnx.NodeProto) -> list | None:
    """Output (type, shape) of a Loop / If from the static shapes its bodies declare (onnx shape
    inference leaves loop-carried shapes open): a Loop's carried values by the body's outputs, its
    scan outputs with a constant trip count in front; an If's when both branches agree."""
    if node.op_type == "Loop":
        body = next(g for a, g in subgraphs(node) if a == "body")
        n_carried = len(node.input) - 2
        trips = np.asarray(ctx.const(node, 0, "trip count")) if ctx.is_const(node.input[0] or None) else None
        out = []
        for k, v in enumerate(body.output[1:]):
            st = _static(v)
            if st is not None and k >= n_carried:
                st = None if trips is None else (st[0], (int(trips),) + st[1])
            out.append(st)
        return out
    if node.op_type == "If":
        a, b = (g for _, g in subgraphs(node))
        return [sa if sa == _static(vb) else None for sa, vb in ((_static(va), vb) for va, vb in zip(a.output, b.output))]
    return None


def decode_node(node_b64: str) -> onnx.NodeProto:
    """The ONNX node an :class:`OnnxNode` op carries (its ``node_b64``)."""
    node = onnx.NodeProto()
    node.ParseFromString(base64.b64decode(node_b64))
    return node


# ------------------------------------------------------------------ If with a known condition
def taken_branch(ctx: Importer, node: onnx.NodeProto) -> tuple[str, onnx.GraphProto] | None:
    """(attribute name, graph) of the branch an If takes when its condition is known at import."""
    if node.op_type != "If" or not ctx.is_const(node.input[0]):
        return None
    cond = np.asarray(ctx.const(node, 0, "condition"))
    if cond.size != 1:
        raise ctx.fail(node, f"condition has {cond.size} elements (ONNX needs one)")
    name = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
    return name, next(g for a, g in subgraphs(node) if a == name)


def bind_branch_outputs(ctx: Importer, node: onnx.NodeProto, branch: onnx.GraphProto) -> None:
    """After the branch's nodes are converted, the If's outputs are the branch's outputs."""
    for out, bout in zip(node.output, branch.output):
        if out:
            ctx.values[out] = ctx.values[bout.name]


def bind_branch_initializers(ctx: Importer, branch: onnx.GraphProto) -> None:
    for t in branch.initializer:
        ctx.values[t.name] = Const(numpy_helper.to_array(t), t.data_type in (1, 10, 11, 16))
