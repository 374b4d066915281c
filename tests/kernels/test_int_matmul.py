"""Integer matmul / conv kernels against the numpy oracles in reference.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import kernel_api
from hwsim.errors import ConfigError, InputDataError, ShapeError
from tests.kernels import reference as ref
from tests.kernels.gemm_routes import route  # noqa: F401 (a fixture: both tile routes)

DTYPES = [np.int8, np.uint8, np.int16]
MODES = ["wrap", "saturate", "none"]


def _rand(rng, dtype, shape, lo=None, hi=None):
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(0, 70), n=st.integers(1, 9),
       da=st.sampled_from(DTYPES), db=st.sampled_from(DTYPES), mode=st.sampled_from(MODES),
       bits=st.sampled_from([12, 16, 20, 32]), seed=st.integers(0, 2**31))
def test_int_matmul_matches_oracle(m, k, n, da, db, mode, bits, seed):
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, da, (m, k)), _rand(rng, db, (k, n))
    got = kernel_api.int_matmul(a, b, acc_bits=bits, overflow=mode)
    want = ref.int_matmul(a, b, bits if mode != "none" else 64, mode)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


@pytest.mark.nojit
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pairwise", [False, True])
def test_small_acc_overflows(rng, mode, pairwise):
    a, b = _rand(rng, np.uint8, (4, 33)), _rand(rng, np.int8, (33, 3))
    got = kernel_api.int_matmul(a, b, acc_bits=12, overflow=mode, pairwise_int16=pairwise)
    want = ref.int_matmul(a, b, 12 if mode != "none" else 64, mode, pairwise)
    np.testing.assert_array_equal(got, want)
    if mode != "none":  # overflow really happened
        assert not np.array_equal(got, a.astype(np.int64) @ b)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 300), mode=st.sampled_from(MODES), seed=st.integers(0, 2**31))
def test_pairwise_int16_matches_oracle(k, mode, seed):
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, np.uint8, (3, k), 200), _rand(rng, np.int8, (k, 4))
    got = kernel_api.int_matmul(a, b, 20, mode, pairwise_int16=True)
    np.testing.assert_array_equal(got, ref.int_matmul(a, b, 20 if mode != "none" else 64, mode, True))


def test_pairwise_saturates_int16(rng):
    a = np.full((1, 4), 255, np.uint8)
    b = np.full((4, 1), 127, np.int8)
    assert kernel_api.int_matmul(a, b, pairwise_int16=True)[0, 0] == 2 * 32767
    assert kernel_api.int_matmul(a, b)[0, 0] == 4 * 255 * 127


def test_batched_and_large_k(rng):
    a, b = _rand(rng, np.uint8, (2, 3, 5000)), _rand(rng, np.uint8, (5000, 7))
    exact = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(kernel_api.int_matmul(a, b, overflow="none"), exact)
    np.testing.assert_array_equal(kernel_api.int_matmul(a, b, 24, "wrap"), ref.wrap(exact, 24).astype(np.int64))


def test_wide_inputs_fall_back_to_exact_loop(rng):
    a, b = _rand(rng, np.int32, (3, 20)), _rand(rng, np.int32, (20, 2), -1000, 1000)
    np.testing.assert_array_equal(kernel_api.int_matmul(a, b, 64, "none"), a.astype(np.int64) @ b)


CONV_CASES = [  # (x shape, w shape, stride, pads, dilation, groups)
    ((1, 3, 7, 7), (4, 3, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((2, 4, 9, 8), (6, 2, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2),
    ((1, 6, 5, 6), (6, 1, 3, 3), (1, 2), (1, 1, 1, 1), (1, 1), 6),
    ((2, 2, 4, 4), (3, 2, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((1, 8, 6, 6), (4, 4, 2, 2), (2, 2), (1, 1, 0, 0), (2, 1), 2),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("mode,bits", [("wrap", 12), ("saturate", 12), ("none", 64), ("wrap", 32)])
def test_int_conv2d_matches_oracle(rng, case, mode, bits):
    xs, ws, stride, pads, dil, groups = case
    x, w = _rand(rng, np.uint8, xs), _rand(rng, np.int8, ws)
    wzp = rng.integers(-3, 4, ws[0])
    got = kernel_api.int_conv2d(x, w, stride, pads, dil, groups, bits, mode, 17, wzp)
    want = ref.int_conv2d(x, w, stride, pads, dil, groups, bits, mode, 17, wzp)
    np.testing.assert_array_equal(got, want)


@pytest.mark.nojit
@pytest.mark.parametrize("mode", MODES)
def test_int_conv2d_small_nojit(rng, mode):
    x, w = _rand(rng, np.uint8, (1, 4, 5, 5)), _rand(rng, np.int8, (4, 2, 2, 3))
    got = kernel_api.int_conv2d(x, w, (2, 1), (1, 0, 0, 1), (1, 2), 2, 14, mode, 100, 3)
    want = ref.int_conv2d(x, w, (2, 1), (1, 0, 0, 1), (1, 2), 2, 14 if mode != "none" else 64,
                          mode, 100, 3)
    np.testing.assert_array_equal(got, want)


@pytest.mark.nojit
def test_exact_blas_path_small_nojit(rng):
    a, b = _rand(rng, np.uint8, (3, 40)), _rand(rng, np.int8, (40, 5))
    np.testing.assert_array_equal(kernel_api.int_matmul(a, b, 16, "wrap"), ref.int_matmul(a, b, 16, "wrap"))


def test_errors():
    a8 = np.zeros((2, 3), np.int8)
    with pytest.raises(ShapeError):
        kernel_api.int_matmul(a8, np.zeros((4, 2), np.int8))
    with pytest.raises(InputDataError):
        kernel_api.int_matmul(a8.astype(np.float32), np.zeros((3, 2), np.int8))
    with pytest.raises(ConfigError, match="saturate"):
        kernel_api.int_matmul(a8, np.zeros((3, 2), np.int8), overflow="clip")
    with pytest.raises(ConfigError):
        kernel_api.int_matmul(a8, np.zeros((3, 2), np.int8), acc_bits=1)
    with pytest.raises(ShapeError):
        kernel_api.int_conv2d(np.zeros((1, 3, 4, 4), np.int8), np.zeros((2, 2, 3, 3), np.int8))
    with pytest.raises(ShapeError):
        kernel_api.int_conv2d(np.zeros((1, 3, 2, 2), np.int8), np.zeros((2, 3, 3, 3), np.int8))


def test_qlinear_pairwise_adds_zero_point_terms_after_the_raw_sum(rng):
    """pairwise_int16 models MLAS: raw u8*s8 pairs saturate, zero-point terms are exact."""
    a, b = _rand(rng, np.uint8, (5, 37)), _rand(rng, np.int8, (37, 4))
    azp, bzp = 131, -3
    raw = ref.int_matmul(a, b, 64, "none", pairwise=True)
    acc = raw - bzp * a.astype(np.int64).sum(1, keepdims=True) - azp * b.astype(np.int64).sum(0) \
        + 37 * azp * bzp
    one = np.array(1.0, np.float32)
    got = kernel_api.qlinear_matmul(a, one, np.uint8(azp), b, one, np.int8(bzp), np.array(512.0, np.float32),
                             np.uint8(128), requant="onnxruntime", pairwise_int16=True)
    want = kernel_api.requantize(acc, np.float32(1 / 512), 128, "onnxruntime", np.uint8)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(raw, a.astype(np.int64) @ b)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 6), k=st.integers(0, 80), n=st.integers(1, 7), seed=st.integers(0, 2**31),
       da=st.sampled_from([np.uint8, np.int8, np.int16]), db=st.sampled_from([np.int8, np.uint8]),
       extreme=st.booleans(), bits=st.sampled_from([32, 64]))
def test_pairwise_exact_minus_excess_matches_oracle(m, k, n, seed, da, db, extreme, bits):
    """The BLAS product minus the pair excess equals the sequential int16-pair oracle, including
    operands at the ends of their ranges (every pair saturating, both signs) and an odd last k."""
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, da, (m, k)), _rand(rng, db, (k, n))
    if extreme:
        ia, ib = np.iinfo(da), np.iinfo(db)
        a = rng.choice(np.array([ia.min, ia.max, 0], np.int64), (m, k)).astype(da)
        b = rng.choice(np.array([ib.min, ib.max], np.int64), (k, n)).astype(db)
    got = kernel_api.int_matmul(a, b, bits, "wrap", pairwise_int16=True)
    np.testing.assert_array_equal(got, ref.int_matmul(a, b, bits, "wrap", True))
    excess = kernel_api._ig.pair_excess(a, b)
    np.testing.assert_array_equal(a.astype(np.int64) @ b.astype(np.int64) - excess,
                                  ref.int_matmul(a, b, 64, "none", True))


@settings(max_examples=25, deadline=None)
@given(dx=st.sampled_from([np.uint8, np.int8, np.int16, np.uint16, "int64 in int16"]), seed=st.integers(0, 2**31),
       mode_bits=st.sampled_from([("wrap", 32), ("wrap", 16), ("none", 64)]), extreme=st.booleans(),
       cg=st.sampled_from([1, 5, 70, 130]), groups=st.sampled_from([1, 2]), dw=st.sampled_from([np.int8, np.uint8]))
def test_int_conv2d_8bit_patches_match_oracle(dx, seed, mode_bits, extreme, cg, groups, dw, route):
    """8-bit patches padded with the zero point (x @ w - zx * colsum w): max-magnitude codes,
    zero points at the ends of the range, K = cg * 9 past one float32 chunk (2**24 / (255 * 128));
    8-bit weights with zero point 0 are multiplied as they are (no int64 copy); 16-bit codes (also
    held as int64, as qspec.codes gives them) as two byte planes on the VNNI route."""
    rng = np.random.default_rng(seed)
    mode, bits = mode_bits
    held = np.int64 if dx == "int64 in int16" else None
    dx = np.int16 if held else dx
    x, w = _rand(rng, dx, (1, cg * groups, 5, 4)), _rand(rng, dw, (3 * groups, cg, 3, 3))
    info, winfo = np.iinfo(dx), np.iinfo(dw)
    if extreme:
        x = rng.choice(np.array([info.min, info.max], np.int64), x.shape).astype(dx)
        w = rng.choice(np.array([winfo.min, winfo.max], np.int64), w.shape).astype(dw)
    x = x.astype(held) if held else x
    xzp = int(rng.choice([info.min, info.max, 0]))
    got = kernel_api.int_conv2d(x, w, (1, 2), (1, 2, 0, 1), (1, 1), groups, bits, mode, xzp, 0)
    want = ref.int_conv2d(x, w, (1, 2), (1, 2, 0, 1), (1, 1), groups, bits, mode, xzp, 0)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [1023, 1024, 1025, 2049])
@pytest.mark.parametrize("da,db", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8), (np.int16, np.int8)])
def test_exact_gemm_at_max_magnitude_across_float32_chunks(rng, k, da, db):
    """Float32 chunks stay exact where every product is at the edge of the range (all-max and
    all-min operands, and random extremes) and K crosses the 2**24 / (max|a| max|b|) chunk length."""
    ia, ib = np.iinfo(da), np.iinfo(db)
    cases = [(np.full((3, k), ia.max, da), np.full((k, 4), ib.min, db)),
             (np.full((3, k), ia.min, da), np.full((k, 4), ib.min, db)),
             (rng.choice(np.array([ia.min, ia.max]), (3, k)).astype(da),
              rng.choice(np.array([ib.min, ib.max]), (k, 4)).astype(db))]
    for a, b in cases:
        want = a.astype(np.int64) @ b.astype(np.int64)
        np.testing.assert_array_equal(kernel_api.int_matmul(a, b, 64, "none"), want)
        np.testing.assert_array_equal(kernel_api.int_matmul(a, b, 32, "wrap"), ref.wrap(want, 32).astype(np.int64))


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 70), n=st.integers(1, 40), pairwise=st.booleans(),
       seed=st.integers(0, 2**31))
def test_hosts_without_avx2_take_the_blas_route(m, k, n, pairwise, seed):
    """With the AVX2 kernels reported unavailable (a CI host without AVX2), exact and pairwise u8 x s8
    products run on the float32-BLAS / pair-excess route with JIT on, and still equal the oracle."""
    from hwsim.kernels import simdgemm

    rng = np.random.default_rng(seed)
    a, b = _rand(rng, np.uint8, (m, k)), _rand(rng, np.int8, (k, n))
    saved = simdgemm.available
    simdgemm.available = lambda: False
    try:
        got = kernel_api.int_matmul(a, b, 64, "none", pairwise_int16=pairwise)
    finally:
        simdgemm.available = saved
    np.testing.assert_array_equal(got, ref.int_matmul(a, b, 64, "none", pairwise=pairwise))


@settings(max_examples=60, deadline=None)
@given(batch=st.integers(0, 4), m=st.integers(1, 6), k=st.integers(0, 40), n=st.integers(1, 6),
       da=st.sampled_from(DTYPES + [np.int32]), db=st.sampled_from(DTYPES + [np.int32]),
       mode=st.sampled_from(MODES), bits=st.sampled_from([12, 20, 32, 48]), seed=st.integers(0, 2**31))
def test_int_matmul_stack_matches_oracle(batch, m, k, n, da, db, mode, bits, seed):
    """Each matrix of the stack as the oracle; int32 operands reach the float64 product (int16 x
    int16) and past its exactness bound (one matrix at a time)."""
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, da, (batch, m, k)), _rand(rng, db, (batch, k, n))
    got = kernel_api.int_matmul_stack(a, b, acc_bits=bits, overflow=mode)
    assert got.dtype == np.int64 and got.shape == (batch, m, n)
    for i in range(batch):
        np.testing.assert_array_equal(got[i], ref.int_matmul(a[i], b[i], bits if mode != "none" else 64, mode))


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_int_matmul_stack_wraps_like_each_matrix(rng, dtype):
    """int16 x int16 attention products at k = 128 overflow an int32 accumulator: the stacked
    product wraps as the oracle does (and int32 operands take the per-matrix fallback)."""
    a, b = _rand(rng, dtype, (3, 5, 128), 20000), _rand(rng, dtype, (3, 128, 4), 20000)
    got = kernel_api.int_matmul_stack(a, b)
    want = np.stack([ref.int_matmul(a[i], b[i], 32, "wrap") for i in range(3)])
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, np.matmul(a.astype(np.int64), b.astype(np.int64)))  # it did overflow


def test_int_matmul_stack_shapes():
    with pytest.raises(ShapeError, match="int_matmul_stack"):
        kernel_api.int_matmul_stack(np.zeros((2, 3, 4), np.int8), np.zeros((3, 4, 5), np.int8))


@pytest.mark.skipif(not __import__("hwsim.kernels.simdgemm", fromlist=["x"]).available(), reason="no SIMD tiles here")
def test_wide_codes_of_narrow_range_reach_the_tiles_narrow(monkeypatch):
    """int64 codes of a 4-bit and a 16-bit format (what qspec.codes gives them) are multiplied as
    int8 / int16 on the tiles (8-bit operands on VPDPBUSD): exact, the same int64 result."""
    from hwsim.kernels import intgemm, simdgemm

    rng = np.random.default_rng(4)
    a = rng.integers(-32767, 32767, (33, 70), endpoint=True)
    w4 = rng.integers(-8, 7, (70, 19), endpoint=True)
    a8 = rng.integers(-127, 127, (33, 70), endpoint=True)  # |a| <= 127: int8 (a -128 would need int16)
    seen = []
    real = simdgemm.madd16
    monkeypatch.setattr(simdgemm, "madd16", lambda x, y, *r: seen.append((x.dtype, y.dtype)) or real(x, y, *r))
    for x, y in ((a, w4), (a8, w4), (a8.astype(np.int16), w4.astype(np.int32)), (a8 - 1, w4)):
        np.testing.assert_array_equal(intgemm.exact_matmul(x, y), x.astype(np.int64) @ y.astype(np.int64))
    i8, u8, i16 = np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)
    a16 = [(i8, i8), (u8, i8)] if simdgemm.wide() else [(i16, i8)]  # int16 A as byte planes on VNNI
    assert seen == a16 + [(i8, i8), (i8, i8)] + a16


@pytest.mark.skipif(not __import__("hwsim.kernels.simdgemm", fromlist=["x"]).wide(), reason="no AVX-512 VNNI tiles here")
@given(st.integers(1, 40), st.integers(1, 700), st.integers(1, 40), st.sampled_from([np.int8, np.uint8]),
       st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_int16_times_8bit_as_byte_planes_is_exact(m, k, n, bdt, seed):
    """int16 A x 8-bit B as two VPDPBUSD products of A's byte planes: the exact int64 product,
    the extremes of int16 included."""
    from hwsim.kernels import intgemm

    rng = np.random.default_rng(seed)
    a = rng.integers(-32768, 32767, (m, k), endpoint=True).astype(np.int16)
    a.flat[rng.integers(0, a.size, 3)] = [-32768, 32767, -1]
    b = rng.integers(np.iinfo(bdt).min, np.iinfo(bdt).max, (k, n), endpoint=True).astype(bdt)
    want = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(intgemm._dot_byte_planes(a, b, int(np.abs(b.astype(np.int64)).max())), want)
    np.testing.assert_array_equal(intgemm.exact_matmul(a.astype(np.int64), b), want)


@pytest.mark.skipif(not __import__("hwsim.kernels.simdgemm", fromlist=["x"]).wide(), reason="no AVX-512 VNNI tiles here")
@pytest.mark.parametrize("lo, hi", [(-32768, 32767), (0, 65535), (-32768, 0)])
def test_16bit_values_of_wider_types_take_the_byte_planes(monkeypatch, lo, hi):
    """int64 codes spanning int16 down to -32768 (a symmetric 16-bit format's lowest code, which
    a bound of 32768 alone cannot tell from 32768) or uint16's range are multiplied as byte planes
    on the 8-bit tiles, through kernel_api as the simulator calls it: the exact int64 product;
    one value past 16 bits leaves the tiles (float BLAS chunks), exact too."""
    from hwsim.kernels import intgemm, simdgemm

    rng = np.random.default_rng(hi - lo)
    a = rng.integers(lo, hi, (40, 300), endpoint=True)
    a.flat[:2] = [lo, hi]
    b = rng.integers(-128, 127, (300, 24), endpoint=True).astype(np.int8)
    seen = []
    real = simdgemm.madd16
    monkeypatch.setattr(simdgemm, "madd16", lambda x, y, *r: seen.append(x.dtype) or real(x, y, *r))
    want = a @ b.astype(np.int64)
    np.testing.assert_array_equal(kernel_api.int_matmul(a, b, 64, "none"), want)
    assert len(seen) == 2 and all(d.itemsize == 1 for d in seen)
    seen.clear()
    a.flat[0] = lo - 1 if lo < 0 else hi + 1
    np.testing.assert_array_equal(kernel_api.int_matmul(a, b, 64, "none"), a @ b.astype(np.int64))
    assert not seen
    u8 = rng.integers(0, 255, (40, 300), endpoint=True).astype(np.uint8)  # e.g. a byte plane's patches
    np.testing.assert_array_equal(intgemm.exact_matmul(u8, b, bounds=(255, 128)), u8.astype(np.int64) @ b)
    assert seen == [np.dtype(np.uint8)]  # one 8-bit product, not split again
