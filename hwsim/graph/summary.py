"""Per-layer summary of a graph: what ``hwsim summary`` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hwsim.graph.ir import Graph


@dataclass(frozen=True)
class LayerRow:
    """One op with arithmetic or parameters."""

    name: str
    op: str
    macs: int
    params: int
    weight_format: str | None
    activation_format: str | None
    input_shapes: list[list[int]]
    output_shape: list[int]


@dataclass(frozen=True)
class Summary:
    model: str
    total_macs: int
    total_params: int
    total_weight_bytes: float
    layers: list[LayerRow]
    notes: list[str]

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("notes")
        return d


def summarize(graph: Graph, all_ops: bool = False) -> Summary:
    """Rows for every op with MACs or parameters (every op with ``all_ops``)."""
    rows = []
    for op in graph.ops():
        macs, params = graph.macs(op), graph.params(op)
        if not all_ops and macs == 0 and params == 0:
            continue
        w = graph.weight(op)
        acts = graph.activation_inputs(op)
        ins, outs = graph.shapes(op)
        rows.append(LayerRow(
            name=op.name, op=_label(graph, op), macs=macs, params=params,
            weight_format=w.quant.format if w is not None else None,
            activation_format=acts[0].quant.format if acts else None,
            input_shapes=[list(s) for s in ins], output_shape=list(outs[0]),
        ))
    return Summary(graph.name, graph.total_macs, graph.total_params, graph.total_weight_bytes, rows,
                   list(graph.notes))


def _label(graph: Graph, op) -> str:
    if op.op == "conv2d" and op.groups > 1:
        c = graph.tensors[op.inputs[0]].shape[1]
        return "conv2d/dw" if op.groups == c else f"conv2d/g{op.groups}"
    fn = getattr(op, "fn", None) or getattr(op, "kind", None) or getattr(op, "op_type", None)
    return f"{op.op}/{fn}" if fn else op.op
