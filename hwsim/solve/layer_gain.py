"""Per-layer gain sensitivity (``tails="gain"``): one descendant run per layer, choices priced by it.

The exact ``output_mse`` (:mod:`hwsim.solve.output_error`) runs, for every (layer, choice), the
layer alone and then all of its descendants. Here every choice of a layer still runs alone
(:func:`hwsim.solve.output_error._alone`, the choices side by side), giving its *local errors*:
the summed squared difference from the float reference of each value the layer hands to its
descendants, its outputs and, where descendants read them too, its quantized inputs (a residual
branch: the q, k and v projections' input reaches the residual add). Then the descendants run
ONCE per layer, and the choices are priced from that run in one of two ways.

By sample (when the values handed on and the outputs hold the ``n`` samples one after the other
along their first axis, :func:`_split_by_sample`: the models ``hwsim solve`` builds by name). The
samples are independent of each other (the assumption of the exact tails' stacked runs), so one
run can feed each sample from a different choice: choice ``k`` feeds the samples ``S_k``
(:func:`slots`: ``n / choices`` samples each, in an order drawn per layer), and its value is

    value(k) = O_k(S_k) / L_k(S_k) * L_k(all samples) / size of the outputs,

``O_k(S_k)`` the summed squared output error of its samples, ``L_k`` its local error
(:func:`ratio_values`). So every choice has its own gain, measured on its own samples, and the
value is exact when that gain is the same in every sample (e.g. identical samples, or a linear
tail that scales every direction alike). What is left is how the gain varies between samples.

By probe (otherwise). ONE *probe* choice per layer, the one of largest local error, runs its
descendants exactly (:func:`hwsim.solve.output_error._descendants`), and

    value(l, c) = G_out(l) * e_out(l, c) + sum over handed-on inputs t of G_t * e_t(l, c).

A handed-on input's gain ``G_t`` is measured by feeding it alone (its choice of largest error)
to the descendants that read it: one run per distinct value, shared by the layers that hand on
the same one (:class:`SharedRuns`: the q, k and v projections of one attention). ``G_out`` is
what the probe's exact value leaves, over its output error. A layer that hands on only its
outputs has the one gain ``value(probe) / e(probe)``. This assumes that a 4-bit weight error and
an 8- or 16-bit activation error of the same layer reach the outputs alike; they do not (w8a8
about 2x high on resnet18 and MiniLM-L6, w8a16 about a third on MobileNetV2).

Both ways: a choice with zero local error is exactly 0; a layer with no descendants (its outputs
are graph outputs) is measured exactly at every choice, and so is a choice whose local error or
estimate is not finite (e.g. its outputs overflowed) or, by sample, whose samples hold no local
error. Measured against the exact table (int8-npu's default choices, 8 synthetic samples;
docs/solver_results.md "--tails gain"): by sample, values 0.89-1.17x of the exact ones on
resnet18, 0.78-1.31x on MiniLM-L6 s128 and 0.82-1.18x on MobileNetV2 (by probe 0.55-4.8x,
0.64-5.2x and 0.04-2.7x). Unlike
``tails="cut"`` (:mod:`hwsim.solve.cut_gain`: one probe per (cut, choice)), the gain here is each
layer's own, so layers reaching the outputs by different paths are not priced with one factor.
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
#: (resnet18) and 8.3e-4 to 4.8e-3 (MiniLM-L6 s128), so at the exact tails' former 1e-3 9 of 17 re-ran
#: (their F32_MIN_CHANGE is 2e-4 since 2026-11-26, above this estimate's own 1e-4).
HANDED_MIN_CHANGE = 1e-4


#: the estimate's name in sensitivity cache keys (a new name whenever its values change)
CACHE_TAG = "gain/by-sample"


class SharedRuns:
    """What the layers of one measurement share (thread-safe): the number of ``samples`` (see
    :func:`layer_values`), and tail runs that several layers would make alike, made once: the
    run of a handed-on input alone, keyed by what decides its result."""

    def __init__(self, samples: int | None = None):
        self.lock, self.runs, self.samples = threading.Lock(), {}, samples

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

    ``stacked`` as :func:`hwsim.solve.output_error._descendants` (by sample: the model built for
    twice the samples tells whether the samples lie along the first axis; by probe: used when
    more than one choice runs exactly); ``shared.samples``, the number of samples, is needed by
    sample. An error of the simulator propagates, naming the layer and the choice.
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
    reached = [n for n in g.outputs if n in firsts[0] or g.producer(n) in after]
    samples = shared.samples if shared is not None else None
    if samples is not None and samples > 1 and _split_by_sample(g, names + reached, stacked, samples):
        return _by_sample(g, layer, after, chs, firsts, ref, seed, stacked, samples, names, reached)
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


def per_sample(values: dict[str, np.ndarray], ref: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Summed squared difference, in float64, of ``values`` from ``ref`` per sample (length
    ``n``): each array holds the ``n`` samples one after the other along its first axis."""
    out = np.zeros(n)
    for name, v in values.items():
        out += ((np.asarray(v, np.float64) - ref[name]).reshape(n, -1) ** 2).sum(axis=1)
    return out


def slots(estimated: list[int], n: int, layer: str | None = None) -> np.ndarray:
    """Choice (index) fed in each sample slot of the by-sample run: ``m = ceil(len(estimated) / n)``
    copies of the ``n`` samples (slot ``r`` is sample ``r % n`` of copy ``r // n``), the choices
    ``estimated`` taking the slots in turn, so that each has ``n / len(estimated)`` samples, at
    least one; with ``layer``, the slots in an order drawn from its name (reproducibly), so that a
    choice is not measured on the same samples in every layer and a sample's own gain does not
    shift a whole column of the table alike."""
    m = -(-len(estimated) // n)
    pick = np.array([estimated[r % len(estimated)] for r in range(m * n)])
    if layer is None:
        return pick
    seed = int.from_bytes(hashlib.blake2b(layer.encode(), digest_size=8).digest(), "little")
    return pick[np.random.default_rng(seed).permutation(len(pick))]


def ratio_values(local: np.ndarray, out: np.ndarray, pick: np.ndarray, size: int) -> np.ndarray:
    """Estimated output MSE of each choice from a by-sample run (module docstring).

    ``local`` (choices, n): each choice's local error per sample; ``out`` (slots,): the summed
    squared output error of each slot of the run; ``pick`` (slots,): the choice each slot fed
    (:func:`slots`); ``size``: the number of output elements (the MSE's divisor). A choice's value
    is its output error over its local error on its own samples, times its local error on all
    samples, over ``size``: exact when that ratio is the same for every sample. NaN for a choice
    with no slot or zero local error in its slots (measured exactly instead)."""
    fed = local[pick, np.arange(len(pick)) % local.shape[1]]  # local error of what each slot was fed
    vals = np.full(len(local), np.nan)
    for k in np.unique(pick):
        den = fed[pick == k].sum()
        if den > 0:
            vals[k] = out[pick == k].sum() / den * local[k].sum() / size
    return vals


def _split_by_sample(g: Graph, tensors: list[str], stacked, n: int) -> bool:
    """Whether each of ``tensors`` holds the ``n`` samples one after the other along its first
    axis: the model built for twice the samples stacks it (the assumption of the exact tails'
    stacked runs, :func:`hwsim.solve.output_error._tail_runs`) and its first axis is a multiple
    of ``n``."""
    from hwsim.solve.output_error import _stacks

    big = stacked.graph(2)
    return big is not None and all(
        t in big.tensors and _stacks(g.tensors[t].shape, big.tensors[t].shape, 2) and g.tensors[t].shape[0] % n == 0
        for t in tensors)


def _by_sample(g, layer, after, chs, firsts, ref, seed, stacked, n: int, names: list[str],
               reached: list[str]) -> np.ndarray:
    """Values of ``layer``'s choices from one run of its descendants whose samples are fed by
    different choices (module docstring); the choices it cannot estimate are measured exactly."""
    from hwsim.solve.output_error import _descendants, score

    local = np.array([per_sample({t: f[t] for t in names}, ref, n) for f in firsts])
    errors = local.sum(axis=1)
    vals = np.where(np.isfinite(errors), 0.0, np.nan)  # zero local error: 0; not finite: exact below
    estimated = [k for k in range(len(chs)) if np.isfinite(errors[k]) and errors[k] > 0]
    if estimated:
        pick = slots(estimated, n, layer)
        feeds = [{t: np.concatenate([_sample(firsts[k][t], s, n) for s, k in enumerate(pick[j:j + n])])
                  for t in names} for j in range(0, len(pick), n)]
        outs = _descendants(g, layer, after, [chs[k] for k in pick[::n]], feeds, ref, seed, stacked,
                            min_change=HANDED_MIN_CHANGE, change=_least_change(pick, n, ref))
        out = np.concatenate([per_sample({o: {**f, **r}[o] for o in reached}, ref, n) for f, r in zip(feeds, outs)])
        vals[estimated] = ratio_values(local, out, pick, sum(np.asarray(ref[o]).size for o in reached))[estimated]
    redo = [k for k in range(len(chs)) if not np.isfinite(vals[k])]
    if redo:  # not finite, or no local error in its samples: measured exactly
        for k, o in zip(redo, _descendants(g, layer, after, [chs[k] for k in redo], [firsts[k] for k in redo], ref,
                                           seed, stacked)):
            got = {t: {**firsts[k], **o}[t] for t in reached}
            vals[k] = score("output_mse", got, {t: ref[t] for t in got}, None)
    return vals


def _least_change(pick: np.ndarray, n: int, ref: dict):
    """``change(j, out)`` for :func:`hwsim.solve.output_error._descendants` on the by-sample run:
    the smallest relative RMS change of the outputs ``out`` of copy ``j`` over the samples of one
    choice (``pick``: :func:`slots`), so that each choice's float32 roundoff is bounded alone."""
    def change(j: int, out: dict) -> float:
        sq = per_sample(out, ref, n)
        ref_sq = per_sample({o: np.zeros_like(ref[o]) for o in out}, ref, n)
        mine = pick[j * n:(j + 1) * n]
        return min(float(np.sqrt(sq[mine == k].sum() / ref_sq[mine == k].sum())) if ref_sq[mine == k].sum() > 0
                   else (0.0 if sq[mine == k].sum() == 0 else float("inf")) for k in set(mine.tolist()))

    return change


def _sample(v: np.ndarray, s: int, n: int) -> np.ndarray:
    """Sample ``s`` of ``n`` of ``v`` (the rows it holds along the first axis)."""
    rows = len(v) // n
    return v[s * rows:(s + 1) * rows]
