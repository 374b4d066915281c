"""One-pass per-tensor integer quantization (hwsim.kernels.quantize): 8-bit codes via
qspec.quantize_coded, real values via qspec.quantize, against the formats' own quantize (the
numpy path the simulator used before, called here directly)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import InputDataError
from hwsim.graph.quant import QuantSpec
from hwsim.sim import qspec


def _numpy_quantize(x, spec):
    """The formats' numpy quantize with the spec's parameters (qspec.quantize before its fast path)."""
    from hwsim import formats

    scale, zp, axis, _ = qspec.spec_params(spec, np.shape(x))
    x = np.asarray(x, dtype=np.float64)
    if scale.dtype == np.float32:
        x = x.astype(np.float32)
    return formats.get(spec.format).quantize(x, scale=scale, zero_point=zp, axis=axis)


def _case(fmt, xdtype, scale, zp, f64_scale, channels_last, seed):
    rng = np.random.default_rng(seed)
    if not f64_scale:
        scale = float(np.float32(scale))  # exactly a float32: divides in float32
    elif float(np.float32(scale)) == scale:
        scale = scale * (1 + 2**-40)  # not a float32: divides in float64
    zp = zp if fmt == "uint8" else zp - 128
    spec = QuantSpec(format=fmt, scale=(scale,), zero_point=(zp,))
    x = rng.standard_normal((2, 3, 4, 5)) * scale * 100
    x[0, 0, 0, :3] = np.array([0.5, 1.5, -2.5]) * scale  # ties (half to even)
    x[1, 2, 3, 4], x[1, 2, 3, 3] = np.inf, -np.inf  # saturate
    x = x.astype(xdtype)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x, spec


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["uint8", "int8"]), st.sampled_from([np.float32, np.float64]),
       st.floats(1e-3, 4.0), st.integers(0, 255), st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_quantize_coded_equals_quantize(fmt, xdtype, scale, zp, f64_scale, channels_last, seed):
    x, spec = _case(fmt, xdtype, scale, zp, f64_scale, channels_last, seed)
    coded = qspec.quantize_coded(x, spec)
    assert coded is not None and coded.codes.dtype == (np.uint8 if fmt == "uint8" else np.int8)
    np.testing.assert_array_equal(coded.real(), _numpy_quantize(x, spec))


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["uint8", "int8", "int16", "uint16", "int4", "int8_narrow", "int32"]),
       st.sampled_from([np.float32, np.float64]), st.floats(1e-3, 4.0), st.integers(0, 255), st.booleans(),
       st.booleans(), st.integers(0, 2**31))
def test_one_pass_quantize_equals_the_formats_quantize(fmt, xdtype, scale, zp, f64_scale, channels_last, seed):
    """qspec.quantize of an integer format per tensor: the kernel's values, bit for bit the numpy
    path's (signed zeros included), in x's memory order."""
    from hwsim import formats

    f = formats.get(fmt)
    zp = int(np.clip(zp - (128 if f.signed else 0), f.qmin, f.qmax))
    x, spec = _case("uint8", xdtype, scale, zp, f64_scale, channels_last, seed)
    spec = spec.model_copy(update={"format": fmt})
    got, want = qspec.quantize(x, spec), _numpy_quantize(x, spec)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_quantize_coded_declines_what_it_does_not_cover():
    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)
    assert qspec.quantize_coded(x, QuantSpec(format="int4", scale=(0.5,), zero_point=(0,))) is None
    chan = QuantSpec(format="int8", scale=(0.5, 0.25, 1.0), zero_point=(0, 0, 0), granularity="channel", axis=1)
    assert qspec.quantize_coded(x, chan) is None
    x[0, 1, 2] = np.nan  # quantize itself refuses it, with its message
    assert qspec.quantize_coded(x, QuantSpec(format="int8", scale=(0.5,), zero_point=(0,))) is None
    with pytest.raises(InputDataError, match="NaN"):
        qspec.quantize(x, QuantSpec(format="int16", scale=(0.5,), zero_point=(0,)))


def _channel_case(fmt, xdtype, axis, f64_scale, with_zp, seed):
    from hwsim import formats

    f = formats.get(fmt)
    rng = np.random.default_rng(seed)
    shape = (3, 4, 2, 5)
    n = shape[axis]
    scale = rng.uniform(1e-3, 2.0, n)
    scale = scale.astype(np.float32).astype(np.float64)
    if f64_scale:
        scale = scale * (1 + 2**-40)  # not float32 values: divides in float64
    zp = tuple(int(z) for z in rng.integers(f.qmin, f.qmax + 1, n)) if with_zp else None
    spec = QuantSpec(format=fmt, scale=tuple(float(s) for s in scale), zero_point=zp, granularity="channel",
                     axis=axis)
    along = [1] * len(shape)
    along[axis] = n
    x = rng.standard_normal(shape) * scale.reshape(along) * 50
    first, other = [0] * len(shape), 3 if axis % len(shape) != 3 else 0
    for k, tie in enumerate([0.5, 1.5, -2.5]):  # ties (half to even) in channel 0
        first[other] = k
        x[tuple(first)] = tie * scale[0]
    x.flat[-1], x.flat[-2] = np.inf, -np.inf  # saturate
    return x.astype(xdtype), spec


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["int8", "uint8", "int4", "int16", "int8_narrow"]), st.sampled_from([np.float32, np.float64]),
       st.integers(-4, 3), st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_one_pass_channel_quantize_equals_the_formats_quantize(fmt, xdtype, axis, f64_scale, with_zp, seed):
    """qspec.quantize of an integer format per channel (any axis): the kernel's values, bit for
    bit the formats' numpy quantize (signed zeros included)."""
    x, spec = _channel_case(fmt, xdtype, axis, f64_scale, with_zp, seed)
    from hwsim.sim.qspec import _per_channel_pass

    got = _per_channel_pass(x, spec)
    assert got is not None  # the kernel ran
    want = _numpy_quantize(x, spec)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(qspec.quantize(x, spec), want)


def _numpy_channel_calibrate(spec, x):
    """Per-channel max-abs calibration as numpy computes it (qspec.calibrate before its one pass)."""
    from hwsim import formats

    x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    axis = spec.axis % x.ndim
    peak = np.abs(np.moveaxis(x, axis, 0)).reshape(x.shape[axis], -1).max(axis=1)
    scale = peak / float(formats.get(spec.format).max)
    return tuple(float(s) for s in np.where(scale > 0, scale, 1.0).astype(np.float32))


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["int8", "int4", "int16", "fp8_e4m3"]), st.sampled_from([np.float32, np.float64]),
       st.integers(-4, 3), st.integers(0, 2**31))
def test_one_pass_channel_calibration_equals_numpy(fmt, xdtype, axis, seed):
    """Per-channel max-abs scales from the one-pass statistic equal numpy's: NaN and infinities
    count as 0, an all-zero (or all non-finite) channel gets scale 1."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((3, 4, 2, 5)) * rng.uniform(0.01, 10)).astype(xdtype)
    x.flat[rng.integers(0, x.size, 3)] = [np.nan, np.inf, -np.inf]
    idx = [slice(None)] * 4
    idx[axis] = 1
    x[tuple(idx)] = 0.0  # one channel all zeros
    spec = QuantSpec(format=fmt, granularity="channel", axis=axis)
    got = qspec.calibrate(spec, x)
    assert got.scale == _numpy_channel_calibrate(spec, x) and got.zero_point is None


def test_channel_pass_declines_what_it_does_not_cover():
    from hwsim.sim.qspec import _per_channel_pass

    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)
    chan = QuantSpec(format="int8", scale=(0.5, 0.25, 1.0), granularity="channel", axis=1)
    assert _per_channel_pass(x[:, :, ::2], chan) is None  # not contiguous: numpy's path
    assert _per_channel_pass(x, chan.model_copy(update={"scale": (0.5, 0.0, 1.0)})) is None
    x[0, 1, 2] = np.nan  # quantize itself refuses it, with its message
    assert _per_channel_pass(x, chan) is None
    with pytest.raises(InputDataError):
        qspec.quantize(x, chan)


def _numpy_tensor_calibrate(spec, x):
    """Per-tensor calibration as numpy computes it (qspec.calibrate before its one-pass statistic)."""
    from hwsim import formats

    fmt = formats.get(spec.format)
    x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    zp = None
    if fmt.scale_rule == "min_max" and x.min() < 0:
        lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)
        scale = np.array([(hi - lo) / (fmt.qmax - fmt.qmin)])
        scale = np.where(scale > 0, scale, 1.0)
        zp = tuple(int(z) for z in np.clip(np.rint(fmt.qmin - lo / scale), fmt.qmin, fmt.qmax))
    else:
        scale = np.array([np.abs(x).max()]) / float(fmt.max)
    return tuple(float(s) for s in np.where(scale > 0, scale, 1.0).astype(np.float32)), zp


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["int8", "uint8", "int16", "uint16", "int4", "fp8_e4m3"]), st.sampled_from([np.float32, np.float64]),
       st.floats(-3, 3), st.sampled_from(["none", "nan", "inf", "all"]), st.booleans(), st.integers(0, 2**31))
def test_span_calibration_equals_numpy(fmt, xdtype, shift, nonfinite, channels_last, seed):
    """Per-tensor max-abs and min-max scales (and zero points) from the one-pass finite span equal
    numpy's passes: NaN and infinities count as 0, all-negative, all-positive and all-non-finite
    tensors, any memory order."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, 3, 4, 5)) + shift * 2).astype(xdtype)
    if nonfinite == "all":
        x[...] = np.nan
    elif nonfinite != "none":
        x.flat[rng.integers(0, x.size, 2)] = [np.nan, -np.inf] if nonfinite == "nan" else [np.inf, -np.inf]
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    spec = QuantSpec(format=fmt)
    assert qspec.uses_span(spec)
    got = qspec.calibrate(spec, x)
    assert (got.scale, got.zero_point) == _numpy_tensor_calibrate(spec, x)


def test_span_of_nothing_leaves_the_spec():
    spec = QuantSpec(format="int8")
    assert qspec.calibrate(spec, np.zeros((0, 3))) == spec
    assert not qspec.uses_span(QuantSpec(format="ternary"))  # mean_abs: its own pass


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["int8", "uint8", "int4", "int16", "int8_narrow"]), st.sampled_from([np.float32, np.float64]),
       st.integers(-4, 3), st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_weight_codes_made_in_the_quantizing_pass(fmt, xdtype, axis, f64_scale, with_zp, seed):
    """A weight quantized per channel as a Coded: its real values are the formats' numpy quantize
    and its codes qspec.codes of them, in the type the integer executors keep (uint8 / int8 for
    formats spanning it, else int64)."""
    x, spec = _channel_case(fmt, xdtype, axis, f64_scale, with_zp, seed)
    coded = qspec.quantize_weight_coded(x, spec)
    want = _numpy_quantize(x, spec)
    assert isinstance(coded, qspec.Coded) and coded.codes.dtype == (qspec.code_dtype(spec) or np.int64)
    np.testing.assert_array_equal(coded.real(), want)
    np.testing.assert_array_equal(coded.codes, qspec.codes(want, spec))
    values, same = qspec.prepare_weight(x, spec, None, coded=True)
    assert same == spec and np.array_equal(values.codes, coded.codes)


@pytest.mark.nojit
@settings(max_examples=40, deadline=None)
@given(in_fmt=st.sampled_from(["uint8", "int8"]), out_fmt=st.sampled_from(["uint8", "int8"]),
       c=st.integers(1, 40), rows=st.integers(1, 6), ties=st.booleans(), seed=st.integers(0, 2**31))
def test_codes_plus_vector_in_one_pass_equal_the_three_passes(in_fmt, out_fmt, c, rows, ties, seed):
    """_add_vector_codes_f32: DequantizeLinear's float32 reals of the codes (onepass._dequant_f32),
    numpy's float64 add of the vector along the last axis, quantize_coded onto the output's grid."""
    from hwsim.kernels.onepass import _dequant_f32
    from hwsim.kernels.quantize import _add_vector_codes_f32

    rng = np.random.default_rng(seed)
    sin = QuantSpec(format=in_fmt, scale=(float(np.float32(rng.uniform(0.005, 0.1))),), zero_point=(int(rng.integers(-5, 6)) + (128 if in_fmt == "uint8" else 0),))
    so = QuantSpec(format=out_fmt, scale=(float(np.float32(rng.uniform(0.005, 0.1))),), zero_point=(int(rng.integers(-5, 6)) + (128 if out_fmt == "uint8" else 0),))
    codes = rng.integers(0, 256, (rows, c)).astype(np.uint8).view(qspec.code_dtype(sin))
    s_in, s_out = np.float32(sin.scale[0]), np.float32(so.scale[0])
    v = rng.standard_normal(c) * 2.0
    if ties:  # sums landing on half steps of the output grid (rounding ties)
        v = ((rng.integers(-200, 200, c) + 0.5) * np.float64(s_out)).astype(np.float32).astype(np.float64)
        codes[:] = sin.zero_point[0]
    a = np.empty(codes.shape)
    _dequant_f32(codes.reshape(-1), np.int64(sin.zero_point[0]), s_in, a.reshape(-1))
    want = qspec.quantize_coded(a + v, so).codes
    out = np.empty_like(want)
    nans = _add_vector_codes_f32(codes.reshape(-1), np.int64(sin.zero_point[0]), s_in, v, s_out,
                                 np.float64(so.zero_point[0]), -128.0 if out_fmt == "int8" else 0.0,
                                 127.0 if out_fmt == "int8" else 255.0, out.reshape(-1))
    assert nans == 0
    np.testing.assert_array_equal(out, want)
