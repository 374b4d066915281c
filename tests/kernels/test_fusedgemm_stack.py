"""kernel_api.qgemm_codes_stack (attention's per-head products requantized in the GEMM epilogue)
against the plain-numpy oracle per matrix: the integer product with its zero points, then
onnxruntime's MlasRequantizeOutput formula (tests/kernels/reference.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import kernel_api
from hwsim.kernels import simdgemm

from tests.kernels import reference as ref
from tests.kernels.gemm_routes import route  # noqa: F401 (a fixture: both tile routes)

pytestmark = pytest.mark.skipif(not simdgemm.available(), reason="needs an AVX2 host and numba JIT")


@settings(max_examples=30, deadline=None)
@given(heads=st.integers(1, 4), m=st.integers(1, 9), k=st.integers(1, 300), n=st.integers(1, 35),
       seed=st.integers(0, 2**31), pairwise=st.booleans(),
       types=st.sampled_from([("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")]),
       zps=st.sampled_from(["none", "a", "ab"]), transposed=st.booleans())
def test_stack_is_each_matrix_requantized(heads, m, k, n, seed, pairwise, types, zps, transposed, route):
    rng = np.random.default_rng(seed)
    pairwise = pairwise and types == ("uint8", "int8")
    ia, ib = np.iinfo(types[0]), np.iinfo(types[1])
    a = rng.integers(ia.min, ia.max, (heads, m, k), endpoint=True).astype(types[0])
    b = rng.integers(ib.min, ib.max, (heads, k, n), endpoint=True).astype(types[1])
    if transposed:  # K^T as attention reads it: a view of (heads, n, k) memory
        b = np.ascontiguousarray(b.transpose(0, 2, 1)).transpose(0, 2, 1)
    az = int(rng.integers(ia.min, ia.max)) if zps != "none" else 0
    bz = int(rng.integers(ib.min, ib.max)) if zps == "ab" else 0
    mult, yzp = np.float32(rng.random() * 1e-3), int(rng.integers(0, 255))
    got = kernel_api.qgemm_codes_stack(a, b, az, bz, None, mult, yzp, (0, 255), pairwise)
    assert got.shape == (heads, m, n) and got.dtype == np.uint8
    for i in range(heads):
        if pairwise:
            acc = ref.int_matmul(a[i], b[i], 64, "none", pairwise=True) - az * b[i].astype(np.int64).sum(0) \
                - bz * a[i].astype(np.int64).sum(1, keepdims=True) + k * az * bz
        else:
            acc = ref.int_matmul(a[i].astype(np.int64) - az, b[i].astype(np.int64) - bz, 64, "none")
        np.testing.assert_array_equal(got[i], ref.requant_ort(acc, np.full(n, mult), yzp, 0, 255))
        np.testing.assert_array_equal(got[i], kernel_api.qgemm_codes(a[i], b[i], az, bz, None, mult, yzp, (0, 255), pairwise))


def test_stack_declines_as_its_matrices_do():
    a, b = np.zeros((3, 2, 3), np.uint8), np.zeros((3, 3, 2), np.int8)
    args = (None, np.ones(2, np.float32), 0, (0, 255))
    assert kernel_api.qgemm_codes_stack(a, b, 0, np.array([1, 0]), *args) is None  # per-column b zero points
    assert kernel_api.qgemm_codes_stack(a.astype(np.int16), b, 0, 0, *args) is None
    assert kernel_api.qgemm_codes_stack(a.view(np.int8), b, 0, 0, *args, pairwise_int16=True) is None
    assert kernel_api.qgemm_codes_stack(a, b, 0, 0, *args).shape == (3, 2, 2)


@pytest.mark.parametrize("types", [("uint8", "int8"), ("int8", "int8"), ("uint8", "uint8")])
def test_stack_of_one_broadcast_weight_is_each_matrix(types, route):
    """A weight broadcast over the stack (a MatMul's 2-D initializer under a batch): packed once
    (kept by packcache), each matrix's codes those of qgemm_codes on its own."""
    rng = np.random.default_rng(3)
    ia, ib = np.iinfo(types[0]), np.iinfo(types[1])
    a = rng.integers(ia.min, ia.max, (5, 7, 70), endpoint=True).astype(types[0])
    w = rng.integers(ib.min, ib.max, (70, 19), endpoint=True).astype(types[1])
    b = np.broadcast_to(w, (5,) + w.shape)
    args = (int(rng.integers(ia.min, ia.max)), 3 if types[1] == "uint8" else 0, None, np.float32(2e-4), 120, (0, 255))
    got = kernel_api.qgemm_codes_stack(a, b, *args)
    for i in range(a.shape[0]):
        np.testing.assert_array_equal(got[i], kernel_api.qgemm_codes(a[i], w, *args))
        acc = ref.int_matmul(a[i].astype(np.int64) - args[0], w.astype(np.int64) - args[1], 64, "none")
        np.testing.assert_array_equal(got[i], ref.requant_ort(acc, np.full(19, args[3]), 120, 0, 255))
