"""Side-by-side comparison of number formats: hardware cost per MAC and quantization accuracy.

Accuracy: :func:`optimal_scale`, :func:`distribution_sqnr`, :func:`crossover` (INT vs FP over
Student-t nu, reproducing van Baalen et al. 2023). The full comparison behind ``hwsim
compare-formats`` is :func:`compare_formats`.
"""

from hwsim.compare.accuracy import DEFAULT_NUS, crossover, distribution_sqnr, optimal_scale
from hwsim.compare.core import DEFAULT_FORMATS, compare_formats, parse_accumulators, parse_formats
from hwsim.compare.distributions import STANDARD, distribution, samples
from hwsim.compare.results import (Comparison, Crossover, FormatRow, LayerAccuracy,
                                   ModelComparison, ModelEstimate, ScaleSearch, TargetInfo)
from hwsim.sim.metrics import sqnr_db

__all__ = [
    "DEFAULT_FORMATS", "DEFAULT_NUS", "STANDARD", "Comparison", "Crossover", "FormatRow", "LayerAccuracy",
    "ModelComparison", "ModelEstimate", "ScaleSearch", "TargetInfo", "compare_formats", "crossover", "distribution",
    "distribution_sqnr", "optimal_scale", "parse_accumulators", "parse_formats", "samples", "sqnr_db",
]
