"""LayerNormalization rows in one kernel (hwsim.kernels.refnorm) against the executor's numpy
expression: the same bits (numpy's pairwise means, NaN as NaN), and numpy's own path where the
kernel does not apply."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels.refnorm import _pairwise_sum
from hwsim.sim.elementwise import _layernorm_rows


def _plain(x, g, b, eps):
    """hwsim.sim.elementwise._layernorm's numpy expression (before the kernel)."""
    with np.errstate(all="ignore"):
        mu = np.mean(x, axis=-1, keepdims=True)
        var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + eps) * g
        return y + b if b is not None else y


def _same(got, want):
    assert got.dtype == np.float64 and got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint64), want[~nan].view(np.uint64))


@pytest.mark.nojit
@pytest.mark.parametrize("c", [1, 7, 8, 9, 16, 127, 128, 129, 130, 257, 768, 1000])
def test_rows_equal_numpy_bit_for_bit(c):
    rng = np.random.default_rng(c)
    x = rng.standard_normal((2, 3, c)) * 50 + 3
    g, b = rng.standard_normal(c), rng.standard_normal(c)
    for beta in (b, None):
        _same(_layernorm_rows(x, g, beta, 1e-5), _plain(x, g, beta, 1e-5))


def test_long_rows_and_numpy_sums():
    """Rows longer than numpy's block of 128 and its buffer of 8192 values: the pairwise sums
    are numpy's add.reduce of a contiguous row (started from 0.0), bit for bit."""
    rng = np.random.default_rng(5)
    for c in (3072, 8191, 8192, 8193, 20000):
        x = rng.standard_normal((2, c)) * 1e3 - 7
        g, b = rng.standard_normal(c), rng.standard_normal(c)
        _same(_layernorm_rows(x, g, b, 1e-12), _plain(x, g, b, 1e-12))
        assert 0.0 + _pairwise_sum(x[0], 0, c) == np.add.reduce(x[0])


def test_specials():
    x = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [-0.0, -0.0, -0.0], [1e308, -1e308, 1e308],
                  [5e-324, 0.0, -5e-324]])
    g, b = np.array([1.0, -0.0, 2.0]), np.array([0.0, -0.0, 1.0])
    for eps in (0.0, 1e-5):
        _same(_layernorm_rows(x, g, b, eps), _plain(x, g, b, eps))


def test_declines_what_it_does_not_read():
    x = np.random.default_rng(0).standard_normal((4, 6))
    g = np.ones(6)
    assert _layernorm_rows(x[:, ::2], g[:3], None, 1e-5) is None  # not contiguous: numpy's path
    assert _layernorm_rows(x.astype(np.float32), g, None, 1e-5) is None
    assert _layernorm_rows(x, g.reshape(1, 6), None, 1e-5) is None
    assert _layernorm_rows(np.zeros((2, 0)), np.zeros(0), None, 1e-5) is None


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 3), c=st.integers(1, 300), scale=st.sampled_from([1e-3, 1.0, 1e6]),
       with_beta=st.booleans(), eps=st.sampled_from([0.0, 1e-12, 1e-5]), seed=st.integers(0, 2**31),
       special=st.sampled_from([None, np.nan, np.inf, -np.inf, -0.0]))
def test_random_rows_equal_numpy(rows, c, scale, with_beta, eps, seed, special):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, c)) * scale + rng.standard_normal() * scale
    if special is not None:
        x[0, rng.integers(0, c)] = special
    g, b = rng.standard_normal(c), rng.standard_normal(c) if with_beta else None
    _same(_layernorm_rows(x, g, b, eps), _plain(x, g, b, eps))


def _plain_softmax(x, axis=-1):
    """hwsim.sim.elementwise._softmax's numpy expression (before the kernels)."""
    with np.errstate(all="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


@pytest.mark.parametrize("c", [1, 7, 8, 128, 129, 300, 3000, 8193])
def test_softmax_rows_equal_numpy_bit_for_bit(c):
    from hwsim.sim.elementwise import _softmax_rows

    x = np.random.default_rng(c).standard_normal((2, 3, c)) * 20
    _same(_softmax_rows(x, -1), _plain_softmax(x))
    _same(_softmax_rows(x, 2), _plain_softmax(x))


def test_softmax_specials_and_declines():
    from hwsim.sim.elementwise import _softmax_rows

    x = np.random.default_rng(2).standard_normal((6, 9))
    x[0, 2], x[1, 3], x[2, :], x[4, 5] = np.nan, np.inf, -np.inf, -np.inf
    x[3, :] = 0.0
    x[3, 1] = -0.0  # a zero maximum of either sign: exp(x - max) the same
    x[5, :] = 1e308
    _same(_softmax_rows(x, -1), _plain_softmax(x))
    assert _softmax_rows(x, 0) is None  # not the last axis: numpy's path
    assert _softmax_rows(x[:, ::2], -1) is None and _softmax_rows(x.astype(np.float32), -1) is None
    assert _softmax_rows(np.zeros((3, 0)), -1) is None


@pytest.mark.nojit
@settings(max_examples=50, deadline=None)
@given(rows=st.integers(1, 4), c=st.integers(1, 400), scale=st.sampled_from([1e-3, 1.0, 300.0]),
       seed=st.integers(0, 2**31), special=st.sampled_from([None, np.nan, np.inf, -np.inf, -0.0, 0.0]))
def test_random_softmax_rows_equal_numpy(rows, c, scale, seed, special):
    from hwsim.sim.elementwise import _softmax_rows

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, c)) * scale
    if special is not None:
        x[rng.integers(0, rows), rng.integers(0, c)] = special
    _same(_softmax_rows(x, -1), _plain_softmax(x))
