"""LayerNormalization over the last axis of float64 rows, as numpy computes it, in one kernel.

``_layernorm_rows(x, gamma, beta, with_beta, eps, out)``: for each row ``r`` of ``x`` (R, C),
``mu = mean(r)``, ``var = mean((r - mu) ** 2)``, ``out = (r - mu) / sqrt(var + eps) * gamma
(+ beta)``, each value rounded as :func:`hwsim.sim.elementwise._layernorm`'s numpy expression
rounds it: ``mean`` is numpy's ``add.reduce`` over a contiguous row (the sum started from the
identity 0.0 plus numpy's pairwise sum, :func:`_pairwise_sum`) divided by ``C``; one IEEE
operation per step, no fused multiply-add. The same bits as numpy (tests/kernels/test_refnorm.py),
without numpy's six temporaries.
"""

import numpy as np
from numba import njit

#: numpy's PW_BLOCKSIZE (numpy/_core/src/umath/loops_utils.h.src): rows up to this many values
#: are summed with 8 accumulators, longer ones split in two
_PW_BLOCK = 128


@njit(cache=True, nogil=True, error_model="numpy")
def _block_sum(a, lo, n):
    """numpy's ``DOUBLE_pairwise_sum`` of ``a[lo:lo + n]`` for ``n <= _PW_BLOCK``."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True, error_model="numpy")
def _pairwise_sum(a, lo, n):
    """numpy's ``DOUBLE_pairwise_sum`` of ``a[lo:lo + n]``, its order of additions exactly: up to
    ``_PW_BLOCK`` values in one block, longer runs split at ``n2 = n // 2 - (n // 2) % 8`` and the
    two halves' sums added (the recursion walked with an explicit stack: numba does not cache
    recursive functions)."""
    if n <= _PW_BLOCK:
        return _block_sum(a, lo, n)
    los = np.empty(64, np.int64)
    ns = np.empty(64, np.int64)
    phase = np.zeros(64, np.int64)
    sums = np.empty(64)
    top, nsums = 0, 0
    los[0], ns[0], phase[0] = lo, n, 0
    while top >= 0:
        m = ns[top]
        if m <= _PW_BLOCK:
            sums[nsums] = _block_sum(a, los[top], m)
            nsums += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if phase[top] == 0:
            phase[top] = 1
            los[top + 1], ns[top + 1], phase[top + 1] = los[top], half, 0
            top += 1
        elif phase[top] == 1:
            phase[top] = 2
            los[top + 1], ns[top + 1], phase[top + 1] = los[top] + half, m - half, 0
            top += 1
        else:
            sums[nsums - 2] = sums[nsums - 2] + sums[nsums - 1]
            nsums -= 1
            top -= 1
    return sums[0]


@njit(cache=True, nogil=True, error_model="numpy")
def _layernorm_rows(x, gamma, beta, with_beta, eps, out):
    rows, c = x.shape
    d = np.empty(c)
    for r in range(rows):
        xr, orow = x[r], out[r]
        mu = (0.0 + _pairwise_sum(xr, 0, c)) / c
        for j in range(c):
            d[j] = xr[j] - mu
        for j in range(c):
            orow[j] = d[j] * d[j]  # (x - mu) ** 2, summed below in numpy's order
        var = (0.0 + _pairwise_sum(orow, 0, c)) / c
        s = np.sqrt(var + eps)
        if with_beta:
            for j in range(c):
                orow[j] = d[j] / s * gamma[j] + beta[j]
        else:
            for j in range(c):
                orow[j] = d[j] / s * gamma[j]


@njit(cache=True, nogil=True, error_model="numpy")
def _shifted_rows(x, out):
    """``out[r] = x[r] - max(x[r])`` for each row of ``x`` (R, C), ``max`` as numpy's
    ``maximum.reduce`` (NaN if the row holds one; the sign of a zero maximum may differ from
    numpy's, which leaves ``exp(x - max)`` unchanged: ``exp(+-0) = 1``): the softmax's shift."""
    rows, c = x.shape
    for r in range(rows):
        xr, orow = x[r], out[r]
        m = xr[0]
        nan = False
        for j in range(c):
            v = xr[j]
            nan |= v != v
            m = max(m, v)
        if nan:
            m = np.nan
        for j in range(c):
            orow[j] = xr[j] - m


@njit(cache=True, nogil=True, error_model="numpy")
def _divided_rows(e):
    """``e[r] /= sum(e[r])`` in place for each row of ``e`` (R, C), the sum numpy's ``add.reduce``
    of a contiguous row (0.0 plus :func:`_pairwise_sum`): the softmax's normalisation."""
    rows, c = e.shape
    for r in range(rows):
        er = e[r]
        s = 0.0 + _pairwise_sum(er, 0, c)
        for j in range(c):
            er[j] = er[j] / s
