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
_V8F32 = ir.VectorType(ir.FloatType(), 8)


def available() -> bool:
    """True when the AVX2 kernels can run here (host CPU with AVX2, numba JIT on, host target)."""
    cpu = numba.config.CPU_NAME
    return (not numba.config.DISABLE_JIT and (cpu is None or cpu == "host")
            and bool(_llvm.get_host_cpu_features().get("avx2", False)))


def _tile_intrinsic(kind: str):
    """Intrinsic ``tile(a, b, out, i0, p, q0, q1)``: out[i0:i0+MR, NR*p:NR*p+NR] += sum over
    q0 <= q < q1 (ascending) of a[i0+r, q] broadcast times b[p, q, :], by ``kind``:
    "madd16" (a: int32 = a pair of int16, b: NR pairs of int16, VPMADDWD), "maddubs" (a: int32 =
    four uint8, b: NR quads of int8, VPMADDUBSW then VPMADDWD by ones), "fma32" (a: float32,
    b: NR float32, one fused multiply-add per step: the sequential float32 sum when the products
    are exact in float32)."""
    flt = kind == "fma32"
    acc_t = _V8F32 if flt else _V8I32
    b_t, step = {"madd16": (_V16I16, 16), "maddubs": (_V32I8, 32), "fma32": (_V8F32, 8)}[kind]

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
            fma = cgutils.get_or_insert_function(mod, ir.FunctionType(_V8F32, [_V8F32] * 3), "llvm.fma.v8f32")
            const = lambda v: ir.Constant(_I64, v)  # noqa: E731
            rows = [builder.add(i0v, const(r)) for r in range(MR)]
            a_rows = [builder.gep(aa.data, [builder.mul(r, a_k)]) for r in rows]
            b_base = builder.gep(ba.data, [builder.mul(pv, builder.mul(b_k, b_w))])
            col = builder.mul(pv, const(NR))
            optrs = [builder.bitcast(builder.gep(oa.data, [builder.add(builder.mul(r, o_n), builder.add(col, const(8 * h)))]),
                                     acc_t.as_pointer()) for r in rows for h in range(2)]
            init = [builder.load(ptr, align=4) for ptr in optrs]
            entry = builder.basic_block
            header, body, done = (builder.append_basic_block(f"tile.{s}") for s in ("header", "body", "done"))
            builder.branch(header)
            builder.position_at_end(header)
            q = builder.phi(_I64)
            q.add_incoming(q0v, entry)
            accs = [builder.phi(acc_t) for _ in init]
            for ph, v in zip(accs, init):
                ph.add_incoming(v, entry)
            builder.cbranch(builder.icmp_signed("<", q, q1v), body, done)
            builder.position_at_end(body)
            bp = builder.gep(b_base, [builder.mul(q, b_w)])
            bv = [builder.load(builder.bitcast(builder.gep(bp, [const(step * h)]), b_t.as_pointer()), align=1)
                  for h in range(2)] if not flt else \
                [builder.load(builder.bitcast(builder.gep(bp, [const(8 * h)]), b_t.as_pointer()), align=4)
                 for h in range(2)]
            ones = ir.Constant(_V16I16, [1] * 16)
            new = []
            for r in range(MR):
                av = builder.load(builder.gep(a_rows[r], [q]))
                bc = builder.shuffle_vector(builder.insert_element(ir.Constant(acc_t, None), av, ir.Constant(_I32, 0)),
                                            ir.Constant(acc_t, None), ir.Constant(_V8I32, [0] * 8))
                for h in range(2):
                    if kind == "fma32":
                        new.append(builder.call(fma, [bc, bv[h], accs[2 * r + h]]))
                        continue
                    if kind == "maddubs":
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


_tile16, _tile8, _tile_f32 = (_tile_intrinsic(k) for k in ("madd16", "maddubs", "fma32"))
_ROW_BLOCK = 16  # micro-tiles of rows per work item (64 rows share a B block)


@njit(cache=True)
def _items(mp, npan):
    """Work items (panel x block of _ROW_BLOCK row tiles) and row-tile count."""
    nt = mp // MR
    return npan * ((nt + _ROW_BLOCK - 1) // _ROW_BLOCK), nt


@njit(cache=True, parallel=True)
def _gemm_f32(a, b, out):
    """``out`` (Mp, NR*P) float32 += ``a`` (Mp, K) float32 times panels ``b`` (P, K, NR) float32,
    one FMA per k in ascending order for every output."""
    kq, npan = a.shape[1], b.shape[0]
    items, nt = _items(a.shape[0], npan)
    for item in prange(items):
        p, blk = item % npan, item // npan
        for q0 in range(0, kq, KC):
            for ib in range(blk * _ROW_BLOCK, min((blk + 1) * _ROW_BLOCK, nt)):
                _tile_f32(a, b, out, np.int64(ib * MR), np.int64(p), np.int64(q0), np.int64(min(q0 + KC, kq)))


@njit(cache=True, parallel=True)
def _gemm(a, b, out, kind):
    """``out`` (Mp, NR*P) int32 += packed ``a`` (Mp, Kq) int32 times panels ``b`` (P, Kq, W) by
    tile ``kind``: 0 madd16 (pairs of int16 x 2*NR int16), 1 maddubs (quads of uint8 x 4*NR int8)."""
    kq, npan = a.shape[1], b.shape[0]
    items, nt = _items(a.shape[0], npan)
    for item in prange(items):
        p, blk = item % npan, item // npan
        for q0 in range(0, kq, KC):
            q1 = min(q0 + KC, kq)
            for ib in range(blk * _ROW_BLOCK, min((blk + 1) * _ROW_BLOCK, nt)):
                if kind == 1:
                    _tile8(a, b, out, np.int64(ib * MR), np.int64(p), np.int64(q0), np.int64(q1))
                else:
                    _tile16(a, b, out, np.int64(ib * MR), np.int64(p), np.int64(q0), np.int64(q1))


@njit(cache=True, parallel=True)
def _pack_a(a, k0, k1, out):
    """Rows of ``a[:, k0:k1]`` into zeroed ``out`` (Mp, L) (int16 or uint8); the rest stays 0."""
    for i in prange(a.shape[0]):
        for j in range(k1 - k0):
            out[i, j] = a[i, k0 + j]


@njit(cache=True, parallel=True)
def _pack_b(b, k0, k1, group, out):
    """``b[k0:k1]`` into zeroed panels ``out`` (P, Kq, group*NR):
    out[p, q, group*c + h] = b[k0 + group*q + h, NR*p + c] where ``b`` has that element."""
    n = b.shape[1]
    npan, kq, _ = out.shape
    for p in prange(npan):
        cols = min(NR, n - NR * p)
        for q in range(kq):
            for h in range(group):
                kk = k0 + group * q + h
                if kk < k1:
                    for c in range(cols):
                        out[p, q, group * c + h] = b[kk, NR * p + c]


# the same kernels without threads, for small products: a parallel region costs milliseconds when
# other processes hold the cores
_gemm_1, _gemm_f32_1, _pack_a_1, _pack_b_1 = (njit(cache=True)(getattr(f, "py_func", f))  # plain without JIT
                                              for f in (_gemm, _gemm_f32, _pack_a, _pack_b))
_PARALLEL_MACS = 2**22


def _run(a, b, pair_max: int, saturate_pairs: bool) -> np.ndarray:
    (m, k), n = a.shape, b.shape[1]
    group = 4 if saturate_pairs else 2
    chunk = ((2**31 - 1) // max(pair_max, 1)) // KC * KC * 2  # k per chunk: int32 sums exact (fits())
    mp, npan = m + (-m) % MR, -(-n // NR)
    total = np.zeros((m, n), np.int64)
    for k0 in range(0, k, chunk):
        k1 = min(k0 + chunk, k)
        kq = -(-(k1 - k0) // group)
        par = m * n * (k1 - k0) >= _PARALLEL_MACS
        adt = np.dtype(np.uint8 if saturate_pairs else np.int16)
        if a.dtype == adt and a.shape == (mp, group * kq):  # already the packed layout (one chunk)
            ap = a
        else:
            ap = np.zeros((mp, group * kq), adt)
            (_pack_a if par else _pack_a_1)(a, k0, k1, ap)
        bp = np.zeros((npan, kq, group * NR), np.int8 if saturate_pairs else np.int16)
        (_pack_b if par else _pack_b_1)(b, k0, k1, group, bp)
        out = np.zeros((mp, NR * npan), np.int32)
        (_gemm if par else _gemm_1)(ap.view(np.int32), bp, out, 1 if saturate_pairs else 0)
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


def seq_fp32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 (M, N): every output the sequential float32 sum over k ascending of
    ``a[i, k] * b[k, j]`` (each step rounded half-even to float32), for float32 operands whose
    products are all exact in float32 (the caller checks it; then one FMA per step equals
    multiply-then-add). Requires :func:`available`."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    (m, k), n = a.shape, b.shape[1]
    mp, npan = m + (-m) % MR, -(-n // NR)
    par = m * n * k >= _PARALLEL_MACS
    ap = np.zeros((mp, k), np.float32)
    (_pack_a if par else _pack_a_1)(a, 0, k, ap)
    bp = np.zeros((npan, k, NR), np.float32)
    (_pack_b if par else _pack_b_1)(b, 0, k, 1, bp)
    out = np.zeros((mp, NR * npan), np.float32)
    (_gemm_f32 if par else _gemm_f32_1)(ap, bp, out)
    return out[:m, :n]
