"""A small stand-in graph for pricing layers: one representative per distinct layer signature.

Layers with the same op attributes, shapes and weight origin (no data: seeded synthetic values
from the same law) cost the same under the same formats, so a 225-layer Llama has 8 distinct
layers to price, not 225. The stand-in holds those representatives, their weights and biases,
their activation inputs as graph inputs, and one *filler* weight tensor that no op reads, sized
so that the stand-in's total weight bytes equal the whole model's: the target then places
weights where it would place the whole model's (on chip or in DRAM), as :func:`hwsim.estimate`
decides from the total.
"""

from __future__ import annotations

import json
import math

from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.quant import QuantSpec

FILLER = "__rest_of_model_weights__"


def signature(graph: Graph, name: str) -> str:
    """Key under which layers price alike (the name itself when the weight carries real values)."""
    op = graph.op(name)
    w = graph.weight(op)
    if w is not None and w.data is not None:
        return name
    attrs = op.model_dump(mode="json", exclude={"name", "inputs", "outputs"})
    ins = [(graph.tensors[t].shape, graph.tensors[t].role, graph.tensors[t].dtype) for t in op.inputs]
    outs = [graph.tensors[t].shape for t in op.outputs]
    return json.dumps([attrs, ins, outs])


def stand_in(graph: Graph, layers: list[str]) -> tuple[Graph, dict[str, str]]:
    """(stand-in graph, layer -> its representative's name)."""
    rep_of_sig: dict[str, str] = {}
    rep: dict[str, str] = {}
    for name in layers:
        rep[name] = rep_of_sig.setdefault(signature(graph, name), name)
    g = Graph(f"{graph.name}[layers]")
    g.notes = list(graph.notes)
    for name in dict.fromkeys(rep.values()):
        op = graph.op(name)
        for t in op.inputs:
            if t in g.tensors:
                continue
            src = graph.tensors[t]
            if src.role in ("weight", "bias", "buffer", "const"):
                g.add_tensor(src)
            else:
                g.add_tensor(Tensor(t, src.shape, "input", src.quant, dtype=src.dtype))
        g.add_op(op)
        g.outputs.extend(op.outputs)
    return g, rep


def with_filler(g: Graph, nbytes: float) -> Graph:
    """A copy of ``g`` with a filler weight of ``nbytes`` bytes (fp32, nobody reads it)."""
    out = g.copy()
    if FILLER in out.tensors:
        del out.tensors[FILLER]
    if nbytes > 0:
        out.tensors[FILLER] = Tensor(FILLER, (max(1, math.ceil(nbytes / 4)),), "weight", QuantSpec())
    return out
