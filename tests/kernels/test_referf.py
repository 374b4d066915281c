"""The float reference's vectorised float64 erf (hwsim.kernels.referf, elementwise.reference_erf)
against scipy's erf (cephes), the oracle it replaces in the reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf

from hwsim.sim.elementwise import reference_erf

#: the largest relative difference to scipy's erf allowed (measured: 5.1e-15, near |x| = 1 where
#: scipy switches to 1 - erfc; scipy's own erfc is documented to 5.7e-14)
REL = 1e-14


def _check(x):
    got, want = reference_erf(x), erf(x)
    assert got.dtype == np.float64 and got.shape == np.shape(x)
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    rel = np.abs(got[fin] - want[fin]) / np.maximum(np.abs(want[fin]), np.finfo(np.float64).tiny)
    assert rel.max(initial=0.0) <= REL
    np.testing.assert_array_equal(np.signbit(got[fin & (want == 0)]), np.signbit(want[fin & (want == 0)]))


@pytest.mark.nojit
@settings(max_examples=80, deadline=None)
@given(xs=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=40))
def test_reference_erf_equals_scipy_within_rel(xs):
    _check(np.array(xs, np.float64))


def test_reference_erf_over_its_ranges():
    """Both branches and their seam (|x| = 1), the end of erfc's range (6), subnormals, specials."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(200_000) * 2, rng.uniform(-7, 7, 100_000),
                        rng.uniform(-1.001, 1.001, 100_000), np.nextafter(1.0, [0.0, 2.0]),
                        -np.nextafter(1.0, [0.0, 2.0]), np.nextafter(6.0, [0.0, 7.0]),
                        10.0 ** rng.uniform(-320, 1, 20_000) * rng.choice([-1, 1], 20_000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e300]])
    _check(x.reshape(2, -1) if x.size % 2 == 0 else x)


def test_the_512_bit_loop_gives_the_same_bits(monkeypatch):
    """referf._erf compiled with and without the 512-bit preference (zmm.prefer_zmm; the host's
    AVX-512 decides whether it asks for anything): every value the same, NaN as NaN."""
    import numba

    from hwsim.float32_ops import erfc_coefficients
    from hwsim.kernels import referf, zmm

    if numba.config.DISABLE_JIT:
        pytest.skip("compiles the kernel both ways")
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal(100_000) * 2, rng.uniform(-7, 7, 50_000),
                        rng.integers(0, 2**63, 50_000).view(np.float64), [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0]])
    outs = []
    for wide in (False, True):
        monkeypatch.setattr(zmm, "ZMM", wide and zmm.zmm_host())
        kernel = numba.njit(nogil=True, fastmath={"contract"}, error_model="numpy")(referf._erf.py_func)
        for n in (x.size, 1, 7, 9, 17):
            out = np.empty(n)
            kernel(x[:n], out, erfc_coefficients())
            outs.append(out)
    half = len(outs) // 2
    for a, b in zip(outs[:half], outs[half:]):
        nan = np.isnan(a)
        np.testing.assert_array_equal(nan, np.isnan(b))
        assert np.array_equal(a[~nan].view(np.uint64), b[~nan].view(np.uint64))
