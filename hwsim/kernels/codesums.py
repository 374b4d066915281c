"""Sums of 8-bit codes along the reduction axis of a stack of GEMM operands, in int64, in one pass.

``_k_sums(b, out)``: ``out[i, n] = sum_k b[i, k, n]`` for ``b`` (B, K, N) of any strides (a
weight read as ``w.T``, attention's K^T views): the zero-point terms ``a_zp * colsum(b)`` of a
quantized GEMM (:func:`hwsim.kernel_api.qgemm_codes`). The inner loop runs along whichever of k
and n is contiguous in memory, so it vectorises either way. numpy's ``b.sum(1, dtype=np.int64)``
gives the same integers, widening the codes in buffered chunks first (about 4x the time on a
BERT-base weight).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _k_sums(b, out):
    nb, k, n = b.shape
    for i in range(nb):
        if b.strides[2] <= b.strides[1]:  # n innermost: add each row of k into the sums
            for j in range(n):
                out[i, j] = 0
            for kk in range(k):
                for j in range(n):
                    out[i, j] += np.int64(b[i, kk, j])
        else:  # k innermost (a transposed weight): one contiguous sum per column
            for j in range(n):
                s = np.int64(0)
                for kk in range(k):
                    s += np.int64(b[i, kk, j])
                out[i, j] = s


def k_sums(b) -> np.ndarray:
    """``b.sum(1, dtype=np.int64)`` (B, N) of a stack of 8-bit codes ``b`` (B, K, N), any strides,
    by :func:`_k_sums`."""
    out = np.empty((b.shape[0], b.shape[2]), np.int64)
    _k_sums(b, out)
    return out
