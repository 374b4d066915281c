"""Whole plans simulated: solve reports the plan's measured error and picks by it (hwsim.solve.verify)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from solve_paths import CALIB, CHOICES, DIGITS

from hwsim import sim
from hwsim.cli import main
from hwsim.graph.annotate import apply_config
from hwsim.graph.zoo import load_model
from hwsim.solve import pareto, plan_from, tables
from hwsim.solve.data import synthetic

#: a BERT whose synthetic attention flattens with depth: softmax(int16) @ V(int16) overflows
#: int32 accumulators in its last layers (as MiniLM-L6 at sequence 128 does, hwsim.solve.verify)
FLAT_BERT = {"layers": 4, "hidden": 32, "heads": 1, "intermediate": 64, "vocab": 100, "sequence": 64,
             "pooler": False}


def _simulated_mse(config, scope: str) -> float:
    """Output MSE of the whole model under ``config``, simulated on its own (fresh float reference)."""
    g = load_model("minilm-l6", {**FLAT_BERT, "batch": 1})
    r = sim.run(apply_config(g, config, target_scope=scope), synthetic(g, 1, 0).inputs, metrics=False)
    sq = sum(float(np.sum((np.asarray(r.output_values[n], np.float64) - r.reference_outputs[n]) ** 2))
             for n in r.reference_outputs)
    return sq / sum(v.size for v in r.reference_outputs.values())


@pytest.fixture(scope="module")
def flat_bert(cache_dir):
    return tables("minilm-l6", "int8-npu", "w=int8;a=int16,int8", "output_mse", None, 1, cache_dir, FLAT_BERT)


def test_more_precise_shared_tensors_that_simulate_worse_are_not_chosen(flat_bert):
    """Both plans meet the budget; the summed sensitivities cannot see the tensors no layer chooses.
    At int16 the attention products overflow their int32 accumulators: the solver must notice by
    simulating, and return the int8 plan, whose measured error it reports."""
    scope = flat_bert.target.activation_scope
    by_sum = plan_from(flat_bert, {"energy_j": 1.0}, simulate_plans=False)
    plan = plan_from(flat_bert, {"energy_j": 1.0})
    assert by_sum.config().defaults.activations == "int16" and by_sum.measured is None
    assert plan.status == "optimal" and plan.config().defaults.activations == "int8"
    assert plan.budgets["energy_j"].value <= 1.0
    mine, other = _simulated_mse(plan.config(), scope), _simulated_mse(by_sum.config(), scope)
    assert plan.measured == pytest.approx(mine, rel=1e-9)
    assert other > 100 * mine
    assert plan.simulate_s > 0
    assert any("simulated best" in n and "the more precise measured worse" in n for n in plan.notes)
    assert any(n.startswith("whole plan simulated on 1 samples") for n in plan.notes)


def test_a_single_candidate_is_simulated_and_its_error_reported(digits_tables):
    """On the digits CNN with one activation format there is one candidate: it is simulated and kept."""
    plan = plan_from(digits_tables, {"energy_j": 7e-8})
    assert plan.status == "optimal" and plan.measured is not None and plan.measured > 0
    g = load_model(DIGITS, {"batch": 16})
    with np.load(CALIB) as z:
        r = sim.run(apply_config(g, plan.config(), target_scope=digits_tables.target.activation_scope),
                    {"image": z["image"][:16]}, metrics=False)
    mse = float(np.mean((r.output_values["logits"].astype(np.float64) - r.reference_outputs["logits"]) ** 2))
    assert plan.measured == pytest.approx(mse, rel=1e-9)


def test_proxy_plans_are_not_simulated():
    tb = tables(DIGITS, "int8-npu", "w=int8,int4;a=int8,int16", "proxy")
    plan = plan_from(tb, {"energy_j": 1.0})
    assert tb.meter is None and plan.measured is None and plan.simulate_s == 0
    assert plan.config().defaults.activations == "int16"


def test_pareto_points_carry_their_measured_error(flat_bert):
    plans = pareto(flat_bert, "energy_j", 3)
    assert plans and all(p.measured is not None for p in plans)
    assert all(p.config().defaults.activations == "int8" for p in plans)


def _args(cache_dir, *extra):
    return ["solve", DIGITS, "--target", "rs-engine", "--choices", CHOICES, "--calib", CALIB, "--samples", "16",
            "--cache-dir", str(cache_dir), "--quiet", "--budget", "energy_j<=7e-8", *extra]


def test_cli_reports_the_measured_error_and_its_time(cache_dir, capsys):
    assert main(_args(cache_dir, "--json", "--verbose")) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["measured"] > 0
    assert "simulate plans" in cap.err
    assert main(_args(cache_dir, "--json", "--no-simulate-plans")) == 0
    assert json.loads(capsys.readouterr().out)["measured"] is None
    assert main(_args(cache_dir)) == 0
    assert f"(whole plan simulated: {out['measured']:.6g})" in capsys.readouterr().out


def test_a_front_point_keeps_a_tighter_plan_that_simulates_better(digits_tables):
    """A table that lies about one (layer, choice) -- fc1 at int2 / 75% pruned: no error, the dearest
    choice -- makes the loose points pick it; simulated, it is far worse than the tight points'
    plans, which meet the loose budgets too, so the front keeps the better one and says why."""
    import dataclasses

    sens, costs = digits_tables.sensitivity, digits_tables.costs
    i = sens.layers.index("fc1")
    j = [c.label for c in sens.choices].index("w=int2,a=int8/75%")
    values = sens.values.copy()
    values[i, j] = 0.0
    energy = costs.tables["energy_j"].copy()
    energy[i, j] = 2 * np.nanmax(np.where(np.isfinite(energy[i]), energy[i], np.nan))
    fake = dataclasses.replace(digits_tables, sensitivity=dataclasses.replace(sens, values=values),
                               costs=dataclasses.replace(costs, tables={**costs.tables, "energy_j": energy}))
    plans = pareto(fake, "energy_j", 4)
    loosest = plan_from(fake, {"energy_j": plans[-1].budgets["energy_j"].limit})
    assert loosest.layers[i].weight_format == "int2"
    assert loosest.measured > min(p.measured for p in plans[:-1])  # the lie, measured
    measured = [p.measured for p in plans]
    assert all(b <= a for a, b in zip(measured, measured[1:]))
    kept = [p for p in plans if any("so it is kept" in n for n in p.notes)]
    assert kept and all(p.layers[i].weight_format != "int2" for p in kept)
    for p in plans:
        assert all(b.value <= b.limit * (1 + 1e-9) for b in p.budgets.values())


def test_cli_front_shows_the_simulated_error_and_the_other_tensors(cache_dir, capsys):
    args = ["solve", DIGITS, "--target", "rs-engine", "--choices", CHOICES, "--calib", CALIB, "--samples", "16",
            "--cache-dir", str(cache_dir), "--quiet", "--pareto", "energy_j", "--points", "3"]
    assert main(args) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "simulated output_mse" in head and "other tensors" in head
    assert main(args + ["--no-simulate-plans", "--json"]) == 0
    assert all(p["measured"] is None for p in json.loads(capsys.readouterr().out)["points"])


def test_plans_too_large_to_simulate_are_picked_by_the_table_and_say_so(digits_tables):
    import dataclasses

    meter = dataclasses.replace(digits_tables.meter, memory_limit_bytes=1, _errors={})  # nothing memoised
    plan = plan_from(dataclasses.replace(digits_tables, meter=meter), {"energy_j": 7e-8})
    assert plan.status == "optimal" and plan.measured is None
    assert any("the plans were not simulated: simulating" in n and "memory" in n for n in plan.notes)
    assert plan.layers == plan_from(digits_tables, {"energy_j": 7e-8}, simulate_plans=False).layers


def test_plans_simulated_at_once_measure_what_each_measures_alone(flat_bert):
    """PlanMeter.errors runs the candidate plans on one thread per CPU: the values are those of
    each plan simulated by itself, and one by one (when their memory does not fit together)."""
    import dataclasses

    from hwsim.sim.runner import check_memory
    from hwsim.solve.verify import apply_config

    scope = flat_bert.target.activation_scope
    by_sum = plan_from(flat_bert, {"energy_j": 1.0}, simulate_plans=False)
    plan = plan_from(flat_bert, {"energy_j": 1.0})
    configs = [by_sum.config(), plan.config()]
    fresh = dataclasses.replace(flat_bert.meter, _errors={})
    together = fresh.errors(configs, scope)
    assert together == pytest.approx([_simulated_mse(c, scope) for c in configs], rel=1e-9)
    assert together == [dataclasses.replace(flat_bert.meter, _errors={}).error(c, scope) for c in configs]
    one = max(check_memory(apply_config(fresh.graph, c, target_scope=scope), 0).total_bytes for c in configs)
    apart = dataclasses.replace(flat_bert.meter, _errors={}, memory_limit_bytes=one + 1)  # each fits, not both
    assert apart.errors(configs, scope) == together
    assert together[1] == plan.measured


def test_plans_run_on_their_own_threads_with_one_numba_thread_each():
    import threading

    import numba

    from hwsim.sim.refblas import cpu_count
    from hwsim.solve.verify import _simulate_all

    seen = []
    got = _simulate_all(lambda g: seen.append((threading.current_thread().name, numba.get_num_threads())) or g,
                        [1.0, 2.0, 3.0], together=True)
    assert got == [1.0, 2.0, 3.0]
    if cpu_count() > 1:
        assert all(name.startswith("hwsim-plans") and n == 1 for name, n in seen)
    seen.clear()
    assert _simulate_all(lambda g: seen.append(threading.current_thread().name) or g, [1.0, 2.0], False) == [1.0, 2.0]
    assert seen == [threading.current_thread().name] * 2
