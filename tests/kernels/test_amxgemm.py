"""The AMX-BF16 products of float32 by small integers (hwsim.kernels.amxgemm) against plain numpy:
the limb split and the panels everywhere (no tile instruction in them), the product where the host
has AMX-BF16 (skipped elsewhere, with the reason)."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import amxgemm

amx = pytest.mark.skipif(not amxgemm.available(), reason="needs AMX-BF16 (amx-tile, amx-bf16), numba JIT")
TINY = 2.0**-126  # AMX reads bfloat16 denormals as zero and flushes float32 denormal results


def _limbs_ref(x: np.ndarray) -> list[np.ndarray]:
    """The three limbs of float32 ``x`` as float32: truncate to the top 16 bits, subtract, repeat."""
    out, rest = [], x.astype(np.float32)
    for _ in range(3):
        top = (rest.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
        out.append(top)
        rest = (rest - top).astype(np.float32)
    return out


def _finite_patterns(rng, n: int) -> np.ndarray:
    """Random float32 bit patterns: every finite exponent (subnormals and zeros included)."""
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    fraction, exponent = rng.integers(0, 2**23, 512), rng.integers(0, 30, 512)  # below 2**-97
    tiny = (fraction | exponent << 23).astype(np.uint32)
    return np.concatenate([x, tiny.view(np.float32), -tiny.view(np.float32), np.float32([0.0, -0.0])])


def _kernel_limbs(x: np.ndarray) -> list[np.ndarray]:
    """The limbs :func:`amxgemm.split` makes, as float32 arrays shaped like ``x`` (M, K)."""
    limbs, _ = amxgemm.split(x)
    m, k = x.shape
    return [(limbs[i, :m, :k].astype(np.uint32) << 16).view(np.float32) for i in range(3)]


@pytest.mark.nojit
def test_the_split_is_exact_down_to_the_tiles_denormals(rng):
    """h0 + h1 + h2 == x bit for bit for every finite x with |x| >= 2**-103, and the kernel's limbs
    are the plain-numpy ones. What AMX multiplies (limbs below 2**-126 read as zero) differs from
    x by less than 2**-126 for every finite x (module docstring)."""
    x = _finite_patterns(rng, 200_000).reshape(1, -1)
    h = _kernel_limbs(x)
    for got, want in zip(h, _limbs_ref(x)):
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    total = h[0].astype(np.float64) + h[1] + h[2]
    big = np.abs(x) >= 2.0**-103
    np.testing.assert_array_equal(total[big], x[big].astype(np.float64))
    seen = sum(np.where(np.abs(t) >= TINY, t.astype(np.float64), 0.0) for t in h)
    assert np.all(np.abs(seen - x) < TINY)
    assert np.all(np.abs(total - x) <= 2.0**-133)  # plain float32 limbs: lost only below bf16's denormals


@pytest.mark.nojit
@pytest.mark.parametrize("shape", [(1, 1), (5, 33), (33, 64), (64, 100)])
def test_the_split_pads_with_zeros_and_flags_inf_and_nan(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    limbs, exponent = amxgemm.split(x)
    assert limbs.shape == (3, -(-shape[0] // 32) * 32, -(-shape[1] // 32) * 32 + 32)
    assert not limbs[:, shape[0]:].any() and not limbs[:, :, shape[1]:].any()
    assert exponent == int(np.abs(x).view(np.uint32).max() >> 23)
    x[-1, -1] = np.inf
    assert amxgemm.split(x)[1] == 255
    x[-1, -1] = np.nan
    assert amxgemm.split(x)[1] == 255


@pytest.mark.nojit
def test_a_float64_operand_is_split_as_its_float32_rounding(rng):
    x = rng.standard_normal((5, 40)) * np.float64(10.0) ** rng.integers(-40, 40, (5, 40))
    x[0, :3] = [3.5e38, -1e-46, 1.0 + 2.0**-24 + 2.0**-40]  # beyond float32, below its denormals, a tie + epsilon
    with np.errstate(over="ignore"):
        want = amxgemm.split(x.astype(np.float32))
        got = amxgemm.split(x)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1] == 255


@pytest.mark.nojit
@pytest.mark.parametrize("k, n", [(1, 1), (31, 17), (64, 32), (70, 100)])
def test_panels_hold_the_integers_in_vnni_pairs(rng, k, n):
    d = rng.integers(-256, 257, (k, n))
    b = amxgemm.panels(d)
    kp, npad = -(-k // 32) * 32, -(-n // 32) * 32
    assert b.shape == (npad // 32, kp // 32, 2, 16, 32)
    vals = (b.astype(np.uint32) << 16).view(np.float32)
    for kk in range(kp):
        for j in range(npad):
            got = vals[j // 32, kk // 32, (j // 16) % 2, (kk % 32) // 2, 2 * (j % 16) + kk % 2]
            assert got == (d[kk, j] if kk < k and j < n else 0)
    with pytest.raises(ValueError):
        amxgemm.panels(np.array([[257]]))


def test_available_needs_jit_and_the_host_target(monkeypatch):
    monkeypatch.setattr(amxgemm, "_host_amx", lambda: True)
    assert amxgemm.available() == (not numba.config.DISABLE_JIT and not numba.config.CPU_FEATURES
                                   and numba.config.CPU_NAME in (None, "host"))
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    assert not amxgemm.available()
    monkeypatch.setattr(numba.config, "DISABLE_JIT", False)
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2")
    assert not amxgemm.available()
    monkeypatch.setattr(amxgemm, "_host_amx", lambda: False)
    with pytest.raises(RuntimeError):
        amxgemm.dot(np.ones((1, 1), np.float32), amxgemm.panels(np.ones((1, 1), np.int64)), 1, np.ones(1))


def _check(x, d, s, y):
    """``y`` against float64 ``(x @ d) * s``: the float32 sums' bound (3 Kp additions, the scale's
    rounding) plus the flushed denormals (below 2**-126 per x and per sum)."""
    x64 = x.astype(np.float64)
    want = (x64 @ d) * s
    k = -(-x.shape[1] // 32) * 32
    sums = (3 * k + 2) * 2.0**-24 * (np.abs(x64) @ np.abs(d)) + (3 * k) * 256 * TINY
    bound = sums * np.abs(s) + np.abs(want) * 2.0**-24
    assert y.dtype == np.float32 and y.shape == want.shape
    assert np.all(np.abs(y - want) <= bound)


@amx
@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 70), k=st.integers(1, 200), n=st.integers(1, 90), seed=st.integers(0, 2**31),
       per_channel=st.booleans(), f64=st.booleans(), blocks=st.sampled_from([32, 64, 1 << 30]))
def test_dot_is_float32_level(m, k, n, seed, per_channel, f64, blocks):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * rng.choice([1e-3, 1.0, 1e3])).astype(np.float32)
    d = rng.integers(-256, 257, (k, n))
    s = (rng.random(n if per_channel else 1) + 0.5).astype(np.float64 if f64 else np.float32) * np.float32(0.01)
    s = np.broadcast_to(s, (n,)).copy()
    y = amxgemm.dot(x, amxgemm.panels(d), n, s, cols=blocks)
    _check(x, d, s, y)
    np.testing.assert_array_equal(y, amxgemm.dot(x, amxgemm.panels(d), n, s))  # blocks never move a value


@amx
@pytest.mark.parametrize("m, k, n", [(128, 768, 256), (40, 1100, 64), (300, 64, 40)])
def test_dot_on_large_and_blocked_shapes(rng, m, k, n):
    """K beyond one block (partial sums kept between blocks), several row groups, tiny x."""
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[0, :7] = np.float32([1e-38, -3e-39, 1e-45, 2.0**-103, 2.0**-110, 0.0, -0.0])
    d = rng.integers(-255, 256, (k, n))
    s = np.full(n, 0.02, np.float32)
    tasks = []
    y = amxgemm.dot(x, amxgemm.panels(d), n, s, run=lambda ts: tasks.extend(ts) or [t() for t in ts], cols=64)
    assert len(tasks) == -(-n // 64)
    _check(x, d, s, y)


@amx
def test_dot_refuses_inf_nan_and_what_might_overflow():
    d = np.ones((4, 3), np.int64)
    s = np.ones(3, np.float32)
    for bad in (np.inf, -np.inf, np.nan, 3e38):
        x = np.ones((2, 4), np.float32)
        x[1, 2] = bad
        assert amxgemm.dot(x, amxgemm.panels(d), 3, s) is None
    x = np.full((2, 4), 1e30, np.float32)
    np.testing.assert_array_equal(amxgemm.dot(x, amxgemm.panels(d), 3, s), np.full((2, 3), 4e30, np.float32))
