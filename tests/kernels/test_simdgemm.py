"""The multiply-add GEMM kernels (hwsim.kernels.simdgemm) against the plain-numpy oracle, on the
AVX2 tiles and, where the host has AVX-512 VNNI, on the ZMM tiles (the ``route`` fixture)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import simdgemm

from tests.kernels import reference as ref
from tests.kernels.gemm_routes import route  # noqa: F401 (a fixture: both tile routes)

pytestmark = pytest.mark.skipif(not simdgemm.available(), reason="needs an AVX2 host and numba JIT")


def _operands(rng, m, k, n, lo_a, hi_a, lo_b, hi_b, extreme):
    a = rng.integers(lo_a, hi_a, (m, k), endpoint=True)
    b = rng.integers(lo_b, hi_b, (k, n), endpoint=True)
    if extreme:  # every pair at the largest magnitude: saturates, and fills the int32 lanes
        a[:], b[:] = hi_a, (lo_b if extreme == "low" else hi_b)
    return a, b


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 11), k=st.integers(1, 300), n=st.integers(1, 37), seed=st.integers(0, 2**31),
       ranges=st.sampled_from([(0, 255, 0, 255), (-128, 127, -128, 127), (0, 255, -128, 127), (-255, 255, -255, 255)]),
       dtype=st.sampled_from([np.int64, "narrow", "narrow b"]), extreme=st.sampled_from([None, "high", "low"]))
def test_madd16_is_the_exact_product(m, k, n, seed, ranges, dtype, extreme, route):
    """int16 panels (wide B), and 8-bit panels widened in the register (uint8 B zero-extended,
    int8 B sign-extended), with 8-bit or wider A."""
    a, b = _operands(np.random.default_rng(seed), m, k, n, *ranges, extreme)
    if dtype != np.int64 and ranges[0] >= -128 and ranges[3] <= 255:
        if dtype == "narrow":
            a = a.astype(np.uint8 if ranges[0] == 0 else np.int8)
        b = b.astype(np.uint8 if ranges[2] == 0 else np.int8)
    got = simdgemm.madd16(a, b, int(np.abs(a).max()), int(np.abs(b).max()))
    np.testing.assert_array_equal(got, ref.int_matmul(a, b, 64, "none"))


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 11), k=st.integers(1, 300), n=st.integers(1, 37), seed=st.integers(0, 2**31),
       extreme=st.sampled_from([None, "high", "low"]))
def test_maddubs_saturates_pairs_like_the_oracle(m, k, n, seed, extreme, route):
    a, b = _operands(np.random.default_rng(seed), m, k, n, 0, 255, -128, 127, extreme)
    got = simdgemm.maddubs(a.astype(np.uint8), b.astype(np.int8))
    np.testing.assert_array_equal(got, ref.int_matmul(a, b, 64, "none", pairwise=True))


def test_long_k_is_split_where_int32_would_overflow(route):
    """u8 x u8 at 255: one int32 lane holds 33 025 products; k = 70 001 needs three chunks."""
    a, b = np.full((5, 70001), 255, np.uint8), np.full((70001, 3), 255, np.uint8)
    np.testing.assert_array_equal(simdgemm.madd16(a, b, 255, 255), np.full((5, 3), 70001 * 255 * 255))
    s = np.full((70001, 3), -128, np.int8)
    np.testing.assert_array_equal(simdgemm.maddubs(a, s), np.full((5, 3), -32768 * 35000 + 255 * -128))


def test_operands_too_wide_are_refused():
    assert simdgemm.fits(255, 255) and not simdgemm.fits(32767, 32767)
    with pytest.raises(ValueError, match="exactly"):
        simdgemm.madd16(np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), 32767, 32767)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 200), n=st.integers(1, 37), seed=st.integers(0, 2**31),
       spread=st.sampled_from([1.0, 64.0, 2.0**-6]))
def test_seq_fp32_rounds_every_step_like_the_loop(m, k, n, seed, spread, route):
    """FP8 E4M3 operands (products exact in float32); each k step rounded to float32, in order."""
    import ml_dtypes

    rng = np.random.default_rng(seed)
    a, b = ((rng.standard_normal(s) * spread).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
            for s in ((m, k), (k, n)))
    got = simdgemm.seq_fp32(a, b)
    np.testing.assert_array_equal(got, ref.float_matmul_loop(a, b, np.float32))


@settings(max_examples=6, deadline=None)
@given(m=st.integers(513, 600), k=st.integers(257, 700), n=st.integers(129, 200), seed=st.integers(0, 2**31))
def test_seq_fp32_threads_k_blocks_and_partial_panels(m, k, n, seed, route):
    """The threaded float32 kernel packs B block by block in its work items: several K blocks
    (KC = 256), work items in both directions, a partial last panel; every step in order."""
    import ml_dtypes

    rng = np.random.default_rng(seed)
    a, b = ((rng.standard_normal(s) * 4).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
            for s in ((m, k), (k, n)))
    assert m * n * k >= simdgemm._PARALLEL_MACS
    a_s, b_s = a[:5], b[:, :3]  # the whole-array oracle against the loop, and the serial kernel
    want = ref.float_matmul_loop(a_s, b_s, np.float32)
    np.testing.assert_array_equal(ref.float32_seq_matmul(a_s, b_s), want)
    np.testing.assert_array_equal(simdgemm.seq_fp32(a_s, b_s), want)
    np.testing.assert_array_equal(simdgemm.seq_fp32(a, b), ref.float32_seq_matmul(a, b))


@settings(max_examples=6, deadline=None)
@given(m=st.integers(513, 700), n=st.integers(129, 200), seed=st.integers(0, 2**31), saturate=st.booleans())
def test_threads_claim_every_block_once(m, n, seed, saturate, route):
    """Products big enough for the threaded kernel and for several work items in both directions
    (row blocks of 512 rows, column blocks of 128): every output comes out once and exact."""
    a, b = _operands(np.random.default_rng(seed), m, 70, n, 0, 255, -128, 127, None)
    a, b = a.astype(np.uint8), b.astype(np.int8)
    assert m * n * 70 >= simdgemm._PARALLEL_MACS
    got = simdgemm.maddubs(a, b) if saturate else simdgemm.madd16(a, b, 255, 128)
    np.testing.assert_array_equal(got, ref.int_matmul(a, b, 64, "none", pairwise=saturate))


def test_a_weight_changed_in_place_is_packed_again(route):
    """The packed-operand cache is keyed by content: the same array object, changed in place after
    its pack was kept, gives the product of its new values (and an equal copy reuses the pack)."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 255, (6, 50), endpoint=True).astype(np.uint8)
    b = rng.integers(-128, 127, (50, 20), endpoint=True).astype(np.int8)
    for _ in range(3):  # kept from the second call on
        np.testing.assert_array_equal(simdgemm.maddubs(a, b), ref.int_matmul(a, b, 64, "none", pairwise=True))
    b[7, 3] += 1
    np.testing.assert_array_equal(simdgemm.maddubs(a, b), ref.int_matmul(a, b, 64, "none", pairwise=True))
    np.testing.assert_array_equal(simdgemm.madd16(a, b, 255, 128), ref.int_matmul(a, b, 64, "none"))
    f = (a.astype(np.float32), b.astype(np.float32))
    np.testing.assert_array_equal(simdgemm.seq_fp32(*f), ref.float_matmul_loop(*f, np.float32))


@pytest.mark.parametrize("types", [("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8"), ("int8", "uint8")])
def test_every_sign_pair_at_its_extremes_across_chunks(types, route):
    """Both 8-bit operands at their largest magnitudes (the ZMM route's VPDPBUSD takes int8 A as
    a + 128 and uint8 B as b - 128 and undoes it with row and column sums) for K past one chunk
    of exact int32 sums (65 536 k on VPDPBUSD), with rows and columns off the tile grid."""
    k = 65536 + 37
    ia, ib = np.iinfo(types[0]), np.iinfo(types[1])
    for va, vb in ((ia.min, ib.min), (ia.min, ib.max), (ia.max, ib.min), (ia.max, ib.max)):
        a, b = np.full((9, k), va, types[0]), np.full((k, 17), vb, types[1])
        a[3, 5], b[7, 16] = ia.max - 1, ib.min + 1  # one value off the constant
        want = ref.int_matmul(a[:, :8], b[:8], 64, "none") + (k - 8) * int(va) * int(vb)
        np.testing.assert_array_equal(simdgemm.madd16(a, b, 255, 255), want)


def test_the_zmm_route_is_taken_where_the_host_has_avx512_vnni(monkeypatch):
    """This host's route: VPDPBUSD for 8-bit x 8-bit, VPDPWSSD for wider, the saturating pairs
    on the zmm tile of VPMADDUBSW. Without the AVX-512 features the AVX2 tiles are taken."""
    u8, s8, i16 = np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16)
    if simdgemm._host_vnni():
        assert simdgemm.wide()
        routes = [simdgemm._route(a, b, False) for a, b in ((u8, s8), (s8, u8), (i16, s8))]
        assert routes == ["dpbusd", "dpbusd", "dpwssd"] and simdgemm._route(u8, s8, True) == "maddubs-zmm"
    monkeypatch.setattr(simdgemm, "_host_vnni", lambda: False)
    assert not simdgemm.wide() and simdgemm._route(u8, s8, False) == "madd"
    assert simdgemm._route(u8, s8, True) == "maddubs"


@pytest.mark.parametrize("b_value", [127, -127])
def test_int16_codes_past_int32_sum_exactly(b_value, route):
    """uint16 A below 2**15 (read as int16 without a copy) by int8 B at their largest magnitudes:
    K = 3001 makes the sums pass int32 (12.5e9), so the blocks of K (each exact in int32) are
    added in int64: by the ZMM tile into its int64 output, on AVX2 in chunks."""
    k = 3001
    a = np.full((9, k), 32767, np.uint16)
    b = np.full((k, 17), b_value, np.int8)
    a[2, 7], b[4, 3] = 1, 0
    want = ref.int_matmul(a[:, :8], b[:8], 64, "none") + (k - 8) * 32767 * b_value
    got = simdgemm.madd16(a, b, 32767, 127)
    assert abs(int(want.max())) > 2**31 or abs(int(want.min())) > 2**31
    np.testing.assert_array_equal(got, want)


def test_seq_fp32_work_items_across_columns(route):
    """More columns than one float32 work item holds (32 panels on the ZMM route, 8 on AVX2),
    an odd panel count (the ZMM route pads it to even) and rows past one item: every step in
    order, each output once."""
    import ml_dtypes

    rng = np.random.default_rng(21)
    a, b = ((rng.standard_normal(s) * 4).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
            for s in ((523, 300), (300, 530)))
    np.testing.assert_array_equal(simdgemm.seq_fp32(a, b), ref.float32_seq_matmul(a, b))


@given(st.integers(1, 70), st.integers(1, 40), st.integers(1, 80), st.booleans(), st.booleans(),
       st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_column_sums_are_the_sums_of_the_packed_quads(k, n, chunk, flip, trans, seed):
    """The column sums packed beside VPDPBUSD's quads (read from B itself) equal the sums over
    each chunk's panels as packed (uint8 B as b - 128 with ``flip``; zero padding columns)."""
    rng = np.random.default_rng(seed)
    dt = np.uint8 if flip else np.int8
    b = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, (n, k) if trans else (k, n), endpoint=True).astype(dt)
    chunk = -(-chunk // 4) * 4  # chunks hold whole quads
    packed = simdgemm._pack_b_quads(b, chunk, flip, trans)
    panels, sums = packed[:len(packed) // 2], packed[len(packed) // 2:]
    assert len(panels) == len(sums) == -(-k // chunk)
    for p, s in zip(panels, sums):
        np.testing.assert_array_equal(s, p.reshape(p.shape[0], p.shape[1], simdgemm.NR, 4).sum((1, 3), dtype=np.int64)
                                      .reshape(-1))
