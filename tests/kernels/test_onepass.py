"""hwsim.kernels.onepass against the numpy expressions it replaces, and the saturation property
compute._finish_int relies on for int16 outputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hwsim import kernel_api
from hwsim.graph.quant import QuantSpec
from hwsim.kernels import onepass
from hwsim.sim import ortfused, qspec

_floats = hnp.arrays(np.float64, st.integers(0, 40),
                     elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))


@pytest.mark.nojit
@settings(max_examples=100, deadline=None)
@given(_floats)
def test_round_f32_equals_numpy(x):
    out = np.empty_like(x)
    onepass._round_f32(x, out)
    np.testing.assert_array_equal(out, x.astype(np.float32).astype(np.float64))
    assert np.array_equal(np.signbit(out), np.signbit(x.astype(np.float32)))


@pytest.mark.nojit
@settings(max_examples=100, deadline=None)
@given(st.integers(-40000, 40000), st.floats(1e-6, 10.0), st.booleans(), st.integers(-3, 3), st.integers(0, 2**31))
def test_grid_codes_equal_numpy(zp, scale, f32_scale, shift, seed):
    """Values on the grid, off it (ties half to even), and some too large to convert (flagged)."""
    s = float(np.float32(scale)) if f32_scale else scale
    rng = np.random.default_rng(seed)
    c = rng.integers(-40000, 40000, 50)
    x = (c - zp) * s + rng.choice([0.0, 0.5 * s, 0.25 * s, -0.5 * s], 50) * (shift != 0)
    out = np.empty(50, np.int64)
    assert onepass._grid_codes(x, np.float64(s), np.int64(zp), out) == 0
    np.testing.assert_array_equal(out, np.rint(x / np.float64(s)).astype(np.int64) + zp)
    x[:3] = [np.nan, np.inf, 1e300]
    assert onepass._grid_codes(x, np.float64(s), np.int64(zp), out) == 3


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["int16", "int8", "uint8", "int4", "int32"]), st.integers(0, 2**31), st.booleans())
def test_codes_and_rounding_keep_values_and_layout(fmt, seed, channels_last):
    """qspec.codes (per tensor, float64) equals its numpy formula; ortfused.rounded_f32 equals the
    float32 round trip; both keep a channels-last layout."""
    rng = np.random.default_rng(seed)
    scale = float(np.float32(rng.uniform(1e-4, 1.0)))
    spec = QuantSpec(format=fmt, scale=(scale,), zero_point=(int(rng.integers(0, 3)),) if fmt == "uint8" else None)
    x = qspec.quantize(rng.standard_normal((2, 3, 4, 5)) * scale * 300, spec)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    zp = 0 if spec.zero_point is None else spec.zero_point[0]
    got = qspec.codes(x, spec)
    np.testing.assert_array_equal(got, np.rint(x / np.float64(scale)).astype(np.int64) + zp)
    assert got.dtype == np.int64 and got.strides == np.empty_like(x, np.int64).strides
    r = ortfused.rounded_f32(x)
    np.testing.assert_array_equal(r, x.astype(np.float32).astype(np.float64))
    assert r.strides == x.strides
    np.testing.assert_array_equal(ortfused.rounded_f32(x.astype(np.float32)), x.astype(np.float32))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["exact", "gemmlowp", "tflite"]), st.integers(-40000, 40000),
       st.floats(1e-4, 4.0), st.integers(0, 2**31))
def test_requantize_to_int16_is_int32_then_clipped(mode, zp, mult, seed):
    """compute._finish_int requantizes int16-range outputs straight to int16: saturating there
    equals int32 requantization clipped to [-32768, 32767]."""
    rng = np.random.default_rng(seed)
    acc = rng.integers(-2**31, 2**31 - 1, (3, 40)).astype(np.int64) // rng.choice([1, 100, 10**5], (3, 40))
    m = np.full(40, mult) * rng.uniform(0.5, 2, 40)
    got = kernel_api.requantize(acc, m, zp, mode, np.int16, -1)
    want = np.clip(kernel_api.requantize(acc, m, zp, mode, np.int32, -1).astype(np.int64), -32768, 32767)
    np.testing.assert_array_equal(got, want)


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 5), st.integers(1, 5),
       st.sampled_from(["C", "channels_last", "strided"]), st.integers(0, 2**31), st.booleans())
def test_batchnorm_one_pass_equals_numpy(n, c, h, w, layout, seed, special):
    """The batchnorm executor's one pass (elementwise._channel_affine) gives numpy's three broadcast
    passes' values bit for bit (no fused multiply-add), in every layout, with NaN / inf / -0."""
    from hwsim.sim import elementwise

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)) * 10.0 ** rng.integers(-3, 4)
    if special:
        x.reshape(-1)[rng.integers(0, x.size, 3)] = rng.choice([np.nan, np.inf, -np.inf, -0.0], 3)
    if layout == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=3)[..., ::2]
    gamma, beta, mean = (rng.standard_normal(c) for _ in range(3))
    var = rng.uniform(0.0, 3.0, c)

    class Op:
        eps = 1e-5

    got = elementwise._batchnorm(None, Op, [x, gamma, beta, mean, var])
    inv = (gamma / np.sqrt(var + Op.eps)).reshape(1, -1, 1, 1)
    want = (x - mean.reshape(1, -1, 1, 1)) * inv + beta.reshape(1, -1, 1, 1)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    if layout != "strided":  # the one pass ran, in x's memory order
        assert elementwise._channel_affine(x, mean, gamma / np.sqrt(var + Op.eps), beta) is not None
        assert got.strides == np.empty_like(x).strides


def test_batchnorm_one_pass_one_signature_for_read_only_and_writable_parameters():
    """A model's constants come read-only, computed ones writable: the parameters reach the kernel
    read-only either way, so numba compiles it once (a first run compiled it twice)."""
    import numba

    from hwsim.sim import elementwise

    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    params = [np.linspace(0.5, 1.5, 3) for _ in range(3)]
    frozen = [p.copy() for p in params]
    for p in frozen:
        p.flags.writeable = False
    want = elementwise._channel_affine(x, *params)
    np.testing.assert_array_equal(elementwise._channel_affine(x, *frozen), want)
    if numba.config.DISABLE_JIT:
        return
    sigs = [s for s in onepass._channel_affine.signatures if s[0] == numba.typeof(x.reshape(-1))]
    assert len(sigs) == 1 and all(not s[k].mutable for s in sigs for k in (2, 3, 4))


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(st.sampled_from([np.int8, np.uint8, np.int16, np.uint16]), st.floats(1e-30, 1e30), st.integers(0, 2**31),
       st.booleans())
def test_codes_dequantized_to_float32_in_one_pass(dtype, scale, seed, channels_last):
    """Coded.real_f32 (onepass._dequant_f32) equals the float64 reals rounded to float32
    (ortfused.rounded_f32 of Coded.real(), what a float op read before), for 8- and 16-bit codes
    at the ends of their range, any float32 scale (tiny and huge: subnormal and inf products) and
    zero point; in the codes' memory order. A float64 scale declines."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    fmt = {np.int8: "int8", np.uint8: "uint8", np.int16: "int16", np.uint16: "uint16"}[dtype]
    s = float(np.float32(scale))
    zp = int(rng.integers(info.min, info.max, endpoint=True)) if info.min == 0 else 0
    spec = QuantSpec(format=fmt, scale=(s,), zero_point=(zp,) if zp else None)
    codes = rng.integers(info.min, info.max, (2, 3, 4, 5), endpoint=True).astype(dtype)
    codes.reshape(-1)[:2] = info.min, info.max
    if channels_last:
        codes = np.ascontiguousarray(codes.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    c = qspec.Coded(codes, spec)
    got = c.real_f32()
    np.testing.assert_array_equal(got, ortfused.rounded_f32(qspec.Coded(codes, spec).real()))
    assert got.dtype == np.float64 and got.strides == np.empty_like(codes, np.float64).strides
    assert qspec.Coded(codes, spec.model_copy(update={"scale": (0.1,)})).real_f32() is None  # not a float32
