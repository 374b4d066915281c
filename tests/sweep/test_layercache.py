"""Per-layer rows reused across sweep points must equal a fresh estimate, exactly."""

import pytest

from hwsim.cost import estimate
from hwsim.graph.annotate import quantize_graph
from hwsim.graph.zoo import load_model
from hwsim.sweep.layercache import DOT_KINDS, STREAM_COMPUTE_FIELDS, LayerCache
from hwsim.sweep.space import build_target
from hwsim.targets.load import target_mapping

VARIANTS = [
    (("compute.rows", 16), ("compute.cols", 128)),
    (("compute.rows", 128), ("compute.cols", 16), ("compute.dataflow", "output_stationary")),
    (("compute.rows", 16), ("compute.cols", 128), ("memory.sram.size_bytes", 262144)),
    (("compute.efficiency", 0.5), ("compute.register_bytes", 512), ("compute.mac_overhead_pj", 0.2)),
    (("compute.vector_macs", 8), ("compute.unpack_weights_per_cycle", 16), ("compute.lut_lookups_per_cycle", 2),
     ("compute.tile_rows", 4), ("compute.rates.0.macs_per_pe_per_cycle", 2)),
    (("compute.elementwise_ops_per_cycle", 16), ("clock_hz", 1.0e9)),
]


@pytest.mark.parametrize("model", ["resnet18", "minilm-l6"])
def test_cached_rows_equal_fresh_estimates(model):
    base = target_mapping("int8-npu")
    g = quantize_graph(load_model(model), "int4", "int8")
    cache = LayerCache()
    for params in VARIANTS + VARIANTS[::-1]:
        t = build_target(base, params)
        assert cache.report(g, t).to_json() == estimate(g, t).to_json()
    assert cache.hits > 0


def test_repeated_layers_share_a_row_on_data_dependent_targets():
    """rs-engine prices weights by their values (zero-skipping, repetition): shared rows must still match."""
    g = quantize_graph(load_model("resnet18"), "ternary", "int8")
    base = target_mapping("rs-engine")
    cache = LayerCache()
    for params in ((), (("clock_hz", 1.0e9),), ()):
        t = build_target(base, params)
        got, want = cache.report(g, t).to_json(), estimate(g, t).to_json()
        assert got["layers"] == want["layers"] and got["total"] == want["total"]
    assert cache.hits > len(want["layers"])  # the third target is all hits; repeated convs share before


def test_non_mac_ops_read_only_the_declared_compute_fields():
    """Change every compute field but STREAM_COMPUTE_FIELDS: rows of non-dot ops must not move."""
    base = target_mapping("int8-npu")
    g = quantize_graph(load_model("minilm-l6"), "int8", "int8")
    ref = {r.name: r for r in estimate(g, build_target(base, ())).layers if r.op not in DOT_KINDS}
    for params in VARIANTS:
        if any(k.removeprefix("compute.") in STREAM_COMPUTE_FIELDS or not k.startswith("compute.") for k, _ in params):
            continue
        rows = {r.name: r for r in estimate(g, build_target(base, params)).layers if r.op not in DOT_KINDS}
        assert rows == ref, params
