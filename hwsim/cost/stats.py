"""Data-dependent weight statistics: zero fraction, N:M compliance, repetition per window.

The codes measured are those the simulator executes: weights (from the graph, or for zoo models
:func:`hwsim.graph.weights.synthetic_values`) go through the one preparation path
:func:`hwsim.sim.qspec.prepare_weight` (prune, calibrate, quantize) and
:func:`hwsim.sim.qspec.weight_codes` turns them into signed codes (0 = zero weight, equal codes =
equal format values) for the kernels in :mod:`hwsim.cost._kernels`. 
Density and N:M compliance are always measured on every weight. Repetition (distinct window
patterns, a hash per window) is measured on the first columns of tensors larger than
:data:`SAMPLE_ELEMENTS` (whole windows, all rows, so pattern sharing across channels is seen in
full); :attr:`WeightStats.repetition_fraction` says how much was measured, and the cost report
names the layers whose repetition is an estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SAMPLE_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class WeightStats:
    """Statistics of one layer's quantized weights.

    Attributes
    ----------
    density : float
        Fraction of non-zero weights.
    nm_compliance : dict
        (n, m) -> fraction of m-groups along the reduction axis with at most n non-zeros.
    window : int or None
        Repetition window these reuse numbers refer to.
    pattern_adds_per_window_col : float
        Adds spent forming the distinct window patterns, per window position (all channels).
    row_adds_per_window_col : float
        Adds of the channels accumulating their pattern's shared sum, per window position.
    unique_patterns_per_window : float
        Distinct non-zero patterns per window position.
    repetition_fraction : float
        Fraction of the weight columns the repetition numbers were measured on (1.0 = all).
    """

    density: float
    nm_compliance: dict
    window: int | None = None
    pattern_adds_per_window_col: float = 0.0
    row_adds_per_window_col: float = 0.0
    unique_patterns_per_window: float = 0.0
    repetition_fraction: float = 1.0


def sample_columns(w2d: np.ndarray, multiple: int) -> np.ndarray:
    """The first columns of a big matrix (a multiple of ``multiple``), about SAMPLE_ELEMENTS in all."""
    rows, cols = w2d.shape
    if rows * cols <= SAMPLE_ELEMENTS:
        return w2d
    keep = max(multiple, (SAMPLE_ELEMENTS // rows) // multiple * multiple)
    return w2d[:, : min(cols, keep)]


def weight_stats(codes: np.ndarray, groups: int, nm: tuple[tuple[int, int], ...],
                 window: int | None) -> WeightStats:
    """Statistics of a layer's (rows, reduction) signed weight codes (:func:`~hwsim.sim.qspec.weight_codes`)."""
    from hwsim.cost import _kernels  # numba: imported on first use (an estimate without weights needs none)

    comp = {(n, m): _kernels.nm_compliance(codes, n, m) for n, m in nm}
    density = 1.0 - _kernels.zero_fraction(codes)
    if not window:
        return WeightStats(density, comp)
    q = np.ascontiguousarray(sample_columns(codes, window))
    cols = math.ceil(q.shape[1] / window)
    uniq, padds, radds = _kernels.repetition(q, window, groups)
    return WeightStats(density, comp, window, padds / cols, radds / cols, uniq / cols / groups,
                       q.shape[1] / codes.shape[1] if codes.shape[1] else 1.0)
