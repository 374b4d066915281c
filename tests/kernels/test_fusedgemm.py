"""The GEMM with requantization in its epilogue (simdgemm.requant_product) against the
plain-numpy oracles: the integer product (saturated pairs or exact), plus the corrections, then
onnxruntime's MlasRequantizeOutput formula."""

from contextlib import contextmanager, nullcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import simdgemm
from hwsim.kernels.codesums import k_sums

from tests.kernels import reference as ref
from tests.kernels.gemm_routes import route  # noqa: F401 (a fixture: both tile routes)

pytestmark = pytest.mark.skipif(not simdgemm.available(), reason="needs an AVX2 host and numba JIT")


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 13), k=st.sampled_from([1, 3, 27, 96, 511, 513, 1025, 2100]), n=st.integers(1, 40),
       seed=st.integers(0, 2**31), saturate=st.booleans(), b_type=st.sampled_from(["int8", "uint8"]),
       out=st.sampled_from([(0, 255), (-128, 127), (10, 200)]), scale=st.sampled_from(["tie", "small", "big"]))
def test_requant_product_is_requant_of_the_product(m, k, n, seed, saturate, b_type, out, scale, route):
    """K past one block of the kernel (partial sums kept between blocks), M and N off the tile
    grid, exact halves (mult 0.5) for the half-even rounding, outputs that clamp at both ends."""
    rng = np.random.default_rng(seed)
    b_type = "int8" if saturate else b_type  # VPMADDUBSW multiplies uint8 by int8
    info = np.iinfo(b_type)
    a = rng.integers(0, 255, (m, k), endpoint=True).astype(np.uint8)
    b = rng.integers(info.min, info.max, (k, n), endpoint=True).astype(b_type)
    col, row = rng.integers(-70000, 70000, n), rng.integers(-70000, 70000, m)
    mult = {"tie": np.full(n, 0.5), "small": rng.random(n) * 2e-4, "big": rng.random(n) * 0.05}[scale]
    lo, hi = out
    zp = rng.integers(lo, hi, n, endpoint=True)
    got = simdgemm.requant_product(a, b, saturate, col, row, mult.astype(np.float32), zp, lo, hi)
    acc = ref.int_matmul(a, b, 64, "none", pairwise=saturate) + col + row[:, None]
    want = ref.requant_ort(acc, mult, zp, lo, hi)
    assert got.dtype == (np.uint8 if lo >= 0 else np.int8)
    np.testing.assert_array_equal(got, want)


def test_threaded_requant_product_without_row_terms(route):
    """Big enough for the threaded kernel and several work items; no row corrections."""
    rng = np.random.default_rng(5)
    a = rng.integers(0, 255, (700, 300), endpoint=True).astype(np.uint8)
    b = rng.integers(-128, 127, (300, 150), endpoint=True).astype(np.int8)
    col = rng.integers(-1000, 1000, 150)
    mult, zp = np.full(150, 1e-3, np.float32), np.full(150, 7)
    assert 700 * 300 * 150 >= simdgemm._PARALLEL_MACS
    got = simdgemm.requant_product(a, b, True, col, None, mult, zp, 0, 255)
    want = ref.requant_ort(ref.int_matmul(a, b, 64, "none", pairwise=True) + col, mult, zp, 0, 255)
    np.testing.assert_array_equal(got, want)


def test_requant_product_refuses_what_it_cannot_compute():
    a, b = np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.int8)
    one = (np.zeros(2), None, np.ones(2, np.float32), np.zeros(2))
    with pytest.raises(ValueError, match="8-bit"):
        simdgemm.requant_product(a, b, True, *one, 0, 1000)
    with pytest.raises(ValueError, match="8-bit"):
        simdgemm.requant_product(a.astype(np.int16), b, True, *one, 0, 255)
    with pytest.raises(ValueError, match="K"):
        simdgemm.requant_product(a[:, :0], b[:0], True, *one, 0, 255)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 1100), n=st.integers(1, 35), seed=st.integers(0, 2**31),
       pairwise=st.booleans(), types=st.sampled_from([("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")]),
       zps=st.sampled_from(["none", "a", "ab", "per-column zero"]), bias=st.booleans(), per_col=st.booleans())
def test_qgemm_codes_is_int_matmul_then_requantize(m, k, n, seed, pairwise, types, zps, bias, per_col, route):
    """kernel_api.qgemm_codes against the oracle (the integer product with its zero points, the
    bias, then MlasRequantizeOutput) and against int_matmul + requantize("onnxruntime")."""
    from hwsim import kernel_api

    rng = np.random.default_rng(seed)
    pairwise = pairwise and types == ("uint8", "int8")
    ia, ib = np.iinfo(types[0]), np.iinfo(types[1])
    a = rng.integers(ia.min, ia.max, (m, k), endpoint=True).astype(types[0])
    b = rng.integers(ib.min, ib.max, (k, n), endpoint=True).astype(types[1])
    az = int(rng.integers(ia.min, ia.max)) if zps in ("a", "ab") else 0
    bz = int(rng.integers(ib.min, ib.max)) if zps == "ab" else (np.zeros(n, np.int64) if zps == "per-column zero" else 0)
    bvec = rng.integers(-2**20, 2**20, n) if bias else None
    mult = (rng.random(n) * 1e-4 if per_col else np.full(n, 3e-5)).astype(np.float32)
    yzp = int(rng.integers(0, 255))
    got = kernel_api.qgemm_codes(a, b, az, bz, bvec, mult, yzp, (0, 255), pairwise)
    if pairwise:
        acc = ref.int_matmul(a, b, 64, "none", pairwise=True) - az * b.astype(np.int64).sum(0) \
            - np.asarray(bz) * a.astype(np.int64).sum(1, keepdims=True) + k * az * np.asarray(bz)
    else:
        acc = ref.int_matmul(a.astype(np.int64) - az, b.astype(np.int64) - np.asarray(bz), 64, "none")
    acc = acc + (0 if bvec is None else bvec)
    np.testing.assert_array_equal(got, ref.requant_ort(acc, mult, yzp, 0, 255))
    api = kernel_api.requantize(acc, mult, yzp, "onnxruntime", np.uint8)
    np.testing.assert_array_equal(got, api)


def test_qgemm_codes_declines_what_it_cannot_fuse():
    from hwsim import kernel_api

    a, b = np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.int8)
    args = (None, np.ones(2, np.float32), 0, (0, 255))
    assert kernel_api.qgemm_codes(a, b, 0, np.array([1, 0]), *args) is None  # per-column b zero points
    assert kernel_api.qgemm_codes(a.astype(np.int16), b, 0, 0, *args) is None
    assert kernel_api.qgemm_codes(a, b, 0, 0, np.array([2**31, 0]), *args[1:]) is None  # leaves int32
    assert kernel_api.qgemm_codes(a.view(np.int8), b, 0, 0, *args, pairwise_int16=True) is None
    assert kernel_api.qgemm_codes(a, b, 0, 0, *args) is not None


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 40), hw=st.integers(1, 9), k=st.sampled_from([1, 3, 5]),
       stride=st.integers(1, 2), pad=st.integers(0, 2), seed=st.integers(0, 2**31), x_type=st.sampled_from(["uint8", "int8"]),
       out=st.sampled_from([(0, 255), (-128, 127)]), per_channel=st.booleans(), channels_last=st.booleans(),
       f32=st.booleans())
def test_qdepthwise_codes_is_int_conv2d_then_requantize(n, c, hw, k, stride, pad, seed, x_type, out, per_channel,
                                                       channels_last, f32):
    """kernel_api.qdepthwise_codes against the direct-convolution oracle plus the bias, then
    MlasRequantizeOutput per channel; inputs in NCHW or channels-last memory; both kernels (the
    float32-exact one, and the int32 one it leaves to when sums could pass 2**24)."""
    from hwsim import kernel_api

    rng = np.random.default_rng(seed)
    info = np.iinfo(x_type)
    x = rng.integers(info.min, info.max, (n, c, hw, hw), endpoint=True).astype(x_type)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    w = rng.integers(-128, 127, (c, 1, k, k), endpoint=True).astype(np.int8)
    zx = int(rng.integers(info.min, info.max))
    zw = rng.integers(-3, 3, c) if per_channel else 0
    bias = rng.integers(-20000, 20000, c)
    mult = (rng.random(c) * 3e-3 if per_channel else np.full(c, 2e-3)).astype(np.float32)
    lo, hi = out
    yzp = rng.integers(lo, hi, c, endpoint=True) if per_channel else int(rng.integers(lo, hi))
    pads = (pad,) * 4
    if hw + 2 * pad < k:
        return
    with nullcontext() if f32 else _f32_exact(0):
        got = kernel_api.qdepthwise_codes(x, zx, w, zw, bias, mult, yzp, (lo, hi), (stride, stride), pads)
    acc = ref.int_conv2d(x, w, (stride, stride), pads, (1, 1), c, 64, "none", zx, zw) + bias.reshape(1, -1, 1, 1)
    want = ref.requant_ort(acc.transpose(0, 2, 3, 1), mult, yzp, lo, hi).transpose(0, 3, 1, 2)
    assert got.dtype == (np.uint8 if lo >= 0 else np.int8)
    np.testing.assert_array_equal(got, want)


@contextmanager
def _f32_exact(limit):
    from hwsim.kernels import conv

    saved, conv.F32_EXACT = conv.F32_EXACT, limit
    try:
        yield
    finally:
        conv.F32_EXACT = saved


@pytest.mark.parametrize("stride, dil", [(1, 1), (2, 1), (1, 2)])
def test_depthwise_codes_kernels_on_threads(stride, dil):
    """Both depthwise codes kernels, threaded (two work queues' threads) and serial, on a map big
    enough for many work items (blocks of rows sharing input rows): the oracle's codes."""
    from hwsim.kernels import conv

    rng = np.random.default_rng(stride)
    n, c, hw = 3, 48, 29
    x = rng.integers(0, 255, (n, hw, hw, c), endpoint=True).astype(np.uint8)
    w = rng.integers(-128, 127, (c, 1, 3, 3), endpoint=True)
    bias, mult = rng.integers(-20000, 20000, c), (rng.random(c) * 3e-3).astype(np.float32)
    zx, zp = 7, rng.integers(0, 255, c)
    oh = (hw + 2 * dil - 2 * dil - 1) // stride + 1  # padding dil: "same" at stride 1
    acc = ref.int_conv2d(x.transpose(0, 3, 1, 2), w, (stride, stride), (dil,) * 4, (dil, dil), c, 64, "none", zx, 0)
    want = ref.requant_ort((acc + bias.reshape(1, -1, 1, 1)).transpose(0, 2, 3, 1), mult, zp, 0, 255)
    wt = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), np.int32)
    zp32 = zp.astype(np.int32)
    epi = (bias.astype(np.int32), mult, (0 - zp32).astype(np.float32), (255 - zp32).astype(np.float32), zp32)
    for kernel, threads in ((conv._depthwise_codes, 2), (conv._depthwise_codes_1, 1)):
        out = np.empty((n, oh, oh, c), np.uint8)
        kernel(x, zx, wt.astype(np.float32), stride, stride, dil, dil, dil, dil, out, *epi, np.zeros(1, np.int64),
               threads)
        np.testing.assert_array_equal(out, want)
    for kernel, threads in ((conv._depthwise_nhwc, 2), (conv._depthwise_nhwc_1, 1)):
        out = np.empty((n, oh, oh, c), np.uint8)
        kernel(x, zx, wt, stride, stride, dil, dil, dil, dil, out, epi, np.zeros(1, np.int64), threads)
        np.testing.assert_array_equal(out, want)


def test_a_transposed_weight_is_packed_from_its_own_memory(route):
    """``w.T`` (F-contiguous, as the simulator's linears pass it) gives the product of the values
    it shows, and its pack is kept under the weight's own bytes: changing ``w`` in place packs
    again."""
    rng = np.random.default_rng(9)
    a = rng.integers(0, 255, (7, 90), endpoint=True).astype(np.uint8)
    w = rng.integers(-128, 127, (20, 90), endpoint=True).astype(np.int8)
    col, mult, zp = np.zeros(20), np.full(20, 1e-3, np.float32), np.full(20, 3)
    for _ in range(3):  # kept from the second call on
        want = ref.requant_ort(ref.int_matmul(a, w.T, 64, "none", pairwise=True), mult, zp, 0, 255)
        np.testing.assert_array_equal(simdgemm.requant_product(a, w.T, True, col, None, mult, zp, 0, 255), want)
    w[3, 5] = 127 if w[3, 5] != 127 else -128
    want = ref.requant_ort(ref.int_matmul(a, w.T, 64, "none", pairwise=True), mult, zp, 0, 255)
    np.testing.assert_array_equal(simdgemm.requant_product(a, w.T, True, col, None, mult, zp, 0, 255), want)
    np.testing.assert_array_equal(simdgemm.requant_product(a, np.ascontiguousarray(w.T), True, col, None, mult, zp, 0, 255),
                                  want)


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 300), n=st.integers(1, 40), seed=st.integers(0, 2**31),
       kind=st.sampled_from(["maddubs", "u8", "s8"]))
def test_transposed_and_plain_weights_pack_alike(m, k, n, seed, kind, route):
    """B given as ``w.T`` (packed from w's rows) and as a C array (packed from its rows): the same
    codes as the oracle, for 2- and 4-row groups and 8-bit B of either sign."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (m, k), endpoint=True).astype(np.uint8)
    bt = np.uint8 if kind == "u8" else np.int8
    w = rng.integers(np.iinfo(bt).min, np.iinfo(bt).max, (n, k), endpoint=True).astype(bt)
    col, mult, zp = np.zeros(n), np.full(n, 2.0**-12, np.float32), np.full(n, 5)
    sat = kind == "maddubs"
    want = ref.requant_ort(ref.int_matmul(a, w.T, 64, "none", pairwise=sat), mult, zp, 0, 255)
    for b in (w.T, np.ascontiguousarray(w.T)):
        np.testing.assert_array_equal(simdgemm.requant_product(a, b, sat, col, None, mult, zp, 0, 255), want)


def _column_sums(b, pk):
    """b's column sums as the fused product takes them: those kept with the packed panels less K
    times the packing's shift (simdgemm._stack_terms), else one pass (codesums.k_sums)."""
    if pk.colsums is not None:
        return pk.colsums[0][:b.shape[1]] - pk.shift_b * b.shape[0]
    return k_sums(b[None])[0]


@pytest.mark.parametrize("b_type", ["int8", "uint8"])
def test_column_sums_from_the_packed_weight_and_without(route, b_type):
    """The sums kept with the packed panels (less K times the packing's shift) and the one-pass
    sums of a route that keeps none both equal b.sum(0)."""
    ib = np.iinfo(b_type)
    b = np.random.default_rng(3).integers(ib.min, ib.max, (77, 35), endpoint=True).astype(b_type)
    want = b.astype(np.int64).sum(0)
    for a_dtype in (np.uint8, np.int8):
        for saturate in (False, True):
            for bb in (b, b.T.copy().T):
                pk = simdgemm._packed_b(bb, np.dtype(a_dtype), 2 * 255 * 255, saturate)
                np.testing.assert_array_equal(_column_sums(bb, pk), want)


def test_qgemm_codes_near_the_int32_bound_takes_the_exact_column_sums():
    """A bias so large that |a_zp| K max|b| would cross 2**31 while the column term itself does
    not: the zero point's column sums are taken up front (the exact bound), the codes the oracle's."""
    from hwsim import kernel_api

    rng = np.random.default_rng(5)
    m, k, n, az = 3, 64, 5, 200
    a = rng.integers(0, 255, (m, k), endpoint=True).astype(np.uint8)
    b = rng.integers(200, 255, (k, n), endpoint=True).astype(np.uint8)
    bias = np.full(n, 2**31 - k * 255 * 255 - 1_000_000, np.int64)
    mult, yzp = np.full(n, 1e-9, np.float32), 7
    got = kernel_api.qgemm_codes(a, b, az, 0, bias, mult, yzp, (0, 255))
    assert got is not None
    acc = ref.int_matmul(a.astype(np.int64) - az, b.astype(np.int64), 64, "none") + bias
    np.testing.assert_array_equal(got, ref.requant_ort(acc, mult, yzp, 0, 255))
