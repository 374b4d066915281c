"""Targets without hardware here are held against published numbers (issue 11 item 4)."""

from __future__ import annotations

import pytest

from hwsim.fidelity.records import load_measurements
from hwsim.fidelity.validate import target_measurements, validate
from hwsim.targets import bundled_targets, load_target

PUBLISHED = ["cortex-a78", "edgetpu", "eyeriss", "int8-npu"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_every_published_record_cites_where_it_comes_from(name):
    t = load_target(name)
    for path in target_measurements(t, None):
        for rec in load_measurements(path):
            assert rec.conditions.runtime.startswith("published"), rec.id
            assert len(rec.source) > 40 and any(w in rec.source for w in ("Table", "table", "README", "Sec.")), rec.id


def test_only_rs_engine_is_uncalibrated():
    assert sorted(n for n, t in bundled_targets().items() if t.validation is None) == ["rs-engine"]


@pytest.mark.slow
def test_edge_tpu_misses_are_its_memory_system():
    """Models past the Edge TPU's 8 MB SRAM: the LPDDR-class int8-npu is far too fast, edgetpu (same array, the
    SRAM and the PCIe Gen2 x1 host link) is not; the SRAM-resident MobileNets agree on both."""
    errors = {}
    for name in ("int8-npu", "edgetpu"):
        t = load_target(name)
        v = validate(t, target_measurements(t, None))
        errors[name] = {r.id: r.latency_error for r in v.rows}
    for rid in ("edgetpu-mobilenet_v1-devboard", "edgetpu-mobilenet_v2-devboard"):
        assert abs(errors["int8-npu"][rid]) < 0.15 and abs(errors["edgetpu"][rid]) < 0.15
    for rid in ("edgetpu-resnet50-299-devboard", "edgetpu-vgg16-devboard"):
        assert errors["int8-npu"][rid] < -0.5
        assert abs(errors["edgetpu"][rid]) < 0.25
