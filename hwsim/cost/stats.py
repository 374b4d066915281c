"""Data-dependent weight statistics: zero fraction, N:M compliance, repetition per window.

Weights come from the graph (ONNX initializers) or, for zoo models, from
:func:`hwsim.graph.weights.synthesize_weights` restricted to the layers asked for. They are
quantized with their format (``hwsim.formats.get(fmt).quantize``) at the scale rules below, pruned
as the layer's ``Pruning`` says, and turned into signed integer codes (0 = zero weight, equal codes
= equal values) for the kernels in :mod:`hwsim.cost._kernels`.

Scales (documented choices): integer and pow2 weights per output channel at max-abs; ternary and
signed binary per tensor at 1.4 x mean|w| (threshold 0.7 x mean|w|, as in TWN); binary and
float formats per tensor at max-abs. Tensors larger than :data:`SAMPLE_ELEMENTS` are measured on
their first columns (whole windows, all rows) for density and repetition: statistics are
per-window averages, and every output channel stays in the sample so pattern sharing across
channels is seen in full. N:M compliance is all-or-nothing, so it is always measured in full.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim import formats
from hwsim.cost import _kernels
from hwsim.graph.quant import Pruning

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
    """

    density: float
    nm_compliance: dict
    window: int | None = None
    pattern_adds_per_window_col: float = 0.0
    row_adds_per_window_col: float = 0.0
    unique_patterns_per_window: float = 0.0


def _scale(w: np.ndarray, fmt) -> tuple[np.ndarray | float, int | None]:
    if fmt.kind in ("ternary", "signed_binary"):  # signed binary: regions (signs) along axis 0
        return 1.4 * float(np.mean(np.abs(w))) or 1.0, (0 if fmt.kind == "signed_binary" else None)
    if fmt.kind in ("int", "pow2"):
        peak = np.max(np.abs(w), axis=1)
        return np.where(peak > 0, peak, 1.0) / fmt.max, 0
    if fmt.kind == "vq":
        return 1.0, None
    peak = float(np.max(np.abs(w))) or 1.0
    return peak / fmt.max if math.isfinite(fmt.max) else 1.0, None


def signed_codes(w2d: np.ndarray, fmt_name: str) -> np.ndarray:
    """Quantize a (rows, reduction) weight matrix and return signed codes (0 = zero, |code| = rank)."""
    fmt = formats.get(fmt_name)
    w = np.asarray(w2d, dtype=np.float32)
    if fmt.kind == "vq":  # one code per distinct centroid value is enough for sharing statistics
        q = w
    else:
        scale, axis = _scale(w, fmt)
        try:
            q = fmt.quantize(w, scale=scale, axis=axis)
        except NotImplementedError:
            q = np.round(w / (np.asarray(scale).reshape(-1, 1) if axis == 0 else scale))
    if fmt.kind in ("int", "ternary", "binary", "signed_binary", "pow2"):  # q / scale is on a known grid
        unit = np.asarray(scale).reshape(-1, 1) if axis == 0 and np.ndim(scale) else scale
        grid = q / unit * (2.0 ** fmt.exponent_codes if fmt.kind == "pow2" else 1.0)
        return np.rint(grid).astype(np.int64)
    mags, inv = np.unique(np.abs(q), return_inverse=True)
    codes = inv.reshape(q.shape).astype(np.int64) + (0 if mags[0] == 0 else 1)
    return codes * np.sign(q).astype(np.int64)


def apply_pruning(w2d: np.ndarray, pruning: Pruning) -> np.ndarray:
    """Zero the weights a layer's pruning removes (magnitude-based, as in hwsim.graph.quant)."""
    if pruning.kind == "none":
        return w2d
    w = np.array(w2d, dtype=np.float32, copy=True)
    if pruning.kind == "unstructured":
        k = int(pruning.amount * w.size)
        if k:
            w.reshape(-1)[np.argsort(np.abs(w), axis=None, kind="stable")[:k]] = 0
    elif pruning.kind == "channel":
        k = int(pruning.amount * w.shape[0])
        w[np.argsort(np.linalg.norm(w, axis=1), kind="stable")[:k]] = 0
    else:
        n, m = pruning.n, pruning.m
        cols = w.shape[1] - w.shape[1] % m
        g = w[:, :cols].reshape(w.shape[0], -1, m)
        drop = np.argsort(np.abs(g), axis=2, kind="stable")[:, :, : m - n]
        np.put_along_axis(g, drop, 0.0, axis=2)
        w[:, :cols] = g.reshape(w.shape[0], cols)
    return w


def sample_columns(w2d: np.ndarray, multiple: int) -> np.ndarray:
    """The first columns of a big matrix (a multiple of ``multiple``), about SAMPLE_ELEMENTS in all."""
    rows, cols = w2d.shape
    if rows * cols <= SAMPLE_ELEMENTS:
        return w2d
    keep = max(multiple, (SAMPLE_ELEMENTS // rows) // multiple * multiple)
    return w2d[:, : min(cols, keep)]


def weight_stats(w2d: np.ndarray, fmt_name: str, pruning: Pruning, groups: int,
                 nm: tuple[tuple[int, int], ...], window: int | None) -> WeightStats:
    """Statistics of a layer's (rows, reduction) weights at format ``fmt_name`` after pruning."""
    comp = {}
    if nm:  # compliance must hold for every group: measured on the whole tensor
        full = signed_codes(apply_pruning(np.asarray(w2d), pruning), fmt_name)
        comp = {(n, m): _kernels.nm_compliance(full, n, m) for n, m in nm}
    w = apply_pruning(sample_columns(np.asarray(w2d), window or 1), pruning)
    q = signed_codes(w, fmt_name)
    density = 1.0 - _kernels.zero_fraction(q)
    if not window:
        return WeightStats(density, comp)
    cols = math.ceil(q.shape[1] / window)
    uniq, padds, radds = _kernels.repetition(q, window, groups)
    return WeightStats(density, comp, window, padds / cols, radds / cols, uniq / cols / groups)
