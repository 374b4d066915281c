"""Sampled-gain sensitivity (``tails="cut"``): output MSE from the error at the next cut of the graph.

A *cut* is an activation tensor that is, at its point of the op order, the only live activation
(every path from the inputs to the outputs runs through it): a ResNet block's output, a
transformer's residual stream after each LayerNorm. All of a layer's effect on the outputs flows
through the first cut after it, so its exact output MSE is the output MSE of a run from the cut
fed with the perturbed cut value.

Estimate, per cut and per choice: every layer whose first cut it is runs up to the cut (the
*segment*, usually a block) and gives its cut MSE ``e(l, c)``. One *probe* layer per choice
(median cut MSE of the group) runs on to the outputs; its value is exact, and its *gain*
``G(c) = output MSE / e(probe, c)`` prices the group's other layers:
``value(l, c) = e(l, c) * G(c)``. The probes of a cut (one per choice) run from the cut stacked
along the batch. A layer alone at its cut is measured exactly; a perturbation that does not
reach the cut (``e = 0``) is exactly 0. The segments and probe runs take the float32 shortcut
and its checks as the exact tails do (:func:`hwsim.solve.output_error._descendants`).

This is an approximation (the gain depends on the direction of the perturbation: measured on
resnet18 the exact gain of layers sharing a cut and a choice differs by up to about 2x; on
MiniLM-L6 a tenth of the values came out under a quarter of the exact ones). It is not the
default: ``tails="exact"`` (:mod:`hwsim.solve.output_error`) runs every layer's
descendants. benchmarks/RESULTS.md compares the plans of both, measured in the simulator.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from hwsim.graph.ir import Graph

_CONST = ("weight", "bias", "buffer", "const")


def cut_points(graph: Graph) -> dict[int, str]:
    """Op index -> the only live activation tensor after that op (graph outputs stay live)."""
    ops = graph.ops()
    last: dict[str, int] = {}
    for i, op in enumerate(ops):
        for t in op.inputs:
            last[t] = i
    outputs = set(graph.outputs)
    live = {t for t in graph.inputs if graph.tensors[t].role not in _CONST}
    cuts = {}
    for i, op in enumerate(ops):
        live |= {t for t in op.outputs if graph.tensors[t].role not in _CONST}
        live = {t for t in live if last.get(t, -1) > i or t in outputs}
        if len(live) == 1:
            cuts[i] = next(iter(live))
    return cuts


def first_cuts(graph: Graph, layers: list[str]) -> dict[str, tuple[int, str]]:
    """Layer -> (op index, tensor) of the first cut at or after it; layers without one are left out."""
    pos = {op.name: i for i, op in enumerate(graph.ops())}
    cuts = cut_points(graph)
    order = sorted(cuts)
    out = {}
    for layer in layers:
        nxt = next((i for i in order if i >= pos[layer]), None)
        if nxt is not None:
            out[layer] = (nxt, cuts[nxt])
    return out


def segment_ops(graph: Graph, layer: str, cut_index: int) -> set[str]:
    """Descendants of ``layer`` up to and including the op at ``cut_index``."""
    pos = {op.name: i for i, op in enumerate(graph.ops())}
    return {o for o in nx.descendants(graph.nx, layer) if pos[o] <= cut_index}


def cut_mse(value: np.ndarray, ref: np.ndarray) -> float:
    """Mean squared difference of a cut tensor from its float reference."""
    return float(np.mean((np.asarray(value, np.float64) - ref) ** 2))


def probe_rows(errors: np.ndarray) -> list[int | None]:
    """Per column (choice): the row (layer) of median error among rows with a positive finite
    error (the lower median for an even count), or None when there is none."""
    out = []
    for col in errors.T:
        ok = [i for i in np.argsort(col, kind="stable") if np.isfinite(col[i]) and col[i] > 0]
        out.append(ok[(len(ok) - 1) // 2] if ok else None)
    return out


def scaled_values(errors: np.ndarray, probes: list[int | None], probe_values: dict[int, float]) -> np.ndarray:
    """``errors * gain`` per column, the probe rows exact (see module docstring).

    ``probe_values`` maps a column to its probe's output value; an error of 0 stays 0, and an
    inapplicable choice (``inf`` error) stays ``inf``.
    """
    vals = np.where(np.isfinite(errors), 0.0, np.inf)
    for j, p in enumerate(probes):
        if p is None:
            continue
        gain = probe_values[j] / errors[p, j]
        col = errors[:, j]
        vals[:, j] = np.where(np.isfinite(col), col * gain, np.inf)
        vals[p, j] = probe_values[j]
    return vals
