"""Accuracy side of compare-formats: the FP8-vs-INT8 finding, the crossover, the scale search."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwsim.compare import crossover, distribution_sqnr, optimal_scale, samples, sqnr_db
from hwsim.errors import ConfigError
from hwsim.formats import get

N = 1 << 14  # small but enough: every finding below holds with a margin of >= 2 dB at this size


def test_int8_beats_fp8_on_gaussian_and_loses_on_student_t3():
    # van Baalen et al. 2023: INT8 more accurate on Gaussian-like tensors, FP8-E4M3 on outliers
    g_int, g_fp = distribution_sqnr("int8", "gaussian", N), distribution_sqnr("fp8_e4m3fn", "gaussian", N)
    t_int, t_fp = distribution_sqnr("int8", "student_t3", N), distribution_sqnr("fp8_e4m3fn", "student_t3", N)
    assert g_int > g_fp + 5.0
    assert t_int < t_fp - 2.0


def test_known_sqnr_values():
    # uniform on [-1, 1] with 15 int4 levels: 20 log10(15) = 23.5 dB; fp8_e4m3fn with 3 mantissa
    # bits is about 31.5 dB on any distribution inside its range
    assert distribution_sqnr("int4", "uniform", N) == pytest.approx(20 * math.log10(15), abs=0.2)
    for d in ("gaussian", "laplace"):
        assert distribution_sqnr("fp8_e4m3fn", d, N) == pytest.approx(31.5, abs=0.5)


def test_crossover_exists_and_lies_between_the_sweep_ends():
    c = crossover("int8", "fp8_e4m3fn", nus=(2.5, 3.0, 4.0, 6.0, 10.0, 30.0), n=N)
    si, sf = np.array(c.sqnr_db["int8"]), np.array(c.sqnr_db["fp8_e4m3fn"])
    assert si[0] < sf[0] and si[-1] > sf[-1]
    assert c.crossover_nu is not None and 3.0 < c.crossover_nu < 10.0
    assert c.float_better_below
    k = int(np.searchsorted(c.nu, c.crossover_nu))
    assert si[k - 1] < sf[k - 1] and si[k] >= sf[k]  # the reported nu is bracketed by the swap


def test_crossover_none_when_curves_do_not_cross():
    c = crossover("int8", "fp8_e4m3fn", nus=(20.0, 50.0), n=N)
    assert c.crossover_nu is None and not c.float_better_below


@pytest.mark.parametrize("fmt,dist", [("int8", "gaussian"), ("int4", "student_t3"),
                                      ("fp8_e4m3fn", "laplace"), ("fp4_e2m1fn", "gaussian"),
                                      ("mxfp4_e2m1", "student_t3")])
def test_scale_search_is_near_optimal_against_a_dense_grid(fmt, dist):
    f = get(fmt)
    x = samples(dist, 4096, seed=3)
    found = optimal_scale(f, x)
    lo = math.log2(np.max(np.abs(x)) / f.max) - 12 if f.kind != "block" else -1.0
    hi = lo + 12 if f.kind != "block" else 0.0
    dense = min(np.mean((x - f.quantize(x, scale=2.0 ** s)) ** 2) for s in np.linspace(lo, hi, 1500))
    assert found.mse <= dense * 1.005
    assert found.mse == pytest.approx(np.mean((x - f.quantize(x, scale=found.scale)) ** 2))
    assert found.clip == pytest.approx(found.scale * f.max)


def test_sqnr_rises_with_int_bits_and_with_float_mantissa():
    for d in ("gaussian", "student_t3"):
        assert distribution_sqnr("int4", d, N) < distribution_sqnr("int8", d, N)
        e3 = [distribution_sqnr(f, d, N) for f in ("fp6_e3m2fn", "fp7_e3m3", "fp8_e3m4")]
        assert e3[0] < e3[1] < e3[2]
    # about 6 dB per mantissa bit at a fixed exponent
    assert distribution_sqnr("fp8_e2m5", "gaussian", N) - distribution_sqnr("fp7_e2m4", "gaussian", N) \
        == pytest.approx(6.0, abs=1.0)


def test_sqnr_db_definition():
    x = np.array([1.0, -2.0, 3.0])
    assert sqnr_db(x, x) == math.inf
    assert sqnr_db(x, x * 0.9) == pytest.approx(20.0)


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-3, 1e3))
def test_sqnr_is_scale_invariant(a):
    # the search adapts the scale: multiplying the data by a constant changes nothing
    x = samples("laplace", 1024, seed=1)
    base = optimal_scale("int8", x).sqnr_db
    assert optimal_scale("int8", x * a).sqnr_db == pytest.approx(base, abs=0.05)


def test_samples_are_seeded_and_stratified():
    a, b = samples("gaussian", 1000, seed=5), samples("gaussian", 1000, seed=5)
    assert np.array_equal(a, b) and not np.array_equal(a, samples("gaussian", 1000, seed=6))
    assert abs(np.mean(a)) < 0.01 and np.std(a) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("bad", ["cauchy", "student_t0", "student_t-1"])
def test_unknown_distribution_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="student_tNU"):
        samples(bad, 128)


def test_bad_inputs_to_the_search_are_clear_errors():
    with pytest.raises(ConfigError, match="not all zero"):
        optimal_scale("int8", np.zeros(10))
    with pytest.raises(ConfigError, match="ascending"):
        crossover(nus=(5.0, 3.0))


def test_codebook_formats_are_fitted_not_scaled():
    x = samples("gaussian", 4096, seed=2)
    b6, b8 = optimal_scale("vq_d2_b6", x), optimal_scale("vq_d2_b8", x)
    assert b6.evaluations == 1 and b6.scale == 1.0
    assert 10.0 < b6.sqnr_db < b8.sqnr_db  # more centroids, less error


def test_discrete_and_block_formats_rank_sensibly():
    # more levels, less error, on the same Gaussian samples
    s = {f: distribution_sqnr(f, "gaussian", N) for f in ("binary", "ternary", "int4", "mxint8", "int8")}
    assert s["binary"] < s["ternary"] < s["int4"] < s["int8"]
    assert s["mxint8"] > s["int8"] - 1.0  # per-block scales: at least as good as one per-tensor scale


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 11), st.sampled_from(["gaussian", "laplace", "student_t3", "uniform"]))
def test_one_more_integer_bit_never_loses_accuracy(bits, dist):
    x = samples(dist, 2048, seed=4)
    assert optimal_scale(f"int{bits + 1}", x).sqnr_db > optimal_scale(f"int{bits}", x).sqnr_db
