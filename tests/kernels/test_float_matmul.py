"""Float-format accumulation, rounding helpers and MX matmul against slow Python loops."""

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import kernel_api
from hwsim.errors import ConfigError, InputDataError, ShapeError
from hwsim.kernels import floatgemm as fg
from tests.kernels import reference as ref

E4M3, E5M2 = ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2
BF16 = ml_dtypes.bfloat16
ORACLE = {"fp16": np.float16, "fp32": np.float32, "bf16": lambda x: BF16(np.float32(x))}


def _values(rng, fmt, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32).astype(fmt).astype(np.float32)


def _grid_and_midpoints(bits_dtype, float_dtype):
    """Every finite value of a 16-bit format, the midpoints between neighbours and +-1 ulp64."""
    v = np.arange(2**16, dtype=np.uint32).astype(bits_dtype).view(float_dtype).astype(np.float64)
    v = np.sort(v[np.isfinite(v)])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([v, mid, np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf)])


def test_round_fp16_exhaustive(rng):
    vals = _grid_and_midpoints(np.uint16, np.float16)
    vals = np.concatenate([vals, rng.standard_normal(10**6) * np.exp2(rng.integers(-30, 18, 10**6)),
                           [65519.99, 65520.0, 65536.0, 2.0**-25, 2.0**-25 * 1.0001, 1e-30]])
    with np.errstate(over="ignore"):
        want = vals.astype(np.float16).astype(np.float64)
    np.testing.assert_array_equal(fg.round_array(vals, fg.FMT_FP16), want)


def test_round_bf16_exhaustive(rng):
    grid = _grid_and_midpoints(np.uint16, BF16)
    vals = np.concatenate([grid[np.abs(grid) < 3e38].astype(np.float32).astype(np.float64),
                           rng.integers(0, 2**32, 10**6, dtype=np.uint32).view(np.float32)])
    vals = vals[np.isfinite(vals)].astype(np.float64)  # float32 values: no double rounding
    want = vals.astype(np.float32).astype(BF16).astype(np.float64)
    np.testing.assert_array_equal(fg.round_array(vals, fg.FMT_BF16), want)


def test_round_fp32(rng):
    f = rng.integers(0, 2**32, 10**6, dtype=np.uint32).view(np.float32)
    f = f[np.isfinite(f)].astype(np.float64)
    mid = (f + np.nextafter(f.astype(np.float32), np.float32(np.inf)).astype(np.float64)) / 2
    vals = np.concatenate([f, mid, rng.standard_normal(10**6) * np.exp2(rng.integers(-160, 128, 10**6))])
    vals = vals[np.isfinite(vals)]
    with np.errstate(over="ignore"):
        want = vals.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(fg.round_array(vals, fg.FMT_FP32), want)


def test_single_rounding_breaks_ties_with_the_lost_bits():
    """2**-100 + 289/256 is just above a bf16 tie; rounding float64(sum) would go to even (1.125)."""
    a = np.array([[2.0**-50, 17 / 16]], np.float32)
    b = np.array([[2.0**-50], [17 / 16]], np.float32)
    assert kernel_api.float_matmul(a, b, "bf16")[0, 0] == 290 / 256


@pytest.mark.nojit
@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 3), k=st.integers(0, 48), n=st.integers(1, 3),
       fmt=st.sampled_from([E4M3, E5M2, BF16, np.float16]), acc=st.sampled_from(["fp16", "fp32", "bf16"]),
       seed=st.integers(0, 2**31))
def test_sequential_matches_loop(m, k, n, fmt, acc, seed):
    if acc == "bf16" and fmt in (BF16, np.float16):
        fmt = E4M3  # keep the bf16 oracle (via float32) free of double rounding
    rng = np.random.default_rng(seed)
    a, b = _values(rng, fmt, (m, k), 4.0), _values(rng, fmt, (k, n), 4.0)
    with np.errstate(over="ignore", invalid="ignore"):
        want = ref.float_matmul_loop(a, b, ORACLE[acc])
    np.testing.assert_array_equal(kernel_api.float_matmul(a, b, acc, "sequential"), want)


@pytest.mark.nojit
@pytest.mark.parametrize("acc", ["fp16", "fp32", "bf16"])
@pytest.mark.parametrize("k", [1, 2, 5, 31, 64, 77])
def test_pairwise_and_blocked_match_loops(rng, acc, k):
    a, b = _values(rng, E4M3, (2, k), 8.0), _values(rng, E4M3, (k, 3), 8.0)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(kernel_api.float_matmul(a, b, acc, "pairwise"),
                                      ref.pairwise_loop(a, b, ORACLE[acc]))
        np.testing.assert_array_equal(kernel_api.float_matmul(a, b, acc, "blocked", block_k=8),
                                      ref.blocked_loop(a, b, ORACLE[acc], 8))


def test_fp32_generic_path_matches_loop(rng):
    a = (rng.standard_normal((3, 40)) * 100).astype(np.float32)  # 24-bit products: no fast path
    b = rng.standard_normal((40, 4)).astype(np.float32)
    assert not fg.products_exact_in_f32(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_array_equal(kernel_api.float_matmul(a, b, "fp32"), ref.float_matmul_loop(a, b, np.float32))


def test_orders_differ_on_fp16():
    rng = np.random.default_rng(7)
    a, b = _values(rng, E4M3, (4, 256), 8.0), _values(rng, E4M3, (256, 4), 8.0)
    outs = [kernel_api.float_matmul(a, b, "fp16", o, 16) for o in ("sequential", "pairwise", "blocked")]
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])


@pytest.mark.nojit
@pytest.mark.parametrize("scale", [1.0, 2.0**60])
def test_exact_accumulator_matches_fsum(rng, scale):
    a = _values(rng, E4M3, (3, 100)) * np.float32(scale) ** rng.choice([-1, 1], (3, 100))
    b = _values(rng, E5M2, (100, 4))
    blas = fg.blas_is_exact(a.astype(np.float64), b.astype(np.float64))
    assert blas == (scale == 1.0)  # both the BLAS and the fsum path are exercised
    np.testing.assert_array_equal(kernel_api.float_matmul(a, b, "exact"), ref.exact_matmul(a, b))


@pytest.mark.nojit
@pytest.mark.parametrize("k", [7, 32, 70])
@pytest.mark.parametrize("acc", ["fp32", "bf16", "exact"])
def test_mx_matmul_matches_oracle(rng, k, acc):
    nb = -(-k // 32)
    a, b = _values(rng, E4M3, (2, k), 8.0), _values(rng, E4M3, (k, 3), 8.0)
    sa = np.exp2(rng.integers(-6, 6, (2, nb))).astype(np.float32)
    sb = np.exp2(rng.integers(-6, 6, (nb, 3))).astype(np.float32)
    got = kernel_api.mx_matmul(a, sa, b, sb, acc)
    if acc == "exact":
        want = ref.exact_matmul(a * np.repeat(sa, 32, 1)[:, :k], b * np.repeat(sb, 32, 0)[:k])
    else:
        want = ref.mx_matmul(a, sa, b, sb, ORACLE[acc])
    np.testing.assert_array_equal(got, want)


def test_float_errors():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ConfigError, match="fp16"):
        kernel_api.float_matmul(a, a.T, accumulator="fp8")
    with pytest.raises(ConfigError, match="pairwise"):
        kernel_api.float_matmul(a, a.T, order="tree")
    with pytest.raises(ShapeError):
        kernel_api.float_matmul(a, a)
    with pytest.raises(InputDataError):
        kernel_api.float_matmul(a * np.nan, a.T)
    with pytest.raises(InputDataError):
        kernel_api.mx_matmul(a, np.full((2, 1), 3.0), a.T, np.ones((1, 2)))
    with pytest.raises(ShapeError):
        kernel_api.mx_matmul(a, np.ones((2, 2)), a.T, np.ones((1, 2)))
    assert math.isinf(kernel_api.float_matmul(np.array([[300.0, 300.0]]), np.array([[300.0], [300.0]]),
                                       "fp16")[0, 0])


def _stats_oracle(x):
    vals = [abs(float(v)) for v in np.ravel(x) if v != 0]
    if not vals:
        return None
    bits, lsb, top = 0, 10**6, -(10**6)
    for v in vals:
        mant, e = math.frexp(v)
        t = 0
        while math.ldexp(mant, t) != math.floor(math.ldexp(mant, t)):
            t += 1
        bits, lsb, top = max(bits, t), min(lsb, e - t), max(top, e)
    return bits, lsb, top


@pytest.mark.nojit
@pytest.mark.parametrize("fmt", [E4M3, E5M2, BF16, np.float16, np.float32])
@pytest.mark.parametrize("scale", [1.0, 2.0**-130, 2.0**100])
def test_exactness_stats_match_oracle(rng, fmt, scale):
    x = _values(rng, fmt, (300,)) * np.float32(scale)
    x[::7] = 0
    for arr in (x, x.astype(np.float64)):
        if _stats_oracle(arr) is not None:
            assert tuple(int(v) for v in fg._stats(arr)) == _stats_oracle(arr)


def _float_arrays():
    """float32/float64 arrays mixing narrow-format values over wide exponent ranges, zeros,
    subnormals and (sometimes) an inf or nan."""
    fmts = st.sampled_from([E4M3, E5M2, BF16, np.float16, np.float32])
    return st.tuples(fmts, st.integers(0, 2**32 - 1), st.integers(-140, 120), st.integers(0, 40),
                     st.sampled_from([np.float32, np.float64]), st.sampled_from([None, np.inf, -np.inf, np.nan]))


def _draw(spec, n=64):
    fmt, seed, shift, spread, dtype, bad = spec
    r = np.random.default_rng(seed)
    with np.errstate(over="ignore"):  # a scale past the dtype's range gives inf: a non-finite case
        x = _values(r, fmt, (n,)).astype(dtype) * np.exp2(shift + r.integers(0, spread + 1, n)).astype(dtype)
    x[r.random(n) < 0.2] = 0
    if bad is not None:
        x[r.integers(n)] = bad
    return x


@settings(max_examples=300, deadline=None)
@given(_float_arrays())
def test_scan_bounds_the_exact_stats(spec):
    """One-pass scan: finite as numpy says; bits and top exact, lsb a lower bound of the oracle's."""
    x = _draw(spec)
    sc = fg.scan(x)
    assert sc.finite == bool(np.isfinite(x).all())
    want = _stats_oracle(x[np.isfinite(x)])
    if sc.finite and want is not None:
        assert (sc.bits, sc.top) == want[::2] and sc.lsb <= want[1]
    if sc.finite and want is None:
        assert tuple(sc[1:]) == (0, 10**6, -(10**6))


@settings(max_examples=300, deadline=None)
@given(_float_arrays(), _float_arrays())
def test_exactness_decisions_equal_the_exact_stats_rules(spec_a, spec_b):
    """products_exact_in_f32 / blas_is_exact decide as the rules on the oracle's exact stats,
    though the scans they start from only bound the lsb."""
    a, b = _draw(spec_a[:-1] + (None,)), _draw(spec_b[:-1] + (None,))
    a[~np.isfinite(a)], b[~np.isfinite(b)] = 0, 0
    sa, sb = _stats_oracle(a) or (0, 10**6, -(10**6)), _stats_oracle(b) or (0, 10**6, -(10**6))
    (ba, la, ta), (bb, lb, tb) = sa, sb
    a2, b2 = a.reshape(8, 8), b.reshape(8, 8)
    assert fg.products_exact_in_f32(a2, b2) == (ba + bb <= 24 and la + lb >= -149 and ta + tb <= 128)
    assert fg.blas_is_exact(a2, b2) == (ba + bb <= 53 and (ta + tb + 3) - (la + lb) <= 53)


def test_exactness_decision_where_only_the_exact_lsb_passes():
    """The scan's lsb bound (least exponent + fewest trailing zeros) fails the f32 rule here; the
    exact lsb passes it, and the fast path must still be taken."""
    a = np.array([[2.0**-70, 1 + 2.0**-3]], np.float32)  # exact lsb -70; bound -70 - 3 = -73
    b = np.array([[2.0**-77], [2.0**-77]], np.float32)
    assert fg.scan(a).lsb + fg.scan(b).lsb < -149 <= _stats_oracle(a)[1] + _stats_oracle(b)[1]
    assert fg.products_exact_in_f32(a, b)
