"""Float formats are bit-exact against ml_dtypes casts from float32."""

import ml_dtypes
import numpy as np
import pytest

import hwsim.formats as F
from tests.formats import reference as R

NAMES = sorted(R.ML_TYPES)
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in cast:RuntimeWarning")


def _inputs(name):
    x = np.concatenate([R.float16_patterns_as_float32(), R.tie_inputs(R.ML_TYPES[name]),
                        np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38,
                                  1e-45, -1e-45], np.float32)])
    return x


def _same(got, want):
    """Equal bit patterns of float64 values, NaN-ness compared for NaN."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    gn, wn = np.isnan(got), np.isnan(want)
    bad = (gn != wn) | (~gn & (got.view(np.uint64) != want.view(np.uint64)))
    return np.flatnonzero(bad)


@pytest.mark.parametrize("name", NAMES)
def test_nonsaturating_matches_ml_dtypes(name):
    x = _inputs(name)
    want = x.astype(R.ML_TYPES[name]).astype(np.float64)
    got = F.get(name).quantize(x, saturate=False)
    bad = _same(got, want)
    assert len(bad) == 0, (name, x[bad][:5], got[bad][:5], want[bad][:5])


@pytest.mark.parametrize("name", NAMES)
def test_saturating_matches_onnx_saturate_cast(name):
    """ONNX saturate=1: clip to +-max (inf included) then cast (onnx.numpy_helper.saturate_cast)."""
    x = _inputs(name)
    fmax = F.get(name).max
    if F.get(name).bits > 8:  # ONNX: saturate applies to 8-bit and smaller floats only
        fmax = np.inf
    want = np.clip(x, -fmax, fmax).astype(R.ML_TYPES[name]).astype(np.float64)
    got = F.cast(x, name, saturate=True)
    assert got.dtype == np.float32
    bad = _same(got, want)
    assert len(bad) == 0, (name, x[bad][:5], got[bad][:5], want[bad][:5])


def test_e4m3fn_overflow_after_rounding():
    f = F.get("fp8_e4m3fn")
    x = np.array([464.0, 465.0, -464.0, -465.0, 1e6, np.inf])
    np.testing.assert_array_equal(f.quantize(x, saturate=False)[[0, 2]], [448.0, -448.0])
    assert np.isnan(f.quantize(x, saturate=False)[[1, 3, 4, 5]]).all()
    np.testing.assert_array_equal(f.quantize(x, saturate=True), [448, 448, -448, -448, 448, 448])


def test_fp4_nan_follows_ml_dtypes():
    f = F.get("fp4_e2m1fn")
    nan_pos = np.array([0x7FC00000], np.uint32).view(np.float32)
    nan_neg = np.array([0xFFC00000], np.uint32).view(np.float32)
    assert np.signbit(f.quantize(nan_pos))[0] and f.quantize(nan_pos)[0] == 0
    assert not np.signbit(f.quantize(nan_neg))[0]
    assert f.quantize(np.array([np.inf]), saturate=False)[0] == 6.0


@pytest.mark.parametrize("name", NAMES)
def test_encode_matches_ml_dtypes_bits(name):
    t = R.ML_TYPES[name]
    fmt = F.get(name)
    x = _inputs(name)
    want = x.astype(t)
    want_codes = want.view(np.uint8 if fmt.bits <= 8 else np.uint16 if fmt.bits <= 16 else np.uint32)
    got = fmt.encode(x, saturate=False)
    nan = np.isnan(want.astype(np.float64))
    assert got.dtype == want_codes.dtype
    np.testing.assert_array_equal(got[~nan], want_codes[~nan])
    assert np.isnan(fmt.decode(got[nan])).all()


@pytest.mark.parametrize("name", F.names())
def test_every_code_round_trips(name):
    fmt = F.get(name)
    if fmt.kind in ("block", "vq", "signed_binary", "e8m0") or fmt.bits > 16:
        pytest.skip("covered in its own test file")
    codes = np.arange(fmt.num_codes if fmt.kind != "ternary" else 3)
    vals = fmt.decode(codes)
    ok = ~np.isnan(vals)
    if fmt.kind == "int" and fmt.narrow_range:
        pytest.skip("narrow range has an unused code")
    recoded = fmt.encode(vals[ok], saturate=False)
    dec = fmt.decode(recoded)
    np.testing.assert_array_equal(dec, vals[ok])
    if fmt.kind != "ternary" and not (fmt.kind == "pow2"):
        np.testing.assert_array_equal(recoded, codes[ok])
    np.testing.assert_array_equal(fmt.quantize(vals[ok], saturate=False), vals[ok])  # fixed point


@pytest.mark.parametrize("name", NAMES)
def test_decode_encode_equals_quantize(name):
    fmt = F.get(name)
    x = _inputs(name).astype(np.float64)
    for sat in (True, False):
        q = fmt.quantize(x, saturate=sat)
        d = fmt.decode(fmt.encode(x, saturate=sat))
        assert len(_same(d, q)) == 0


def test_float64_single_vs_double_rounding():
    f = F.get("fp8_e4m3fn")
    # just above the midpoint between 1 and 1.125 by less than a float32 ulp: float32 rounding
    # first lands on the tie, which then rounds to even (1.0); a single rounding gives 1.125.
    x = np.array([1.0625 + 2.0 ** -40])
    assert f.quantize(x)[0] == 1.125
    assert F.cast(x, f, via_float32=True)[0] == 1.0
    assert x.astype(np.float32).astype(ml_dtypes.float8_e4m3fn).astype(float)[0] == 1.0


@pytest.mark.parametrize("fmt", [F.get(n) for n in NAMES] + [
    F.FloatFormat(3, 4), F.FloatFormat(3, 4, nan_policy="fn"), F.FloatFormat(2, 0, nan_policy="finite"),
    F.FloatFormat(5, 2, bias=3, nan_policy="fnuz"), F.FloatFormat(11, 52)])
def test_code_kernel_matches_numpy_reference(fmt):
    rng = np.random.default_rng(5)
    x = np.concatenate([R.float16_patterns_as_float32().astype(np.float64),
                        rng.standard_normal(5000) * 2.0 ** rng.integers(-40, 40, 5000)])
    for sat in (True, False):
        v = fmt.quantize(x, saturate=sat)
        np.testing.assert_array_equal(fmt.encode(x, saturate=sat), R.float_codes_reference(fmt, v))


FP8_ONNX = {"fp8_e4m3fn": "FLOAT8E4M3FN", "fp8_e4m3fnuz": "FLOAT8E4M3FNUZ",
            "fp8_e5m2": "FLOAT8E5M2", "fp8_e5m2fnuz": "FLOAT8E5M2FNUZ", "fp16": "FLOAT16",
            "bf16": "BFLOAT16", "fp4_e2m1fn": "FLOAT4E2M1"}


@pytest.mark.parametrize("name", sorted(FP8_ONNX))
@pytest.mark.parametrize("saturate", [0, 1])
def test_cast_matches_onnx_reference_evaluator(name, saturate):
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    to = getattr(TensorProto, FP8_ONNX[name])
    node = helper.make_node("Cast", ["x"], ["y"], to=to, saturate=saturate)
    graph = helper.make_graph([node], "c", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", to, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    x = _inputs(name)
    (y,) = ReferenceEvaluator(model).run(None, {"x": x})
    bad = _same(F.cast(x, name, saturate=bool(saturate)), y.astype(np.float64))
    assert len(bad) == 0, (x[bad][:5],)


@pytest.mark.parametrize("name", ["fp8_e4m3fn", "fp8_e5m2"])
@pytest.mark.parametrize("saturate", [0, 1])
def test_fp8_quantize_linear_matches_onnx(name, saturate):
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    to = getattr(TensorProto, FP8_ONNX[name])
    node = helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"], saturate=saturate)
    graph = helper.make_graph([node], "q", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", to, None)],
        initializer=[helper.make_tensor("zp", to, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    x = _inputs(name)
    s = np.float32(0.37)
    (y,) = ReferenceEvaluator(model).run(None, {"x": x, "s": s})
    got = F.get(name).quantize(x, scale=s, saturate=bool(saturate)) / np.float64(s)
    bad = _same(got, y.astype(np.float64))
    assert len(bad) == 0, (x[bad][:5], got[bad][:5], y[bad][:5])


def test_code_kernel_in_python_mode():
    """The jitted kernel's Python body (as under NUMBA_DISABLE_JIT=1) gives the same codes."""
    from hwsim.formats._kernels import POLICY_CODES, _float_codes

    for name in ("fp8_e4m3fn", "fp8_e5m2fnuz", "fp4_e2m1fn", "bf16"):
        fmt = F.get(name)
        v = fmt.quantize(R.float16_patterns_as_float32()[::37].astype(np.float64), saturate=False)
        got = _float_codes.py_func(v, fmt.exponent_bits, fmt.mantissa_bits, fmt.bias,
                                   POLICY_CODES[fmt.nan_policy], fmt.nan_code or 0)
        np.testing.assert_array_equal(got, R.float_codes_reference(fmt, v))
