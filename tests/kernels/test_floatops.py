"""Float32 ops of solve's tails (hwsim.float32_ops) against float64 oracles from scipy/numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf, erfc

from hwsim import float32_ops
from hwsim.errors import InputDataError


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 ulps (same-sign finite values; both NaN: 0)."""
    ia, ib = a.view(np.int32).astype(np.int64), b.view(np.int32).astype(np.int64)
    d = np.abs(np.where(ia < 0, -(ia & 0x7FFFFFFF), ia) - np.where(ib < 0, -(ib & 0x7FFFFFFF), ib))
    return np.where(np.isnan(a) & np.isnan(b), 0, d)


def _true_gelu(x: np.ndarray) -> np.ndarray:
    """0.5 x (1 + erf(x / sqrt 2)) in float64 without cancellation (erfc on the negative side),
    rounded to float32."""
    xd = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        y = np.where(xd >= 0, 0.5 * xd * (2 - erfc(xd / np.sqrt(2))), 0.5 * xd * erfc(-xd / np.sqrt(2)))
    return y.astype(np.float32)


def test_erfc_polynomial_relative_error():
    from hwsim.kernels.floatops import ERFC_K, ERFC_T_MAX, ERFC_U_MAX

    coef = float32_ops.erfc_coefficients()
    t = np.linspace(0, ERFC_T_MAX, 1_000_001)
    z = ((t - ERFC_K) / (t + ERFC_K) + 1) * (2 / (ERFC_U_MAX + 1)) - 1
    p = np.zeros_like(t)
    for c in coef[::-1]:
        p = p * z + c
    assert np.max(np.abs(np.exp(-t * t) * p / (1 + 2 * t) / erfc(t) - 1)) < 1e-13


def test_exp_nonpositive_relative_error():
    from hwsim.kernels.floatops import _exp_nonpositive

    d = -np.concatenate([np.linspace(0, 109.99, 200_001), np.geomspace(1e-12, 1, 1001)])
    got = np.array([_exp_nonpositive(v) for v in d])
    rel = np.abs(got / np.exp(d) - 1)
    assert rel.max() < 2e-12 and rel[d >= -36].max() < 1e-13  # -36: erfc's range (t <= 6)
    assert _exp_nonpositive(-110.5) == 0.0 and np.isnan(_exp_nonpositive(np.nan))


@pytest.mark.nojit
def test_gelu_within_one_ulp_of_float64(rng):
    x = np.concatenate([rng.standard_normal(4000) * 3, rng.uniform(-9, 9, 2000), np.linspace(-8.6, 8.6, 3001),
                        [0.0, -0.0, 1e-30, -1e-30, 1e-45, -1e-45, 50, -50, 8.48, -8.48, 8.49, -8.49]]).astype(np.float32)
    got = float32_ops.gelu_erf(x)
    want = _true_gelu(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    inside = np.abs(x) < 8.48  # t = |x| / sqrt 2 < 6: the interpolated range
    assert _ulps(got[inside], want[inside]).max() <= 1
    assert np.all(np.abs(got[~inside & (x < 0)]) <= 1e-15)
    np.testing.assert_array_equal(got[~inside & (x > 0)], x[~inside & (x > 0)])
    # the simulator's formula (float64 erf) agrees where it does not cancel
    xd = x.astype(np.float64)
    sim = (0.5 * xd * (1.0 + erf(xd / np.sqrt(2.0)))).astype(np.float32)
    safe = x > -5
    assert _ulps(got[safe], sim[safe]).max() <= 1


def test_gelu_specials_and_shape():
    x = np.array([[np.nan, np.inf], [-np.inf, -0.0]], np.float32)
    got = float32_ops.gelu_erf(x)
    with np.errstate(invalid="ignore"):
        want = (0.5 * x.astype(np.float64) * (1.0 + erf(x.astype(np.float64) / np.sqrt(2.0)))).astype(np.float32)
    np.testing.assert_array_equal(got, want)  # NaN, inf, NaN (-inf * 0), -0.0
    assert np.signbit(got[1, 1])
    with pytest.raises(InputDataError, match="float32"):
        float32_ops.gelu_erf(np.zeros(3))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-20, 20, width=32), min_size=1, max_size=50))
def test_gelu_property(values):
    x = np.array(values, np.float32)
    got, want = float32_ops.gelu_erf(x), _true_gelu(x)
    inside = np.abs(x) < 8.48
    assert _ulps(got[inside], want[inside]).max(initial=0) <= 1
    assert np.all(np.abs(got[~inside] - want[~inside]) <= 1e-15)


def _softmax64(x: np.ndarray) -> np.ndarray:
    xd = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(xd - np.max(xd, axis=-1, keepdims=True))
        return (e / np.sum(e, axis=-1, keepdims=True)).astype(np.float32)


def _layernorm64(x, g, b, eps):
    xd = x.astype(np.float64)
    mu = xd.mean(-1, keepdims=True)
    var = ((xd - mu) ** 2).mean(-1, keepdims=True)
    return ((xd - mu) / np.sqrt(var + eps) * g.astype(np.float64) + b.astype(np.float64)).astype(np.float32)


@pytest.mark.nojit
def test_softmax_within_one_ulp_of_float64(rng):
    for shape, scale in [((3, 4, 7, 128), 4.0), ((5, 9), 40.0), ((2, 1), 1.0), ((6, 300), 0.01)]:
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        got, want = float32_ops.softmax(x), _softmax64(x)
        assert got.shape == x.shape and got.dtype == np.float32
        assert _ulps(got, want).max() <= 1, shape


def test_softmax_underflow_and_specials():
    x = np.array([[0.0, -103.0, -104.0, -110.5, -1000.0, -np.inf],
                  [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0],
                  [np.inf, 1.0, 2.0, 3.0, 4.0, 5.0],
                  [-np.inf] * 6], np.float32)
    got, want = float32_ops.softmax(x), _softmax64(x)
    assert _ulps(got, want).max() <= 1
    assert np.isnan(got[1:]).all() and not np.isnan(got[0]).any()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-200, 200, width=32), min_size=1, max_size=40))
def test_softmax_property(values):
    x = np.array(values, np.float32)
    assert _ulps(float32_ops.softmax(x), _softmax64(x)).max() <= 1


@pytest.mark.nojit
def test_layernorm_within_one_ulp_of_float64(rng):
    for shape, eps in [((4, 16, 384), 1e-12), ((3, 5), 1e-5), ((2, 1), 1e-5), ((7, 64), 0.5)]:
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        g = rng.standard_normal(shape[-1]).astype(np.float32)
        b = rng.standard_normal(shape[-1]).astype(np.float32)
        got, want = float32_ops.layernorm(x, g, b, eps), _layernorm64(x, g, b, eps)
        assert got.shape == x.shape and got.dtype == np.float32
        assert _ulps(got, want).max() <= 1, shape


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=2, max_size=40), st.sampled_from([1e-12, 1e-5]))
def test_layernorm_property(values, eps):
    x = np.array(values, np.float32)
    g, b = np.linspace(-2, 2, x.size).astype(np.float32), np.linspace(1, -1, x.size).astype(np.float32)
    got, want = float32_ops.layernorm(x, g, b, eps), _layernorm64(x, g, b, eps)
    # values that cancel to near 0 in "* gamma + beta" hold few significant bits in both
    assert np.all((_ulps(got, want) <= 1) | (np.abs(got.astype(np.float64) - want) <= 1e-6))


def test_layernorm_rejects_mismatched_parameters():
    with pytest.raises(InputDataError, match=r"\(4,\)"):
        float32_ops.layernorm(np.zeros((2, 4), np.float32), np.ones(3, np.float32), np.zeros(4, np.float32), 1e-5)


def test_softmax_of_scaled_values_is_softmax_after_a_float32_multiply(rng):
    x = (rng.standard_normal((6, 128)) * 20).astype(np.float32)
    s = np.float32(0.17677669)
    np.testing.assert_array_equal(float32_ops.softmax(x, s), float32_ops.softmax(x * s))
    with pytest.raises(InputDataError, match="scale"):
        float32_ops.softmax(x, 0.5)


def test_out_arrays_are_written_in_place(rng):
    x = rng.standard_normal((4, 8)).astype(np.float32)
    g, b = np.ones(8, np.float32), np.zeros(8, np.float32)
    for fn, args in ((float32_ops.gelu_erf, ()), (float32_ops.softmax, (None,)),
                     (float32_ops.layernorm, (g, b, 1e-5))):
        out = np.full_like(x, np.nan)
        assert fn(x, *args, out=out) is out
        np.testing.assert_array_equal(out, fn(x, *args))
        with pytest.raises(InputDataError, match="C-contiguous"):
            fn(x, *args, out=np.empty((8, 4), np.float32).T)


@pytest.mark.parametrize("arithmetic", ["float64", "float32"])
def test_softmax_may_write_over_its_input(rng, arithmetic):
    """out=x (as solve's attention chains call it) gives the values of a separate output array."""
    x = (rng.standard_normal((64, 129)) * 4).astype(np.float32)
    want = float32_ops.softmax(x, np.float32(0.125), arithmetic=arithmetic)
    y = x.copy()
    assert float32_ops.softmax(y, np.float32(0.125), out=y, arithmetic=arithmetic) is y
    np.testing.assert_array_equal(y, want)


def test_order_key_orders_as_float32():
    """The softmax's row maximum is taken on int32 keys (floatops._order_key): they order as the
    float32 values do (-0 below +0), NaN aside, and decode back to the value."""
    from hwsim.kernels.floatops import _KEY_NEG_INF, _order_key

    rng = np.random.default_rng(3)
    bits = np.concatenate([rng.integers(-2**31, 2**31, 5000, dtype=np.int64).astype(np.int32),
                           np.array([0, -0.0, 1e-45, -1e-45, np.inf, -np.inf, 1.0, -1.0], np.float32).view(np.int32)])
    v = bits.view(np.float32)
    bits, v = bits[~np.isnan(v)], v[~np.isnan(v)]
    keys = np.array([_order_key(np.int32(b)) for b in bits], np.int32)
    order = np.argsort(keys, kind="stable")
    assert np.all(np.diff(v[order].astype(np.float64)) >= 0)
    assert np.all(np.diff(keys[order].astype(np.int64)) > 0)  # distinct values, distinct keys (+0 above -0)
    np.testing.assert_array_equal([_order_key(k) for k in keys], bits)
    assert _KEY_NEG_INF == _order_key(np.array(-np.inf, np.float32).view(np.int32)[()])


def test_softmax_f32_row_maximum_any_order(rng):
    """The float32 softmax of a permuted row is the permuted softmax, element for element (the
    maximum does not depend on the order, -0 and +0 included); rows of +-inf or NaN give NaN."""
    rows = (rng.standard_normal((40, 67)) * 5).astype(np.float32)
    rows[:10] = -np.abs(rows[:10])
    rows[:10, ::7], rows[:10, 3::7] = 0.0, -0.0  # largest values +0 and -0
    rows[10, 5], rows[11, 6], rows[12, :] = np.nan, np.inf, -np.inf
    rows[13, 4] = -np.inf
    want = float32_ops.softmax(rows, arithmetic="float32")
    assert np.isnan(want[10:13]).all() and not np.isnan(want[13]).any() and want[13, 4] == 0
    for _ in range(5):
        perm = rng.permutation(rows.shape[1])
        got = float32_ops.softmax(np.ascontiguousarray(rows[:, perm]), arithmetic="float32")
        np.testing.assert_array_equal(got.view(np.int32), want[:, perm].view(np.int32))


def _gelu_f32_checks(x: np.ndarray) -> None:
    """gelu_erf(arithmetic="float32") against the float64 formula: within 6 ulps where erfc is
    interpolated (mean under 1), below 1e-15 in magnitude beyond (negative side), x beyond
    (positive side)."""
    got = float32_ops.gelu_erf(x, arithmetic="float32")
    want = _true_gelu(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    inside = np.abs(x) < 8.48
    ulps = _ulps(got[inside], want[inside])
    assert ulps.max(initial=0) <= 6 and (ulps.size < 1000 or ulps.mean() < 1), (ulps.max(), ulps.mean())
    assert np.all(np.abs(got[~inside & (x < 0)]) <= 1e-15)
    np.testing.assert_array_equal(got[~inside & (x > 0)], x[~inside & (x > 0)])


@pytest.mark.nojit
def test_gelu_in_float32_arithmetic_small(rng):
    x = np.concatenate([rng.standard_normal(1500) * 3, np.linspace(-8.6, 8.6, 301), [0.0, -0.0, 1e-45, -50]])
    _gelu_f32_checks(x.astype(np.float32))


def test_gelu_in_float32_arithmetic_within_six_ulps(rng):
    x = np.concatenate([rng.standard_normal(200_000) * 3, rng.uniform(-9, 9, 20_000), np.linspace(-8.6, 8.6, 30_001),
                        rng.uniform(-1e-3, 1e-3, 10_000),
                        [0.0, -0.0, 1e-30, -1e-30, 1e-45, -1e-45, 50, -50, 8.48, -8.48, 8.49, -8.49]]).astype(np.float32)
    _gelu_f32_checks(x)


def test_gelu_in_float32_arithmetic_specials_and_arguments():
    x = np.array([[np.nan, np.inf], [-np.inf, -0.0]], np.float32)
    np.testing.assert_array_equal(float32_ops.gelu_erf(x, arithmetic="float32"), float32_ops.gelu_erf(x))
    assert np.signbit(float32_ops.gelu_erf(x, arithmetic="float32")[1, 1])
    with pytest.raises(InputDataError, match="arithmetic"):
        float32_ops.gelu_erf(x, arithmetic="float16")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-20, 20, width=32), min_size=1, max_size=50))
def test_gelu_in_float32_arithmetic_property(values):
    _gelu_f32_checks(np.array(values, np.float32))


def test_erfc_polynomial_of_the_float32_kernel():
    """P of degree ERFC_DEGREE_F32, its coefficients rounded to float32 (evaluated in float64):
    below 3e-8 relative, half a float32 ulp."""
    from hwsim.float32_ops import _erfc_coefficients_f32
    from hwsim.kernels.floatops import ERFC_K, ERFC_T_MAX, ERFC_U_MAX

    t = np.linspace(0, ERFC_T_MAX, 100_001)
    z = ((t - ERFC_K) / (t + ERFC_K) + 1) * (2 / (ERFC_U_MAX + 1)) - 1
    p = np.zeros_like(t)
    for c in _erfc_coefficients_f32().astype(np.float64)[::-1]:
        p = p * z + c
    assert np.max(np.abs(np.exp(-t * t) * p / (1 + 2 * t) / erfc(t) - 1)) < 3e-8


def _softmax_f32_checks(x: np.ndarray, scale=None) -> None:
    """softmax(arithmetic="float32") against the float64 formula (after the float32 multiply by
    ``scale``): within 3 ulps, values under 1.7e-38 within that of 0, NaN where it has NaN."""
    v = x if scale is None else x * np.float32(scale)
    got, want = float32_ops.softmax(x, scale, arithmetic="float32"), _softmax64(v)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    small = ok & (want < 1.7e-38)
    assert _ulps(got[ok & ~small], want[ok & ~small]).max(initial=0) <= 3
    assert np.all(np.abs(got[small]) <= 1.7e-38)


@pytest.mark.nojit
def test_softmax_in_float32_arithmetic_within_three_ulps(rng):
    for shape, scale in [((3, 4, 7, 128), 4.0), ((5, 9), 40.0), ((2, 1), 1.0), ((6, 300), 0.01), ((4, 64), 60.0)]:
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        _softmax_f32_checks(x)
        _softmax_f32_checks(x, np.float32(0.17677669))


def test_softmax_in_float32_arithmetic_underflow_and_specials():
    x = np.array([[0.0, -86.0, -87.5, -103.0, -110.5, -np.inf],
                  [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0],
                  [np.inf, 1.0, 2.0, 3.0, 4.0, 5.0],
                  [-np.inf] * 6], np.float32)
    _softmax_f32_checks(x)
    with pytest.raises(InputDataError, match="arithmetic"):
        float32_ops.softmax(x, arithmetic="float16")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-200, 200, width=32), min_size=1, max_size=40))
def test_softmax_in_float32_arithmetic_property(values):
    _softmax_f32_checks(np.array(values, np.float32))


def test_pow2_f32_is_the_exact_power_of_two():
    """The exponent-bit construction of 2^-k (floatops._pow2_f32) equals 2.0 ** -k for every k the
    float32 exp kernels use (plain numpy oracle), compiled and under NUMBA_DISABLE_JIT alike."""
    from numba import njit

    from hwsim.kernels import floatops

    @njit
    def powers(n):
        out = np.empty(n, np.float32)
        for k in range(n):
            out[k] = floatops._pow2_f32(np.int32(k))
        return out

    got = powers(127)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, (2.0 ** -np.arange(127)).astype(np.float32))
