"""A chain of the float reference's elementwise float64 ops over one input, in one pass.

``_chain(y, bias, with_bias, prog, consts, outs, coef)``: the values of a few elementwise ops of
one shape (GELU written out as Mul, Mul, Erf, Add, Mul, say) made block by block, each op's
block read from the blocks just made (hot in cache) instead of from whole arrays made one op
after another. ``y`` (R, C), float32 or float64, is the chain's input ``x``:
``x = float64(y[r, j]) + bias[j]`` when ``with_bias`` (a reference product plus its bias, as
:meth:`hwsim.sim.refvalues.Biased.real` adds them), else ``float64(y[r, j])``. Row ``i`` of
``outs`` (n, R * C) receives op ``i``'s values in ``y``'s flat order. ``prog`` (n, 4) int64 holds
each op as ``(code, a, b, 0)``: code 0 add, 1 subtract, 2 multiply, 3 divide (``a op b``), 4 erf
(of ``a``; :func:`hwsim.kernels.referf._erf`, ``coef`` its erfc coefficients), 5 relu6 and 6 relu
(of ``a``, as numpy's ``clip(a, 0, 6)`` and ``maximum(a, 0)``: a hard-swish written out); an operand
``k >= 0`` is ``x`` (0) or op ``k - 1``'s values (an earlier op), ``k < 0`` the scalar
``consts[-k - 1]``. Every value is rounded as numpy's float64 ufuncs round it (one IEEE
operation per op, no fused multiply-add: each loop below holds one operation), so the outputs
equal numpy's op by op, bit for bit.
"""

import numpy as np
from numba import njit

from hwsim.kernels.referf import _erf
from hwsim.kernels.zmm import prefer_zmm

#: values per block (8 KiB of float64 per op; 512 to 3072 measured, 1024 to 3072 alike on
#: BERT's 128 x 3072 GELU, 2026-11-27)
_BLOCK = 1024


@njit(cache=True, nogil=True, error_model="numpy")
def _chain(y, bias, with_bias, prog, consts, outs, coef):
    prefer_zmm()  # the erf inlined here keeps its 512-bit loop
    rows, c = y.shape
    n = prog.shape[0]
    x = np.empty(_BLOCK)
    for r in range(rows):
        yr = y[r]
        for j0 in range(0, c, _BLOCK):
            m = min(_BLOCK, c - j0)
            if with_bias:
                for k in range(m):
                    x[k] = np.float64(yr[j0 + k]) + bias[j0 + k]
            else:
                for k in range(m):
                    x[k] = np.float64(yr[j0 + k])
            base = r * c + j0
            for i in range(n):
                _step(prog[i, 0], prog[i, 1], prog[i, 2], x, outs, consts, base, m, outs[i, base:base + m], coef)


@njit(inline="always", nogil=True, error_model="numpy")
def _block(k, x, outs, base, m):
    """Operand ``k >= 0``'s block: ``x`` or an earlier op's values."""
    return x[:m] if k == 0 else outs[k - 1, base:base + m]


@njit(inline="always", nogil=True, error_model="numpy")
def _step(code, a, b, x, outs, consts, base, m, out, coef):
    if code == 4:
        _erf(_block(a, x, outs, base, m), out, coef)
    elif code == 5:
        _relu6(_block(a, x, outs, base, m), out)
    elif code == 6:
        _relu(_block(a, x, outs, base, m), out)
    elif a >= 0 and b >= 0:
        _arrays(code, _block(a, x, outs, base, m), _block(b, x, outs, base, m), out)
    elif a >= 0:
        _array_scalar(code, _block(a, x, outs, base, m), consts[-b - 1], out)
    else:
        _scalar_array(code, consts[-a - 1], _block(b, x, outs, base, m), out)


@njit(inline="always", nogil=True, error_model="numpy")
def _arrays(code, u, v, out):
    if code == 0:
        for k in range(out.size):
            out[k] = u[k] + v[k]
    elif code == 1:
        for k in range(out.size):
            out[k] = u[k] - v[k]
    elif code == 2:
        for k in range(out.size):
            out[k] = u[k] * v[k]
    else:
        for k in range(out.size):
            out[k] = u[k] / v[k]


@njit(inline="always", nogil=True, error_model="numpy")
def _relu6(u, out):
    """numpy's ``np.clip(u, 0.0, 6.0)``: NaN stays NaN, -0.0 stays -0.0 (it is not below 0)."""
    for k in range(out.size):
        v = u[k]
        if v < 0.0:
            v = 0.0
        elif v > 6.0:
            v = 6.0
        out[k] = v


@njit(inline="always", nogil=True, error_model="numpy")
def _relu(u, out):
    """numpy's ``np.maximum(u, 0.0)``: NaN stays NaN, every zero (-0.0 too) and negative is +0.0."""
    for k in range(out.size):
        v = u[k]
        out[k] = v if v > 0.0 or v != v else 0.0


@njit(inline="always", nogil=True, error_model="numpy")
def _array_scalar(code, u, s, out):
    if code == 0:
        for k in range(out.size):
            out[k] = u[k] + s
    elif code == 1:
        for k in range(out.size):
            out[k] = u[k] - s
    elif code == 2:
        for k in range(out.size):
            out[k] = u[k] * s
    else:
        for k in range(out.size):
            out[k] = u[k] / s


@njit(inline="always", nogil=True, error_model="numpy")
def _scalar_array(code, s, v, out):
    if code == 0:
        for k in range(out.size):
            out[k] = s + v[k]
    elif code == 1:
        for k in range(out.size):
            out[k] = s - v[k]
    elif code == 2:
        for k in range(out.size):
            out[k] = s * v[k]
    else:
        for k in range(out.size):
            out[k] = s / v[k]
