"""Data-dependent statistics: numba kernels against plain-numpy oracles over many shapes."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwsim.cost import _kernels as K


def _oracle_nm(q, n, m):
    groups = [q[i, j:j + m] for i in range(q.shape[0]) for j in range(0, q.shape[1], m)]
    return np.mean([np.count_nonzero(g) <= n for g in groups])


def _oracle_repetition(q, window, groups):
    rows = q.shape[0] // groups
    pad = -q.shape[1] % window
    qp = np.pad(q, ((0, 0), (0, pad)))
    uniq = padds = radds = 0
    for g in range(groups):
        for j in range(0, qp.shape[1], window):
            pats = set()
            for r in range(g * rows, (g + 1) * rows):
                p = qp[r, j:j + window]
                nz = p[p != 0]
                if nz.size == 0:
                    continue
                radds += 1
                pats.add(tuple(p * np.sign(nz[0])))
            uniq += len(pats)
            padds += sum(np.count_nonzero(p) for p in pats)
    return uniq, padds, radds


codes = st.tuples(st.integers(1, 12), st.integers(1, 21), st.integers(1, 3), st.integers(0, 2**31 - 1))


@settings(max_examples=60, deadline=None)
@given(codes, st.integers(1, 5))
def test_kernels_match_oracles(spec, window):
    rows, cols, amp, seed = spec
    groups = 1 + seed % 3
    q = np.random.default_rng(seed).integers(-amp, amp + 1, size=(rows * groups, cols))
    assert K.zero_fraction(q) == pytest.approx(np.mean(q == 0))
    assert K.nm_compliance(q, 2, 4) == pytest.approx(_oracle_nm(q, 2, 4))
    assert K.repetition(q, window, groups) == _oracle_repetition(q, window, groups)


def test_binary_patterns_saturate_and_negations_merge():
    q = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1], [1, 1]])
    # patterns (1,1) and (1,-1) after folding signs: 2 unique, 4 adds to form them, 5 row adds
    assert K.repetition(q, 2) == (2, 4, 5)


def test_shape_checks():
    with pytest.raises(ValueError, match="2-D"):
        K.zero_fraction(np.zeros(3))
    with pytest.raises(ValueError, match="groups"):
        K.repetition(np.zeros((3, 4)), 2, 2)


def test_kernel_bodies_in_python_match_the_jitted_ones():
    """The njit bodies run as plain Python (as under NUMBA_DISABLE_JIT=1) and agree."""
    q = np.random.default_rng(3).integers(-1, 2, size=(6, 10))
    assert K._nonzeros.py_func(q) == K._nonzeros(q)
    assert K._nm_compliant_groups.py_func(q, 2, 4) == K._nm_compliant_groups(q, 2, 4)
    assert K._repetition.py_func(q, 3, 2, 3) == K._repetition(q, 3, 2, 3)
