"""Numba kernels for the data-dependent cost statistics. Imports only numpy and numba.

All take a 2-D int64 array ``q`` of signed weight codes, one row per output channel, the
reduction axis last, where 0 means a zero weight and equal codes mean equal values.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _nonzeros(q):
    n = 0
    for i in range(q.shape[0]):
        for j in range(q.shape[1]):
            if q[i, j] != 0:
                n += 1
    return n


@njit(cache=True)
def _nm_compliant_groups(q, n, m):
    """Groups of ``m`` consecutive codes along each row with at most ``n`` non-zeros (tail included)."""
    good = 0
    total = 0
    for i in range(q.shape[0]):
        for g0 in range(0, q.shape[1], m):
            nnz = 0
            for j in range(g0, min(g0 + m, q.shape[1])):
                if q[i, j] != 0:
                    nnz += 1
            total += 1
            if nnz <= n:
                good += 1
    return good, total


@njit(cache=True)
def _window_keys(q, r0, r1, j0, window, base):
    """Sign-canonical key and non-zero count of rows r0..r1 in the window starting at column j0."""
    k = r1 - r0
    keys = np.zeros(k, np.int64)
    nnz = np.zeros(k, np.int64)
    for r in range(k):
        sign = 0
        for j in range(j0, min(j0 + window, q.shape[1])):
            v = q[r0 + r, j]
            if v != 0 and sign == 0:
                sign = 1 if v > 0 else -1
        key = 0
        for j in range(j0, j0 + window):
            v = q[r0 + r, j] * sign if j < q.shape[1] else 0
            key = key * base + v + (base // 2)
            if v != 0:
                nnz[r] += 1
        keys[r] = key if sign != 0 else -1
    return keys, nnz


@njit(cache=True)
def _repetition(q, window, groups, base):
    """UCNN-style reuse over windows of ``window`` codes along the reduction axis.

    Rows are split into ``groups`` contiguous blocks (rows of one block read the same activations).
    In each block and window, every distinct non-zero pattern (a pattern and its negation count
    once: the sign is applied when the shared sum is accumulated) is summed once, costing its
    non-zeros in adds; then each row whose pattern is non-zero adds that sum once.
    Returns (unique patterns, pattern adds, row adds).
    """
    rows = q.shape[0] // groups
    uniq = 0
    pattern_adds = 0
    row_adds = 0
    for g in range(groups):
        for j0 in range(0, q.shape[1], window):
            keys, nnz = _window_keys(q, g * rows, (g + 1) * rows, j0, window, base)
            order = np.argsort(keys)
            prev = -2
            for t in range(rows):
                r = order[t]
                if keys[r] == -1:
                    continue
                row_adds += 1
                if keys[r] != prev:
                    uniq += 1
                    pattern_adds += nnz[r]
                    prev = keys[r]
    return uniq, pattern_adds, row_adds


def _check(q):
    q = np.ascontiguousarray(q, dtype=np.int64)
    if q.ndim != 2:
        raise ValueError(f"weight codes must be 2-D (rows, reduction), got shape {q.shape}")
    return q


def zero_fraction(q) -> float:
    """Fraction of zero codes."""
    q = _check(q)
    return 1.0 - _nonzeros(q) / q.size if q.size else 0.0


def nm_compliance(q, n: int, m: int) -> float:
    """Fraction of m-groups along the reduction axis that keep at most n non-zeros."""
    good, total = _nm_compliant_groups(_check(q), n, m)
    return good / total if total else 1.0


def repetition(q, window: int, groups: int = 1) -> tuple[int, int, int]:
    """(unique patterns, pattern adds, row adds) of :func:`_repetition`; see there."""
    q = _check(q)
    if q.shape[0] % groups:
        raise ValueError(f"{q.shape[0]} rows do not split into {groups} groups")
    base = 2 * int(np.abs(q).max(initial=0)) + 1
    if window * np.log2(base) > 62:
        raise ValueError(f"window {window} of codes up to {base // 2} does not fit a 64-bit key")
    return tuple(int(v) for v in _repetition(q, window, groups, base))
