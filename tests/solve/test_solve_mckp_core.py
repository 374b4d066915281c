"""The core method of mckp (LP, Lagrangian reduced-cost core, HiGHS via highspy) against brute force,
against the reference MILP, and the bound it rests on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hwsim.errors import ConfigError
from hwsim.solve import _core
from hwsim.solve.knapsack import mckp


def brute_force(values, costs, budgets, rel_tol=0.0):
    """Best objective over every plan meeting the budgets (inf if none), within ``rel_tol`` of each."""
    L, C = values.shape
    best = np.inf
    for combo in itertools.product(range(C), repeat=L):
        idx = (np.arange(L), np.array(combo))
        if all(costs[k][idx].sum() <= b * (1 + rel_tol) for k, b in budgets.items()):
            best = min(best, values[idx].sum())
    return best


@st.composite
def instances(draw, max_layers=5, max_choices=4, real=False):
    L = draw(st.integers(1, max_layers))
    C = draw(st.integers(1, max_choices))
    K = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if real:
        values = rng.lognormal(0, 1.5, (L, C)) * 1e-6
        costs = {f"b{k}": rng.lognormal(0, 1, (L, C)) for k in range(K)}
    else:
        values = rng.integers(0, 50, (L, C)).astype(float)
        costs = {f"b{k}": rng.integers(0, 20, (L, C)).astype(float) for k in range(K)}
    frac = draw(st.floats(0.0, 1.0))
    budgets = {k: float(a.min(1).sum() + frac * (a.max(1).sum() - a.min(1).sum())) for k, a in costs.items()}
    return values, costs, budgets


@settings(max_examples=300, deadline=None)
@given(st.one_of(instances(), instances(real=True)))
@example((np.array([[1.0, 2.0]]), {"b0": np.array([[0.3, 0.7]])}, {"b0": float(np.nextafter(0.3, 0.0))}))  # 1 ulp under
def test_core_matches_brute_force(inst):
    values, costs, budgets = inst
    best = brute_force(values, costs, budgets)
    r = mckp(values, costs, budgets, method="core")
    # a plan over a budget by rounding (1 ulp, within mckp's 1e-9 relative budget tolerance, knapsack._RTOL)
    # may also win, and makes an instance feasible that is infeasible by a hair (a budget drawn at
    # min + 1.0 * (max - min) can round one ulp under max)
    loose = brute_force(values, costs, budgets, rel_tol=1e-9)
    if np.isinf(loose):
        assert r.status == "infeasible"
        return
    assert r.status == "optimal"
    assert r.objective in (pytest.approx(best, rel=1e-9, abs=1e-12), pytest.approx(loose, rel=1e-9, abs=1e-12))
    for k, b in budgets.items():
        assert r.used[k] <= b * (1 + 1e-9)


@settings(max_examples=25, deadline=None)
@given(instances(max_layers=40, max_choices=12, real=True))
def test_core_agrees_with_reference_milp_on_larger_instances(inst):
    values, costs, budgets = inst
    a, b = mckp(values, costs, budgets, method="core"), mckp(values, costs, budgets, method="milp")
    assert a.status == b.status
    if a.status == "optimal":
        assert a.objective == pytest.approx(b.objective, rel=1e-9)


def _normalised(values, costs, budgets):
    cs = np.stack([costs[k] for k in budgets])
    return values, cs, np.array(list(budgets.values())), np.ones(values.shape, bool)


@settings(max_examples=100, deadline=None)
@given(instances(max_layers=4, max_choices=4, real=True), st.lists(st.floats(0, 10), min_size=3, max_size=3))
def test_lagrangian_bound_holds_for_every_feasible_plan(inst, lam):
    """v(x) >= LB + sum of reduced costs of x, for any lam >= 0: the core cannot miss the optimum."""
    v, cs, b, keep = _normalised(*inst)
    lam = np.array(lam[: len(b)])
    lb, rc = _core.reduced_costs(v, cs, b, keep, lam)
    assert (rc >= 0).all()
    L, C = v.shape
    for combo in itertools.product(range(C), repeat=L):
        idx = (np.arange(L), np.array(combo))
        if (cs[(slice(None),) + idx].sum(1) <= b).all():
            assert v[idx].sum() >= lb + rc[idx].sum() - 1e-9 * (1 + abs(lb))


@settings(max_examples=100, deadline=None)
@given(instances(max_layers=5, max_choices=4, real=True))
def test_incumbent_meets_budgets_or_core_falls_back(inst):
    """The heuristic start is only ever used when it meets every budget; and whenever any plan
    leaves room (the cheapest plan by summed cost fits), it finds one."""
    v, cs, b, keep = _normalised(*inst)
    x, _ = _core.lp_relaxation(v, cs, b, keep)
    choice, status = _core.solve_core(v, cs, b, keep)
    if x is None:
        assert choice is None and status == "fallback"
        return
    start = _core.incumbent(v, cs, b, keep, x)
    fits = (cs[:, np.arange(v.shape[0]), start].sum(1) <= b).all()
    cheapest = cs.sum(0).argmin(axis=1)
    if (cs[:, np.arange(v.shape[0]), cheapest].sum(1) <= b).all():
        assert fits
    if not fits:
        assert choice is None and status == "fallback"


def test_core_path_is_taken_and_exact_on_a_benchmark_shaped_instance():
    rng = np.random.default_rng(7)
    values = rng.lognormal(0, 1, (60, 10))
    costs = {"e": rng.lognormal(0, 1, (60, 10)), "s": rng.lognormal(0, 1, (60, 10))}
    budgets = {k: a.min(1).sum() + 0.3 * (a.max(1).sum() - a.min(1).sum()) for k, a in costs.items()}
    v, cs, b, keep = _normalised(values, costs, budgets)
    choice, status = _core.solve_core(v, cs, b, keep)
    assert status == "optimal" and choice is not None
    ref = mckp(values, costs, budgets, method="milp")
    assert values[np.arange(60), choice].sum() == pytest.approx(ref.objective, rel=1e-9)


def test_unknown_method_is_a_user_error():
    values = np.array([[0.0, 1.0]])
    with pytest.raises(ConfigError, match="method"):
        mckp(values, {"e": np.array([[2.0, 1.0]])}, {"e": 1.5}, method="dp")


def test_core_method_prints_nothing_on_stdout():
    """HiGHS's banner and diagnostics would corrupt ``hwsim solve --json``: a fresh process stays quiet."""
    import subprocess
    import sys

    code = ("import numpy as np; from hwsim.solve import mckp; rng = np.random.default_rng(0); "
            "v = rng.lognormal(0, 1, (40, 6)); c = {'e': rng.lognormal(0, 1, (40, 6))}; "
            "r = mckp(v, c, {'e': c['e'].min(1).sum() * 1.3}); print('status', r.status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "status optimal\n"


def test_time_limit_returns_a_plan_within_budget():
    """With no time to prove optimality, the plan (the start at worst) still meets every budget."""
    rng = np.random.default_rng(11)
    values = rng.lognormal(0, 1.5, (150, 12))
    costs = {k: rng.lognormal(0, 1, (150, 12)) for k in ("e", "l", "s")}
    budgets = {k: a.min(1).sum() + 0.2 * (a.max(1).sum() - a.min(1).sum()) for k, a in costs.items()}
    r = mckp(values, costs, budgets, time_limit_s=1e-3)
    assert r.status in ("optimal", "time_limit")
    assert all(r.used[k] <= b * (1 + 1e-9) for k, b in budgets.items())
    if r.status == "optimal":
        assert r.objective == pytest.approx(mckp(values, costs, budgets, method="milp").objective, rel=1e-9)
