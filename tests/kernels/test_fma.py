"""The float32 FMA kernel (hwsim.kernels.fma) against the numpy TwoSum version and an exact oracle."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import fma
from hwsim.sim.mlas_math import fma32_numpy

F32 = st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-2.0 ** 50, max_value=2.0 ** 50)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(F32, F32, F32), min_size=1, max_size=40), st.sampled_from(["arrays", "scalar b", "scalar c"]))
def test_fma_kernel_equals_the_numpy_twosum_version(rows, shape):
    a, b, c = (np.array(col, np.float32) for col in zip(*rows))
    if shape == "scalar b":
        b = b[0]
    elif shape == "scalar c":
        c = np.float32(c[0])
    np.testing.assert_array_equal(fma.fma32(a, b, c), fma32_numpy(a, b, c))


def test_ties_broken_by_the_addend_and_broadcasting():
    """a * a = 1 + 2**-11 + 2**-24 is a float32 tie; 2**-60 decides it (exact oracle: Fractions)."""
    a = np.float32(1 + 2 ** -12)
    c = np.array([0, 2 ** -60, -2 ** -60], np.float32)
    got = fma.fma32(a, a, c)
    exact = [Fraction(float(a)) ** 2 + Fraction(float(x)) for x in c]
    want = [np.float32(1 + 2 ** -11), np.float32(1 + 2 ** -11 + 2 ** -23), np.float32(1 + 2 ** -11)]
    assert [Fraction(float(w)) for w in want] != exact  # none exact: rounding decides
    np.testing.assert_array_equal(got, want)
    assert fma.fma32(np.float32(2), np.float32(3), np.float32(1)).shape == ()
    np.testing.assert_array_equal(fma.fma32(np.ones((2, 3), np.float32), np.float32(2), np.arange(3, dtype=np.float32)),
                                  np.tile(np.float32([2, 3, 4]), (2, 1)))


def _qlinear_add_numpy(ca, cb, shift, ra, rb, fixed, lo, hi, narrow):
    """hwsim.sim.ortfused.qlinear_add's numpy passes (the oracle of the one-pass kernel)."""
    f32 = np.float32
    a, b = ca.astype(f32) + f32(shift), cb.astype(f32) + f32(shift)
    t = fma32_numpy(a, ra, fma32_numpy(b, rb, fixed))
    t = np.clip(np.rint(t), lo + shift, hi + shift) - f32(shift)
    return t.astype(narrow)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 300), signed=st.booleans(), shift=st.sampled_from([0, 128]),
       ratios=st.sampled_from(["ties", "random"]), layout=st.sampled_from(["C", "channels last", "transposed"]))
def test_qlinear_add_kernel_equals_the_numpy_passes(seed, n, signed, shift, ratios, layout):
    """ortfused._qlinear_add_codes (one pass) against the numpy passes it replaces: codes read as
    float32 plus the shift, two float32 FMAs, rint half-even (ties: ratios 0.5 and 0.25 put whole
    and half values on the grid), the clip and the output type; codes in any one memory order."""
    from hwsim.sim.ortfused import _qlinear_add_codes

    rng = np.random.default_rng(seed)
    dt = np.int8 if signed else np.uint8
    info = np.iinfo(dt)
    ca, cb = (rng.integers(info.min, info.max, (2, 3, n), endpoint=True).astype(dt) for _ in range(2))
    if layout == "channels last":
        ca, cb = (np.ascontiguousarray(c.transpose(0, 2, 1)).transpose(0, 2, 1) for c in (ca, cb))
    elif layout == "transposed":
        ca, cb = ca.T, cb.T
    ra, rb, fixed, fmt, narrow = _add_params(rng, ratios, signed, shift)
    got = _qlinear_add_codes(ca, cb, shift, ra, rb, fixed, fmt, narrow)
    want = _qlinear_add_numpy(ca, cb, shift, ra, rb, fixed, fmt.qmin, fmt.qmax, narrow)
    assert got is not None and got.dtype == narrow and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _add_params(rng, ratios: str, signed: bool, shift: int):
    """(ra, rb, fixed, output format, its code type) of a QLinearAdd: ``ties`` puts half values on
    the grid, ``random`` draws them; int8 output codes for signed unshifted inputs, else uint8."""
    from hwsim import formats

    if ratios == "ties":
        ra, rb, fixed = np.float32(0.5), np.float32(0.25), np.float32(rng.integers(-40, 40) / 4)
    else:
        ra, rb, fixed = (np.float32(v) for v in (rng.random() * 2, rng.random() * 2, rng.standard_normal() * 50))
    fmt = formats.get("int8" if signed and not shift else "uint8")
    return ra, rb, fixed, fmt, np.int8 if fmt.qmin < 0 else np.uint8


def test_qlinear_add_kernel_declines_what_it_does_not_read():
    from hwsim import formats
    from hwsim.sim.ortfused import _qlinear_add_codes

    a = np.zeros((4, 6), np.uint8)
    args = (0, np.float32(1), np.float32(1), np.float32(0), formats.get("uint8"), np.uint8)
    assert _qlinear_add_codes(a, a[:1, :1], *args) is None  # a single-element input: numpy's path
    assert _qlinear_add_codes(a, a.T.copy().T[:, ::-1], *args) is None  # no common memory order
    assert _qlinear_add_codes(a.astype(np.int16), a, *args) is None
    assert _qlinear_add_codes(a, a, *args) is not None


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 40), signed=st.booleans(), shift=st.sampled_from([0, 128]),
       ratios=st.sampled_from(["ties", "random"]),
       form=st.sampled_from(["row", "row first", "channel, channels last", "channel first, channels last",
                             "int64 row", "column"]))
def test_qlinear_add_kernel_with_a_broadcast_operand_equals_the_numpy_passes(seed, n, signed, shift, ratios, form):
    """ortfused._qlinear_add_codes with one operand broadcast along the other's leading axes in its
    memory order (a linear's bias row, a conv's per-channel bias on channels-last codes, int64
    codes of a constant) against the numpy passes on the broadcast arrays; a broadcast that is not
    a period of the memory order (a column) declines."""
    from hwsim.sim.ortfused import _qlinear_add_codes

    rng = np.random.default_rng(seed)
    dt = np.int8 if signed else np.uint8
    info = np.iinfo(dt)
    draw = lambda shape: rng.integers(info.min, info.max, shape, endpoint=True).astype(dt)  # noqa: E731
    if form.startswith("channel"):
        big = np.ascontiguousarray(draw((2, n, 3, 4)).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        small = draw((1, n, 1, 1))
    elif form == "column":
        big, small = draw((3, n)), draw((3, 1))
    else:
        big, small = draw((1, 3, n)), draw((n,))
        if form == "int64 row":
            small = small.astype(np.int64)
    first = "first" in form
    ca, cb = (small, big) if first else (big, small)
    ra, rb, fixed, fmt, narrow = _add_params(rng, ratios, signed, shift)
    got = _qlinear_add_codes(ca, cb, shift, ra, rb, fixed, fmt, narrow)
    if form == "column":
        assert got is None
        return
    want = _qlinear_add_numpy(*np.broadcast_arrays(ca, cb), shift, ra, rb, fixed, fmt.qmin, fmt.qmax, narrow)
    assert got is not None and got.dtype == narrow and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _qlinear_mul_numpy(ca, cb, za, zb, ratio, zc, lo, hi, shift, narrow):
    """hwsim.sim.ortfused.qlinear_mul's numpy passes (the oracle of the one-pass kernel)."""
    f32 = np.float32
    prod = ((ca.astype(np.int32) - za) * (cb.astype(np.int32) - zb)).astype(f32)
    t = np.multiply(prod, ratio, dtype=f32)
    t += f32(zc)
    t = np.clip(np.rint(t), lo + shift, hi + shift)
    return (t.astype(np.int64) - shift).astype(narrow)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 40), signed=st.booleans(), shift=st.sampled_from([0, 128]),
       ratios=st.sampled_from(["ties", "random"]),
       form=st.sampled_from(["same", "same, channels last", "row", "row first", "channel, channels last",
                             "int64 row", "column", "transposed pair"]))
def test_qlinear_mul_kernel_equals_the_numpy_passes(seed, n, signed, shift, ratios, form):
    """ortfused._qlinear_mul_codes (one pass) against the numpy passes it replaces: the exact
    integer product of the codes minus their zero points as float32, times the ratio and plus the
    output zero point each rounded to float32, rint half-even (ties: ratio 0.5 and a half-integer
    zero point), the clip and the output type; two arrays in one memory order or a broadcast
    operand along the other's leading axes; other layouts decline."""
    from hwsim import formats
    from hwsim.sim.ortfused import _qlinear_mul_codes

    rng = np.random.default_rng(seed)
    dt = np.int8 if signed else np.uint8
    info = np.iinfo(dt)
    draw = lambda shape: rng.integers(info.min, info.max, shape, endpoint=True).astype(dt)  # noqa: E731
    if form == "same":
        ca, cb = draw((2, 3, n)), draw((2, 3, n))
    elif form == "same, channels last":
        ca, cb = (np.ascontiguousarray(draw((2, 3, 4, n))).transpose(0, 3, 1, 2) for _ in range(2))
    elif form == "transposed pair":
        ca, cb = draw((3, n)), draw((n, 3)).T
    elif form.startswith("channel"):
        ca, cb = np.ascontiguousarray(draw((2, 3, 4, n))).transpose(0, 3, 1, 2), draw((1, n, 1, 1))
    elif form == "column":
        ca, cb = draw((3, n)), draw((3, 1))
    else:
        ca, cb = draw((1, 3, n)), draw((n,))
        if form == "int64 row":
            cb = cb.astype(np.int64)
        if "first" in form:
            ca, cb = cb, ca
    za, zb = (int(z) for z in rng.integers(info.min // 2, info.max // 2, 2))
    if ratios == "ties":
        ratio, zc = np.float32(0.5), np.float32(rng.integers(-40, 40) + 0.5)
    else:
        ratio, zc = np.float32(rng.random() / 50), np.float32(rng.integers(-20, 20))
    fmt = formats.get("int8" if signed and not shift else "uint8")
    narrow = np.int8 if fmt.qmin < 0 else np.uint8
    got = _qlinear_mul_codes(ca, cb, za, zb, ratio, zc + np.float32(shift), fmt, shift, narrow)
    if form in ("column", "transposed pair"):
        assert got is None
        return
    want = _qlinear_mul_numpy(*np.broadcast_arrays(ca, cb), za, zb, ratio, zc + np.float32(shift), fmt.qmin, fmt.qmax,
                              shift, narrow)
    assert got is not None and got.dtype == narrow and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
