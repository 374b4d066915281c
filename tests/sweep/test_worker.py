"""Rows of single points, computed in-process (the Dask task body), including solve-based co-design."""

import pytest

from hwsim.cost import estimate
from hwsim.sweep import parse_spec
from hwsim.sweep.run import make_job
from hwsim.sweep.space import Point, build_target, plan
from hwsim.sweep.worker import run_batch

SPEC = {
    "models": ["resnet18"],
    "targets": [{"base": "int8-npu", "vary": {"compute.rows": [16, 64], "compute.cols": [64]}}],
    "quantization": [
        {"weights": "int8", "activations": "int8"},
        {"solve": {"budgets": {"latency_s": 2.0e-3, "area_mm2": 9.3}, "choices": "w=int8,int4;a=int8"}},
        {"solve": {"budgets": {"latency_s": 4.0e-3}, "choices": "w=int8,int4;a=int8"}},
    ],
    "objectives": ["latency_s", "energy_j", "accuracy_proxy"],
    "accuracy": {"metric": "proxy"},
}


@pytest.fixture(scope="module")
def rows():
    space = plan(parse_spec(SPEC, "spec"))
    job = make_job(space)
    return space, job, {(dict(p.params)["compute.rows"], p.quant_idx): r
                        for p, r in zip(space.points, run_batch(job, space.points))}


def test_uniform_row_matches_estimate(rows):
    space, _, by = rows
    r = by[(64, 0)]
    rep = estimate("resnet18", build_target(space.bases[0], (("compute.rows", 64), ("compute.cols", 64))), "int8", "int8")
    assert r["status"] == "ok" and r["latency_s"] == rep.total.latency_s and r["energy_j"] == rep.total.energy_j
    assert r["area_mm2"] == rep.area.area_mm2 and r["weight_bytes"] == rep.total.weight_bytes
    mix = [r[k] for k in r if k.startswith("bound_")]
    assert sum(mix) == pytest.approx(1.0) and all(0 <= m <= 1 for m in mix)
    assert r["accuracy_proxy"] > 0


def test_solve_rows_infeasible_with_their_minimum_or_best_plan(rows):
    _, _, by = rows
    area = by[(64, 1)]
    assert area["status"] == "infeasible" and area["min_area_mm2"] == area["area_mm2"] > 9.3
    slow = by[(16, 1)]
    assert slow["status"] == "infeasible" and slow["min_latency_s"] > 2.0e-3 and "latency_s >=" in slow["message"]
    ok = by[(64, 2)]
    assert ok["status"] == "ok" and ok["latency_s"] <= 4.0e-3
    assert ok["accuracy_proxy"] <= by[(64, 0)]["accuracy_proxy"] * 1.5  # mixes int4 in only where it must


def test_sensitivities_measured_once_in_the_client(rows):
    _, job, _ = rows
    assert set(job.sensitivity) == {"resnet18"}  # one table per model, shipped with the job
    cols = {(c.weight_format, c.activation_format) for c in job.sensitivity["resnet18"].choices}
    assert cols == {("int8", "int8"), ("int4", "int8")}


def test_a_point_that_raises_is_recorded_and_the_batch_goes_on(rows):
    space, job, _ = rows
    good = space.points[0]
    bad = Point(99, "bad", "resnet18", 0, "int8-npu", (("compute.rows", -4),), 0, good.quant)
    out = run_batch(job, [bad, good])
    assert out[0]["status"] == "error" and "compute.rows" in out[0]["message"]
    assert out[1]["status"] == "ok"
