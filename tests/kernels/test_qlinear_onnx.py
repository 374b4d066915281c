"""QLinear ops bit-exact against onnx.reference (requant='exact') and onnxruntime ('onnxruntime')."""

import numpy as np
import pytest

from hwsim import kernel_api
from tests.kernels import onnx_models as om

PAIRS = [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)]


def _q(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _zp(rng, dtype, n=None):
    lo, hi = (100, 156) if dtype == np.uint8 else (-20, 20)
    return rng.integers(lo, hi, n).astype(dtype) if n else np.array(rng.integers(lo, hi), dtype)


def _matmul_case(rng, da, db, m, k, n, per_column, b_zp_zero=False):
    a, b = _q(rng, da, (m, k)), _q(rng, db, (k, n))
    a_s = np.array(rng.uniform(0.005, 0.05), np.float32)
    b_s = np.asarray(rng.uniform(0.002, 0.02, n if per_column else None), np.float32)
    b_zp = np.zeros(n if per_column else (), db) if b_zp_zero else _zp(rng, db, n if per_column else None)
    y_s = np.array(rng.uniform(0.5, 2.0) * np.sqrt(k) * 0.01, np.float32)
    return a, a_s, _zp(rng, da), b, b_s, b_zp, y_s, _zp(rng, da)


@pytest.mark.parametrize("da,db", PAIRS)
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("mkn", [(1, 1, 1), (3, 17, 5), (8, 300, 12), (2, 1025, 3)])
def test_qlinear_matmul_vs_reference(rng, da, db, per_column, mkn):
    args = _matmul_case(rng, da, db, *mkn, per_column)
    want = om.run_reference(om.qlinear_matmul_model(*args), args[0])
    got = kernel_api.qlinear_matmul(*args, requant="exact")
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


CONVS = [  # x shape, w shape, strides, pads, dilations, group
    ((1, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 4, 9, 7), (6, 2, 3, 2), (2, 1), (0, 1, 2, 0), (1, 2), 2),
    ((1, 8, 6, 6), (8, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),
    ((1, 64, 5, 5), (16, 64, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
]


def _conv_case(rng, dx, dw, case, per_channel, bias=True, w_zp_zero=False):
    xs, ws, strides, pads, dil, group = case
    x, w = _q(rng, dx, xs), _q(rng, dw, ws)
    o = ws[0]
    w_s = np.asarray(rng.uniform(0.002, 0.02, o if per_channel else None), np.float32)
    w_zp = np.zeros(o if per_channel else (), dw) if w_zp_zero else (
        _zp(rng, dw, o) if per_channel else _zp(rng, dw))
    b = rng.integers(-5000, 5000, o).astype(np.int32) if bias else None
    k = ws[1] * ws[2] * ws[3]
    y_s = np.array(np.sqrt(k) * 0.003 * rng.uniform(0.5, 2), np.float32)
    x_s = np.array(rng.uniform(0.005, 0.05), np.float32)
    return (x, x_s, _zp(rng, dx), w, w_s, w_zp, y_s, _zp(rng, dx), b), (strides, pads, dil, group)


@pytest.mark.parametrize("dx,dw", PAIRS)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("case", CONVS)
def test_qlinear_conv_vs_reference(rng, dx, dw, per_channel, case):
    args, attrs = _conv_case(rng, dx, dw, case, per_channel)
    want = om.run_reference(om.qlinear_conv_model(*args, *attrs), args[0])
    got = kernel_api.qlinear_conv(*args, *attrs, requant="exact")
    np.testing.assert_array_equal(got, want)


def test_integer_ops_vs_reference(rng):
    a, b = _q(rng, np.uint8, (2, 4, 50)), _q(rng, np.int8, (50, 6))
    model = om.single_node("MatMulInteger", a, [("b", b), ("a_zp", np.array(3, np.uint8)),
                                               ("b_zp", np.array(-2, np.int8))], np.int32)
    want = om.run_reference(model, a)
    np.testing.assert_array_equal(kernel_api.matmul_integer(a, b, np.uint8(3), np.int8(-2)), want)
    x, w = _q(rng, np.uint8, (1, 4, 7, 7)), _q(rng, np.uint8, (6, 2, 3, 3))
    model = om.single_node("ConvInteger", x, [("w", w), ("x_zp", np.array(9, np.uint8)),
                                              ("w_zp", np.array(130, np.uint8))], np.int32,
                           pads=[1, 0, 1, 2], strides=[1, 2], group=2)
    want = om.run_reference(model, x)
    got = kernel_api.conv_integer(x, w, 9, 130, (1, 2), (1, 0, 1, 2), (1, 1), 2)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


# ---- onnxruntime -------------------------------------------------------------------------------

ORT_PAIRS = [(np.uint8, np.uint8), (np.int8, np.int8)]


@pytest.mark.parametrize("da,db", ORT_PAIRS)
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("mkn", [(4, 7, 5), (16, 256, 24), (8, 1500, 9), (4, 4096, 16)])
def test_qlinear_matmul_vs_onnxruntime(rng, da, db, per_column, mkn):
    args = _matmul_case(rng, da, db, *mkn, per_column, b_zp_zero=per_column)
    want = om.run_ort(om.qlinear_matmul_model(*args), args[0])
    np.testing.assert_array_equal(kernel_api.qlinear_matmul(*args, requant="onnxruntime"), want)


@pytest.mark.parametrize("dx,dw", ORT_PAIRS)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("case", CONVS)
def test_qlinear_conv_vs_onnxruntime(rng, dx, dw, per_channel, case):
    args, attrs = _conv_case(rng, dx, dw, case, per_channel, w_zp_zero=per_channel)
    want = om.run_ort(om.qlinear_conv_model(*args, *attrs), args[0])
    np.testing.assert_array_equal(kernel_api.qlinear_conv(*args, *attrs, requant="onnxruntime"), want)


def test_u8s8_onnxruntime_int16_pairs(rng):
    """MLAS u8*s8 on AVX2 without VNNI saturates k-pairs to int16 (onnxruntime #16105, #6004).

    Large a and same-sign b make pairs overflow int16; on a VNNI CPU ORT is exact instead.
    """
    a = rng.integers(200, 256, (4, 64)).astype(np.uint8)
    b = rng.integers(100, 128, (64, 6)).astype(np.int8)
    args = (a, np.array(0.01, np.float32), np.array(0, np.uint8), b, np.array(0.01, np.float32),
            np.array(0, np.int8), np.array(3.0, np.float32), np.array(0, np.uint8))
    want = om.run_ort(om.qlinear_matmul_model(*args), a)
    paired = kernel_api.qlinear_matmul(*args, requant="onnxruntime", pairwise_int16=True)
    exact = kernel_api.qlinear_matmul(*args, requant="onnxruntime")
    assert not np.array_equal(paired, exact)
    np.testing.assert_array_equal(want, exact if om.cpu_has_vnni() else paired)


def test_requant_modes_separate_onnxruntime_from_reference():
    """Accumulators whose float32 product rounds across a .5: ORT and onnx.reference disagree,
    and each agrees with its own mode (random data almost never hits these ties)."""
    acc = np.arange(20000, 62000)
    cols = []  # (per-column multiplier, accumulator) where the two modes disagree
    for m in np.linspace(0.0037, 0.0042, 120, dtype=np.float32):
        hit = kernel_api.requantize(acc, m, 0, "onnxruntime") != kernel_api.requantize(acc, m, 0, "exact")
        cols += [(m, t) for t in acc[hit][:1]]
    assert len(cols) >= 8
    ms, targets = np.array([c[0] for c in cols], np.float32), np.array([c[1] for c in cols])
    k = int(targets.max() // 255 + 1)
    b = np.zeros((k, targets.size), np.uint8)
    for j, t in enumerate(targets):
        b[: t // 255, j] = 255
        b[t // 255, j] = t % 255
    a = np.ones((1, k), np.uint8)
    one, zero = np.array(1.0, np.float32), np.array(0, np.uint8)
    args = (a, one, zero, b, ms, np.zeros(ms.size, np.uint8), one, zero)
    model = om.qlinear_matmul_model(*args)
    ort_out, ref_out = om.run_ort(model, a), om.run_reference(model, a)
    np.testing.assert_array_equal(kernel_api.qlinear_matmul(*args, requant="onnxruntime"), ort_out)
    np.testing.assert_array_equal(kernel_api.qlinear_matmul(*args, requant="exact"), ref_out)
    assert np.all(ort_out != ref_out)


def test_qlinear_errors(rng):
    from hwsim.errors import ConfigError, ShapeError

    args = list(_matmul_case(rng, np.uint8, np.uint8, 3, 8, 4, False))
    with pytest.raises(ConfigError, match="onnxruntime"):
        kernel_api.qlinear_matmul(*args, requant="round")
    args[1] = np.ones(3, np.float32)  # per-row a_scale: not supported
    with pytest.raises(ShapeError, match="a_scale"):
        kernel_api.qlinear_matmul(*args)
    args, attrs = _conv_case(rng, np.uint8, np.uint8, CONVS[0], True)
    with pytest.raises(ShapeError, match="w_zero_point"):
        kernel_api.qlinear_conv(*args[:5], np.zeros(3, np.uint8), *args[6:], *attrs)
