"""The AMX-INT8 route of simdgemm.requant_product_stack (hwsim.kernels.amxint8) against the
plain-numpy oracles (the exact integer product, the corrections, onnxruntime's
MlasRequantizeOutput formula) and against the VNNI tiles it stands in for."""

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import amxint8, simdgemm

from tests.kernels import reference as ref

pytestmark = pytest.mark.skipif(not amxint8.available(), reason="needs AMX-INT8 (amx-tile, amx-int8), numba JIT")


@contextlib.contextmanager
def _counting():
    """Every product on the tiles, however small; yields the list of the tiles' driver calls."""
    calls = []
    driver = amxint8.requant_gemm
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(amxint8, "MIN_MACS", 0)
        mp.setattr(amxint8, "requant_gemm", lambda *args: (calls.append(args[3]), driver(*args)))
        yield calls


@pytest.fixture
def counted():
    with _counting() as calls:
        yield calls


def _codes(rng, shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 70), k=st.sampled_from([64, 128, 192, 768, 1024, 3072]), n=st.integers(1, 70),
       seed=st.integers(0, 2**31), a_type=st.sampled_from([np.uint8, np.int8]),
       b_type=st.sampled_from([np.int8, np.uint8]), out=st.sampled_from([(0, 255), (-128, 127), (10, 200)]),
       scale=st.sampled_from(["tie", "small", "big"]), a_zero_point=st.sampled_from([0, 3]),
       extreme=st.booleans())
def test_requant_product_on_amx_is_requant_of_the_product(m, k, n, seed, a_type, b_type, out, scale,
                                                          a_zero_point, extreme):
    """M and N off the 32 x 32 blocks, K in whole 64-k steps (one and many), both operand signs
    (int8 A flipped to uint8, uint8 B flipped to int8, the shifts taken back by the row and column
    terms), exact halves (mult 0.5) for the half-even rounding, outputs that clamp at both ends,
    every code at its extreme (the int32 sums near their largest)."""
    rng = np.random.default_rng(seed)
    a, b = _codes(rng, (m, k), a_type), _codes(rng, (k, n), b_type)
    if extreme:
        a[:] = np.iinfo(a_type).max if a_type == np.uint8 else np.iinfo(a_type).min
        b[:] = np.iinfo(b_type).min
    col, row = rng.integers(-70000, 70000, n), rng.integers(-70000, 70000, m)
    mult = {"tie": np.full(n, 0.5), "small": rng.random(n) * 2e-6, "big": rng.random(n) * 0.05}[scale]
    lo, hi = out
    zp = rng.integers(lo, hi, n, endpoint=True)
    with _counting() as counted:
        got = simdgemm.requant_product(a, b, False, col, row, mult.astype(np.float32), zp, lo, hi, a_zero_point)
    acc = ref.int_matmul(a.astype(np.int64) - a_zero_point, b.astype(np.int64), 64, "none") + col + row[:, None]
    assert counted, "the product did not run on the AMX tiles"
    np.testing.assert_array_equal(got, ref.requant_ort(acc, mult, zp, lo, hi))


@pytest.mark.parametrize("keep", [False, True])
def test_a_stack_on_amx_equals_the_vnni_tiles(counted, monkeypatch, keep):
    """Attention's per-head products (a stack of 12, K^T packed anew, or weights kept) on the AMX
    tiles give the VNNI tiles' codes, code for code; a weight transposed in memory too."""
    rng = np.random.default_rng(3)
    a, b = _codes(rng, (12, 130, 64), np.uint8), _codes(rng, (12, 128, 64), np.int8).transpose(0, 2, 1)
    col, row = rng.integers(-5000, 5000, (12, 128)), rng.integers(-5000, 5000, (12, 130))
    mult, zp = np.full(128, 3e-4, np.float32), np.full(128, 128)
    got = simdgemm.requant_product_stack(a, b, False, col, row, mult, zp, 0, 255, 7, keep)
    assert len(counted) == 12
    monkeypatch.setattr(amxint8, "_host_amx_int8", lambda: False)
    np.testing.assert_array_equal(got, simdgemm.requant_product_stack(a, b, False, col, row, mult, zp, 0, 255, 7, keep))


def test_products_the_tiles_do_not_take_stay_on_vnni(counted):
    """K not in whole 64-k steps (the panels' quads are not a multiple of 16), saturating pairs and
    16-bit operands: the VNNI or AVX2 tiles, not AMX."""
    rng = np.random.default_rng(4)
    a, b = _codes(rng, (40, 100), np.uint8), _codes(rng, (100, 40), np.int8)
    one = (np.zeros(40), None, np.full(40, 1e-3, np.float32), np.zeros(40))
    simdgemm.requant_product(a, b, False, *one, 0, 255)
    simdgemm.requant_product(a[:, :64], b[:64], True, *one, 0, 255)
    assert not counted
    simdgemm.requant_product(a[:, :64], b[:64], False, *one, 0, 255)
    assert len(counted) == 1
