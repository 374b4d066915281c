"""Seeded, low-variance samples of the standard distributions used to compare number formats.

Samples are drawn by inverse transform of *stratified* uniforms: ``u_i = (i + r_i) / n`` with
``r_i ~ U[0, 1)`` from a seeded generator, then ``x_i = F^{-1}(u_i)``. Every stratum of
probability ``1/n`` holds exactly one sample, so the tails are always represented the same way
(the largest |x| is near the ``1 - 1/(2n)`` quantile) and, because the same uniforms feed every
distribution, curves over a tail parameter (Student-t ``nu``) are smooth: common random numbers.
The sample order is not shuffled: quantization error is elementwise, so order does not matter,
except for MX block formats, whose blocks of 32 must see a random mix of values; :func:`samples`
therefore returns the values in a seeded random permutation.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from scipy import stats

from hwsim.errors import ConfigError

#: The distributions of the ``sqnr_db`` table, in output order.
STANDARD = ("gaussian", "laplace", "student_t3", "uniform")
_T = re.compile(r"student_t(\d+(?:\.\d+)?)")
_HELP = "use gaussian, laplace, uniform or student_tNU (e.g. student_t3, student_t5.5)"


def distribution(name: str):
    """A frozen ``scipy.stats`` distribution for a name of :data:`STANDARD` or ``student_tNU``.

    Parameters
    ----------
    name : str
        ``gaussian`` (N(0, 1)), ``laplace`` (scale 1), ``uniform`` (on [-1, 1]) or
        ``student_tNU`` (Student-t with ``NU`` degrees of freedom, NU > 0).

    Raises
    ------
    ConfigError
        For any other name.
    """
    fixed = {"gaussian": stats.norm(), "laplace": stats.laplace(), "uniform": stats.uniform(-1.0, 2.0)}
    if name in fixed:
        return fixed[name]
    if mt := _T.fullmatch(name):
        nu = float(mt[1])
        if nu > 0:
            return stats.t(nu)
    raise ConfigError(f"unknown distribution {name!r}; {_HELP}")


def student_t_name(nu: float) -> str:
    """``3 -> 'student_t3'``, ``5.5 -> 'student_t5.5'``."""
    return f"student_t{nu:g}"


@lru_cache(maxsize=8)
def _uniforms(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, n])
    u = (np.arange(n) + rng.random(n)) / n
    return u, rng.permutation(n)


def samples(name: str, n: int = 65536, seed: int = 0) -> np.ndarray:
    """``n`` seeded stratified samples (float64) of the distribution ``name``.

    Parameters
    ----------
    name : str
        See :func:`distribution`.
    n : int
        Sample count (>= 64).
    seed : int
        Seed of the stratum offsets and of the permutation.

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    if not isinstance(n, (int, np.integer)) or n < 64:
        raise ConfigError(f"sample count must be an integer >= 64, got {n!r}")
    dist = distribution(name)
    u, perm = _uniforms(int(n), int(seed))
    return dist.ppf(u)[perm]
