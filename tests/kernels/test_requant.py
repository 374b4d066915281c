"""Requantization modes against fixedpoint.h transcriptions and the float formulas they reproduce."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import kernel_api
from hwsim.errors import ConfigError, InputDataError
from hwsim.kernels import requant as rq
from tests.kernels import reference as ref


def _random_multipliers(rng, n):
    m = 10.0 ** rng.uniform(-7, 1.5, n)
    return np.concatenate([m, [2.0**-31, 2.0**-33, 0.5, 1.0, 1 - 2.0**-40, 2.0**-32 * 1.5, 0.0]])


def _random_acc(rng, n):
    acc = rng.integers(-(2**31), 2**31, n)
    small = rng.integers(-5000, 5000, n)
    edges = np.array([-(2**31), 2**31 - 1, 0, 1, -1, 2**30, -(2**30)])
    return np.concatenate([acc, small, edges])


def test_quantize_multiplier_matches_rational_oracle(rng):
    for m in _random_multipliers(rng, 3000):
        for single in (False, True):
            assert rq.quantize_multiplier(float(m), single) == ref.quantize_multiplier(float(m), single)


@pytest.mark.nojit
@pytest.mark.parametrize("mode", ["gemmlowp", "tflite"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_fixed_point_matches_fixedpoint_h(rng, mode, dtype):
    info = np.iinfo(dtype)
    for m in _random_multipliers(rng, 40):
        acc = _random_acc(rng, 50)
        zp = int(rng.integers(info.min, info.max + 1))
        got = kernel_api.requantize(acc, m, zp, mode, dtype)
        want = [ref.requant_fixed(int(x), float(m), zp, info.min, info.max, mode == "tflite")
                for x in acc]
        np.testing.assert_array_equal(got.astype(np.int64), want)


def test_double_and_single_rounding_differ(rng):
    acc = _random_acc(rng, 20000)
    m = 0.0123456
    g = kernel_api.requantize(acc, m, 0, "gemmlowp", np.int32)
    t = kernel_api.requantize(acc, m, 0, "tflite", np.int32)
    assert 0 < np.count_nonzero(g != t) < acc.size // 10


@pytest.mark.parametrize("mode", ["exact", "onnxruntime", "gemmlowp", "tflite"])
def test_per_channel_equals_per_tensor_slices(rng, mode):
    acc = rng.integers(-(2**20), 2**20, (3, 5, 7))
    mult = (10.0 ** rng.uniform(-5, -2, 5)).astype(np.float32)
    zp = rng.integers(0, 256, 5)
    got = kernel_api.requantize(acc, mult, zp, mode, np.uint8, axis=1)
    for c in range(5):
        want = kernel_api.requantize(acc[:, c], mult[c], zp[c], mode, np.uint8)
        np.testing.assert_array_equal(got[:, c], want)


def test_float_modes_match_their_formulas(rng):
    acc = _random_acc(rng, 20000)
    for m in (10.0 ** rng.uniform(-7, -1, 30)).astype(np.float32):
        zp = 3
        exact = np.clip(np.rint(acc * np.float64(m) + zp), -128, 127)
        np.testing.assert_array_equal(kernel_api.requantize(acc, m, zp, "exact", np.int8), exact)
        f = np.clip(acc.astype(np.float32) * m, np.float32(-128 - zp), np.float32(127 - zp))
        ort = np.rint(f).astype(np.int64) + zp
        np.testing.assert_array_equal(kernel_api.requantize(acc, m, zp, "onnxruntime", np.int8), ort)


def test_half_even_ties():
    acc = np.array([1, 3, 5, -1, -3])
    np.testing.assert_array_equal(kernel_api.requantize(acc, np.float32(0.5), 0, "exact", np.int8),
                                  [0, 2, 2, 0, -2])
    # SaturatingRoundingDoublingHighMul's nudge rounds exact halves toward +inf
    np.testing.assert_array_equal(kernel_api.requantize(acc, 0.5, 0, "gemmlowp", np.int8),
                                  [1, 2, 3, 0, -1])


def test_requantize_errors():
    with pytest.raises(ConfigError, match="tflite"):
        kernel_api.requantize(np.array([1]), 0.5, mode="fast")
    with pytest.raises(InputDataError):
        kernel_api.requantize(np.array([2**40]), 0.5, mode="gemmlowp")
    with pytest.raises(InputDataError):
        kernel_api.requantize(np.array([1.0]), 0.5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), mode=st.sampled_from(["exact", "onnxruntime", "gemmlowp", "tflite"]),
       shape=st.sampled_from([(2, 3, 5, 7), (1, 40, 30, 30), (3, 1, 130, 129), (2, 16, 1, 1)]),
       perm=st.permutations(range(4)), per_channel=st.booleans())
def test_any_memory_layout_gives_the_per_element_formula(seed, mode, shape, perm, per_channel):
    """Accumulators in any memory order (a transposed view, e.g. NCHW axes over channels-last data),
    per channel along axis 1 or per tensor, in work items split inside a channel or across
    channels: every output is the formula applied to its own element and channel."""
    rng = np.random.default_rng(seed)
    mem = rng.integers(-(2**24), 2**24, tuple(shape[p] for p in perm))
    acc = mem.transpose(np.argsort(perm))  # shape `shape`, memory order `perm`
    assert acc.shape == shape
    nc = shape[1] if per_channel else 1
    mult = (10.0 ** rng.uniform(-6, -3, nc)).astype(np.float32)
    zp = rng.integers(0, 256, nc)
    got = kernel_api.requantize(acc, mult if per_channel else mult[0], zp if per_channel else zp[0], mode, np.uint8, axis=1)
    flat = acc.transpose(1, 0, 2, 3).reshape(shape[1], -1)
    for c in sorted({0, shape[1] - 1, shape[1] // 2}):
        k = c if per_channel else 0
        want = kernel_api.requantize(np.ascontiguousarray(flat[c]), mult[k], zp[k], mode, np.uint8)
        np.testing.assert_array_equal(got.transpose(1, 0, 2, 3).reshape(shape[1], -1)[c], want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_onnxruntime_mode_beyond_int32(rng, dtype):
    """Accumulators beyond int32 (int64 -> float32 conversion) and int32 outputs with a zero point
    (clamp bounds beyond int32 after subtracting it) take the int64 route; channels-last blocks
    next to int32-range blocks take the int32 one; all equal the numpy formula."""
    info = np.iinfo(dtype)
    acc = rng.integers(-(2**20), 2**20, (4, 20000, 6))
    acc[1, 5, :] = [2**40, -(2**40), 2**31, -(2**31) - 1, 2**33 + 1, 7]
    mult = (10.0 ** rng.uniform(-4, 2, 6)).astype(np.float32)
    zp = rng.integers(-5, 5, 6) + (0 if dtype == np.int32 else 100)
    got = kernel_api.requantize(acc, mult, zp, "onnxruntime", dtype, axis=2)
    f = np.clip(acc.astype(np.float32) * mult, (info.min - zp).astype(np.float32), (info.max - zp).astype(np.float32))
    np.testing.assert_array_equal(got, (np.rint(f).astype(np.int64) + zp).astype(dtype))  # MLAS adds zp in int32
    assert got.dtype == dtype
