"""Target features priced from data: N:M compliance measured on real weights, bit-serial timing,
zero-skipping with compressed storage."""

import numpy as np
import pytest
import yaml

from hwsim.cost import estimate
from hwsim.graph.builder import Builder
from hwsim.graph.quant import QuantSpec


def _linear(w: np.ndarray, m: int = 8192):
    b = Builder("one_linear")
    x = b.input("x", (m, w.shape[1]))
    b.output(b.linear(x, w.shape[0], "fc", bias=False))
    b.g.set_data("fc.weight", w.astype(np.float32))
    for t in ("x", "fc.out"):
        b.g.set_quant(t, QuantSpec(format="fp8_e4m3fn"))
    b.g.set_quant("fc.weight", QuantSpec(format="fp8_e4m3fn"))
    return b.g


def test_nm_speedup_only_when_the_weights_comply():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1024, 1024))
    dense = estimate(_linear(w), "h100-sxm").layers[0]
    w24 = w.copy().reshape(1024, -1, 4)
    w24[:, :, :2] = 0  # exactly 2 non-zeros in every group of 4 along the reduction axis
    sparse = estimate(_linear(w24.reshape(1024, 1024)), "h100-sxm").layers[0]
    assert sparse.compute_s == pytest.approx(dense.compute_s / 2)
    assert "2:4 sparse speed-up (compliance 1.000)" in sparse.note
    w24[0, 0, :] = 1.0  # one group breaks the pattern: the hardware cannot use it
    broken = estimate(_linear(w24.reshape(1024, 1024)), "h100-sxm").layers[0]
    assert broken.compute_s == pytest.approx(dense.compute_s)


def test_bit_serial_time_scales_with_weight_bits(tmp_path):
    p = tmp_path / "serial.yaml"
    p.write_text(yaml.safe_dump({
        "schema_version": 1, "extends": "int8-npu", "name": "serial-npu", "description": "bit-serial",
        "features": {"bit_serial": True, "source": "Stripes (MICRO'16): time scales with weight bits"}}))
    model = "gemm:m=1024,k=1024,n=1024"
    i8 = estimate(model, str(p), weights="int8", activations="int8").layers[0]
    i2 = estimate(model, str(p), weights="int2", activations="int8").layers[0]
    i2_parallel = estimate(model, "int8-npu", weights="int2", activations="int8").layers[0]
    assert i2.compute_s < i2_parallel.compute_s
    assert i2.compute_s == pytest.approx(i8.compute_s * (2 / 4) / 2, rel=0.05)  # int2 on the 2x int4 path


def test_zero_skipping_engine_stores_sparse_weights_compressed():
    from hwsim.graph.annotate import LayerRule, QuantConfig

    cfg = QuantConfig(defaults=LayerRule(weights="int8", activations="int8", pruning="75%"))
    model = "gemm:m=16,k=1024,n=1024"
    pruned = estimate(model, "rs-engine", config=cfg).layers[0]
    dense = estimate(model, "rs-engine", weights="int8", activations="int8").layers[0]
    assert pruned.weight_density == pytest.approx(0.25, abs=0.01)
    assert pruned.executed_ops == pytest.approx(dense.executed_ops * 0.25, rel=0.05)
    assert pruned.bytes["dram"] < 0.5 * dense.bytes["dram"]  # 25% of 8-bit values + a 1-bit mask
    assert "zero-compressed" in pruned.note
