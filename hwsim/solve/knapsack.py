"""Exact multiple-choice knapsack with several budgets, solved by HiGHS.

Every layer ``l`` picks exactly one choice ``c``; choice ``(l, c)`` adds ``values[l, c]`` to the
objective (minimised) and ``costs[k][l, c]`` to budget ``k``, and every budget must stay at or
below its limit. One binary per (layer, choice), one one-hot row per layer, one row per budget.

Before solving, choices *dominated* within their layer are removed: choice ``c`` is dominated by
``d`` when ``d`` is no worse in value and in every cost (and strictly better in one, or equal in
all with a lower index). Any plan using ``c`` stays feasible and no worse with ``d`` instead, so
removing ``c`` keeps the optimum exact. A choice is unavailable for a layer when its value or any
cost is ``inf`` or ``nan``.

Two exact methods: ``"core"`` (default; :mod:`hwsim.solve._core`: LP relaxation, Lagrangian
reduced-cost core grown until it provably holds the optimum, each core solved by HiGHS through
highspy with an incumbent) and ``"milp"`` (the reference: the whole problem through
scipy.optimize.milp). Ties between layers always use ``"milp"``.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hwsim.errors import ConfigError
from hwsim.solve._core import solve_core

Status = Literal["optimal", "infeasible", "time_limit"]
#: budgets are met up to this relative tolerance (sums of float costs round)
_RTOL = 1e-9


@dataclass(frozen=True)
class MCKPResult:
    """Outcome of :func:`mckp`.

    Attributes
    ----------
    choice : numpy.ndarray of int, shape (L,)
        Choice index per layer (``-1`` everywhere when infeasible).
    objective : float
        Sum of the chosen values (``inf`` when infeasible).
    status : {"optimal", "infeasible", "time_limit"}
        ``time_limit``: the best plan found before the limit, not proven optimal.
    used : dict of str to float
        Sum of each budget's cost over the chosen plan (``nan`` when infeasible).
    min_reachable : dict of str to float
        Smallest value each budget can take on its own: the sum over layers of the cheapest
        available choice. A limit below it can never be met.
    kept_choices : int
        Choices left after removing dominated ones (what the MILP saw).
    """

    choice: np.ndarray
    objective: float
    status: Status
    used: dict[str, float] = field(default_factory=dict)
    min_reachable: dict[str, float] = field(default_factory=dict)
    kept_choices: int = 0


def _validate(values, costs: dict, budgets: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ConfigError(f"values must be an (layers, choices) array, got shape {v.shape}")
    c = {}
    for name, arr in costs.items():
        a = np.asarray(arr, dtype=np.float64)
        if a.shape != v.shape:
            raise ConfigError(f"cost '{name}' has shape {a.shape}, values have {v.shape}")
        c[name] = a
    unknown = sorted(set(budgets) - set(c))
    if unknown:
        raise ConfigError(f"budget(s) {unknown} have no cost table; known: {sorted(c)}")
    return v, c


def available_mask(values: np.ndarray, costs: dict[str, np.ndarray]) -> np.ndarray:
    """(L, C) bool: choice usable (finite value and finite costs)."""
    ok = np.isfinite(values)
    for a in costs.values():
        ok &= np.isfinite(a)
    return ok


def min_reachable(costs: dict[str, np.ndarray], ok: np.ndarray) -> dict[str, float]:
    """Per budget, the sum over layers of the cheapest available choice (each budget alone)."""
    return {k: float(np.where(ok, a, np.inf).min(axis=1).sum()) for k, a in costs.items()}


def undominated(values: np.ndarray, costs: list[np.ndarray], ok: np.ndarray,
                labels: np.ndarray | None = None) -> np.ndarray:
    """(L, C) bool mask of available choices that no other choice of the same layer dominates.

    With ``labels`` (one per choice), only a choice with the same label may dominate (tied layers
    must agree on the label, so a differently labelled choice is no substitute).
    """
    feats = np.stack([values] + costs, axis=-1)  # (L, C, K+1)
    feats = np.where(ok[..., None], feats, np.inf)
    le = (feats[:, :, None, :] <= feats[:, None, :, :]).all(-1)  # le[l, d, c]: d no worse than c
    lt = (feats[:, :, None, :] < feats[:, None, :, :]).any(-1)
    C = values.shape[1]
    lower = np.tri(C, k=-1, dtype=bool).T  # lower[d, c] = d < c
    eq = le & ~lt
    dominated = ((le & lt) | (eq & lower[None])) & ok[:, :, None]
    if labels is not None:
        dominated &= (np.asarray(labels)[:, None] == np.asarray(labels)[None, :])[None]
    return ok & ~dominated.any(axis=1)


def mckp(values, costs: dict[str, np.ndarray], budgets: dict[str, float],
         time_limit_s: float | None = None, presolve_dominance: bool = True,
         ties: list[list[int]] | None = None, labels=None,
         method: Literal["core", "milp"] = "core") -> MCKPResult:
    """Pick one choice per layer minimising the summed value under every budget.

    Parameters
    ----------
    values : array_like, shape (L, C)
        Objective contribution of each (layer, choice), e.g. sensitivity; ``inf`` = unavailable.
    costs : dict of str to array_like, each (L, C)
        Cost tables (e.g. ``energy_j``, ``latency_s``); budgets refer to them by name.
    budgets : dict of str to float
        ``name -> limit``: the chosen costs summed over layers must be ``<= limit``.
    time_limit_s : float, optional
        Stop HiGHS after this many seconds (status ``time_limit`` if not proven optimal).
    presolve_dominance : bool
        Remove dominated choices first (exact; see module docstring).
    ties, labels : optional
        Groups of layer indices whose chosen columns must carry the same ``labels[c]`` (e.g.
        layers reading one tensor must agree on its activation format). ``min_reachable``
        ignores ties (a lower bound then).
    method : {"core", "milp"}
        Exact algorithm (module docstring); both prove optimality, ``"milp"`` is the reference.

    Returns
    -------
    MCKPResult
    """
    v, c = _validate(values, costs, budgets)
    L, C = v.shape
    ok = available_mask(v, c)
    if L and not ok.any(axis=1).all():
        bad = int(np.flatnonzero(~ok.any(axis=1))[0])
        raise ConfigError(f"layer {bad} has no available choice (every value or cost is inf/nan)")
    reach = min_reachable(c, ok)
    names = list(budgets)
    ties = [list(t) for t in (ties or []) if len(t) > 1]
    lab = np.asarray(labels) if ties else None
    if ties and (lab is None or lab.shape != (C,)):
        raise ConfigError(f"ties need labels: one per choice ({C})")
    keep = undominated(v, [c[k] for k in names], ok, lab) if presolve_dominance else ok
    budgets = {k: float(b) + _RTOL * abs(float(b)) for k, b in budgets.items()}  # float sums of costs
    if any(budgets[k] < reach[k] for k in names):
        return _infeasible(L, reach, int(keep.sum()))
    greedy = np.where(ok, v, np.inf).argmin(axis=1) if L else np.zeros(0, int)
    tied_ok = all(len({lab[greedy[i]] for i in t}) == 1 for t in ties)
    if tied_ok and all(c[k][np.arange(L), greedy].sum() <= budgets[k] for k in names):
        return _result(greedy, v, c, "optimal", reach, int(keep.sum()))
    if method not in ("core", "milp"):
        raise ConfigError(f"method must be 'core' or 'milp', got {method!r}")
    if method == "core" and not ties and names:
        done = _solve_core(v, c, budgets, names, keep, reach, time_limit_s)
        if done is not None:
            return done
    return _solve_milp(v, c, budgets, names, keep, reach, time_limit_s, ties, lab)


def _normalise(v, c, names, keep):
    """Values of mean magnitude 1 and, per budget, the excess over each layer's cheapest kept
    choice divided by its largest excess (coefficients in [0, 1] whatever the unit).
    Returns (values (L, C), costs (K, L, C), per-layer minima (K, L), scales (K,))."""
    vk = np.where(keep, v, 0.0)
    mag = float(np.abs(v[keep]).mean()) if keep.any() else 0.0
    low = np.stack([np.where(keep, c[k], np.inf).min(axis=1) for k in names])
    excess = np.stack([np.where(keep, c[k] - low[i][:, None], 0.0) for i, k in enumerate(names)])
    scale = excess.reshape(len(names), -1).max(axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    return (vk / mag if mag > 0 else vk), excess / scale[:, None, None], low, scale


def _solve_core(v, c, budgets, names, keep, reach, time_limit_s) -> MCKPResult | None:
    """The core method; ``None`` when it cannot vouch for its plan (then the MILP decides)."""
    vn, cs, low, scale = _normalise(v, c, names, keep)
    b = np.array([(budgets[k] - low[i].sum()) / scale[i] for i, k in enumerate(names)])
    L = v.shape[0]
    for strict in (False, True):
        choice, status = solve_core(vn, cs, b, keep, time_limit_s, strict)
        if choice is None:
            return None
        if all(c[k][np.arange(L), choice].sum() <= budgets[k] for k in names):
            return _result(choice, v, c, status, reach, int(keep.sum()))
        # over a budget by HiGHS's feasibility tolerance: solve again with it at 1e-10 (cutting
        # the row by the excess instead could cut off an optimum with less slack than that)
    return None

def prefetch() -> None:
    """Import what the solvers here need (scipy.optimize, ~0.45 s on this project's 2-core machine)
    on a background thread, so that a solve's MILP finds it loaded: :func:`hwsim.solve.api.tables`
    calls this before measuring sensitivities, whose kernels leave the GIL free most of the time.
    Importing is thread-safe (a later import waits for this one to finish); nothing is started
    once it is loaded (a sweep calls tables() many times)."""
    if "scipy.optimize" not in sys.modules:
        threading.Thread(target=_import_scipy, name="hwsim-prefetch", daemon=True).start()


def _import_scipy() -> None:
    import scipy.optimize  # noqa: F401
    import scipy.sparse  # noqa: F401


def _tie_rows(rows, cols, ties, lab) -> list:
    """For each tied group and label: the first layer's indicator equals every other's."""
    from scipy.optimize import LinearConstraint
    from scipy.sparse import csr_matrix

    out = []
    n = rows.size
    for group in ties:
        for a in np.unique(lab):
            for other in group[1:]:
                coef = np.zeros(n)
                coef[(rows == other) & (lab[cols] == a)] = 1.0
                coef[(rows == group[0]) & (lab[cols] == a)] = -1.0
                out.append(LinearConstraint(csr_matrix(coef.reshape(1, -1)), 0.0, 0.0))
    return out


def _solve_milp(v, c, budgets, names, keep, reach, time_limit_s, ties=(), lab=None) -> MCKPResult:
    """HiGHS on the kept choices. HiGHS accepts rows violated by its feasibility tolerance (1e-7
    of the scaled row); a plan over a budget by more than ``_RTOL`` is cut off by tightening that
    row by its violation and solving again (a few times at most)."""
    from scipy.optimize import Bounds, LinearConstraint, milp  # on first use (see prefetch)
    from scipy.sparse import csr_matrix

    L = v.shape[0]
    rows, cols = np.nonzero(keep)  # variable j is (rows[j], cols[j])
    n = rows.size
    onehot = csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(L, n))
    scaled = {}
    for k in names:
        # measure each budget as the excess over the cheapest plan (per-layer minimum subtracted),
        # scaled by the largest excess so that coefficients lie in [0, 1] whatever the unit
        excess = c[k][rows, cols] - np.where(keep, c[k], np.inf).min(axis=1)[rows]
        scale = float(excess.max()) if excess.size and excess.max() > 0 else 1.0
        scaled[k] = (csr_matrix((excess / scale).reshape(1, -1)), scale)
    ties_rows = _tie_rows(rows, cols, ties, lab) if ties else []
    obj = v[rows, cols]
    # HiGHS keeps an absolute gap of 1e-6 even at mip_rel_gap 0: bring values to O(1) so that it
    # is negligible whatever their unit (MSE of 1e-9 or a task loss of 3).
    mag = float(np.abs(obj).mean())
    obj = obj / mag if mag > 0 else obj
    options = {"mip_rel_gap": 0.0, "disp": False}
    if time_limit_s is not None:
        options["time_limit"] = float(time_limit_s)
    limits = {k: budgets[k] - reach[k] for k in names}
    for _ in range(4):
        cons = [LinearConstraint(onehot, 1.0, 1.0)] + ties_rows
        cons += [LinearConstraint(scaled[k][0], -np.inf, limits[k] / scaled[k][1]) for k in names]
        res = milp(obj, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1), options=options)
        if res.x is None:
            return _infeasible(L, reach, n)
        x = res.x > 0.5
        choice = np.full(L, -1)
        choice[rows[x]] = cols[x]
        over = {k: c[k][np.arange(L), choice].sum() - budgets[k] for k in names}
        if all(o <= 0 for o in over.values()):
            break
        for k, o in over.items():
            limits[k] -= max(o, 0.0) * 2 if o > 0 else 0.0
    status: Status = "optimal" if res.status == 0 else "time_limit"
    return _result(choice, v, c, status, reach, n)


def _infeasible(L: int, reach: dict, kept: int) -> MCKPResult:
    return MCKPResult(np.full(L, -1), float("inf"), "infeasible",
                      {k: float("nan") for k in reach}, reach, kept)


def _result(choice, v, c, status, reach, kept) -> MCKPResult:
    idx = np.arange(v.shape[0])
    used = {k: float(a[idx, choice].sum()) for k, a in c.items()}
    return MCKPResult(choice.astype(int), float(v[idx, choice].sum()), status, used, reach, kept)
