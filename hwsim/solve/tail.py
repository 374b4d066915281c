"""The part of a graph from one layer onward, fed with float reference values at its boundary.

Perturbing one layer only changes the ops downstream of it, so sensitivity simulates only those:
the tail graph holds the layer and its descendants; every activation they read from outside the
tail becomes a graph input carrying its float reference value. Weights are shared, not copied.
:func:`subgraph` cuts any set of ops the same way (the layer alone, or only its descendants).
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.quant import FP32

_FROM_OUTSIDE = ("input", "activation")  # KV caches stay kv_cache tensors, fed by name


def tail_graph(graph: Graph, layer: str) -> Graph:
    """Graph of ``layer`` and every op downstream of it (float boundary inputs, see module doc)."""
    return subgraph(graph, {layer} | nx.descendants(graph.nx, layer), f"{graph.name}[{layer}:]")


def subgraph(graph: Graph, keep: set[str], title: str) -> Graph:
    """Graph of the ops in ``keep`` (graph order); what they read from outside becomes an input
    (float activations as float32 inputs, see module doc); its outputs are the graph outputs
    they produce."""
    ops = [o for o in graph.ops() if o.name in keep]
    produced = {t for o in ops for t in o.outputs}
    g = Graph(title)
    g.notes = list(graph.notes)
    for op in ops:
        for name in op.inputs:
            if name in g.tensors:
                continue
            t = graph.tensors[name]
            if name not in produced and t.role in _FROM_OUTSIDE and not t.dtype.startswith(("int", "uint", "bool")):
                g.add_tensor(Tensor(name, t.shape, "input", FP32, dtype="float32"))
            elif name not in produced:
                g.add_tensor(t)
    for op in ops:
        g.add_op(op)
    g.outputs = [o for o in graph.outputs if o in produced]
    return g


def boundary_names(tail: Graph, reference: dict[str, np.ndarray]) -> list[str]:
    """Names of a tail graph's inputs and of the KV caches it reads (fed by name)."""
    return list(tail.inputs) + [n for n, t in tail.tensors.items() if t.role == "kv_cache" and n in reference]


def boundary_values(tail: Graph, reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Input arrays of a tail graph (and its KV caches): float reference values, as float32."""
    return {n: np.asarray(reference[n], dtype=np.float32) for n in boundary_names(tail, reference)}
