"""Per-layer gain sensitivity (``tails="gain"``): one exact tail per layer, its other choices scaled.

The exact ``output_mse`` (:mod:`hwsim.solve.output_error`) runs, for every (layer, choice), the
layer alone and then all of its descendants. Here every choice of a layer still runs alone
(:func:`hwsim.solve.output_error._alone`, the choices side by side), giving its *local errors*:
the summed squared difference from the float reference of each value the layer hands to its
descendants, its outputs and, where descendants read them too, its quantized inputs (a residual
branch: the q, k and v projections' input reaches the residual add). Then ONE *probe* choice per
layer, the one of largest local error, runs its descendants exactly
(:func:`hwsim.solve.output_error._descendants`), and

    value(l, c) = G_out(l) * e_out(l, c) + sum over handed-on inputs t of G_t * e_t(l, c).

A handed-on input's gain ``G_t`` is measured by feeding it alone (its choice of largest error)
to the descendants that read it: one run per distinct value, shared by the layers that hand on
the same one (:class:`SharedRuns`: the q, k and v projections of one attention). ``G_out`` is
what the probe's exact value leaves, over its output error. A layer that hands on only its
outputs has the one gain ``value(probe) / e(probe)``.

The probe's own value is exact (the exact metric, up to float32 roundoff of the tail); a choice
with zero local error is exactly 0; a layer with no descendants (its outputs are graph outputs)
is measured exactly at every choice, and so is a choice whose local error or estimate is not
finite (e.g. the probe's outputs overflowed).

It is an ESTIMATE: it assumes that an output's error reaches the model's outputs multiplied by
the same factor whatever the choice, i.e. that a 4-bit weight error and an 8- or 16-bit
activation error of the same layer reach the outputs alike. They do not: measured against the
exact table (8 synthetic samples, int8-npu's default choices w8a8 / w4a8 / w8a16, probe w4a8;
docs/solver_results.md "--tails gain") the values came out 0.55-4.8x of the exact ones on
resnet18, 0.64-5.2x on MiniLM-L6 s128 (w8a8 a median 2.1x / 1.8x high) and 0.044-2.7x on
MobileNetV2 (w8a16 a median 0.36x); the plans chosen on it at 24 energy budgets, each simulated
whole, were the exact table's at 23 / 17 / 10 of them and measured at worst 1.04x / 1.19x /
1.27x the exact plan's output MSE. The largest-error probe needs no float64 re-run of its tail
(its change of the outputs is far above float32 roundoff). Unlike ``tails="cut"``
(:mod:`hwsim.solve.cut_gain`: one probe per (cut, choice)), the gain here is each layer's own,
so layers reaching the outputs by different paths (a query and a value projection) are not
priced with one factor.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future

import networkx as nx
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


#: smallest relative RMS change of the outputs that a handed-on input's float32 run may measure
#: without the float64 re-run (:func:`hwsim.solve.output_error._descendants`): its MSE is then off
#: by at most about 2 x 1e-6 / 1e-4 = 2% (float32 roundoff), far inside the estimate's own error.
#: Measured (8 synthetic samples, int8-npu): those runs change the outputs by 5.4e-4 to 9.0e-4
#: (resnet18) and 8.3e-4 to 4.8e-3 (MiniLM-L6 s128), so at the exact tails' 1e-3 9 of 17 re-ran.
HANDED_MIN_CHANGE = 1e-4


class SharedRuns:
    """Tail runs that several layers would make alike, made once (thread-safe): the run of a
    handed-on input alone (see :func:`layer_values`), keyed by what decides its result."""

    def __init__(self):
        self.lock, self.runs = threading.Lock(), {}

    def get(self, key, make):
        """``make()``, computed by the first caller of ``key``; later callers wait for it."""
        with self.lock:
            future, mine = self.runs.get(key), key not in self.runs
            if mine:
                future = self.runs[key] = Future()
        if mine:
            try:
                future.set_result(make())
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return future.result()


def layer_values(g: Graph, layer: str, chs: list[Choice], ref: dict, seed: int, stacked,
                 shared: SharedRuns | None = None) -> np.ndarray:
    """Estimated ``output_mse`` of ``layer`` at each choice of ``chs`` (module docstring).

    ``stacked`` as :func:`hwsim.solve.output_error._descendants` (used when more than one choice
    runs exactly). An error of the simulator propagates, naming the layer and the choice.
    """
    from hwsim.solve.output_error import _alone, _descendants, score

    firsts, after = _alone(g, layer, chs, ref, seed)

    def value(first: dict, rest: dict, names=None) -> float:
        names = [n for n in g.outputs if n in first or n in rest] if names is None else names
        out = {n: {**first, **rest}.get(n, ref[n]) for n in names}
        return score("output_mse", out, {n: ref[n] for n in out}, None)

    if not after:  # the layer's outputs are graph outputs: nothing to estimate
        return np.array([value(f, {}) for f in firsts])
    names = list(firsts[0])
    parts = np.array([[local_error({n: f[n]}, ref) for n in names] for f in firsts])
    errors = parts.sum(axis=1)
    probe = probe_choice(errors)
    exact = sorted({k for k in range(len(chs)) if not np.isfinite(errors[k])} | ({probe} - {None}))
    outs = _descendants(g, layer, after, [chs[k] for k in exact], [firsts[k] for k in exact], ref, seed,
                        stacked) if exact else []
    measured = {k: value(firsts[k], o) for k, o in zip(exact, outs)}
    handed = [c for c, n in enumerate(names) if n not in g.op(layer).outputs and n not in g.outputs]
    if probe is None or not handed or shared is None:
        vals = scaled(errors, probe, measured.get(probe, 0.0))
    else:
        reached = [n for n in g.outputs if n in firsts[probe] or n in outs[exact.index(probe)]]
        gains = {c: _handed_gain(g, layer, after, names[c], parts[:, c], chs, firsts, ref, seed, stacked, shared,
                                 lambda rest: value({}, rest, reached)) for c in handed}
        own = [c for c in range(len(names)) if c not in gains]
        rest = measured[probe] - sum(gains[c] * parts[probe, c] for c in gains)
        own_err = parts[:, own].sum(axis=1)
        g_own = max(rest, 0.0) / own_err[probe] if own_err[probe] > 0 else 0.0
        vals = own_err * g_own + sum(gains[c] * parts[:, c] for c in gains)
        vals = np.where(np.isfinite(errors), vals, np.nan)
    for k, v in measured.items():
        vals[k] = v
    redo = [k for k in range(len(chs)) if k not in measured and not np.isfinite(vals[k])]
    if redo:  # a gain that is not finite (the probe's outputs overflowed): measure those exactly
        for k, o in zip(redo, _descendants(g, layer, after, [chs[k] for k in redo], [firsts[k] for k in redo], ref,
                                           seed, stacked)):
            vals[k] = value(firsts[k], o)
    return vals


def _handed_gain(g, layer, after, tensor, errs, chs, firsts, ref, seed, stacked, shared: SharedRuns,
                 value) -> float:
    """Gain of a quantized input ``tensor`` that descendants of ``layer`` read too (e.g. a
    residual branch): output MSE of those readers and their descendants fed with it alone (the
    choice of largest error in it), over its error. The same value handed on by several layers
    (the q, k and v projections of one attention read one input) runs once (``shared``)."""
    from hwsim.solve.output_error import _descendants

    k = probe_choice(errs)
    if k is None:
        return 0.0
    readers = {o for o in after if tensor in g.op(o).inputs}
    post = set(readers).union(*(nx.descendants(g.nx, o) for o in readers))
    data = np.ascontiguousarray(firsts[k][tensor])
    key = (tensor, frozenset(post), hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest(), str(data.dtype))
    run = shared.get(key, lambda: value(_descendants(g, layer, post, [chs[k]], [{tensor: data}], ref, seed,
                                                     stacked, min_change=HANDED_MIN_CHANGE)[0]))
    return run / errs[k]
