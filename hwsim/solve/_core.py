"""Exact MCKP on a Lagrangian reduced-cost core around the LP relaxation, solved by HiGHS (highspy).

Private helper of :mod:`hwsim.solve.knapsack`. The problem arrives normalised: ``v`` (L, C) values
of mean magnitude about 1, ``cs`` (K, L, C) budget costs measured as the excess over each layer's
cheapest choice and scaled into [0, 1], ``b`` (K,) limits in the same units, ``keep`` (L, C) the
choices that may be picked.

Why it is exact. Let ``lam >= 0`` be the LP duals of the budget rows (any ``lam >= 0`` works) and
``rc[l, c] = v + lam . cs - min over the layer``, the Lagrangian reduced cost (>= 0). For every
plan ``x`` that meets the budgets, ``v(x) >= LB + sum_l rc[l, x_l]`` with
``LB = sum_l min_c(v + lam . cs) - lam . b``. So a plan better than an incumbent of value ``ub``
uses only choices with ``rc < ub - LB``. ``ub`` comes from a heuristic plan (LP rounding, repair,
greedy moves); HiGHS then solves the *core* ``rc <= ub - LB`` to optimality, started from that plan.
A small first core (to improve the start) before the exact one was measured: no faster.
"""

from __future__ import annotations

import itertools

import numpy as np

try:
    import highspy
except ImportError:  # the declared dependency is missing: mckp falls back to scipy's milp
    highspy = None

#: HiGHS options: exact (gaps 0 / 1e-9 on values of mean 1). Primal heuristics other than HiGHS's
#: root reduced-cost one are off: with a start given, RINS/RENS sub-MIPs were most of its time,
#: and with the reduced-cost one off too a poor start made it 10x slower (benchmarks/RESULTS.md)
_OPTIONS = {
    "output_flag": False, "mip_rel_gap": 0.0, "mip_abs_gap": 1e-9,
    "mip_heuristic_run_feasibility_jump": False, "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
}

#: at most this many roundings of the LP's fractional layers are tried for the start
_MAX_ROUNDINGS = 64
_STRICT = {"mip_feasibility_tolerance": 1e-10, "primal_feasibility_tolerance": 1e-10}


def lp_relaxation(v, cs, b, keep):
    """LP relaxation. Returns (x (L, C) or None when it fails, lam (K,) >= 0)."""
    from scipy.optimize import linprog  # on first use (hwsim.solve.knapsack.prefetch)
    from scipy.sparse import csr_matrix

    L = v.shape[0]
    rows, cols = np.nonzero(keep)
    onehot = csr_matrix((np.ones(rows.size), (rows, np.arange(rows.size))), shape=(L, rows.size))
    r = linprog(v[rows, cols], A_ub=cs[:, rows, cols], b_ub=b, A_eq=onehot, b_eq=np.ones(L),
                bounds=(0, 1), method="highs")
    if r.status != 0:
        return None, np.zeros(len(b))
    x = np.zeros(keep.shape)
    x[rows, cols] = r.x
    return x, np.maximum(-np.asarray(r.ineqlin.marginals), 0.0)


def reduced_costs(v, cs, b, keep, lam):
    """Lagrangian bound ``LB`` and reduced costs ``rc`` (L, C) (``inf`` off ``keep``)."""
    red = np.where(keep, v + np.tensordot(lam, cs, 1), np.inf)
    low = red.min(axis=1)
    return float(low.sum() - lam @ b), red - low[:, None]


def incumbent(v, cs, b, keep, x):
    """A plan meeting the budgets: the LP solution with its (at most K) fractional layers set to
    each combination of their support choices, each repaired until the budgets hold and improved
    by greedy single-layer moves; the best of these. ``None``-free: the cheapest plan if all fail."""
    vk = np.where(keep, v, np.inf)
    total = np.where(keep, cs.sum(0), np.inf)
    base = np.where(keep, x, -1.0).argmax(axis=1)
    frac = np.flatnonzero(x.max(axis=1) < 1 - 1e-9)
    supports = [np.flatnonzero(x[layer] > 1e-9) for layer in frac]
    best, best_value = total.argmin(axis=1), np.inf
    for combo in itertools.islice(itertools.product(*supports), _MAX_ROUNDINGS):
        choice = base.copy()
        choice[frac] = combo
        choice = _improve(vk, cs, b, _repair(vk, cs, b, total, choice))
        value = vk[np.arange(v.shape[0]), choice].sum()
        if value < best_value and (cs[:, np.arange(v.shape[0]), choice].sum(1) <= b).all():
            best, best_value = choice, value
    return best


def _improve(vk, cs, b, choice):
    """Greedy single-layer moves, largest value decrease first, while every budget holds."""
    idx = np.arange(vk.shape[0])
    for _ in range(4 * vk.shape[0]):
        slack = b - cs[:, idx, choice].sum(1)
        dc = cs - cs[:, idx, choice][:, :, None]
        dv = vk - vk[idx, choice][:, None]
        gain = np.where((dc <= slack[:, None, None]).all(0) & (dv < 0), dv, 0.0)
        if not gain.any():
            break
        layer, c = np.unravel_index(gain.argmin(), gain.shape)
        choice[layer] = c
    return choice


def _repair(vk, cs, b, total, choice):
    """Move layers, least value change per unit of budget excess removed, until every budget
    holds (the cheapest plan if that gets stuck)."""
    idx = np.arange(vk.shape[0])
    for _ in range(4 * vk.shape[0]):
        over = np.maximum(cs[:, idx, choice].sum(1) - b, 0.0)
        if not over.any():
            return choice
        after = np.maximum(over[:, None, None] + cs - cs[:, idx, choice][:, :, None], 0.0).sum(0)
        removed = over.sum() - after
        dv = vk - vk[idx, choice][:, None]
        ratio = np.where(removed > 1e-12, dv / np.maximum(removed, 1e-12), np.inf)
        layer, c = np.unravel_index(ratio.argmin(), ratio.shape)
        if not np.isfinite(ratio[layer, c]):
            break
        choice[layer] = c
    return total.argmin(axis=1)


def solve_core(v, cs, b, keep, time_limit_s=None, strict=False):
    """Exact optimum over ``keep`` (see module docstring).

    Returns ``(choice, status)``: status "optimal" or "time_limit", or ``(None, "fallback")``
    when the LP or the incumbent fails and the caller should use the plain MILP. ``strict``:
    HiGHS's feasibility tolerances at 1e-10 instead of their defaults (1e-6 / 1e-7).
    """
    x, lam = lp_relaxation(v, cs, b, keep) if highspy is not None else (None, None)
    if x is None:
        return None, "fallback"
    lb, rc = reduced_costs(v, cs, b, keep, lam)
    start = incumbent(v, cs, b, keep, x)
    if (cs[:, np.arange(v.shape[0]), start].sum(1) > b).any():
        return None, "fallback"
    gap = _value(v, start) - lb
    core = keep & (rc <= gap + 1e-9 * max(1.0, abs(lb)))  # every plan better than start is in it
    core[np.arange(v.shape[0]), start] = True
    choice, status = _highs(v, cs, b, core, start, time_limit_s, _STRICT if strict else {})
    if choice is None or _value(v, choice) > _value(v, start):
        return start, status
    return choice, status


def _value(v, choice) -> float:
    return float(v[np.arange(v.shape[0]), choice].sum())


def _highs(v, cs, b, core, start, time_limit_s, extra):
    """HiGHS on the ``core`` choices, started from the plan ``start``."""
    from scipy.sparse import csc_matrix, csr_matrix, vstack  # on first use (hwsim.solve.knapsack.prefetch)

    L = v.shape[0]
    rows, cols = np.nonzero(core)
    n = rows.size
    a = vstack([csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(L, n)),
                csr_matrix(cs[:, rows, cols])])
    a = csc_matrix(a)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, L + len(b)
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = v[rows, cols], np.zeros(n), np.ones(n)
    lp.row_lower_ = np.r_[np.ones(L), np.full(len(b), -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[np.ones(L), b]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h = _silent_highs()
    for key, val in {**_OPTIONS, **extra}.items():
        h.setOptionValue(key, val)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    h.passModel(lp)
    sol = highspy.HighsSolution()
    sol.col_value = list((cols == start[rows]).astype(float))
    sol.value_valid = True
    h.setSolution(sol)
    h.run()
    status = h.getModelStatus()
    if h.getInfo().primal_solution_status != 2:  # no feasible solution
        return None, "time_limit"
    picked = np.asarray(h.getSolution().col_value) > 0.5
    choice = np.full(L, -1)
    choice[rows[picked]] = cols[picked]
    if (choice < 0).any():
        return None, "time_limit"
    return choice, "optimal" if status == highspy.HighsModelStatus.kOptimal else "time_limit"


def _silent_highs():
    """A HiGHS instance that never writes to the console, through HiGHS's own ``output_flag``.

    The option must be off before any other call: highspy's ``Highs`` wrapper enables callbacks
    in its constructor, which logs the version banner to stdout first (it would corrupt
    ``--json``). The plain binding it wraps (``highspy._Highs``; no callbacks are used here),
    silenced first, writes nothing.
    """
    h = highspy._Highs()
    h.setOptionValue("output_flag", False)
    return h
