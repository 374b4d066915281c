"""The transformer tail's float32 executors (hwsim.solve.tail_tf) against plain numpy."""

import numpy as np
import pytest

from hwsim.solve.tail_tf import _matmul


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("sa, sb", [((24, 128, 12, 32), None), ((1, 12, 5, 7), (1, 12, 7, 3)),
                                    ((3, 1, 5, 7), (1, 4, 7, 3)), ((9, 5, 7), (9, 7, 3)),
                                    ((2, 3, 4, 5, 7), (2, 3, 4, 7, 2))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stacked_products_equal_numpy_matmul(rng, sa, sb, dtype):
    if sb is None:  # attention heads: transposed views of a linear's output, not copied
        b, s, h, d = sa
        a = rng.standard_normal((b, s, h * d)).astype(np.float32).reshape(b, s, h, d).transpose(0, 2, 1, 3)
        k = rng.standard_normal((b, s, h * d)).astype(np.float32).reshape(b, s, h, d).transpose(0, 2, 3, 1)
    else:
        a, k = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    got = _matmul(a, k, np.dtype(dtype))
    want = np.matmul(a.astype(np.float64), k.astype(np.float64))
    assert got.dtype == np.float32 and got.shape == want.shape
    tol = 1e-5 if dtype == "float32" else 1e-7  # float32 sums / one rounding of float64 sums
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_products_other_than_float32_stacks_are_not_taken(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    assert _matmul(a, rng.standard_normal((4, 5)).astype(np.float32), np.dtype("float32")) is None
    assert _matmul(a.astype(np.float64), a.transpose(0, 2, 1), np.dtype("float32")) is None
