"""Fused attention: softmax(q k^T x scale) v as one kernel (flash attention), where the target's runtime does so.

A chain ``matmul (q k^T) -> scale / mask elementwise ops -> softmax -> matmul (. v)`` in which every
intermediate tensor has one reader is priced as one kernel when ``compute.fused_attention`` is set: the score
matrix never leaves the chip (the first product writes nothing, the second reads no scores), the scale and
softmax cost no time, traffic or overhead of their own (they run inside the kernel, overlapped with the
products), and only the second product pays the kernel overhead. Both products run at the pair's
``attention_efficiency``. PyTorch's ``scaled_dot_product_attention`` (cuDNN / flash kernels) runs BERT's,
ViT's and Llama's attention this way on an H100 (kernel traces in benchmarks/measure/h100/session3/).
"""

from __future__ import annotations

from typing import Literal

from hwsim.graph.ir import Graph

Role = Literal["qk", "inner", "av"]
#: layer note of the products of a fused attention (the fit reads it)
FUSED_ATTENTION_NOTE = "fused attention (one kernel; scores stay on chip)"
_INNER = ("binary", "unary")


def _only_reader(g: Graph, tensor: str):
    readers = g.consumers(tensor)
    return readers[0] if len(readers) == 1 else None


def _chain_from_softmax(g: Graph, softmax) -> list | None:
    """[qk, inner ops..., softmax, av] around ``softmax``, or None when it is no fusable attention."""
    av = _only_reader(g, softmax.outputs[0])
    if av is None or av.op != "matmul" or av.inputs[0] != softmax.outputs[0]:
        return None
    inner, cur = [], softmax
    while True:
        name = g.producer(cur.inputs[0])
        if name is None:
            return None
        prev = g.op(name)
        if _only_reader(g, prev.outputs[0]) is not cur:
            return None
        if prev.op == "matmul":
            return [prev, *reversed(inner), softmax, av]
        if prev.op not in _INNER:
            return None
        inner.append(prev)
        cur = prev


def attention_roles(g: Graph) -> dict[str, Role]:
    """Op name -> its role in a fusable attention chain of ``g`` (ops in no chain are absent)."""
    roles: dict[str, Role] = {}
    for op in g.ops():
        if op.op != "softmax":
            continue
        chain = _chain_from_softmax(g, op)
        if chain is None:
            continue
        roles[chain[0].name] = "qk"
        roles[chain[-1].name] = "av"
        roles.update({o.name: "inner" for o in chain[1:-1]})
    return roles
