"""SPEC validation and expansion: everything refused before any work, naming the field."""

import pytest
import yaml

from hwsim.errors import ConfigError
from hwsim.sweep.space import hardware_points, plan
from hwsim.sweep.spec import parse_spec, quantity

ISSUE_SPEC = """
models: [resnet18]
targets:
  - base: int8-npu
    vary: {compute.rows: [16, 32, 64], compute.cols: [16, 32, 64]}
quantization:
  - {weights: int8, activations: int8}
  - {weights: int4, activations: int8}
sampling: {method: grid}
objectives: [latency_s, energy_j, area_mm2]
"""


def _spec(**over):
    raw = yaml.safe_load(ISSUE_SPEC)
    raw.update(over)
    return raw


def _plan(raw):
    return plan(parse_spec(raw, "spec.yaml"))


def test_the_issue_spec_as_written():
    space = _plan(yaml.safe_load(ISSUE_SPEC))
    assert len(space.points) == 18
    assert space.param_types == {"compute.rows": "int64", "compute.cols": "int64"}
    assert len({p.point_id for p in space.points}) == 18


@pytest.mark.parametrize("raw, match", [
    (_spec(sampling={"method": "grid", "seeds": 1}), r"sampling\.seeds: unknown field"),
    (_spec(targets=[{"base": "int8-npu", "vry": {}}]), r"targets\[0\]\.vry: unknown field"),
    (_spec(targets=[{"base": "int8-npu", "vary": {"memory.sram.size_bytes": {"log_range": [0, "8MiB"], "points": 4}}}]),
     r"targets\[0\]\.vary: memory\.sram\.size_bytes\.log_range: needs 0 < lo < hi"),
    (_spec(targets=[{"base": "int8-npu", "vary": {"clock_hz": {"range": [2, 1], "points": 3}}}]), r"lo < hi"),
    (_spec(quantization=[{"weights": "int8", "config": "x.yaml"}]), r"quantization\[0\].*exactly one"),
    (_spec(quantization=[{"weights": "int7.5"}]), r"quantization\[0\]\.weights"),
    (_spec(objectives=["latency_s", "accuracy_proxy"]), "needs an accuracy: block"),
    (_spec(objectives=["latency_s"], accuracy={"metric": "proxy"}, quantization=[{"weights": "int4"}]),
     "accuracy needs both weights and activations"),
    (_spec(sampling={"method": "sobol"}), "needs n"),
    (_spec(sampling={"method": "grid", "n": 4}), "n applies to random"),
    (_spec(quantization=[{"solve": {"budgets": {}}}]), "at least one limit"),
    (_spec(quantization=[{"solve": {"budgets": {"latency": 1}}}]), r"budgets\.latency: unknown field"),
])
def test_structure_refused_naming_the_field(raw, match):
    with pytest.raises(ConfigError, match=match):
        _plan(raw)


@pytest.mark.parametrize("vary, match", [
    ({"compute.rowz": [8]}, r"compute\.rowz"),
    ({"compute.rows": [0, 8]}, r"compute\.rows=0.*compute\.rows"),
    ({"memory.l9.size_bytes": [1024]}, r"no entry named 'l9'.*sram, dram"),
    ({"compute.rates.7.macs_per_pe_per_cycle": [1]}, "past the end"),
    ({"compute.rows": {"range": [8, 64]}}, r"vary\.compute\.rows: grid sampling needs points"),
])
def test_bad_hardware_points_refused_before_work(vary, match):
    with pytest.raises(ConfigError, match=match):
        _plan(_spec(targets=[{"base": "int8-npu", "vary": vary}]))


def test_impossible_combinations():
    with pytest.raises(ConfigError, match="cortex-a78 has no area: block"):
        _plan(_spec(targets=[{"base": "cortex-a78"}]))
    with pytest.raises(ConfigError, match=r"models\[0\]"):
        _plan(_spec(models=["resnet-19"]))


def test_sizes_and_ranges():
    assert quantity("64KiB") == 65536 and quantity("8MiB") == 8 * 2 ** 20 and quantity("2MB") == 2_000_000
    assert quantity("1.5KiB") == 1536 and quantity(3) == 3 and quantity("2.5e8") == 2.5e8
    with pytest.raises(ValueError):
        quantity("8 parsecs")
    space = _plan(_spec(targets=[{"base": "int8-npu", "vary": {
        "memory.sram.size_bytes": {"log_range": ["64KiB", "8MiB"], "points": 8}}}]))
    sizes = sorted({dict(p.params)["memory.sram.size_bytes"] for p in space.points})
    assert sizes[0] == 65536 and sizes[-1] == 8 * 2 ** 20 and len(sizes) == 8
    assert all(b / a == pytest.approx(2, rel=1e-3) for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("method", ["random", "sobol", "lhs"])
def test_sampling_is_seeded_and_in_bounds(method):
    ts = parse_spec(_spec(targets=[{"base": "int8-npu", "vary": {
        "compute.rows": {"log_range": [8, 256]}, "clock_hz": {"range": [2.0e8, 1.0e9]},
        "compute.dataflow": ["weight_stationary", "output_stationary"]}}],
        sampling={"method": method, "n": 16, "seed": 3}), "s").targets[0]
    a = hardware_points(ts, method, 16, 3)
    assert a == hardware_points(ts, method, 16, 3) and a != hardware_points(ts, method, 16, 4)
    assert len(a) == 16
    for params in a:
        p = dict(params)
        assert 8 <= p["compute.rows"] <= 256 and isinstance(p["compute.rows"], int)
        assert 2.0e8 <= p["clock_hz"] <= 1.0e9
    assert {dict(p)["compute.dataflow"] for p in a} == {"weight_stationary", "output_stationary"}


def test_point_ids_do_not_depend_on_order():
    raw = _spec()
    ids = {p.point_id for p in _plan(raw).points}
    raw["quantization"] = raw["quantization"][::-1]
    assert {p.point_id for p in _plan(raw).points} == ids


def test_an_onnx_model_with_dynamic_dims_is_refused_with_advice_a_spec_can_follow():
    """The import's advice (bind the dims in shapes) names nothing a SPEC holds: say what to do."""
    from pathlib import Path

    model = str(Path(__file__).parents[1] / "data" / "tiny_bert.onnx")
    with pytest.raises(ConfigError, match=r"models\[0\].*'sequence'.*A sweep SPEC binds no ONNX dims"):
        _plan(_spec(models=[model]))
