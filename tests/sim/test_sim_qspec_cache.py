"""qspec's per-run lookups made once: scale arrays of a spec's scale tuple and code types of a
format give what building them anew gives."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.formats import registry
from hwsim.graph.quant import QuantSpec
from hwsim.sim import qspec

_floats = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(width=32)


def _fresh(values) -> np.ndarray:
    """The rule written out: float32 when every value is exactly a float32, else float64."""
    arr = np.asarray(values, dtype=np.float64)
    f32 = arr.astype(np.float32)
    return f32 if np.array_equal(f32.astype(np.float64), arr) else arr


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_floats, min_size=1, max_size=6))
def test_scale_array_of_a_tuple_equals_a_fresh_one(values):
    want = _fresh(values)
    for _ in range(2):  # made, then found
        got = qspec.scale_array(tuple(values))
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))


def test_scale_array_of_a_tuple_is_shared_and_read_only():
    a, b = qspec.scale_array((0.5, 0.25)), qspec.scale_array((0.5, 0.25))
    assert a is b and not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1.0
    assert qspec.scale_array([0.5, 0.25]).flags.writeable  # a list: a new array each time
    z, nz = qspec.scale_array((0.0,)), qspec.scale_array((-0.0,))  # zeros are not looked up: signs kept
    assert not np.signbit(z[0]) and np.signbit(nz[0])


@pytest.mark.parametrize("fmt", ["int8", "uint8", "int4", "uint4", "int16", "int8_narrow", "fp8_e4m3fn", "fp32", "INT8"])
def test_code_dtype_equals_the_format_rule(fmt):
    f = registry.get(fmt)
    want = None
    if f.integer_codes:
        for dt in (np.uint8, np.int8):
            if (f.qmin, f.qmax) == (np.iinfo(dt).min, np.iinfo(dt).max):
                want = dt
    assert qspec.code_dtype(QuantSpec(format=fmt)) is want


@settings(max_examples=100, deadline=None)
@given(values=st.lists(_floats, min_size=1, max_size=5))
def test_normal_scales_equals_the_check_written_out(values):
    s = np.asarray(values, np.float64)
    want = bool(np.all(np.isfinite(s) & (s >= np.finfo(np.float32).tiny)))
    assert qspec._normal_scales(tuple(values)) is want
    assert qspec._normal_scales(tuple(values)) is want  # found


def _const(data, spec):
    from hwsim.graph.ir import Tensor

    return Tensor("w", tuple(data.shape), "weight", spec, data, str(data.dtype))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), lo=st.integers(-300, 0), hi=st.integers(0, 300),
       fmt=st.sampled_from(["int8", "uint8", "int4", "int16"]), frozen=st.booleans())
def test_kept_constant_values_equal_fresh_ones(seed, n, lo, hi, fmt, frozen):
    """A constant's real values and its stored-codes check, kept for a frozen constant, equal
    those made anew; the spec is part of the key (a constant given another spec gets its own)."""
    from hwsim.kernels import packcache

    rng = np.random.default_rng(seed)
    data = rng.integers(lo, hi + 1, n).astype(np.int16 if fmt == "int16" else np.int32)
    data = packcache.frozen(data) if frozen else data
    for f, scale, zp in ((fmt, (0.5,), (0,)), ("int4", (0.25,), (3,)), (fmt, (0.25,), (3,))):
        t = _const(data, QuantSpec(format=f, scale=scale, zero_point=zp))
        for _ in range(2):
            got = qspec.const_real_kept(t)
            assert not got.flags.writeable
            np.testing.assert_array_equal(got, qspec.const_real(t))
            want = qspec._stored_codes_on_grid(t)
            assert (qspec.grid_codes(t) is not None) == want
            if want:
                np.testing.assert_array_equal(qspec.grid_codes(t), data)
    if frozen:
        t = _const(data, QuantSpec(format=fmt, scale=(0.5,), zero_point=(0,)))
        assert qspec.const_real_kept(t) is qspec.const_real_kept(t)


def test_format_spellings_are_found_again_and_bad_ones_refused_every_time():
    assert registry.get("INT8") is registry.get("int8") is registry.get(" Int8 ")
    assert registry.get(registry.get("fp8_e4m3")) is registry.get("fp8_e4m3")
    for _ in range(2):
        with pytest.raises(Exception, match="unknown number format"):
            registry.get("int8x")
