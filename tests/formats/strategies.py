"""Hypothesis strategies that return format objects (usable by other test packages)."""

from hypothesis import strategies as st

import hwsim.formats as F


@st.composite
def float_formats(draw):
    """Sign + e + m floats, e in 2..8, m in 0..10, every NaN policy."""
    policy = draw(st.sampled_from(["ieee", "fn", "fnuz", "finite"]))
    e = draw(st.integers(2, 8))
    m = draw(st.integers(1 if policy in ("ieee", "fn") else 0, 10))
    return F.FloatFormat(e, m, nan_policy=policy)


@st.composite
def int_formats(draw):
    """Signed (2..16 bits, optionally narrow) and unsigned (1..16 bits) integers."""
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, 16))
    return F.IntFormat(bits, signed, narrow_range=signed and draw(st.booleans()))


table_formats = st.one_of(st.just(F.TernaryFormat()), st.just(F.BinaryFormat()),
                          st.integers(2, 6).map(F.Pow2Format))
formats = st.one_of(float_formats(), int_formats(), table_formats)
mx_formats = st.sampled_from(["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2",
                              "mxfp4_e2m1", "mxint8"]).map(F.get)
