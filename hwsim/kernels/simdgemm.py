"""8-bit integer GEMM on the x86 AVX2 multiply-add instructions onnxruntime's MLAS kernels use.

Two products of 8-bit (M, K) and (K, N) arrays, int32 accumulators, k taken in pairs (2t, 2t+1):

``madd16``   operands widened to int16; VPMADDWD adds the exact products of a pair into an int32
             lane, so every partial sum is exact while it fits int32 (the wrapper splits K so it
             does: at most (2**31 - 1) // max|pair| pairs a chunk, chunks added in int64).
``maddubs``  uint8 x int8; VPMADDUBSW adds a pair's products and saturates the pair to int16
             (x86 without VNNI, onnxruntime's u8 x s8 kernels), VPMADDWD by ones adds two
             saturated pairs exactly into int32. The result is sum_t clamp16(pair_t): what
             ``intgemm._loop_matmul(..., pairwise=True)`` computes, without its per-element loop.
             An odd last k is a pair with a zero (zero padding).

The micro-kernel keeps a 4-row x 16-column tile in eight 8-lane int32 registers over a block of
K (B packed in panels of 16 columns, pairs or quads of k interleaved per column; A rows read as
one int32 per pair or quad and broadcast). It is written as LLVM IR through a numba intrinsic:
numba's loop vectorizer turns a tile loop into 32-bit multiplies, four times slower. Available when
the host has AVX2 and numba JIT is on (:func:`available`); callers fall back to the float32 BLAS
path of :mod:`hwsim.kernels.intgemm` otherwise. Plain-numpy references: tests/kernels/reference.py.
"""

import numba
import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

MR, NR = 4, 16  # micro-tile rows x columns
KC = 128  # pairs (madd16) or quads (maddubs) of k per block: a B block of 8 KiB stays in L1
_I32, _I64 = ir.IntType(32), ir.IntType(64)
_V8I32, _V16I16, _V32I8 = ir.VectorType(_I32, 8), ir.VectorType(ir.IntType(16), 16), ir.VectorType(ir.IntType(8), 32)


def available() -> bool:
    """True when the AVX2 kernels can run here (host CPU with AVX2, numba JIT on, host target)."""
    cpu = numba.config.CPU_NAME
    return (not numba.config.DISABLE_JIT and (cpu is None or cpu == "host")
            and bool(_llvm.get_host_cpu_features().get("avx2", False)))


def _tile_intrinsic(ubsw: bool):
    """Intrinsic ``tile(a, b, out, i0, p, q0, q1)``: out[i0:i0+MR, NR*p:NR*p+NR] += sum over
    q0 <= q < q1 of the multiply-add of a[i0+r, q] (one int32: a pair of int16 or four uint8) by
    b[p, q, :] (NR columns x a pair of int16 or four int8)."""

    @intrinsic
    def tile(typingctx, a, b, out, i0, p, q0, q1):
        sig = types.void(a, b, out, i0, p, q0, q1)

        def codegen(context, builder, signature, args):
            aa, ba, oa = (context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3]))
            i0v, pv, q0v, q1v = args[3:]
            a_k = cgutils.unpack_tuple(builder, aa.shape)[1]
            b_k, b_w = cgutils.unpack_tuple(builder, ba.shape)[1:3]
            o_n = cgutils.unpack_tuple(builder, oa.shape)[1]
            mod = builder.module
            madd = cgutils.get_or_insert_function(mod, ir.FunctionType(_V8I32, [_V16I16, _V16I16]),
                                                  "llvm.x86.avx2.pmadd.wd")
            ub = cgutils.get_or_insert_function(mod, ir.FunctionType(_V16I16, [_V32I8, _V32I8]),
                                                "llvm.x86.avx2.pmadd.ub.sw")
            const = lambda v: ir.Constant(_I64, v)  # noqa: E731
            rows = [builder.add(i0v, const(r)) for r in range(MR)]
            a_rows = [builder.gep(aa.data, [builder.mul(r, a_k)]) for r in rows]
            b_base = builder.gep(ba.data, [builder.mul(pv, builder.mul(b_k, b_w))])
            col = builder.mul(pv, const(NR))
            optrs = [builder.bitcast(builder.gep(oa.data, [builder.add(builder.mul(r, o_n), builder.add(col, const(8 * h)))]),
                                     _V8I32.as_pointer()) for r in rows for h in range(2)]
            init = [builder.load(ptr, align=4) for ptr in optrs]
            entry = builder.basic_block
            header, body, done = (builder.append_basic_block(f"tile.{s}") for s in ("header", "body", "done"))
            builder.branch(header)
            builder.position_at_end(header)
            q = builder.phi(_I64)
            q.add_incoming(q0v, entry)
            accs = [builder.phi(_V8I32) for _ in init]
            for ph, v in zip(accs, init):
                ph.add_incoming(v, entry)
            builder.cbranch(builder.icmp_signed("<", q, q1v), body, done)
            builder.position_at_end(body)
            bp = builder.gep(b_base, [builder.mul(q, b_w)])
            vt, step = (_V32I8, 32) if ubsw else (_V16I16, 16)
            bv = [builder.load(builder.bitcast(builder.gep(bp, [const(step * h)]), vt.as_pointer()), align=1)
                  for h in range(2)]
            ones = ir.Constant(_V16I16, [1] * 16)
            new = []
            for r in range(MR):
                av = builder.load(builder.gep(a_rows[r], [q]))
                bc = builder.shuffle_vector(builder.insert_element(ir.Constant(_V8I32, None), av, ir.Constant(_I32, 0)),
                                            ir.Constant(_V8I32, None), ir.Constant(_V8I32, [0] * 8))
                for h in range(2):
                    if ubsw:
                        prod = builder.call(madd, [builder.call(ub, [builder.bitcast(bc, _V32I8), bv[h]]), ones])
                    else:
                        prod = builder.call(madd, [builder.bitcast(bc, _V16I16), bv[h]])
                    new.append(builder.add(accs[2 * r + h], prod))
            q.add_incoming(builder.add(q, const(1)), builder.basic_block)
            for ph, v in zip(accs, new):
                ph.add_incoming(v, builder.basic_block)
            builder.branch(header)
            builder.position_at_end(done)
            for ph, ptr in zip(accs, optrs):
                builder.store(ph, ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile16 = _tile_intrinsic(False)
_tile8 = _tile_intrinsic(True)
_ROW_BLOCK = 16  # micro-tiles of rows per work item (64 rows share a B block)


@njit(cache=True, parallel=True)
def _gemm(a, b, out, sat):
    """``out`` (Mp, NR*P) int32 += packed ``a`` (Mp, Kq) int32 (pairs of int16, or with ``sat``
    quads of uint8) times ``b`` (P, Kq, 2*NR int16 or 4*NR int8)."""
    mp, kq = a.shape
    npan = b.shape[0]
    nblk = (mp // MR + _ROW_BLOCK - 1) // _ROW_BLOCK
    for item in prange(npan * nblk):
        p, blk = item % npan, item // npan
        for q0 in range(0, kq, KC):
            q1 = min(q0 + KC, kq)
            for ib in range(blk * _ROW_BLOCK, min((blk + 1) * _ROW_BLOCK, mp // MR)):
                if sat:
                    _tile8(a, b, out, np.int64(ib * MR), np.int64(p), np.int64(q0), np.int64(q1))
                else:
                    _tile16(a, b, out, np.int64(ib * MR), np.int64(p), np.int64(q0), np.int64(q1))


@njit(cache=True, parallel=True)
def _pack_a(a, k0, k1, out):
    """Rows of ``a[:, k0:k1]`` into ``out`` (Mp, L) (int16 or uint8), zero padded right and below."""
    m = a.shape[0]
    mp, width = out.shape
    for i in prange(mp):
        for j in range(width):
            kk = k0 + j
            out[i, j] = a[i, kk] if (i < m and kk < k1) else 0


@njit(cache=True, parallel=True)
def _pack_b(b, k0, k1, group, out):
    """``b[k0:k1]`` into panels ``out`` (P, Kq, group*NR): out[p, q, group*c + h] = b[k0 + group*q + h, NR*p + c]
    (zero outside ``b``)."""
    n = b.shape[1]
    npan, kq, _ = out.shape
    for p in prange(npan):
        for q in range(kq):
            for h in range(group):
                kk = k0 + group * q + h
                for c in range(NR):
                    j = NR * p + c
                    out[p, q, group * c + h] = b[kk, j] if (kk < k1 and j < n) else 0


def _run(a, b, pair_max: int, saturate_pairs: bool) -> np.ndarray:
    (m, k), n = a.shape, b.shape[1]
    group = 4 if saturate_pairs else 2
    chunk = ((2**31 - 1) // max(pair_max, 1)) // KC * KC * 2  # k per chunk: int32 sums exact (fits())
    mp, npan = m + (-m) % MR, -(-n // NR)
    total = np.zeros((m, n), np.int64)
    for k0 in range(0, k, chunk):
        k1 = min(k0 + chunk, k)
        kq = -(-(k1 - k0) // group)
        adt = np.dtype(np.uint8 if saturate_pairs else np.int16)
        if a.dtype == adt and a.shape == (mp, group * kq):  # already the packed layout (one chunk)
            ap = a
        else:
            ap = np.empty((mp, group * kq), adt)
            _pack_a(a, k0, k1, ap)
        bp = np.empty((npan, kq, group * NR), np.int8 if saturate_pairs else np.int16)
        _pack_b(b, k0, k1, group, bp)
        out = np.zeros((mp, NR * npan), np.int32)
        _gemm(ap.view(np.int32), bp, out, saturate_pairs)
        if k1 == k:
            return out[:m, :n].astype(np.int64) if k0 == 0 else total + out[:m, :n]
        total += out[:m, :n]
    return total


def fits(bound_a: int, bound_b: int) -> bool:
    """True when :func:`madd16` takes operands with ``|a| <= bound_a``, ``|b| <= bound_b``: both
    fit int16 and at least KC pairs sum exactly in int32 (9-bit x 9-bit codes do; int16 x int16
    does not and goes to BLAS)."""
    return max(bound_a, bound_b) <= 32767 and (2**31 - 1) // max(2 * bound_a * bound_b, 1) >= KC


def madd16(a: np.ndarray, b: np.ndarray, bound_a: int, bound_b: int) -> np.ndarray:
    """Exact int64 ``a @ b`` by VPMADDWD for 2-D integer arrays with ``|a| <= bound_a`` and
    ``|b| <= bound_b`` where :func:`fits` (K is split so every int32 partial sum is exact).
    Requires :func:`available`."""
    if not fits(bound_a, bound_b):
        raise ValueError(f"madd16 cannot sum operands bounded by {bound_a}, {bound_b} exactly; see fits()")
    return _run(np.ascontiguousarray(a), np.ascontiguousarray(b), 2 * bound_a * bound_b, False)


def maddubs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int64 sum over pairs t of clamp(a[:, 2t] b[2t] + a[:, 2t+1] b[2t+1], -32768, 32767) for
    ``a`` with values in [0, 255] and ``b`` in [-128, 127] (VPMADDUBSW; an odd last k pairs with
    0). The caller checks the value ranges. Requires :func:`available`."""
    return _run(np.ascontiguousarray(a), np.ascontiguousarray(b), 32768, True)
