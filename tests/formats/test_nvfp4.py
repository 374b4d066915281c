"""NVFP4 is bit-exact against an oracle built from ml_dtypes (float8_e4m3fn scales, float4_e2m1fn
elements), plus hypothesis properties."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hwsim.formats as F
from hwsim.errors import ConfigError

NV = F.get("nvfp4")
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in cast:RuntimeWarning")


def oracle(x, tensor_scale=None):
    """The spec in ml_dtypes casts: float32 arithmetic, RNE casts, blocks of 16 on the last axis."""
    x = np.asarray(x, np.float32)
    if tensor_scale is not None:
        x = x / np.float32(tensor_scale)
    n = x.shape[-1]
    pad = (-n) % 16
    xb = np.concatenate([x, np.zeros(x.shape[:-1] + (pad,), np.float32)], axis=-1)
    xb = xb.reshape(x.shape[:-1] + (-1, 16))
    amax = np.abs(xb).max(axis=-1)
    s = np.minimum(amax / np.float32(6), np.float32(448)).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(s[..., None] > 0, xb / s[..., None], np.float32(0))
    q = np.clip(t, -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(np.float32)
    y = (q.astype(np.float64) * s[..., None]).reshape(x.shape[:-1] + (-1,))[..., :n]
    return y if tensor_scale is None else y * np.float64(np.float32(tensor_scale))


def _same(got, want):
    """Equal values, NaN where NaN, and the same sign of zero."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(got, want)
    ok = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[ok]), np.signbit(want[ok]))


def _magnitudes(rng, shape):
    """Blocks spanning 2^-30 .. 2^20, so scales run from zero through subnormal E4M3 to saturation."""
    e = rng.integers(-30, 20, shape[:-1] + (1,))
    return (rng.standard_normal(shape) * np.ldexp(1.0, e)).astype(np.float32)


def test_matches_ml_dtypes_oracle_over_many_magnitudes():
    rng = np.random.default_rng(0)
    x = _magnitudes(rng, (512, 48))
    _same(NV.quantize(x), oracle(x))


def test_ties_round_to_even_in_scale_and_element():
    # amax 6 * 1.0625 = 6.375: amax/6 = 1.0625 is halfway between E4M3 1.0 and 1.125 -> 1.0 (even)
    block = np.array([6.375, 2.5, -5.0, 0.75] + [0.0] * 12, np.float32)
    got = NV.quantize(block)
    _same(got, oracle(block))
    assert got[0] == 6.0  # 6.375 / 1.0 saturates to 6
    assert got[1] == 2.0 and got[2] == -4.0 and got[3] == 1.0  # element ties to even: 2.5->2, 5->4, .75->1


def test_zero_scale_block_is_all_zeros_and_blocks_are_independent():
    x = np.concatenate([np.full(16, 1e-4, np.float32), np.arange(16, dtype=np.float32)])
    y = NV.quantize(x)
    assert not y[:16].any()  # 1e-4 / 6 is below half of E4M3's smallest subnormal 2^-9
    _same(y, oracle(x))


def test_tensor_scale_and_blocks_along_axis():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 5)).astype(np.float32) * 1e-3
    g = float(np.abs(x).max() / (6 * 448))
    _same(NV.quantize(x, scale=g, axis=0), oracle(x.T, g).T)
    with pytest.raises(ConfigError):
        NV.quantize(x, scale=np.ones(5))


def test_encode_decode_round_trip_and_storage():
    rng = np.random.default_rng(2)
    x = _magnitudes(rng, (7, 33))
    codes, scale_codes = NV.encode(x)
    assert codes.dtype == np.uint8 and codes.max() < 16
    assert scale_codes.shape == (7, 3)
    want = oracle(x).reshape(7, 33)
    _same(NV.decode(codes, scale_codes), want)
    s_oracle = np.minimum(np.abs(np.concatenate([x, np.zeros((7, 15), np.float32)], 1)).reshape(7, 3, 16).max(-1)
                          / np.float32(6), np.float32(448)).astype(ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(scale_codes, s_oracle.view(np.uint8))
    assert NV.bits_per_element == 4.5 and F.get(NV.name) == NV


def test_nan_block_is_nan_and_other_blocks_unaffected():
    x = np.arange(32, dtype=np.float32)
    x[3] = np.nan
    y = NV.quantize(x)
    assert np.isnan(y[:16]).all()
    _same(y[16:], oracle(x[16:]))


floats32 = st.floats(min_value=-262144.0, max_value=262144.0, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 40)), elements=floats32))
def test_property_bit_exact_against_oracle(x):
    _same(NV.quantize(x), oracle(x))


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 64), elements=floats32),
       st.floats(min_value=2.0**-20, max_value=1024.0, width=32))
def test_property_bounds_and_sign(x, g):
    y = NV.quantize(x, scale=g)
    assert np.all(np.abs(y / np.float64(np.float32(g))) <= 6 * 448)
    assert np.all(np.sign(y) * np.sign(x) >= 0)  # never flips a sign
    _same(y, oracle(x, g))


def test_nvfp4_through_simulate_estimate_and_compare():
    import hwsim
    from hwsim.compare import compare_formats

    model = "gemm:m=8,k=256,n=64"
    g = hwsim.quantize_graph(hwsim.load_model(model), "nvfp4", "nvfp4")
    x = np.random.default_rng(0).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)
    res = hwsim.simulate(g, {g.inputs[0]: x})
    assert 10 < res.layers[-1].sqnr_db < 30  # 4-bit elements, two-level scales
    rep = hwsim.estimate(model, "h100-sxm", weights="nvfp4", activations="nvfp4")
    row = next(r for r in rep.layers if r.macs)
    assert "nvfp4 x nvfp4 not native, runs as fp8_e4m3fn x fp8_e4m3fn" in row.note  # H100 has no FP4
    assert any("lacks: nvfp4 x nvfp4 as fp8_e4m3fn x fp8_e4m3fn" in n for n in rep.notes)
    assert rep.total.energy_breakdown_j["decode"] > 0
    numel = sum(t.numel for t in g.tensors.values() if t.role == "weight")
    assert rep.total.weight_bytes == numel * 4.5 / 8  # 4-bit codes + an 8-bit scale per 16
    cmp = compare_formats(["mxfp4_e2m1", "nvfp4"], samples=4096)
    rows = {r.format: r for r in cmp.rows}
    assert rows["nvfp4"].accumulator == "fp32"
    assert rows["nvfp4"].sqnr_db["laplace"] > rows["mxfp4_e2m1"].sqnr_db["laplace"]  # finer scales
