"""Cheap single-layer sensitivity: one layer's output error under a format / pruning choice.

The layer reads its *float reference* inputs (from a :class:`~hwsim.sim.runner.FloatCache`),
quantized to the chosen activation format (max-abs calibrated on those values); its weights are
pruned and quantized as chosen; its output stays unquantized (dequantized accumulator), so the
error measures this layer's choice alone, not the propagation of earlier layers' errors. Cost:
one op execution, no graph run.
"""

from __future__ import annotations

from hwsim.graph.annotate import weight_spec
from hwsim.graph.ir import Graph
from hwsim.graph.quant import FP32, Pruning, QuantSpec
from hwsim.sim import qspec
from hwsim.sim.metrics import mse, sqnr_db
from hwsim.sim.registry import ExecContext, execute, takes_coded
from hwsim.sim.runner import FloatCache, LayerError, _Weights, check_requant, ensure_weights


def layer_output_error(graph: Graph, reference: FloatCache, layer: str, weight_format: str | None = None,
                       activation_format: str | None = None, pruning: Pruning | str | None = None,
                       accumulator: str | None = None, requant: str = "exact", seed: int = 0) -> LayerError:
    """Error of ``layer``'s output (vs the float reference) with the given choices.

    Parameters
    ----------
    graph : Graph
        The float graph the reference was computed on (same weights / seed).
    reference : FloatCache
        ``run(...).reference`` or :func:`~hwsim.sim.runner.float_reference`.
    layer : str
        Op name of a conv2d / linear / matmul.
    weight_format, activation_format : str, optional
        Format names (None keeps the graph's annotation).
    pruning : Pruning or str, optional
        E.g. ``"2:4"``, ``"50%"``; None keeps the op's.
    accumulator : str, optional
        Accumulator format, e.g. ``"int20"`` or ``"fp16"``.
    requant : str
        Requantization mode (only used when the output tensor is integer-annotated; it is reset
        to fp32 here, so normally unused).

    Returns
    -------
    LayerError
    """
    check_requant(requant)
    g = ensure_weights(graph, seed).copy()
    op = g.op(layer)
    upd = {}
    if pruning is not None and hasattr(op, "pruning"):
        upd["pruning"] = pruning if isinstance(pruning, Pruning) else Pruning.parse(pruning)
    if accumulator is not None:
        upd["accumulator"] = accumulator
    if upd:
        op = op.model_copy(update=upd)
        g.replace_op(op)
    w = g.weight(op)
    if weight_format and w is not None:
        g.set_quant(w.name, weight_spec(weight_format, None, None))
    for t in g.activation_inputs(op):
        spec = QuantSpec(format=activation_format) if activation_format else t.quant
        g.set_quant(t.name, qspec.calibrate(spec.model_copy(update={"scale": None, "zero_point": None})
                                            if spec.scale is None else spec, reference.values[t.name]))
    g.set_quant(op.outputs[0], FP32)
    ctx = ExecContext(graph=g, reference=False, requant=requant, seed=seed)
    prep = _Weights(ctx)
    xs = [qspec.quantize(reference.values[t], g.tensors[t].quant) if t in reference.values and g.tensors[t].data is None
          else prep(op, i, t) for i, t in enumerate(op.inputs)]
    if not takes_coded(op):
        xs = [qspec.real_of(x) for x in xs]
    y = qspec.quantize(execute(ctx, op, xs), FP32)
    ref = reference.values[op.outputs[0]]
    return LayerError(op.name, op.op, sqnr_db(ref, y), mse(ref, y))
