"""Per-layer costs reused across the points of a sweep.

A layer's cost is a pure function of the graph, the op and the target fields its cost function
reads. What it reads of the graph is the op's *signature*: its kind and attributes, and the shape,
role, format, dtype and KV-streaming of each tensor it touches, the producer of each input (ReLU
inputs gate MACs), and the weight's name when it holds data (measured statistics); ops with equal
signatures (ResNet's repeated 3x3 convolutions) share one row, renamed. Dot products (conv2d, linear, matmul) read the whole compute unit, so their rows are shared only
within one call (one target). Every other op kind runs on the elementwise path or moves data: it reads the memory
levels, clock, node, static power, overhead, features and only :data:`STREAM_COMPUTE_FIELDS` of the
compute unit, so points that differ only in the MAC array (rows, cols, rates, dataflow, ...) share
those rows. ``tests/sweep/test_layercache.py`` checks the claim against the cost functions: it
changes every other compute field and asserts those rows do not move.
"""

from __future__ import annotations

import hashlib

from hwsim.cost.estimate import graph_facts, price
from hwsim.cost.report import CostReport

#: op kinds priced on the MAC unit (their rows depend on every compute field)
DOT_KINDS = frozenset({"conv2d", "linear", "matmul"})
#: the only compute-unit fields that the cost functions of other op kinds read
STREAM_COMPUTE_FIELDS = ("elementwise_ops_per_cycle", "cores")

#: rows kept per graph before the cache starts over (bounds a worker's memory)
_LIMIT = 50_000


class LayerCache:
    """Rows of one graph, keyed by (op name, the target fields the op's cost reads, seed), and the
    graph's :class:`~hwsim.cost.estimate.GraphFacts`. Use one LayerCache per graph."""

    def __init__(self):
        self.rows: dict = {}
        self.signatures: dict[str, str] = {}
        self.facts = None
        self.hits = 0
        self.misses = 0

    def report(self, graph, target, seed: int = 0, key: str | None = None) -> CostReport:
        """:func:`hwsim.cost.estimate.price` of ``graph`` on ``target``, reusing cached rows.

        ``key``: :func:`stream_key` of ``target`` when the caller already has it.
        """
        stream = key or stream_key(target)
        this_point: dict = {}  # dot-product rows: shared by equal layers of this call only (no two points of
                               # a sweep price one graph on one target, so keeping them would only hold memory)

        def layer_cost(op, ctx, fn):
            sig = self.signatures.get(op.name)
            if sig is None:
                sig = self.signatures[op.name] = signature(graph, op, self.facts.streamed)
            dot = op.op in DOT_KINDS
            rows, key = (this_point, sig) if dot else (self.rows, (sig, stream, seed))
            row = rows.get(key)
            if row is None:
                self.misses += 1
                row = fn(op, ctx)
                if len(rows) >= _LIMIT:
                    rows.clear()
                rows[key] = row
                return row
            self.hits += 1
            return row if row.name == op.name else row.model_copy(update={"name": op.name})

        if self.facts is None:
            self.facts = graph_facts(graph)
        return price(graph, target, [], seed, layer_cost=layer_cost, facts=self.facts)


def signature(graph, op, streamed) -> str:
    """What the cost function of ``op`` reads of the graph (see module docstring), as a string."""
    parts: list = [type(op).__name__, op.model_dump(exclude={"name", "inputs", "outputs"})]
    for i, name in enumerate((*op.inputs, *op.outputs)):
        t = graph.tensors[name]
        parts.append((t.shape, t.role, repr(t.quant), t.dtype, name in streamed,
                      name if t.data is not None else None))
        prod = graph.producer(name) if i < len(op.inputs) else None
        if prod is not None:
            p = graph.op(prod)
            parts.append((type(p).__name__, p.model_dump(exclude={"name", "inputs", "outputs"})))
    return repr(parts)


def stream_key(target) -> str:
    """Digest of the target fields that non-dot op kinds read (all but most of the compute unit)."""
    dump = target.model_dump(mode="json")
    dump["compute"] = {k: dump["compute"][k] for k in STREAM_COMPUTE_FIELDS}
    return _digest(dump)


def _digest(obj) -> str:
    import json

    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()
