"""The one-pass error sums of codes against a reference (hwsim.kernels.errsum) against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels.errsum import _coded_sums


def _numpy_sums(ref, codes, zp, scale):
    """The plain form: make the reals, then the two sums of squares."""
    y = (codes.astype(np.float64) - zp) * scale
    return float(np.sum((ref - y) ** 2)), float(np.sum(ref ** 2))


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.sampled_from([np.uint8, np.int8, np.int32]), st.integers(-128, 255),
       st.floats(1e-4, 10.0), st.integers(0, 2**31))
def test_coded_sums_equal_numpy(n, dtype, zp, scale, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    codes = rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, n).astype(dtype)
    ref = rng.standard_normal(n) * scale * 50
    got = _coded_sums(ref, codes, np.float64(zp), np.float64(scale))
    want = _numpy_sums(ref, codes, zp, scale)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@pytest.mark.nojit
def test_coded_sums_propagate_nan_and_inf():
    codes = np.array([1, 2, 3], np.uint8)
    noise, signal = _coded_sums(np.array([0.0, np.nan, 1.0]), codes, 0.0, 1.0)
    assert np.isnan(noise) and np.isnan(signal)
    noise, signal = _coded_sums(np.array([0.0, np.inf, 1.0]), codes, 0.0, 1.0)
    assert noise == np.inf and signal == np.inf


@pytest.mark.nojit
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 60), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31))
def test_biased_coded_sums_equal_numpy(channels, rows, ydtype, seed):
    """The reference ``y + bias`` (bias per channel, channels innermost) summed as it is read."""
    from hwsim.kernels.errsum import _biased_coded_sums

    rng = np.random.default_rng(seed)
    y = rng.standard_normal(rows * channels).astype(ydtype)
    bias = rng.standard_normal(channels)
    codes = rng.integers(0, 256, y.size).astype(np.uint8)
    ref = (y.reshape(rows, channels).astype(np.float64) + bias).reshape(-1)
    got = _biased_coded_sums(y, bias, codes, np.float64(5), np.float64(0.02))
    np.testing.assert_allclose(got, _numpy_sums(ref, codes, 5, 0.02), rtol=1e-12, atol=0)


@pytest.mark.nojit
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 60), st.integers(0, 20), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2**31))
def test_biased_coded_rows_equal_numpy(channels, rows, pad, ydtype, seed):
    """The same sums over rows of codes that lie ``pad`` codes apart (cut from a padded GEMM output)."""
    from hwsim.kernels.errsum import _biased_coded_rows

    rng = np.random.default_rng(seed)
    y = rng.standard_normal((rows, channels)).astype(ydtype)
    bias = rng.standard_normal(channels)
    codes = rng.integers(0, 256, (rows, channels + pad)).astype(np.uint8)[:, :channels]
    ref = (y.astype(np.float64) + bias).reshape(-1)
    got = _biased_coded_rows(y, bias, codes, np.float64(5), np.float64(0.02))
    np.testing.assert_allclose(got, _numpy_sums(ref, codes.reshape(-1), 5, 0.02), rtol=1e-12, atol=0)


@pytest.mark.nojit
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 60), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31))
def test_add_bias_f32_equals_numpy(channels, rows, ydtype, seed):
    from hwsim.kernels.biasround import _add_bias_f32

    rng = np.random.default_rng(seed)
    y = (rng.standard_normal(rows * channels) * 10.0 ** rng.integers(-3, 4)).astype(ydtype)
    bias = rng.standard_normal(channels) / 3
    out = np.empty(y.size, np.float32)
    _add_bias_f32(y, bias, out)
    want = (y.reshape(rows, channels).astype(np.float64) + bias).astype(np.float32).reshape(-1)
    np.testing.assert_array_equal(out, want)


@pytest.mark.nojit
@settings(max_examples=40, deadline=None)
@given(st.tuples(*[st.integers(0, 5)] * 4), st.permutations(range(4)), st.permutations(range(4)),
       st.sampled_from([np.uint8, np.int8]), st.integers(0, 2**31))
def test_coded_sums_4d_equal_numpy_in_any_layouts(shape, ref_order, codes_order, dtype, seed):
    """Two 4-D arrays of one shape laid out in any axis orders (views of transposed data)."""
    from hwsim.kernels.errsum import _coded_sums_4d

    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)

    def laid_out(a, order):  # a's values, memory order given by ``order`` (outermost first)
        return np.ascontiguousarray(a.transpose(order)).transpose(np.argsort(order))

    ref = laid_out(rng.standard_normal(shape), ref_order)
    codes = laid_out(rng.integers(info.min, info.max + 1, shape).astype(dtype), codes_order)
    got = _coded_sums_4d(ref, codes, np.float64(3), np.float64(0.05))
    want = _numpy_sums(ref.ravel(), codes.ravel(), 3, 0.05)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_coded_errors_of_a_channels_last_reference_beside_nchw_codes(monkeypatch):
    """metrics.coded_errors takes the one-pass 4-D sums (no float64 copy of the codes) and gives
    metrics.errors' values within summation order."""
    from hwsim.graph.quant import QuantSpec
    from hwsim.kernels import errsum
    from hwsim.sim import metrics, qspec

    rng = np.random.default_rng(0)
    spec = QuantSpec(format="uint8", scale=(0.05,), zero_point=(128,))
    codes = rng.integers(0, 256, (2, 24, 7, 9)).astype(np.uint8)  # NCHW
    ref = np.ascontiguousarray(((codes.astype(np.float64) - 128) * 0.05 + rng.standard_normal(codes.shape) * 0.01)
                               .transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels last
    calls = []
    kernel = errsum._coded_sums_4d
    monkeypatch.setattr(errsum, "_coded_sums_4d", lambda *a: calls.append(1) or kernel(*a))
    got = metrics.coded_errors(ref, qspec.Coded(codes, spec))
    assert calls
    want = metrics.errors(ref, qspec.Coded(codes, spec).real())
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.nojit
@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(*[st.integers(1, 5)] * 4), ref_order=st.permutations(range(4)), out_order=st.permutations(range(4)),
       ref_dtype=st.sampled_from([np.float64, np.float32]), out_dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2**31))
def test_real_outputs_metrics_in_one_pass_equal_errors(shape, ref_order, out_order, ref_dtype, out_dtype, seed):
    """coded_errors of a float reference beside float outputs (formats without 8-bit codes): one
    pass (errsum._coded_sums as codes of zero point 0 and scale 1, _coded_sums_4d where the layouts
    differ) with errors()'s values up to summation order; non-finite values take errors() itself."""
    from hwsim.sim.metrics import coded_errors, errors

    rng = np.random.default_rng(seed)

    def laid(order, dtype, scale):
        a = (rng.standard_normal([shape[i] for i in order]) * scale).astype(dtype)
        return a.transpose(np.argsort(order))

    ref, out = laid(ref_order, ref_dtype, 1.0), laid(out_order, out_dtype, 1.0)
    out = out + 0.01 * laid(out_order, out_dtype, 1.0)
    np.testing.assert_allclose(coded_errors(ref, out), errors(ref, out), rtol=1e-12)
    same = ref.copy()
    assert coded_errors(ref, same)[0] == np.inf and coded_errors(ref, same)[1] == 0.0
    bad = out.copy()
    bad.flat[0] = np.nan
    assert np.isnan(coded_errors(ref, bad)[0]) and np.isnan(errors(ref, bad)[0])


@pytest.mark.parametrize("where", ["nan", "inf", "nan and inf", "-inf"])
@pytest.mark.parametrize("kind", ["array", "biased", "channels last"])
def test_coded_errors_of_a_non_finite_reference_equal_errors(monkeypatch, where, kind):
    """A reference holding NaN (an overflowing QDQ graph without its clips) beside codes: the
    one-pass sums are NaN, and coded_errors answers NaN, NaN at once, as errors() does after its
    passes (not called); a reference with inf but no NaN still takes errors() (NaN, inf)."""
    from hwsim.graph.quant import QuantSpec
    from hwsim.sim import metrics, qspec
    from hwsim.sim.refvalues import Biased

    rng = np.random.default_rng(1)
    spec = QuantSpec(format="int8", scale=(0.05,), zero_point=(3,))
    codes = rng.integers(-128, 128, (2, 6, 5, 4)).astype(np.int8)
    y = rng.standard_normal(codes.shape).astype(np.float32)
    for i, v in enumerate({"nan": [np.nan], "inf": [np.inf], "nan and inf": [np.nan, np.inf], "-inf": [-np.inf]}[where]):
        y.flat[7 * i + 3] = v
    bias = rng.standard_normal(6)
    if kind == "biased":  # a reference conv's output plus its bias, channels last
        y_cl = np.ascontiguousarray(y.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        ref, real = Biased(y_cl, bias, 1), y.astype(np.float64) + bias.reshape(1, -1, 1, 1)
        codes = np.ascontiguousarray(codes.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # its codes too
    elif kind == "channels last":
        ref = real = np.ascontiguousarray(y.astype(np.float64).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    else:
        ref = real = y.astype(np.float64)
    out = qspec.Coded(codes, spec)
    with np.errstate(invalid="ignore", over="ignore"):
        want = metrics.errors(real, out.real())
    called = []
    slow = metrics.errors
    monkeypatch.setattr(metrics, "errors", lambda *a: called.append(1) or slow(*a))
    with np.errstate(invalid="ignore", over="ignore"):
        got = metrics.coded_errors(ref, out)
    np.testing.assert_array_equal(np.array(got), np.array(want))
    assert bool(called) == ("nan" not in where)
