"""``hwsim.sim.mlas_math.fma32`` against an exact oracle: the sum in Python Fractions, rounded to
the nearest float32 (ties to the even significand) by comparing exact distances."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.sim.mlas_math import fma32

F32 = st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-2.0 ** 50, max_value=2.0 ** 50)


def _round_f32(x: Fraction) -> np.float32:
    """Nearest float32 to ``x`` (half to even), by exact comparison with the neighbours of a guess."""
    guess = np.float32(float(x))
    cands = {guess, np.nextafter(guess, np.float32(np.inf)), np.nextafter(guess, np.float32(-np.inf))}
    def key(c):
        return abs(Fraction(float(c)) - x), int(np.array(c, np.float32).view(np.uint32)) & 1
    return min(cands, key=key)


@settings(max_examples=300, deadline=None)
@given(F32, F32, F32)
def test_fma32_is_the_correctly_rounded_sum(a, b, c):
    a, b, c = np.float32(a), np.float32(b), np.float32(c)
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    assert fma32(a, b, c) == _round_f32(exact)


def test_fma32_rounds_a_tie_broken_by_a_tiny_addend():
    """a * b = 1 + 2**-11 + 2**-24 lies halfway between two float32 values; an addend far below
    float64's resolution at 1 decides the direction (a float64 multiply-add would call it a tie)."""
    a = np.float32(1 + 2 ** -12)
    up, down = np.float32(1 + 2 ** -11 + 2 ** -23), np.float32(1 + 2 ** -11)
    assert fma32(a, a, np.float32(0)) == down  # exact tie: to the even significand
    assert fma32(a, a, np.float32(2 ** -60)) == up
    assert fma32(a, a, np.float32(-2 ** -60)) == down
    assert fma32(-a, a, np.float32(-2 ** -60)) == -up
