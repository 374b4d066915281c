"""One-pass 8-bit quantization to codes (hwsim.kernels.quantize via qspec.quantize_coded) against
the formats' own quantize (the numpy path the simulator used before)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.graph.quant import QuantSpec
from hwsim.sim import qspec


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["uint8", "int8"]), st.sampled_from([np.float32, np.float64]),
       st.floats(1e-3, 4.0), st.integers(0, 255), st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_quantize_coded_equals_quantize(fmt, xdtype, scale, zp, f64_scale, channels_last, seed):
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
    coded = qspec.quantize_coded(x, spec)
    want = qspec.quantize(x, spec)
    assert coded is not None and coded.codes.dtype == (np.uint8 if fmt == "uint8" else np.int8)
    np.testing.assert_array_equal(coded.real(), want)


def test_quantize_coded_declines_what_it_does_not_cover():
    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)
    assert qspec.quantize_coded(x, QuantSpec(format="int4", scale=(0.5,), zero_point=(0,))) is None
    chan = QuantSpec(format="int8", scale=(0.5, 0.25, 1.0), zero_point=(0, 0, 0), granularity="channel", axis=1)
    assert qspec.quantize_coded(x, chan) is None
    x[0, 1, 2] = np.nan  # quantize itself refuses it, with its message
    assert qspec.quantize_coded(x, QuantSpec(format="int8", scale=(0.5,), zero_point=(0,))) is None
