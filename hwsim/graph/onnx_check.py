"""Structural checks of an ONNX graph before import, and a stable topological sort.

:func:`check_structure` is called once by :func:`hwsim.graph.onnx.load_onnx`, right after the file
is read. It refuses, naming the node or tensor (``ConfigError``, ``ShapeError`` for dims):

- declared dims below -1 (graph inputs, outputs, value_info; -1 is Paddle's dynamic dim), and
  initializer dims below zero;
- initializers whose dims do not match the number of values they hold;
- a tensor written by two nodes, or by a node and also given as an initializer / graph input;
- a node that reads its own output, or a tensor that nothing provides;
- a cycle; a graph output that no node, initializer or graph input provides.

Nodes that are merely out of order are sorted in place (stable: file order wherever the data
dependencies allow), because the ONNX spec requires a topological order but exporters and
hand edits sometimes break it. Names read inside subgraphs (If/Loop bodies) from the outer scope
count as inputs of the node that holds the subgraph.
"""

from __future__ import annotations

import heapq
import math

import onnx

from hwsim.errors import ConfigError, ShapeError
from hwsim.yamlio import brief

#: ONNX element types stored packed below one byte in raw_data: type -> elements per byte
_PACKED = {getattr(onnx.TensorProto, k): v for k, v in
           (("INT4", 2), ("UINT4", 2), ("FLOAT4E2M1", 2), ("INT2", 4), ("UINT2", 4)) if hasattr(onnx.TensorProto, k)}


def check_structure(model: onnx.ModelProto, origin: str) -> None:
    """Refuse the broken structures listed in the module docstring; sort nodes topologically."""
    g = model.graph
    _check_dims(g, origin)
    for t in g.initializer:
        _check_initializer(t, origin)
    order = _sorted_order(g, origin)
    if order != list(range(len(g.node))):
        nodes = [g.node[i] for i in order]
        del g.node[:]
        g.node.extend(nodes)


def _check_dims(g: onnx.GraphProto, origin: str) -> None:
    for kind, values in (("input", g.input), ("output", g.output), ("value_info", g.value_info)):
        for v in values:
            if not v.type.HasField("tensor_type") or not v.type.tensor_type.HasField("shape"):
                continue
            for i, d in enumerate(v.type.tensor_type.shape.dim):
                if d.HasField("dim_value") and d.dim_value < -1:  # -1: Paddle's dynamic dim (bound as INPUT.INDEX)
                    raise ShapeError(f"{origin}: graph {kind} '{v.name}' dim {i} is {d.dim_value}; dims must be "
                                     f">= 0, -1 (dynamic) or a symbolic name bound in shapes", param="shapes")


def _held(t: onnx.TensorProto) -> tuple[int, int] | None:
    """(values held, values the dims need) when they can be counted without decoding, else None."""
    need = math.prod(t.dims)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None
    if t.raw_data:
        per_byte = _PACKED.get(t.data_type)
        if per_byte:
            return len(t.raw_data), -(-need // per_byte)
        try:
            size = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        except Exception:  # an element type numpy cannot hold: let the importer decide
            return None
        return len(t.raw_data), need * size
    try:
        field = onnx.helper.tensor_dtype_to_field(t.data_type)
    except Exception:
        return None
    per = _PACKED.get(t.data_type, 1)
    factor = 2 if t.data_type in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128) else 1
    return len(getattr(t, field)), factor * -(-need // per)


def _check_initializer(t: onnx.TensorProto, origin: str) -> None:
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise ConfigError(f"{origin}: initializer '{t.name}' has negative dims {brief(dims)}; export it again")
    held = _held(t)
    if held is None or held[0] == held[1]:
        return
    try:  # the count above disagrees: let onnx decide, so an exotic layout is never refused wrongly
        onnx.numpy_helper.to_array(t)
    except Exception:
        what = "bytes" if t.raw_data else "values"
        raise ConfigError(f"{origin}: initializer '{t.name}': dims {brief(dims)} need {math.prod(dims)} values "
                          f"({held[1]} {what}) but it holds {held[0]} {what}; export the model again") from None


def _label(node: onnx.NodeProto, i: int) -> str:
    return f"'{node.name or (node.output[0] if node.output else '') or f'#{i}'}'"


def _subgraph_reads(node: onnx.NodeProto) -> set[str]:
    """Names read inside the node's subgraphs and defined nowhere in them (outer-scope reads)."""
    reads: set[str] = set()
    for attr in node.attribute:
        for sub in list(attr.g.node and [attr.g]) + list(attr.graphs):
            defined = {t.name for t in sub.initializer} | {i.name for i in sub.input}
            for inner in sub.node:
                defined.update(inner.output)
            for inner in sub.node:
                reads.update(x for x in inner.input if x and x not in defined)
                reads.update(_subgraph_reads(inner) - defined)
    return reads


def _sorted_order(g: onnx.GraphProto, origin: str) -> list[int]:
    """Node indices in a stable topological order; ConfigError for the broken structures."""
    given = {t.name for t in g.initializer} | {i.name for i in g.input}
    producer: dict[str, int] = {}
    for i, node in enumerate(g.node):
        for o in filter(None, node.output):
            if o in producer:
                raise ConfigError(f"{origin}: tensor '{o}' is written by node {_label(g.node[producer[o]], producer[o])} "
                                  f"and node {_label(node, i)}; each tensor needs one producer")
            if o in given:
                raise ConfigError(f"{origin}: tensor '{o}' is written by node {_label(node, i)} and is also an "
                                  "initializer or graph input; rename one")
            producer[o] = i
    deps: list[set[int]] = []
    for i, node in enumerate(g.node):
        mine = set()
        for x in set(filter(None, node.input)) | _subgraph_reads(node):
            if x in producer:
                if producer[x] == i:
                    raise ConfigError(f"{origin}: node {_label(node, i)} reads its own output '{x}' (a self-loop); "
                                      "ONNX graphs must be acyclic")
                mine.add(producer[x])
            elif x not in given and x in node.input:
                raise ConfigError(f"{origin}: node {_label(node, i)} ({node.op_type}) reads '{x}', which no node, "
                                  "initializer or graph input provides")
        deps.append(mine)
    for out in g.output:
        if out.name not in producer and out.name not in given:
            raise ConfigError(f"{origin}: graph output '{out.name}' is produced by no node, initializer or graph "
                              "input; fix the graph's output list")
    return _kahn(g, deps, origin)


def _kahn(g: onnx.GraphProto, deps: list[set[int]], origin: str) -> list[int]:
    users: list[list[int]] = [[] for _ in deps]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(deps):
        stuck = [i for i, w in enumerate(waiting) if w > 0]
        names = ", ".join(_label(g.node[i], i) for i in stuck[:6]) + (", ..." if len(stuck) > 6 else "")
        raise ConfigError(f"{origin}: the graph has a cycle through node(s) {names}; ONNX graphs must be acyclic")
    return order
