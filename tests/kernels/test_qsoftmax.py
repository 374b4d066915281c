"""QLinearSoftmax's row kernel (hwsim.kernels.qsoftmax) against the numpy formula it replaces in
hwsim.sim.ortfused.qlinear_softmax (float32 table entries, float32 sum in element order, float32
product and quotient rounded half to even); onnxruntime itself is the oracle of that formula in
tests/sim/test_sim_qdq_ort.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels.qsoftmax import _rows


def _numpy(c, table, offset, y_scale, zy, qmin, qmax):
    c = c.astype(np.int64)
    t = table[c + (offset - c.max(axis=-1, keepdims=True))]
    total = np.zeros(c.shape[:-1] + (1,), np.float32)
    for k in range(c.shape[-1]):
        total = total + t[..., k:k + 1]
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.rint((t * y_scale) / total).astype(np.float64) + zy
    return np.clip(v, qmin, qmax).astype(np.int64)


@pytest.mark.nojit
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 6), d=st.integers(1, 130), signed=st.booleans(), s_x=st.sampled_from([0.01, 0.1, 0.37, 2.0]),
       s_y=st.sampled_from([1 / 256, 1 / 255, 0.01, 0.3]), zy=st.integers(-128, 255), seed=st.integers(0, 2**31))
def test_rows_equal_the_numpy_formula(rows, d, signed, s_x, s_y, zy, seed):
    rng = np.random.default_rng(seed)
    dt, top = (np.int8, 127) if signed else (np.uint8, 255)
    offset = top + (128 if signed else 0)
    qmin, qmax = (-128, 127) if signed else (0, 255)
    zy = int(np.clip(zy, qmin, qmax))
    c = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, (rows, d), endpoint=True).astype(dt)
    shift = max(0.0, float(np.log(np.float64(np.float32(np.finfo(np.float32).max) / np.float32(d)))) - 5.0) / s_x
    table = np.exp((np.arange(256, dtype=np.float64) - 255 + shift) * s_x).astype(np.float32)
    y_scale = np.float32(np.floor(np.float32(1.0) / np.float32(s_y)))
    out = np.empty((rows, d), dt)
    _rows(c, table, offset, y_scale, np.float64(zy), np.float64(qmin), np.float64(qmax), out)
    np.testing.assert_array_equal(out.astype(np.int64), _numpy(c, table, offset, y_scale, zy, qmin, qmax))
