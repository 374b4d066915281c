"""The float reference's elementwise chain kernel (hwsim.kernels.refchain) against numpy's float64
ops, the reference's erf and its relu6 / relu (numpy's clip and maximum) run one op after another:
the same bits (NaN as NaN, the sign of a zero too)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.float32_ops import erfc_coefficients
from hwsim.kernels.refchain import _chain
from hwsim.sim.elementwise import reference_erf

_NUMPY = [np.add, np.subtract, np.multiply, np.divide]


def _plain(y, bias, with_bias, prog, consts):
    """The chain op by op as the reference computes it: whole float64 arrays."""
    with np.errstate(all="ignore"):
        x = np.asarray(y, np.float64) + bias if with_bias else np.asarray(y, np.float64)
    slots = [x.reshape(-1)]

    def operand(k):
        return slots[k] if k >= 0 else np.float64(consts[-k - 1])

    with np.errstate(all="ignore"):
        for code, a, b, _ in prog:
            slots.append(reference_erf(slots[a]) if code == 4 else np.clip(slots[a], 0.0, 6.0) if code == 5 else
                         np.maximum(slots[a], 0.0) if code == 6 else _NUMPY[code](operand(a), operand(b)))
    return slots[1:]


def _same(got, want):
    assert got.dtype == np.float64 and got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint64), want[~nan].view(np.uint64))  # bits: -0.0 is not 0.0


def _check(y, bias, with_bias, prog, consts):
    outs = np.empty((len(prog), y.size))
    _chain(y, bias, with_bias, np.asarray(prog, np.int64).reshape(-1, 4), np.array(list(consts) + [0.0]), outs,
           erfc_coefficients())
    for got, want in zip(outs, _plain(y, bias, with_bias, prog, consts)):
        _same(got, want)


#: a hard-swish written out (x + 3, relu6, x * that, / 6), as PP-OCR's float models hold it
_HARDSWISH = [(0, 0, -1, 0), (5, 1, 0, 0), (2, 0, 2, 0), (3, 3, -2, 0)]

#: the GELU of BERT's QDQ export: x * 0.5, x * (1 / sqrt 2), erf, + 1, product of the two
_GELU = [(2, 0, -1, 0), (2, 0, -2, 0), (4, 2, 0, 0), (0, 3, -3, 0), (2, 1, 4, 0)]
_GELU_CONSTS = (0.5, float(np.float32(1 / np.sqrt(2))), 1.0)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,cols", [(3, 5), (2, 1100), (1, 512), (4, 1)])
def test_gelu_chain_equals_numpy_op_by_op(dtype, rows, cols):
    rng = np.random.default_rng(rows * cols)
    y = (rng.standard_normal((rows, cols)) * 3).astype(dtype)
    bias = rng.standard_normal(cols)
    _check(y, bias, True, _GELU, _GELU_CONSTS)
    _check(y, np.zeros(1), False, _GELU, _GELU_CONSTS)
    _check(y, bias, True, _HARDSWISH, (3.0, 6.0))


def test_specials_signed_zeros_and_division_by_zero():
    y = np.array([[0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308, -1e308, 1.0, -1.0, 0.5]])
    bias = np.array([-0.0, 0.0, 1.0, -np.inf, 0.0, 0.0, -5e-324, 1e308, -1e308, -1.0, 0.0, -0.5])
    progs = [[(3, 0, -1, 0), (3, -2, 1, 0), (1, 2, 0, 0), (4, 3, 0, 0)],  # x / 0, -0 / that, minus x, erf
             [(1, -2, 0, 0), (2, 1, 1, 0), (0, 2, -1, 0), (3, 0, 3, 0)]]  # -0 - x, squared, + 0, x / it
    progs += [[(5, 0, 0, 0), (6, 0, 0, 0), (1, -2, 0, 0), (5, 3, 0, 0), (6, 3, 0, 0)]]  # relu6, relu of x, -x
    for prog in progs:
        for with_bias in (True, False):
            _check(y, bias, with_bias, prog, (0.0, -0.0))


def test_no_values():
    _check(np.zeros((0, 4), np.float32), np.zeros(4), True, _GELU, _GELU_CONSTS)


@st.composite
def _progs(draw):
    n = draw(st.integers(1, 6))
    consts = draw(st.lists(st.floats(width=64), min_size=1, max_size=3))
    prog = []
    for i in range(n):
        code = draw(st.integers(0, 6))
        arrays = st.integers(0, i)  # x or an earlier op
        a = draw(arrays)
        b = draw(st.one_of(arrays, st.integers(-len(consts), -1))) if code < 4 else 0
        if code < 4 and draw(st.booleans()):
            a, b = (b, a) if b < 0 else (a, b)  # a scalar first (at most one operand scalar)
        prog.append((code, a, b, 0))
    return prog, consts


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(pc=_progs(), rows=st.integers(1, 3), cols=st.integers(1, 700), f32=st.booleans(), with_bias=st.booleans(),
       seed=st.integers(0, 2**31))
def test_random_chains_equal_numpy_op_by_op(pc, rows, cols, f32, with_bias, seed):
    prog, consts = pc
    rng = np.random.default_rng(seed)
    y = (rng.standard_normal((rows, cols)) * 4)
    y.reshape(-1)[rng.integers(0, y.size, 3)] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0], 3)
    _check(y.astype(np.float32) if f32 else y, rng.standard_normal(cols), with_bias, prog, consts)
