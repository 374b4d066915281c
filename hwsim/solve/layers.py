"""Which layers the solver chooses for, and which of them must agree.

- :func:`solver_layers` -- the conv2d / linear ops (ops with a weight), in graph order;
- :func:`tie_groups` -- layers reading one activation tensor (it has one format, so they must
  choose the same activation format);
- :func:`prunable` -- whether a choice's pruning can apply to a layer.
"""

from __future__ import annotations

from hwsim.graph.ir import Graph
from hwsim.graph.quant import pruning_problem
from hwsim.solve.choices import Choice


def solver_layers(graph: Graph) -> list[str]:
    """Names of the layers the solver chooses for: conv2d and linear ops (ops with a weight)."""
    return [o.name for o in graph.layers() if graph.weight(o) is not None]


def tie_groups(graph: Graph, layers: list[str]) -> list[list[int]]:
    """Groups of layer indices that read a common activation tensor (e.g. q, k, v projections).

    A shared tensor has one format, so such layers must choose the same activation format.
    """
    parent = list(range(len(layers)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, name in enumerate(layers):
        for t in graph.activation_inputs(graph.op(name)):
            j = first.setdefault(t.name, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(layers)):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def prunable(graph: Graph, layer: str, choice: Choice) -> bool:
    """Whether the choice's pruning can be applied to the layer (N:M needs M | reduction length)."""
    if choice.pruning.kind == "none":
        return True
    w = graph.weight(graph.op(layer))
    return w is not None and pruning_problem(choice.pruning, choice.weight_format, tuple(w.shape)) is None
