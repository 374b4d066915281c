"""The ``proxy`` sensitivity: a layer's own output-noise energy, from statistics, no simulation.

For y = W x (one output position), quantizing weights to Wq and inputs to xq adds noise with
energy about ``||W - Wq||^2 E[x^2] + ||Wq||^2 E[(x - xq)^2]`` (independent, zero-mean errors),
times the number of output positions per sample. ``Wq`` is the pruned (magnitude, as the
simulator prunes) then quantized weight, scales calibrated as the simulator does. Big weights
are estimated on a sample of whole rows (at most ``max_sample`` elements) and scaled up; zoo
weights that have no values are the first rows of the simulator's synthetic values
(:func:`hwsim.graph.weights.synthetic_values`).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from hwsim.graph.annotate import weight_spec
from hwsim.graph.ir import Graph
from hwsim.graph.quant import QuantSpec
from hwsim.solve.choices import Choice
from hwsim.solve.layers import prunable, solver_layers
from hwsim.solve.sensitivity_table import SensitivityTable


def _weight_sample(graph: Graph, op, seed: int, max_sample: int) -> tuple[np.ndarray, float]:
    """(rows of the weight, factor from sample energy to full-tensor energy)."""
    w = graph.weight(op)
    rows = w.shape[0]
    per_row = max(w.numel // rows, 1)
    n_rows = max(1, min(rows, max_sample // per_row))
    if w.data is not None:
        data = np.asarray(w.data, np.float64)
        pick = np.linspace(0, rows - 1, n_rows).astype(int) if n_rows < rows else slice(None)
        sample = data[pick]
    else:  # the first rows of the values the simulator synthesizes
        from hwsim.graph.weights import synthetic_values

        sample = synthetic_values(w, seed, rows=n_rows).astype(np.float64)
    return sample, rows / n_rows


def _quantize(x: np.ndarray, spec: QuantSpec, seed: int) -> np.ndarray:
    from hwsim.sim import qspec

    if qspec.needs_scale(spec):
        spec = qspec.calibrate(spec, x)
    return qspec.quantize(x, spec, seed=seed)


def layer_proxy(graph: Graph, op, reference: dict | None, seed: int, max_sample: int) -> Callable:
    """A function choice -> proxy value for one layer (statistics computed once)."""
    from hwsim.sim import qspec

    x_name = graph.activation_inputs(op)[0].name
    if reference is not None and x_name in reference:
        x = np.asarray(reference[x_name], np.float64).reshape(-1)
        if x.size > max_sample:
            x = x[np.linspace(0, x.size - 1, max_sample).astype(int)]
    else:
        x = np.random.default_rng([seed, 5]).standard_normal(min(max_sample, 4096))
    ex2 = float(np.mean(x * x))
    out_shape = graph.tensors[op.outputs[0]].shape
    w = graph.weight(op)
    if w is None:  # matmul of two activations: only the activation noise of one operand
        positions, sample, factor = math.prod(out_shape[:-1]) or 1, None, 1.0
    else:
        positions = math.prod(out_shape) / out_shape[1 if op.op == "conv2d" else -1]
        sample, factor = _weight_sample(graph, op, seed, max_sample)
    positions /= max(graph.tensors[op.outputs[0]].shape[0], 1) if op.op == "conv2d" else 1
    act_noise: dict[str, float] = {}

    def value(choice) -> float:
        fmt = choice.activation_format
        if fmt not in act_noise:
            act_noise[fmt] = float(np.mean((x - _quantize(x, QuantSpec(format=fmt), seed)) ** 2))
        if sample is None:
            k = out_shape[-1]
            return positions * k * act_noise[fmt]
        wq, _ = qspec.prepare_weight(sample, weight_spec(choice.weight_format, None, None), choice.pruning, seed)
        dw2 = float(np.sum((sample - wq) ** 2)) * factor
        wq2 = float(np.sum(wq * wq)) * factor
        return positions * (dw2 * ex2 + wq2 * act_noise[fmt])

    return value


def measure_proxy(graph: Graph, choices: list[Choice], reference: dict[str, np.ndarray] | None = None,
                  seed: int = 0, max_sample: int = 1 << 16) -> SensitivityTable:
    """The ``proxy`` metric of every (layer, choice) (no simulation; see module docstring).

    ``reference`` : float values of the layers' inputs (from a float run on real data), else
    the inputs are assumed unit-variance Gaussian.
    """
    t0 = time.perf_counter()
    layers = [graph.op(n) for n in solver_layers(graph)]
    vals = np.full((len(layers), len(choices)), np.inf)
    memo: dict = {}  # synthetic weights of one shape fed the same assumed inputs give the same values
    for i, op in enumerate(layers):
        w = graph.weight(op)
        sig = (op.op, w.shape, graph.tensors[op.outputs[0]].shape) if w.data is None and reference is None else op.name
        if sig not in memo:
            stats = layer_proxy(graph, op, reference, seed, max_sample)
            memo[sig] = [stats(ch) if prunable(graph, op.name, ch) else np.inf for ch in choices]
        vals[i] = memo[sig]
    note = "proxy metric: layer output-noise energy from weight and input statistics (no simulation)"
    if reference is None:
        note += "; inputs assumed unit-variance Gaussian"
    return SensitivityTable([o.name for o in layers], choices, vals, "proxy", [note], time.perf_counter() - t0)
