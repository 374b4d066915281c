"""``hwsim calibrate``: fit a target's physical parameters to measurements (scipy least squares).

Fitted, each an interpretable quantity that extrapolates to shapes and formats not measured:

- ``rates[].efficiency``: achieved fraction of each format pair's peak MAC rate;
- ``memory[].bandwidth_bytes_per_s``: achieved bandwidth per level;
- ``compute.elementwise_ops_per_cycle``: achieved rate of non-MAC ops;
- ``compute.unaligned_efficiency``: fraction of a pair's rate a GEMM keeps with rows off alignment_bytes
  (where the target sets it and a training record has such a GEMM);
- ``layer_overhead_s``: fixed time per MAC kernel (launch and tail);
- ``elementwise_overhead_s``, ``convolution_overhead_s``: fixed time per non-MAC kernel (elementwise, norm,
  pooling, gather) and per convolution kernel, where the target separates them (else layer_overhead_s);
- ``idle_power_w``: power floor of the clocked, idle board (under every layer), bounded below by the idle
  power the records measured (``conditions.idle_power_w``) and above by the lowest mean power of a run;
- ``static_power_w``: power while every core works, beyond the dynamic energy of the work; a layer that
  occupies a fraction of the cores draws the idle floor plus that fraction of the difference;
- ``rates[].energy_per_mac_pj``: dynamic energy per MAC of each pair;
- ``compute.elementwise_energy_pj``: dynamic energy per non-MAC op;
- ``memory[].read/write_energy_pj_per_bit``: dynamic energy per bit moved at each level.

Kept, not fitted: peak MAC rates (``macs_per_cycle``), the tile shape and split-K depth; ``fixed`` holds any
fitted parameter at a given value (a datasheet peak, a direct measurement). Shape efficiency (wave and tile quantisation over the cores, split-K) and occupancy are
the target's own :func:`hwsim.cost.unit.utilization` and :func:`hwsim.cost.unit.occupancy`; the power cap
is the measured ``power_limit_w`` (throttling as in :func:`hwsim.cost.layer.throttle`). The cost model is
linear in these parameters per layer, up to the max() of compute and transfer time, so one estimate per
record at a probe target gives every layer's work (MACs, ops, bytes per level, occupancy) and the fit
re-prices that work; the fitted target is then checked with the full cost model
(:func:`hwsim.fidelity.validate.validate`) on the training and the held-out records.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError
from hwsim.fidelity.records import Measurement, load_measurements
from hwsim.fidelity.validate import Validation, predict, validate
from hwsim.cost.fusion import FUSED_ATTENTION_NOTE
from hwsim.cost.unit import UNALIGNED_NOTE
from hwsim.targets import Target, load_target


RESTARTS = 7  # random starting points of the least-squares fit besides the target's own values
#: an inner memory level costs at least this fraction of the next level out per bit: Horowitz, ISSCC 2014,
#: 64-bit access of an 8 KB SRAM ~10 pJ vs ~2 nJ of DRAM (1:200)
INNER_ENERGY_RATIO_MIN = 1 / 200
#: search bound on the dynamic energy of one non-MAC op, pJ (a bound of the fit, not a physical claim: the
#: fitted value absorbs what the networks spend beyond their MAC and memory energy, see docs/fidelity.md)
ELEMENTWISE_ENERGY_MAX_PJ = 1000.0


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` returns: the fitted target and its errors."""

    target: Target
    train: Validation
    holdout: Validation | None
    train_ids: tuple[str, ...]
    holdout_ids: tuple[str, ...]
    parameters: dict[str, float]


def _pair_of(label: str, note: str = "") -> tuple[str, ...] | None:
    """(activation, weight) of the rate a MAC layer ran at, with "attention" appended for the products of a
    fused attention kernel (their efficiency is fitted apart, their energy per MAC is the pair's)."""
    if not label:
        return None
    run = label.split(" as ")[-1]
    act, rest = run.split(" x ", 1)
    pair = (act.strip(), rest.split(" -> ")[0].strip())
    return pair + ("attention",) if FUSED_ATTENTION_NOTE in note else pair


@dataclass
class _Work:
    """Every layer of every record, as arrays (row = layer)."""

    rec: np.ndarray
    pair: np.ndarray        # index into pairs, -1 for non-MAC ops
    energy_pair: np.ndarray  # index into pairs of the energy per MAC (the base pair of a fused attention)
    compute_s: np.ndarray   # at the starting target's rate
    bytes: np.ndarray       # (layers, levels)
    overhead: np.ndarray    # kernels the layer launches, each paying its kind's overhead (0: none)
    elementwise: np.ndarray  # 1 where that overhead is elementwise_overhead_s (a non-MAC kernel)
    convolution: np.ndarray  # 1 where it is convolution_overhead_s
    unaligned: np.ndarray   # 1 where the layer runs at unaligned_efficiency
    occupancy: np.ndarray   # fraction of cores working while busy
    macs: np.ndarray        # executed MACs (dot layers)
    fixed_j: np.ndarray     # dynamic energy not fitted (decode)


#: probe overheads, s: tell the kinds of layer overhead, and how many kernels pay it, apart in the probe estimate
#: (a layer launches fewer than 100 kernels)
_PROBE_MAC_S, _PROBE_ELEMENTWISE_S, _PROBE_CONV_S = 1e-6, 1e-4, 1e-2


def _kernels(ovh: float) -> tuple[float, str]:
    """(kernels, kind) of a probe layer's overhead ``ovh``."""
    for probe, kind in ((_PROBE_CONV_S, "convolution"), (_PROBE_ELEMENTWISE_S, "elementwise"), (_PROBE_MAC_S, "mac")):
        if ovh > probe / 2:
            return float(round(ovh / probe)), kind
    return 0.0, "mac"


def _probe(base: Target) -> Target:
    """``base`` without power cap, with 1 W of active core power over a zero idle floor (so each layer's
    static energy is occupancy x busy time) and distinct overheads per kind of layer."""
    return base.model_copy(update={"power_cap_w": None, "static_power_w": 1.0, "idle_power_w": 0.0,
                                   "layer_overhead_s": _PROBE_MAC_S,
                                   "elementwise_overhead_s": _PROBE_ELEMENTWISE_S,
                                   "convolution_overhead_s": _PROBE_CONV_S})


def _extract(records, base: Target, folder: Path, pairs: list) -> _Work:
    t0 = _probe(base)
    cols = {k: [] for k in _Work.__dataclass_fields__}
    names = [m.name for m in base.memory]
    for i, rec in enumerate(records):
        for r in predict(rec, t0, folder).layers:
            p = _pair_of(r.formats, r.note)
            for q in (p, p and p[:2]):
                if q is not None and q not in pairs:
                    pairs.append(q)
            busy = max([r.compute_s] + list(r.transfer_s.values()))
            kernels, kind = _kernels(r.latency_s - busy)
            cols["rec"].append(i)
            cols["pair"].append(-1 if p is None else pairs.index(p))
            cols["energy_pair"].append(-1 if p is None else pairs.index(p[:2]))
            cols["compute_s"].append(r.compute_s)
            cols["bytes"].append([r.bytes.get(n, 0.0) for n in names])
            cols["overhead"].append(kernels)
            cols["elementwise"].append(1.0 if kind == "elementwise" else 0.0)
            cols["convolution"].append(1.0 if kind == "convolution" else 0.0)
            cols["unaligned"].append(1.0 if UNALIGNED_NOTE in r.note else 0.0)
            cols["occupancy"].append(min(1.0, r.energy_breakdown_j["static"] / busy) if busy > 0 else 1.0)
            cols["macs"].append(r.executed_ops)  # MACs of dot layers, elementwise ops of the others
            cols["fixed_j"].append(r.energy_breakdown_j.get("decode", 0.0))
    return _Work(**{k: np.asarray(v, dtype=int if k in ("rec", "pair", "energy_pair") else float)
                    for k, v in cols.items()})


class _Model:
    """The vectorised cost model over parameters theta (natural logs of the physical values)."""

    def __init__(self, base: Target, work: _Work, pairs: list, n_records: int, cap_w: float | None,
                 idle_min_w: float | None, idle_max_w: float | None = None):
        self.base, self.w, self.pairs, self.n, self.cap = base, work, pairs, n_records, cap_w
        rates = {(r.activation, r.weight): r for r in base.compute.rates}

        def eff(p):
            r = rates.get(p[:2])
            base_eff = (r.efficiency if r else None) or base.compute.efficiency
            return (r.attention_efficiency if r and len(p) > 2 else None) or base_eff
        self.eff0 = np.array([eff(p) for p in pairs])
        self.levels = [m.name for m in base.memory]
        names = [f"{'attention_' if len(p) > 2 else ''}efficiency[{p[0]} x {p[1]}]" for p in pairs]
        names += [f"bandwidth_bytes_per_s[{n}]" for n in self.levels]
        names += ["elementwise_ops_per_cycle", "layer_overhead_s", "elementwise_overhead_s", "convolution_overhead_s",
                  "idle_power_w", "active_power_w", "elementwise_energy_pj", "unaligned_efficiency"]
        names += [f"energy_per_mac_pj[{p[0]} x {p[1]}{' attention' if len(p) > 2 else ''}]" for p in pairs]
        names += [f"energy_pj_per_bit[{n}]" for n in self.levels]
        self.names = names
        cu = base.compute
        # memory levels: the outermost as a value, each inner one as its ratio to the next level out
        # (inner levels are at least as fast and at most as costly per bit: keeps the fit identifiable)
        mem = base.memory
        bw_x0 = [max(mem[i].bandwidth_bytes_per_s / mem[i + 1].bandwidth_bytes_per_s, 1.0)
                 for i in range(len(mem) - 1)] + [mem[-1].bandwidth_bytes_per_s]
        e_x0 = [min(max(mem[i].read_energy_pj_per_bit, 1e-4) / max(mem[i + 1].read_energy_pj_per_bit, 1e-4), 1.0)
                for i in range(len(mem) - 1)] + [max(mem[-1].read_energy_pj_per_bit, 1e-3)]
        cap = cap_w or 1e4
        idle_lo = idle_min_w or 1e-3
        idle_hi = max(idle_lo * 1.02, min(idle_max_w or cap * 0.45, cap * 0.45))
        idle0 = min(base.idle_power_w if base.idle_power_w is not None else base.static_power_w / 2, idle_hi / 1.01)
        ovh0 = max(base.layer_overhead_s, 1e-6)
        self.u0 = cu.unaligned_efficiency or 1.0
        x0 = list(self.eff0) + bw_x0
        x0 += [cu.elementwise_ops_per_cycle, ovh0, base.elementwise_overhead_s or ovh0,
               base.convolution_overhead_s or ovh0, max(idle0, idle_lo * 1.01),
               max(base.static_power_w - idle0, 1.0), min(cu.elementwise_energy_pj or 1.0, ELEMENTWISE_ENERGY_MAX_PJ),
               self.u0]
        x0 += [1.0] * len(pairs) + e_x0
        lo = [0.02] * len(pairs) + [1.0] * (len(mem) - 1) + [0.05 * mem[-1].bandwidth_bytes_per_s]
        hi = [1.0] * len(pairs) + [2 * x for x in bw_x0[:-1]] + [mem[-1].bandwidth_bytes_per_s]
        lo += [cu.elementwise_ops_per_cycle / 50, 1e-8, 1e-8, 1e-8, idle_lo, 1e-3, 1e-3, 0.02]
        hi += [cu.elementwise_ops_per_cycle * 50, 1e-4, 1e-4, 1e-4, idle_hi, cap * 0.45,
               ELEMENTWISE_ENERGY_MAX_PJ, 1.0]
        lo += [1e-3] * len(pairs) + [INNER_ENERGY_RATIO_MIN] * (len(mem) - 1) + [1e-3]
        hi += [100.0] * len(pairs) + [1.0] * (len(mem) - 1) + [100.0]
        self.lo, self.hi = np.log(lo), np.log(hi)
        self.x0 = np.clip(np.log(x0), self.lo + 1e-9, self.hi - 1e-9)
        # parameters the target does not separate, or that no training layer sees, keep their start
        self.tie_e, self.tie_c = base.elementwise_overhead_s is None, base.convolution_overhead_s is None
        for name, unused in (("elementwise_overhead_s", self.tie_e), ("convolution_overhead_s", self.tie_c),
                             ("unaligned_efficiency", cu.unaligned_efficiency is None or not work.unaligned.any())):
            if unused:
                i = names.index(name)
                self.hold(i, x0[i])
        k0 = len(pairs) + len(mem) + 8  # first energy_per_mac slot
        for j, p in enumerate(pairs):  # a fused attention's energy per MAC is its pair's: this slot is unused
            if len(p) > 2:
                self.hold(k0 + j, x0[k0 + j])

    def hold(self, i: int, value: float) -> None:
        """Keep parameter ``i`` at ``value`` (physical units) in every start of the fit."""
        self.lo[i], self.hi[i] = np.log(value) - 1e-9, np.log(value) + 1e-9
        self.x0[i] = np.log(value)

    def split(self, theta):
        v = np.exp(theta)
        k, L = len(self.pairs), len(self.levels)
        eff = v[:k]
        bw = np.cumprod(v[k:k + L][::-1])[::-1]
        ew, ovh, ovh_e, ovh_c, p_idle, p_act, e_ew, u = v[k + L:k + L + 8]
        ovh_e, ovh_c = ovh if self.tie_e else ovh_e, ovh if self.tie_c else ovh_c
        e_mac, e_bit = v[k + L + 8:2 * k + L + 8], np.cumprod(v[2 * k + L + 8:][::-1])[::-1]
        return eff, bw, ew, (ovh, ovh_e, ovh_c), p_idle, p_act, (e_ew, u), e_mac, e_bit

    def values(self, theta) -> dict[str, float]:
        """Parameter name -> physical value."""
        eff, bw, ew, ovhs, p_idle, p_act, (e_ew, u), e_mac, e_bit = self.split(theta)
        vals = list(eff) + list(bw) + [ew, *ovhs, p_idle, p_act, e_ew, u] + list(e_mac) + list(e_bit)
        return dict(zip(self.names, (float(x) for x in vals)))

    def predict(self, theta) -> tuple[np.ndarray, np.ndarray]:
        eff, bw, ew, (ovh, ovh_e, ovh_c), p_idle, p_act, (e_ew, u), e_mac, e_bit = self.split(theta)
        w = self.w
        dot = w.pair >= 0
        scale = np.where(dot, self.eff0[np.maximum(w.pair, 0)] / eff[np.maximum(w.pair, 0)],
                         self.base.compute.elementwise_ops_per_cycle / ew)
        scale = scale * np.where(w.unaligned > 0, self.u0 / u, 1.0)
        busy = np.maximum(w.compute_s * scale, (w.bytes / bw).max(axis=1))
        dyn = w.fixed_j + np.where(dot, e_mac[np.maximum(w.energy_pair, 0)], e_ew) * w.macs * 1e-12
        dyn = dyn + (w.bytes * 8 * e_bit).sum(axis=1) * 1e-12
        p_busy = p_idle + p_act * w.occupancy
        if self.cap is not None:
            busy = np.where(busy > 0, np.maximum(busy, dyn / np.maximum(self.cap - p_busy, 1.0)), busy)
        gap = np.where(w.elementwise > 0, ovh_e, np.where(w.convolution > 0, ovh_c, ovh)) * w.overhead
        lat = busy + gap
        en = dyn + p_busy * lat
        return (np.bincount(w.rec, lat, minlength=self.n), np.bincount(w.rec, en, minlength=self.n))


def _split(records, holdout: float, seed: int):
    if not 0 <= holdout < 1:
        raise ConfigError(f"holdout must be in [0, 1), got {holdout}")
    idx = list(range(len(records)))
    random.Random(seed).shuffle(idx)
    n_hold = int(round(holdout * len(records)))
    hold = sorted(idx[:n_hold])
    train = sorted(idx[n_hold:])
    if not train:
        raise ConfigError("no training records left: lower holdout")
    return train, hold


def _recite(text: str, clause: str) -> str:
    """``text`` with ``clause`` appended, replacing the '...fitted to / measured in ...' clause an earlier
    calibration appended (so refits do not pile up citations)."""
    return re.sub(r"; [^;]*\b(fitted to|measured in)\b[^;]*$", "", text) + f"; {clause}"


def _fitted_target(base: Target, m: _Model, theta, cap_w, source: str, energy: bool = True,
                   held: tuple[str, ...] = ()) -> Target:
    """The fitted target; ``energy`` False (no record measured energy at the target's scope) keeps the
    base target's energy fields, which the fit could not see; ``held`` parameters are not called fitted."""
    eff, bw, ew, (ovh, ovh_e, ovh_c), p_idle, p_act, (e_ew, u), e_mac, e_bit = m.split(theta)
    d = base.model_dump()
    u_fitted = d["compute"]["unaligned_efficiency"] is not None
    if u_fitted:
        d["compute"]["unaligned_efficiency"] = round(float(u), 4)
    fit = {p: (float(eff[i]), float(e_mac[i])) for i, p in enumerate(m.pairs)}
    for r in d["compute"]["rates"]:
        p = (r["activation"], r["weight"])
        what = []
        if p in fit:
            r["efficiency"] = round(fit[p][0], 4)
            what.append("efficiency")
            if energy:
                r["energy_per_mac_pj"] = round(fit[p][1], 4)
                what.append("energy_per_mac_pj")
        if p + ("attention",) in fit:
            r["attention_efficiency"] = round(fit[p + ("attention",)][0], 4)
            if f"attention_efficiency[{p[0]} x {p[1]}]" not in held:
                what.insert(0, "attention_efficiency")
        if what:
            r["source"] = _recite(r["source"], f"{' and '.join(what)} fitted to {source}")
    d["compute"]["elementwise_ops_per_cycle"] = round(float(ew), 3)
    if energy:
        d["compute"]["elementwise_energy_pj"] = float(f"{e_ew:.4g}")
    what = ["elementwise_ops_per_cycle"] * ("elementwise_ops_per_cycle" not in held)
    what += ["elementwise_energy_pj"] * energy + ["unaligned_efficiency"] * u_fitted
    if what:
        d["compute"]["source"] = _recite(d["compute"]["source"], f"{' and '.join(what)} fitted to {source}")
    for i, lvl in enumerate(d["memory"]):
        lvl["bandwidth_bytes_per_s"] = float(f"{bw[i]:.4g}")
        if energy:
            lvl["read_energy_pj_per_bit"] = lvl["write_energy_pj_per_bit"] = float(f"{e_bit[i]:.4g}")
        lvl["source"] = _recite(lvl["source"], f"bandwidth{' and energy per bit' if energy else ''} fitted to {source}")
    d["layer_overhead_s"] = float(f"{ovh:.4g}")
    what = ["layer_overhead_s"] * ("layer_overhead_s" not in held)
    for key, value in (("elementwise_overhead_s", ovh_e), ("convolution_overhead_s", ovh_c)):
        if d[key] is not None:  # a kind of layer overhead the target separates
            d[key] = float(f"{value:.4g}")
            what += [key] * (key not in held)
    if energy:
        d["static_power_w"] = round(float(p_idle + p_act), 2)
        d["idle_power_w"] = round(float(p_idle), 2)
        what += ["static_power_w", "idle_power_w (bounded below by the measured idle power)"]
    d["power_cap_w"] = cap_w
    d["source"] = _recite(d["source"], f"{', '.join(what)} fitted and power_cap_w (power_limit_w) measured in {source}")
    return Target.model_validate(d)


def calibrate(target: str | Path | Target, measurements: str | Path, holdout: float = 0.3, seed: int = 0,
              source: str | None = None, records: tuple[Measurement, ...] | None = None,
              fixed: dict[str, float] | None = None) -> Calibration:
    """Fit ``target`` to the records of ``measurements``; validate on the training and held-out parts.

    Parameters
    ----------
    target : str, Path or Target
        Starting target (its structure, peak rates and tile shape are kept).
    measurements : path
        JSONL measurement file; records without a model are not used.
    holdout : float
        Fraction of records (random, ``seed``) kept out of the fit and reported separately.
    source : str, optional
        How the fitted fields cite the measurements (default: the file name).
    records : tuple of Measurement, optional
        Fit these records instead of the file's (the file still sets the folder of model paths).
    fixed : dict, optional
        Parameters held at these values (names as in :attr:`Calibration.parameters`, e.g.
        ``{"layer_overhead_s": 7e-6}`` when a microbenchmark measured it directly).

    Returns
    -------
    Calibration
    """
    base = load_target(target)
    path = Path(measurements)
    records = [r for r in (load_measurements(path) if records is None else records) if r.model is not None]
    if len(records) < 3:
        raise ConfigError(f"{path}: calibration needs at least 3 records with a model, found {len(records)}")
    train_i, hold_i = _split(records, holdout, seed)
    train = [records[i] for i in train_i]
    pairs: list = []
    work = _extract(train, base, path.parent, pairs)
    caps = [r.conditions.power_limit_w for r in records if r.conditions.power_limit_w]
    cap_w = max(caps) if caps else None
    idles = [r.conditions.idle_power_w for r in records if r.conditions.idle_power_w]
    # the floor lies between the measured idle power and the lowest mean power any training run drew
    drawn = [r.energy_j / r.latency_s for r in train
             if r.energy_j is not None and r.conditions.energy_scope == base.energy_scope]
    m = _Model(base, work, pairs, len(train), cap_w, min(idles) if idles else None, min(drawn) if drawn else None)
    inner = [f"{kind}[{n}]" for kind in ("bandwidth_bytes_per_s", "energy_pj_per_bit") for n in m.levels[:-1]]
    for name, value in (fixed or {}).items():
        if name not in m.names:
            raise ConfigError(f"fixed parameter {name!r} is not one of {', '.join(m.names)}")
        if name in inner:  # fitted as its ratio to the next level out: a value cannot be held
            raise ConfigError(f"fixed parameter {name!r} belongs to an inner memory level, which the fit prices "
                              f"relative to the next level out; only {m.levels[-1]}'s values can be held")
        m.hold(m.names.index(name), value)
    lat = np.array([r.latency_s for r in train])
    has_e = np.array([r.energy_j is not None and r.conditions.energy_scope == base.energy_scope for r in train])
    en = np.array([r.energy_j if h else 1.0 for r, h in zip(train, has_e)])

    # every kind of record (network, gemm, conv2d, ...) weighs the same in total, however many it has
    kinds = [r.kind for r in train]
    wt = np.sqrt(np.array([len(train) / (len(set(kinds)) * kinds.count(k)) for k in kinds]))

    def resid(theta):
        pl, pe = m.predict(theta)
        return np.concatenate([wt * np.log(pl / lat), wt[has_e] * np.log(pe[has_e] / en[has_e])])

    from scipy.optimize import least_squares

    # the max() of compute and transfer time makes the cost surface piecewise: start from the target's
    # own values and from a few random points inside the bounds, keep the best
    rng = np.random.default_rng(seed)
    starts = [m.x0] + [m.lo + (m.hi - m.lo) * rng.uniform(0.2, 0.8, m.x0.size) for _ in range(RESTARTS)]
    sol = min((least_squares(resid, x, bounds=(m.lo, m.hi), method="trf", loss="soft_l1", f_scale=0.1,
                             max_nfev=2000) for x in starts), key=lambda r: r.cost)
    src = source or path.name
    fitted = _fitted_target(base, m, sol.x, cap_w, src, energy=bool(has_e.any()), held=tuple(fixed or ()))
    params = m.values(sol.x)
    tv = validate(fitted, [path], records=tuple(train))
    hv = validate(fitted, [path], records=tuple(records[i] for i in hold_i)) if hold_i else None
    return Calibration(target=fitted, train=tv, holdout=hv, train_ids=tuple(r.id for r in train),
                       holdout_ids=tuple(records[i].id for i in hold_i), parameters=params)

