"""Correctly rounded float32 fused multiply-add over arrays: ``round_f32(a * b + c)``, half to
even, one rounding, as VFMADD computes it (LLVM's ``llvm.fma.f32``: the FMA instruction where
the host has one, a correctly rounded library call otherwise). The plain-numpy version (float64
sum with Knuth's TwoSum fix-up at float32 ties) is :func:`hwsim.sim.mlas_math.fma32_numpy`, the
oracle the tests compare this kernel with."""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from hwsim.kernels.canon import readonly


@intrinsic
def _fma_f32(typingctx, a, b, c):
    if not all(t == types.float32 for t in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * 3), "llvm.fma.f32")
        return builder.call(fn, args)

    return types.float32(types.float32, types.float32, types.float32), codegen


@njit(cache=True, nogil=True)
def _fma(a, b, c, out):
    """``out[i] = fma(a[i], b[i], c[i])`` over flat float32 arrays; a length-1 ``b`` or ``c`` is
    broadcast."""
    sb, sc = b.size > 1, c.size > 1
    for i in range(out.size):
        out[i] = _fma_f32(a[i], b[i if sb else 0], c[i if sc else 0])


def fma32(a, b, c) -> np.ndarray:
    """``round_f32(a * b + c)`` elementwise over float32 values broadcast together (a 0-d array
    for scalars). Requires numba JIT."""
    a, b, c = (np.asarray(x, np.float32) for x in (a, b, c))
    shape = np.broadcast_shapes(a.shape, b.shape, c.shape)
    flat = [np.ascontiguousarray(x).reshape(-1) if x.size == 1 else np.ascontiguousarray(np.broadcast_to(x, shape)).reshape(-1)
            for x in (a, b, c)]
    if flat[0].size == 1 and int(np.prod(shape)) != 1:  # the first operand runs over every element
        flat[0] = np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)
    out = np.empty(shape, np.float32)
    _fma(*(readonly(x) for x in flat), out.reshape(-1))
    return out


@njit(cache=True, nogil=True)
def _qlinear_add(ca, cb, shift, ra, rb, fixed, lo, hi, out):
    """onnxruntime's QLinearAdd of two code arrays of one memory order (flat, 8-bit, read as
    ``float32(code) + shift``): ``out[i] = rint(clip(fma(a, ra, fma(b, rb, fixed)))) - shift``,
    all in float32 (``rint`` half to even, ``clip`` to [lo, hi]), stored in ``out``'s 8-bit type;
    the values of :func:`hwsim.sim.ortfused.qlinear_add`'s numpy passes in one pass."""
    for i in range(out.size):
        a = np.float32(ca[i]) + shift
        b = np.float32(cb[i]) + shift
        t = np.rint(_fma_f32(a, ra, _fma_f32(b, rb, fixed)))
        out[i] = min(max(t, lo), hi) - shift


@njit(cache=True, nogil=True)
def _qlinear_add_rows(big, period, period_first, shift, ra, rb, fixed, lo, hi, out):
    """:func:`_qlinear_add` of ``big`` (flat 8-bit codes) and ``period`` (8-bit codes repeated
    along ``big``'s flat order: element ``i`` pairs ``big[i]`` with ``period[i % period.size]``),
    ``period`` the first operand (``a``, times ``ra``) when ``period_first``, else the second.
    Unsigned indices (no negative-index wraparound: the loops vectorise, 5x faster, 2026-11-28)."""
    n = np.uint64(period.size)
    for r in range(np.uint64(out.size) // n):
        base = r * n
        if period_first:
            for j in range(n):
                a = np.float32(period[j]) + shift
                b = np.float32(big[base + j]) + shift
                out[base + j] = min(max(np.rint(_fma_f32(a, ra, _fma_f32(b, rb, fixed))), lo), hi) - shift
        else:
            for j in range(n):
                a = np.float32(big[base + j]) + shift
                b = np.float32(period[j]) + shift
                out[base + j] = min(max(np.rint(_fma_f32(a, ra, _fma_f32(b, rb, fixed))), lo), hi) - shift


@njit(cache=True, nogil=True)
def _qlinear_mul_rows(big, period, period_first, za, zb, ratio, zc, lo, hi, shift, out):
    """onnxruntime's QLinearMul (:func:`hwsim.sim.ortfused.qlinear_mul`) in one pass: ``out[i] =
    clip(rint(float32((a - za) * (b - zb)) * ratio + zc), lo, hi) - shift``, the product exact in
    int32, the multiply and the add each rounded to float32 (no FMA), ``rint`` half-even; ``a`` and
    ``b`` are ``big[i]`` and ``period[i % period.size]`` (``period`` first when ``period_first``;
    a period as long as ``big``: two arrays of one shape). Unsigned indices, as
    :func:`_qlinear_add_rows`."""
    n = np.uint64(period.size)
    for r in range(np.uint64(out.size) // n):
        base = r * n
        if period_first:
            for j in range(n):
                p = np.float32((np.int32(period[j]) - za) * (np.int32(big[base + j]) - zb))
                out[base + j] = min(max(np.rint(p * ratio + zc), lo), hi) - shift
        else:
            for j in range(n):
                p = np.float32((np.int32(big[base + j]) - za) * (np.int32(period[j]) - zb))
                out[base + j] = min(max(np.rint(p * ratio + zc), lo), hi) - shift
