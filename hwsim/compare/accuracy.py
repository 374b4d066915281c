"""Quantization accuracy of a number format: SQNR at the MSE-optimal scale, and the INT/FP crossover.

Scale search
------------
A format with largest magnitude ``M`` and scale ``s`` represents values up to the clipping level
``c = s * M``. :func:`optimal_scale` minimises the mean squared error of ``quantize(x, scale=s)``
over ``log2 s``: a coarse grid over ``[log2(max|x| / M) - 12, log2(max|x| / M)]`` (twelve octaves
below no-clipping: integer formats on heavy tails clip far below ``max|x|``), then golden-section
search in the grid cell pair around the best grid point. MSE against ``log2 s`` is smooth for
samples of a few thousand values or more, so this finds the global optimum to well under 0.01 dB
(``tests/compare`` checks it against a dense grid).

MX block formats scale every block of 32 by a power of two chosen from the block's maximum (OCP MX
v1.0), so their scaling is intrinsic and a power-of-two global scale changes nothing (except at the
E8M0 range limits). A non-power-of-two global pre-scale still moves the values inside the binade
and changes how much the OCP rule clips (mxfp4_e2m1 clips block maxima in (6, 8) x 2^k to 6), so it
is searched over the one octave ``[1/2, 1]`` that contains every distinct choice.

Codebook (VQ) formats have no range to scale into: their seeded k-means centroids are fitted to
the sample itself, so they are quantized once, without a search.

SQNR is ``10 log10(sum x^2 / sum (x - q(x))^2)`` in dB, on the same samples the scale was fit on
(the error of the fit itself is negligible at these sample counts).
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.compare.distributions import samples, student_t_name
from hwsim.compare.results import Crossover, ScaleSearch
from hwsim.errors import ConfigError
from hwsim.formats import Format, get

GRID_POINTS = 25
GOLDEN_STEPS = 16
OCTAVES = 12.0
_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0
#: Student-t degrees of freedom of the default crossover sweep (heavy tails to nearly Gaussian).
DEFAULT_NUS = (2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 14.0, 20.0, 30.0, 50.0)


def _mse(fmt: Format, x: np.ndarray, log2_scale: float) -> float:
    with np.errstate(over="ignore", invalid="ignore"):  # scales that overflow give inf error, skipped
        q = fmt.quantize(x, scale=float(2.0 ** log2_scale))
        return float(np.mean((x - q) ** 2))


def search_window(fmt: Format, x: np.ndarray) -> tuple[float, float]:
    """Range of ``log2(scale)`` searched for ``fmt`` on ``x`` (see the module docstring)."""
    if fmt.scale_rule == "none":  # block formats scale themselves: only a nudge of the extra scale
        return -1.0, 0.0
    amax = float(np.max(np.abs(x)))
    hi = math.log2(amax / fmt.max)
    return hi - OCTAVES, hi


def _golden(f, lo: float, hi: float, steps: int) -> tuple[float, float, int]:
    a, b = lo, hi
    c, d = b - _INV_PHI * (b - a), a + _INV_PHI * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _INV_PHI * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _INV_PHI * (b - a)
            fd = f(d)
    return (c, fc, steps + 2) if fc <= fd else (d, fd, steps + 2)


def optimal_scale(fmt: Format | str, x, grid_points: int = GRID_POINTS,
                  golden_steps: int = GOLDEN_STEPS) -> ScaleSearch:
    """The scale of ``fmt`` that minimises the MSE of quantizing ``x`` (per tensor).

    Parameters
    ----------
    fmt : Format or str
        Any format whose ``quantize`` takes a scale.
    x : array_like
        Real values (finite, not all zero).
    grid_points : int
        Points of the coarse log-spaced grid (>= 3).
    golden_steps : int
        Golden-section iterations in the best grid bracket.

    Returns
    -------
    ScaleSearch
        Scale, clipping level, MSE, SQNR (dB) and the number of quantizations evaluated.
    """
    fmt = get(fmt)
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)) or not np.any(x):
        raise ConfigError("optimal_scale needs finite values that are not all zero")
    signal = float(np.mean(x * x))
    if not math.isfinite(fmt.max):  # codebook (VQ) formats fit their centroids to x: no scale to search
        err = float(np.mean((x - fmt.quantize(x, seed=0)) ** 2))
        sq = math.inf if err == 0.0 else 10.0 * math.log10(signal / err)
        return ScaleSearch(scale=1.0, clip=float(np.max(np.abs(x))), mse=err, sqnr_db=sq, evaluations=1)
    lo, hi = search_window(fmt, x)
    grid = np.linspace(lo, hi, max(int(grid_points), 3))
    errs = [_mse(fmt, x, g) for g in grid]
    i = int(np.argmin(errs))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best, err, n = _golden(lambda s: _mse(fmt, x, s), a, b, golden_steps)
    if errs[i] < err:
        best, err = float(grid[i]), errs[i]
    if not math.isfinite(err):  # a range beyond float64 (fp64): scales near fmt.max overflow; take scale 1
        best, err = 0.0, _mse(fmt, x, 0.0)
        if not math.isfinite(err):
            raise ConfigError(f"{fmt.name}: quantization error is not finite at any scale; compare a narrower format")
    scale = float(2.0 ** best)
    sq = math.inf if err == 0.0 else 10.0 * math.log10(signal / err)
    return ScaleSearch(scale=scale, clip=scale * fmt.max, mse=err, sqnr_db=sq,
                       evaluations=len(grid) + n)


def distribution_sqnr(fmt: Format | str, name: str, n: int = 65536, seed: int = 0) -> float:
    """SQNR (dB) of ``fmt`` at its MSE-optimal scale on ``n`` seeded samples of distribution ``name``."""
    return optimal_scale(fmt, samples(name, n, seed)).sqnr_db


def crossover(int_format: str = "int8", float_format: str = "fp8_e4m3fn",
              nus: tuple[float, ...] = DEFAULT_NUS, n: int = 65536, seed: int = 0) -> Crossover:
    """Sweep Student-t ``nu`` and find where ``int_format`` and ``float_format`` swap accuracy.

    Parameters
    ----------
    int_format, float_format : str
        The two formats compared (van Baalen et al. 2023: int8 vs fp8_e4m3fn).
    nus : tuple of float
        Degrees of freedom, ascending (small nu = heavy tails; large nu -> Gaussian).
    n, seed : int
        Samples per distribution and their seed (the same uniforms for every nu).

    Returns
    -------
    Crossover
        SQNR curves and ``crossover_nu``: the nu where ``SQNR(int) - SQNR(float)`` changes sign
        (linear interpolation in log nu between the bracketing sweep points), None if it never does.
    """
    nus = tuple(float(v) for v in nus)
    if len(nus) < 2 or any(b <= a for a, b in zip(nus, nus[1:])) or nus[0] <= 0:
        raise ConfigError("crossover needs at least two ascending positive nu values")
    fi, ff = get(int_format), get(float_format)
    curve_i = [distribution_sqnr(fi, student_t_name(v), n, seed) for v in nus]
    curve_f = [distribution_sqnr(ff, student_t_name(v), n, seed) for v in nus]
    diff = np.subtract(curve_i, curve_f)
    nu_x = None
    for k in range(len(nus) - 1):
        if diff[k] == 0.0 or (diff[k] < 0.0) != (diff[k + 1] < 0.0):
            la, lb = math.log(nus[k]), math.log(nus[k + 1])
            t = 0.0 if diff[k] == diff[k + 1] else diff[k] / (diff[k] - diff[k + 1])
            nu_x = float(math.exp(la + t * (lb - la)))
            break
    return Crossover(int_format=fi.name, float_format=ff.name, nu=list(nus),
                     sqnr_db={fi.name: curve_i, ff.name: curve_f}, crossover_nu=nu_x,
                     float_better_below=bool(nu_x is not None and diff[0] < 0.0),
                     samples=int(n), seed=int(seed))
