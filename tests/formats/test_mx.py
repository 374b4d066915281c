"""OCP MX block formats against a slow by-the-book reference."""

import numpy as np
import pytest

import hwsim.formats as F
from tests.formats import reference as R

MX = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8"]


def _elem_table(fmt):
    el = fmt.element
    codes = np.arange(el.num_codes)
    if el.kind == "int":  # mxint8: symmetric range, the code of -2 is unused
        codes = codes[codes != 1 << (el.bits - 1)]
    return el.decode(codes) * fmt.element_unit


def test_max_just_below_binade_keeps_exponent():
    f = F.get("mxfp4_e2m1")
    x = np.zeros(32, np.float32)
    x[0] = np.nextafter(np.float32(8.0), np.float32(0.0))  # 7.9999995
    assert np.log2(x[0]) == 3.0  # float32 log2 would pick the wrong binade
    blocks, _ = f._blocks(x, -1)
    assert f.shared_exponents(blocks)[0] == 0  # floor(log2) = 2, emax_elem(e2m1) = 2
    assert f.quantize(x)[0] == 6.0  # saturates at 6 * 2^0, not 8 * 2^1 / ... rounding up
    _, scale_codes = f.encode(x)
    assert scale_codes.tolist() == [127]


@pytest.mark.parametrize("name", MX)
def test_matches_reference(name):
    f = F.get(name)
    rng = np.random.default_rng(3)
    table = _elem_table(f)
    x = rng.standard_normal((6, 64)) * np.exp2(rng.integers(-20, 20, size=(6, 1)))
    x[0, :32] = 0.0  # all-zero block
    x[1, 5] = np.nextafter(np.float32(8.0), np.float32(0.0))
    x[2, :32] = 2.0 ** rng.integers(-3, 3, size=32) * 1.5  # many ties
    got = f.quantize(x, axis=-1)
    for i in range(x.shape[0]):
        for b in range(2):
            blk = x[i, 32 * b:32 * (b + 1)]
            want = R.mx_reference(blk, table, f.element_emax)
            np.testing.assert_array_equal(got[i, 32 * b:32 * (b + 1)], want)


@pytest.mark.parametrize("name", MX)
def test_encode_decode_and_axis(name):
    f = F.get(name)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 3, 5))
    q = f.quantize(x, axis=0)  # 40 = one full block + a partial one
    codes, scales = f.encode(x, axis=0)
    assert codes.shape == x.shape and scales.shape == (3, 5, 2)
    np.testing.assert_array_equal(f.decode(codes, scales, axis=0), q)
    np.testing.assert_array_equal(f.quantize(np.moveaxis(x, 0, -1)), np.moveaxis(q, 0, -1))
    np.testing.assert_array_equal(f.quantize(q, axis=0), q)  # idempotent


def test_nan_and_inf_poison_their_block_only():
    f = F.get("mxfp8_e4m3")
    x = np.ones(64)
    x[3] = np.inf
    y = f.quantize(x)
    assert np.isnan(y[:32]).all() and (y[32:] == 1.0).all()
    codes, scales = f.encode(x)
    assert scales.tolist() == [255, 127 + 0 - 8]  # floor(log2 1) - emax_elem(e4m3) = -8
    assert np.isnan(f.decode(codes, scales)[:32]).all()


@pytest.mark.parametrize("name", MX)
@pytest.mark.parametrize("scale_code", [0, 1, 100, 127, 200, 254])
def test_every_element_code_round_trips(name, scale_code):
    """A block holding code c next to the element's max code re-encodes to the same codes."""
    f = F.get(name)
    el = f.element
    codes = np.arange(el.num_codes)
    if el.kind == "int":
        codes = codes[codes != 1 << (el.bits - 1)]
    vals = el.decode(codes)
    codes = codes[np.isfinite(vals)]
    top = int(el.encode(np.array([el.max]), saturate=True)[0])
    blocks = np.full((len(codes), 32), top, dtype=np.uint8)
    blocks[:, 0] = codes
    scales = np.full((len(codes), 1), scale_code, dtype=np.uint8)
    x = f.decode(blocks, scales)
    c2, s2 = f.encode(x)
    d2 = f.decode(c2, s2)
    np.testing.assert_array_equal(d2, x)
    nonzero = x[:, 0] != 0
    np.testing.assert_array_equal(s2[:, 0], scale_code)
    np.testing.assert_array_equal(c2[nonzero, 0], blocks[nonzero, 0])
