"""Per-layer accuracy of formats on a model's own weights and activations (``--model``).

For every compute layer (conv2d, linear, matmul) and every format: SQNR (dB) at the MSE-optimal
per-tensor scale (:func:`hwsim.compare.accuracy.optimal_scale`) of

- the weight tensor: from the model file, or seeded synthetic weights
  (:func:`hwsim.graph.weights.synthesize_weights`, Kaiming normal) when it carries none, which is
  said in ``notes`` and ``synthetic_weights``;
- the layer's first activation input, captured from the simulator's float reference
  of :func:`hwsim.sim.run` on the unquantized graph, on seeded calibration inputs: N(0, 1) for
  float inputs, token ids uniform below min(100, vocabulary) for integer ones; KV caches are
  filled by the simulator (seeded N(0, 1)).

Tensors are laid out as rows along the reduction axis before quantizing, so MX blocks of 32 run
along it, as an MX dot product does: conv weights O x (I*kh*kw), conv activations in channels-last
order (one row of C channels per pixel), linear and matmul operands along their last axis. A tensor
of more than ``max_elements`` values is subsampled by whole rows, seeded.
With a target, :func:`hwsim.estimate` gives the model's latency and energy per format (weights and
activations both in that format).
"""

from __future__ import annotations

import numpy as np

from hwsim.compare.accuracy import optimal_scale
from hwsim.compare.results import LayerAccuracy, ModelComparison, ModelEstimate
from hwsim.errors import ConfigError
from hwsim.formats import Format

#: The float reference of larger models takes minutes in numpy: ask for a smaller shape instead.
MAX_REFERENCE_MACS = 2e10


def reduction_rows(x: np.ndarray, op_kind: str, is_weight: bool) -> np.ndarray:
    """``x`` as a 2-D array whose rows run along the op's reduction axis (see module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    if op_kind == "conv2d":
        return x.reshape(x.shape[0], -1) if is_weight else np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    if x.ndim == 1:
        return x.reshape(1, -1)
    return x.reshape(-1, x.shape[-1])


def subsample_rows(rows: np.ndarray, max_elements: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_elements`` values: whole rows chosen at random (a prefix of one row if needed)."""
    if rows.size <= max_elements:
        return rows
    keep = max(1, max_elements // rows.shape[1])
    if keep == 1 and rows.shape[1] > max_elements:
        return rows[rng.integers(rows.shape[0]), :max_elements].reshape(1, -1)
    return rows[np.sort(rng.choice(rows.shape[0], keep, replace=False))]


def tensor_sqnr(x: np.ndarray, fmts: list[Format]) -> dict[str, float | None]:
    """SQNR (dB) per format at the MSE-optimal per-tensor scale; None for all-zero tensors."""
    if not np.any(x) or not np.all(np.isfinite(x)):
        return {f.name: None for f in fmts}
    out = {}
    for f in fmts:
        try:
            out[f.name] = optimal_scale(f, x).sqnr_db
        except NotImplementedError:
            out[f.name] = None
    return out


def check_size(graph) -> None:
    """Refuse models whose float reference would take minutes, saying how to shrink them."""
    if graph.total_macs > MAX_REFERENCE_MACS:
        raise ConfigError(f"model {graph.name} has {graph.total_macs:.3g} MACs; capturing its activations "
                          f"in float64 would take minutes. Shrink it with shapes (e.g. layers=1,context=64 or "
                          f"sequence=64) or name a smaller model (limit {MAX_REFERENCE_MACS:.0e} MACs)", param="shapes")


def _reference(graph, seed: int) -> dict[str, np.ndarray]:
    """Float reference values of every tensor, through the simulator on the unquantized graph."""
    from hwsim.sim import run

    from hwsim.sim.boundary import random_inputs

    return run(graph, random_inputs(graph, np.random.default_rng([seed, 11])), seed=seed,
               reference_precision="float64").reference.values  # formats are measured against float64


def _layers(graph, ref, fmts, seed: int, max_elements: int) -> list[LayerAccuracy]:
    out = []
    for op in graph.layers():
        rng = np.random.default_rng([seed, len(out)])
        w = graph.weight(op)
        w_sq = {f.name: None for f in fmts}
        if w is not None and (w.name in ref or w.data is not None):
            real = ref[w.name] if w.name in ref else w.data  # the reference holds dequantized initializers
            w_sq = tensor_sqnr(subsample_rows(reduction_rows(real, op.op, True), max_elements, rng), fmts)
        acts = graph.activation_inputs(op)
        a_sq = {f.name: None for f in fmts}
        if acts and acts[0].name in ref:
            rows = reduction_rows(ref[acts[0].name], op.op, False)
            a_sq = tensor_sqnr(subsample_rows(rows, max_elements, rng), fmts)
        out.append(LayerAccuracy(name=op.name, op=op.op, weights_sqnr_db=w_sq, activations_sqnr_db=a_sq))
    return out


def _estimates(model, graph, fmts, target) -> list[ModelEstimate]:
    import hwsim

    out = []
    for f in fmts:
        rep = hwsim.estimate(graph, target, weights=f.name, activations=f.name)
        out.append(ModelEstimate(format=f.name, latency_s=rep.total.latency_s, energy_j=rep.total.energy_j))
    return out


def compare_model(model, fmts: list[Format], target=None, *, shape: dict[str, int] | None = None,
                  seed: int = 0, max_elements: int = 16384) -> ModelComparison:
    """Per-layer SQNR of ``fmts`` on ``model``'s weights and activations (and cost on ``target``).

    Parameters
    ----------
    model : str or Graph
        Zoo name, model YAML, ONNX path or a Graph.
    fmts : list of Format
    target : Target, optional
        Adds :func:`hwsim.estimate` latency and energy per format.
    shape : dict, optional
        Model parameter overrides.
    seed : int
        Seed of synthetic weights, calibration inputs and subsampling.
    max_elements : int
        Values per tensor kept for the scale search.

    Returns
    -------
    ModelComparison
    """
    from hwsim.graph.weights import SYNTHETIC_NOTE, synthesize_weights
    from hwsim.graph.zoo import load_model

    graph = load_model(model, shape or None)
    check_size(graph)
    synthetic = any(t.data is None for t in graph.tensors.values() if t.role in ("weight", "bias", "buffer"))
    notes = []
    if synthetic:
        graph = synthesize_weights(graph, seed)
        notes.append(f"{SYNTHETIC_NOTE} (seed {seed}): weight SQNR shows the formats on Gaussian weights, "
                     "not on a trained model")
    ref = _reference(graph, seed)
    layers = _layers(graph, ref, fmts, seed, max_elements)
    estimates = _estimates(model, graph, fmts, target) if target is not None else []
    return ModelComparison(name=graph.name, synthetic_weights=synthetic,
                           activation_source=f"float reference of hwsim.sim.run on seeded random "
                                             f"inputs (seed {seed})",
                           max_elements=max_elements, layers=layers, estimates=estimates, notes=notes)
