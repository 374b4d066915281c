"""mckp against brute force: optimal value, feasibility, infeasibility and dominance removal."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import ConfigError
from hwsim.solve.knapsack import mckp, undominated


def brute_force(values, costs, budgets):
    """Enumerate every plan; return (best objective, plan) or (inf, None)."""
    L, C = values.shape
    best, plan = np.inf, None
    for combo in itertools.product(range(C), repeat=L):
        idx = (np.arange(L), np.array(combo))
        if any(costs[k][idx].sum() > b for k, b in budgets.items()):
            continue
        obj = values[idx].sum()
        if obj < best:
            best, plan = obj, combo
    return best, plan


@st.composite
def instances(draw):
    L = draw(st.integers(1, 5))
    C = draw(st.integers(1, 4))
    K = draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 50, (L, C)).astype(float)
    costs = {f"b{k}": rng.integers(0, 20, (L, C)).astype(float) for k in range(K)}
    frac = draw(st.floats(0.0, 1.0))
    budgets = {k: float(np.round(a.min(1).sum() + frac * (a.max(1).sum() - a.min(1).sum()))) - draw(st.integers(0, 2))
               for k, a in costs.items()}
    return values, costs, budgets


@settings(max_examples=300, deadline=None)
@given(instances())
def test_mckp_matches_brute_force(inst):
    values, costs, budgets = inst
    best, _ = brute_force(values, costs, budgets)
    r = mckp(values, costs, budgets)
    if np.isinf(best):
        assert r.status == "infeasible"
        assert (r.choice == -1).all()
        return
    assert r.status == "optimal"
    assert r.objective == pytest.approx(best, abs=1e-9)
    idx = (np.arange(values.shape[0]), r.choice)
    assert values[idx].sum() == pytest.approx(r.objective)
    for k, b in budgets.items():
        assert costs[k][idx].sum() <= b + 1e-9
        assert r.used[k] == pytest.approx(costs[k][idx].sum())


@settings(max_examples=100, deadline=None)
@given(instances())
def test_mckp_without_dominance_removal_agrees(inst):
    values, costs, budgets = inst
    a, b = mckp(values, costs, budgets), mckp(values, costs, budgets, presolve_dominance=False)
    assert a.status == b.status
    if a.status == "optimal":
        assert a.objective == pytest.approx(b.objective, abs=1e-9)


def test_mckp_real_valued_tiny_objective_is_still_exact():
    """Values of 1e-9 (an MSE) must not fall under HiGHS's absolute gap."""
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 1e-9, (6, 4))
    costs = {"e": rng.uniform(0, 1, (6, 4)), "s": rng.uniform(0, 1, (6, 4))}
    budgets = {"e": 2.0, "s": 2.5}
    best, _ = brute_force(values, costs, budgets)
    r = mckp(values, costs, budgets)
    assert r.objective == pytest.approx(best, rel=1e-9)


def test_infeasible_reports_min_reachable_per_budget():
    values = np.zeros((3, 2))
    costs = {"energy_j": np.array([[1.0, 2.0], [3.0, 1.5], [0.5, 0.7]]), "size_bytes": np.ones((3, 2))}
    r = mckp(values, costs, {"energy_j": 2.9, "size_bytes": 10})
    assert r.status == "infeasible"
    assert r.min_reachable == {"energy_j": pytest.approx(3.0), "size_bytes": pytest.approx(3.0)}
    assert r.objective == np.inf


def test_jointly_infeasible_budgets():
    # each budget reachable alone (min 1 each), but not both at once
    values = np.zeros((1, 2))
    costs = {"a": np.array([[1.0, 5.0]]), "b": np.array([[5.0, 1.0]])}
    r = mckp(values, costs, {"a": 2, "b": 2})
    assert r.status == "infeasible"
    assert r.min_reachable == {"a": 1.0, "b": 1.0}


def test_unavailable_choices_are_never_picked():
    values = np.array([[0.0, 5.0], [np.inf, 1.0]])
    costs = {"e": np.array([[1.0, 0.0], [0.0, np.nan]])}
    with pytest.raises(ConfigError, match="no available choice"):
        mckp(values, costs, {"e": 10})
    costs = {"e": np.array([[1.0, 0.0], [0.0, 2.0]])}
    r = mckp(values, costs, {"e": 2.5})
    assert list(r.choice) == [1, 1]


def test_dominated_choices_removed_and_ties_keep_one():
    values = np.array([[1.0, 2.0, 1.0, 0.5]])
    costs = [np.array([[1.0, 1.0, 1.0, 3.0]])]
    keep = undominated(values, costs, np.ones((1, 4), bool))
    assert keep.tolist() == [[True, False, False, True]]


def test_bad_shapes_and_unknown_budget_are_user_errors():
    with pytest.raises(ConfigError, match="shape"):
        mckp(np.zeros((2, 2)), {"e": np.zeros((2, 3))}, {})
    with pytest.raises(ConfigError, match="no cost table"):
        mckp(np.zeros((2, 2)), {"e": np.zeros((2, 2))}, {"latency_s": 1.0})


@settings(max_examples=100, deadline=None)
@given(instances(), st.sampled_from([1e-9, 1e6]))
def test_mckp_is_unit_free(inst, unit):
    """Joules of 1e-9 or bytes of 1e6: the same plan value (budget rows are scaled internally)."""
    values, costs, budgets = inst
    best, _ = brute_force(values, costs, budgets)
    r = mckp(values, {k: a * unit for k, a in costs.items()}, {k: b * unit for k, b in budgets.items()})
    if np.isinf(best):
        assert r.status == "infeasible"
    else:
        assert r.objective == pytest.approx(best, abs=1e-9)
        for k, b in budgets.items():
            assert r.used[k] <= b * unit * (1 + 1e-9)


def test_limit_exactly_at_min_reachable_with_tiny_units():
    values = np.array([[0.0, 1.0], [0.0, 1.0], [5.0, 0.0]])
    costs = {"e": np.array([[3e-8, 1e-8], [2e-8, 1e-8], [1e-8, 4e-8]])}
    r = mckp(values, costs, {"e": 3e-8})
    assert r.status == "optimal" and list(r.choice) == [1, 1, 0] and r.objective == 7.0


@settings(max_examples=150, deadline=None)
@given(instances(), st.integers(0, 2**31))
def test_mckp_with_ties_matches_brute_force(inst, seed):
    values, costs, budgets = inst
    L, C = values.shape
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, C)
    ties = [list(range(min(L, 3)))]

    def tied(plan):
        return len({labels[plan[i]] for i in ties[0]}) == 1

    best = np.inf
    for combo in itertools.product(range(C), repeat=L):
        idx = (np.arange(L), np.array(combo))
        if tied(combo) and all(costs[k][idx].sum() <= b for k, b in budgets.items()):
            best = min(best, values[idx].sum())
    r = mckp(values, costs, budgets, ties=ties, labels=labels)
    if np.isinf(best):
        assert r.status == "infeasible"
    else:
        assert r.objective == pytest.approx(best, abs=1e-9) and tied(r.choice)


@settings(max_examples=100, deadline=None)
@given(instances(), st.floats(0.0, 5.0))
def test_more_budget_never_hurts(inst, extra):
    """Raising a limit keeps every old plan feasible, so the optimum cannot get worse."""
    values, costs, budgets = inst
    a = mckp(values, costs, budgets)
    b = mckp(values, costs, {k: v + extra for k, v in budgets.items()})
    if a.status == "optimal":
        assert b.status == "optimal" and b.objective <= a.objective + 1e-9
