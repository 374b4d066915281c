"""Output codes of an elementwise op on 8-bit codes, read from a table of every input code
(:mod:`hwsim.sim.codetable`), in one pass.

``_lookup1(table, a, out)``: ``out[i] = table[a[i]]`` (256 entries, ``a`` uint8);
``_lookup2(table, a, b, out)``: ``out[i] = table[a[i] * 256 + b[i]]`` (65,536 entries, the first
input's code the major index). 1-D arrays of one length; ``a``, ``b`` uint8 (int8 codes viewed
as uint8, as the table is laid out). numpy's ``np.take(table, idx)`` gives the same values but
first widens the indices to intp (and, for two inputs, builds the uint16 indices in three more
passes).
"""

from numba import njit


@njit(cache=True, nogil=True)
def _lookup1(table, a, out):
    for i in range(a.size):
        out[i] = table[a[i]]


@njit(cache=True, nogil=True)
def _lookup2(table, a, b, out):
    for i in range(a.size):
        out[i] = table[(int(a[i]) << 8) | int(b[i])]
