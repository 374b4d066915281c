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

    scale, zp, _, _ = qspec.spec_params(spec, np.shape(x))
    x = np.asarray(x, dtype=np.float64)
    if scale.dtype == np.float32:
        x = x.astype(np.float32)
    return formats.get(spec.format).quantize(x, scale=scale, zero_point=zp)


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
