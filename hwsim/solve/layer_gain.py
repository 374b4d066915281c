"""Per-layer gain sensitivity (``tails="gain"``): one exact tail per layer, its other choices scaled.

The exact ``output_mse`` (:mod:`hwsim.solve.output_error`) runs, for every (layer, choice), the
layer alone and then all of its descendants. Here every choice of a layer still runs alone
(:func:`hwsim.solve.output_error._alone`, the choices side by side), giving its *local error*
``e(l, c)``: the summed squared difference from the float reference of every value the layer
hands to its descendants (its outputs, and its quantized inputs where descendants read them too,
e.g. a residual branch). Then ONE *probe* choice per layer, the one of largest local error, runs
its descendants exactly (:func:`hwsim.solve.output_error._descendants`); its output MSE over its
local error is the layer's *gain* ``G(l)``, and

    value(l, c) = e(l, c) * G(l).

The probe's own value is exact (the exact metric, up to float32 roundoff of the tail); a choice
with zero local error is exactly 0; a layer with no descendants (its outputs are graph outputs)
is measured exactly at every choice, and so is a choice whose local error is not finite.

It is an ESTIMATE: it assumes that the output error grows with the local error by the same factor
whatever the choice, i.e. that a 4-bit weight error and a 16-bit activation error of the same layer
reach the outputs alike. The largest-error probe needs no float64 re-run of its tail (its change
of the outputs is far above float32 roundoff). Measured against the exact table (8 synthetic
samples, int8-npu's default choices w8a8 / w4a8 / w8a16; benchmarks/RESULTS.md "Sixth session:
gain"): see there for the value ratios and the plans chosen at 24 energy budgets, each simulated
whole. Unlike ``tails="cut"`` (:mod:`hwsim.solve.cut_gain`: one probe per (cut, choice)), the
gain here is each layer's own, so layers reaching the outputs by different paths (a query and a
value projection) are not priced with one factor.
"""

from __future__ import annotations

import numpy as np

from hwsim.graph.ir import Graph
from hwsim.solve.choices import Choice


def local_error(first: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    """Summed squared difference, in float64, of the values a layer alone gives (``first``: name ->
    array, :func:`hwsim.solve.output_error._alone`) from their float reference ``ref``."""
    return sum(float(np.sum((np.asarray(v, np.float64) - ref[n]) ** 2)) for n, v in first.items())


def probe_choice(errors: np.ndarray) -> int | None:
    """The choice (index) of largest positive finite local error, or None when there is none."""
    ok = np.isfinite(errors) & (errors > 0)
    return int(np.argmax(np.where(ok, errors, -np.inf))) if ok.any() else None


def scaled(errors: np.ndarray, probe: int | None, probe_value: float) -> np.ndarray:
    """Estimated values of one layer's choices: ``errors * probe_value / errors[probe]``; the
    probe's value ``probe_value``; 0 where the local error is 0 (all 0 when ``probe`` is None);
    NaN where the local error is not finite (those are measured exactly instead)."""
    errors = np.asarray(errors, np.float64)
    vals = np.where(np.isfinite(errors), 0.0, np.nan)
    if probe is not None:
        gain = probe_value / errors[probe]
        vals = np.where(np.isfinite(errors), errors * gain, np.nan)
        vals[probe] = probe_value
    return vals


def layer_values(g: Graph, layer: str, chs: list[Choice], ref: dict, seed: int, stacked) -> np.ndarray:
    """Estimated ``output_mse`` of ``layer`` at each choice of ``chs`` (module docstring).

    ``stacked`` as :func:`hwsim.solve.output_error._descendants` (used when more than one choice
    runs exactly). An error of the simulator propagates, naming the layer and the choice.
    """
    from hwsim.solve.output_error import _alone, _descendants, score

    firsts, after = _alone(g, layer, chs, ref, seed)

    def value(first: dict, rest: dict) -> float:
        out = {n: {**first, **rest}[n] for n in g.outputs if n in first or n in rest}
        return score("output_mse", out, {n: ref[n] for n in out}, None)

    if not after:  # the layer's outputs are graph outputs: nothing to estimate
        return np.array([value(f, {}) for f in firsts])
    errors = np.array([local_error(f, ref) for f in firsts])
    probe = probe_choice(errors)
    exact = sorted({k for k in range(len(chs)) if not np.isfinite(errors[k])} | ({probe} - {None}))
    outs = _descendants(g, layer, after, [chs[k] for k in exact], [firsts[k] for k in exact], ref, seed,
                        stacked) if exact else []
    measured = {k: value(firsts[k], o) for k, o in zip(exact, outs)}
    vals = scaled(errors, probe, measured.get(probe, 0.0))
    for k, v in measured.items():
        vals[k] = v
    return vals
