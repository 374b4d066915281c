"""8-bit integer GEMM on the x86 AVX2 multiply-add instructions onnxruntime's MLAS kernels use.

Two products of 8-bit (M, K) and (K, N) arrays, int32 accumulators, k taken in pairs (2t, 2t+1):

``madd16``   operands widened to int16; VPMADDWD adds the exact products of a pair into an int32
             lane, so every partial sum is exact while it fits int32 (the wrapper splits K so it
             does: at most (2**31 - 1) // max|pair| pairs a chunk, chunks added in int64). An
             8-bit B stays 8-bit in its panels (half the bytes of int16 panels, as onnxruntime's
             u8 x u8 kernel keeps them) and is widened in the register (VPMOVZXBW / VPMOVSXBW).
``maddubs``  uint8 x int8; VPMADDUBSW adds a pair's products and saturates the pair to int16
             (x86 without VNNI, onnxruntime's u8 x s8 kernels), VPMADDWD by ones adds two
             saturated pairs exactly into int32. The result is sum_t clamp16(pair_t): what
             ``intgemm._loop_matmul(..., pairwise=True)`` computes, without its per-element loop.
             An odd last k is a pair with a zero (zero padding).

The micro-kernel keeps a 4-row x 16-column tile in eight 8-lane int32 registers over a block of
K (B packed in panels of 16 columns, pairs or quads of k interleaved per column; A rows read as
one int32 per pair or quad and broadcast); blocks of A stay in L2 while they meet every panel of a
work item (see ``KC``), and the threads take work items from an atomic counter. A constant B
(a weight) is packed once: :mod:`hwsim.kernels.packcache` keeps the panels, found by content. It is written as LLVM IR through a numba intrinsic:
numba's loop vectorizer turns a tile loop into 32-bit multiplies, four times slower. Available when
the host has AVX2 and numba JIT is on (:func:`available`); callers fall back to the float32 BLAS
path of :mod:`hwsim.kernels.intgemm` otherwise. Plain-numpy references: tests/kernels/reference.py.
"""

import functools

import numba
import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hwsim.kernels import packcache
from hwsim.kernels.workqueue import PARALLEL_MIN, claim, pick, serial

MR, NR = 4, 16  # micro-tile rows x columns
_I32, _I64 = ir.IntType(32), ir.IntType(64)
_V8I32, _V16I16, _V32I8 = ir.VectorType(_I32, 8), ir.VectorType(ir.IntType(16), 16), ir.VectorType(ir.IntType(8), 32)
_V8F32 = ir.VectorType(ir.FloatType(), 8)


@functools.lru_cache(maxsize=1)
def _host_avx2() -> bool:
    return bool(_llvm.get_host_cpu_features().get("avx2", False))


def available() -> bool:
    """True when the AVX2 kernels can run here (host CPU with AVX2, numba JIT on, host target)."""
    cpu = numba.config.CPU_NAME
    return not numba.config.DISABLE_JIT and (cpu is None or cpu == "host") and _host_avx2()


def _kind(a_dtype, b_dtype):
    """The multiply-add a (packed A element type, packed B element type) pair selects, or None:
    int16 A pairs with int16, uint8 (widened by zero extension) or int8 (sign extension) B pairs
    "madd" (VPMADDWD); uint8 A quads with int8 B quads "maddubs"; float32 with float32 "fma32"."""
    a, b = str(a_dtype), str(b_dtype)
    if a == "int16" and b in ("int16", "uint8", "int8"):
        return "madd"
    return {("uint8", "int8"): "maddubs", ("float32", "float32"): "fma32"}.get((a, b))


@intrinsic
def _tile(typingctx, a, b, out, i0, p, q0, q1, fresh):
    """``_tile(a, b, out, i0, p, q0, q1, fresh)``: out[i0:i0+MR, NR*p:NR*p+NR] = (0 if ``fresh``
    else its value) + sum over
    q0 <= q < q1 (ascending) of step q of rows a[i0+r] times panel b[p, q, :], by :func:`_kind`:
    "madd" (a: int16, a step is a pair of k; b: NR pairs of int16, or of 8-bit values widened to
    int16 in the register, VPMOVZXBW/VPMOVSXBW; VPMADDWD), "maddubs" (a: uint8, a step is four k;
    b: NR quads of int8, VPMADDUBSW then VPMADDWD by ones), "fma32" (a, b: float32, one k a step,
    one fused multiply-add: the sequential float32 sum when the products are exact in float32).
    The step of A is read as one 32-bit value and broadcast to the eight lanes."""
    kind = _kind(a.dtype, b.dtype)
    if kind is None:
        return None
    flt = kind == "fma32"
    acc_t = _V8F32 if flt else _V8I32
    group = {"madd": 2, "maddubs": 4, "fma32": 1}[kind]
    widen = {"uint8": "zext", "int8": "sext"}.get(str(b.dtype)) if kind == "madd" else None
    half = NR * group // 2  # B elements in half a panel row (one register's worth)
    b_load_t = ir.VectorType(ir.IntType(b.dtype.bitwidth), half) if not flt else _V8F32
    sig = types.void(a, b, out, i0, p, q0, q1, fresh)

    def codegen(context, builder, signature, args):
        aa, ba, oa = (context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3]))
        i0v, pv, q0v, q1v, fresh_v = args[3:]
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
        a_rows = [builder.bitcast(builder.gep(aa.data, [builder.mul(r, a_k)]),
                                  (ir.FloatType() if flt else _I32).as_pointer()) for r in rows]
        b_base = builder.gep(ba.data, [builder.mul(pv, builder.mul(b_k, b_w))])
        col = builder.mul(pv, const(NR))
        optrs = [builder.bitcast(builder.gep(oa.data, [builder.add(builder.mul(r, o_n), builder.add(col, const(8 * h)))]),
                                 acc_t.as_pointer()) for r in rows for h in range(2)]
        # a fresh tile starts from zeros and never reads ``out`` (a new array's pages are then
        # touched once, by the store, instead of a read fault and a copy-on-write fault)
        with builder.if_else(builder.icmp_signed("!=", fresh_v, ir.Constant(fresh_v.type, 0))) as (zero, keep):
            with zero:
                zero_bb = builder.basic_block
            with keep:
                loaded = [builder.load(ptr, align=4) for ptr in optrs]
                keep_bb = builder.basic_block
        init = []
        for v in loaded:
            ph = builder.phi(acc_t)
            ph.add_incoming(ir.Constant(acc_t, None), zero_bb)
            ph.add_incoming(v, keep_bb)
            init.append(ph)
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
        bv = [builder.load(builder.bitcast(builder.gep(bp, [const(half * h)]), b_load_t.as_pointer()), align=1)
              for h in range(2)]
        if widen == "zext":
            bv = [builder.zext(v, _V16I16) for v in bv]
        elif widen == "sext":
            bv = [builder.sext(v, _V16I16) for v in bv]
        elif kind == "madd":
            bv = [builder.bitcast(v, _V16I16) for v in bv]
        elif kind == "maddubs":
            bv = [builder.bitcast(v, _V32I8) for v in bv]
        ones = ir.Constant(_V16I16, [1] * 16)
        new = []
        for r in range(MR):
            av = builder.load(builder.gep(a_rows[r], [q]), align=1)
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


# Blocking (Goto-style): a work item is a block of up to _ITEM_PANELS panels x _ITEM_TILES row
# tiles; within it, for each block of KC pairs/quads of k, each block of _L2_TILES row tiles of A
# (128 KiB at KC=256, kept in L2) meets every panel of the item (a B block of 8 KiB for 8-bit
# panels, 16 KiB for int16, kept in L1).
KC = 256
_L2_TILES, _ITEM_PANELS, _ITEM_TILES = 32, 8, 128


@njit(cache=True)
def _item_grid(mp, npan):
    """(items, column groups, row tiles) of a product with ``mp`` rows and ``npan`` panels."""
    nt = mp // MR
    ngrp = (npan + _ITEM_PANELS - 1) // _ITEM_PANELS
    return ngrp * ((nt + _ITEM_TILES - 1) // _ITEM_TILES), ngrp, nt


@njit(cache=True, parallel=True)
def _gemm(a, b, out, counter, threads):
    """``out`` (Mp, NR*P) = packed ``a`` (Mp, group*Kq) times panels ``b`` (P, Kq, group*NR), Kq > 0,
    by :func:`_tile` (its kind set by the dtypes of ``a`` and ``b``); ``out`` is written, never
    read. ``threads`` workers claim the work items from ``counter`` (int64, zeroed) in turn, a
    balanced split however busy each core is."""
    kq, npan = b.shape[1], b.shape[0]
    items, ngrp, nt = _item_grid(a.shape[0], npan)
    for _ in prange(threads):
        while True:
            it = claim(counter)
            if it >= items:
                break
            p0, t0 = (it % ngrp) * _ITEM_PANELS, (it // ngrp) * _ITEM_TILES
            p1, t1 = min(p0 + _ITEM_PANELS, npan), min(t0 + _ITEM_TILES, nt)
            for q0 in range(0, kq, KC):
                q1 = min(q0 + KC, kq)
                for m0 in range(t0, t1, _L2_TILES):
                    for p in range(p0, p1):
                        for ib in range(m0, min(m0 + _L2_TILES, t1)):
                            _tile(a, b, out, np.int64(ib * MR), np.int64(p), np.int64(q0), np.int64(q1),
                                  np.int64(q0 == 0))


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
_gemm_1, _pack_b_1 = (serial(f) for f in (_gemm, _pack_b))
_PARALLEL_MACS = PARALLEL_MIN
_PARALLEL_PACK = 2**18  # elements of b


def _panels(b, group, chunk, dtype):
    """``b`` (K, N) packed for :func:`_gemm`: one array of panels (P, Kq, group*NR) of ``dtype``
    per chunk of ``chunk`` rows of k."""
    (k, n), out = b.shape, []
    pack = _pack_b if k * n >= _PARALLEL_PACK else _pack_b_1
    for k0 in range(0, k, chunk):
        k1 = min(k0 + chunk, k)
        bp = np.zeros((-(-n // NR), -(-(k1 - k0) // group), group * NR), dtype)
        pack(b, k0, k1, group, bp)
        out.append(bp)
    return out


def _pack_a(a, k0, k1, rows, width, dtype):
    """``a[:, k0:k1]`` as ``dtype`` in zeroed (rows, width), the rest 0: one numpy casting copy
    (values already fit ``dtype``; the caller checks). A numba parallel pass took 8 ms here for
    512 x 4096 (waking the threads), numpy's copy 0.3 ms."""
    out = np.zeros((rows, width), dtype)
    out[:a.shape[0], :k1 - k0] = a[:, k0:k1]
    return out


def _product(ap, bp, m, n, par):
    """int32 or float32 (m, n) view of packed ``ap`` times panels ``bp`` by :func:`_gemm`."""
    dtype = np.float32 if bp.dtype == np.float32 else np.int32
    if bp.shape[1] == 0:
        return np.zeros((m, n), dtype)
    out = np.empty((ap.shape[0], NR * bp.shape[0]), dtype)
    kernel, split = pick(_gemm, _gemm_1, PARALLEL_MIN if par else 0)
    kernel(ap, bp, out, *split)
    return out[:m, :n]


def _run(a, b, pair_max: int, saturate_pairs: bool) -> np.ndarray:
    (m, k), n = a.shape, b.shape[1]
    group = 4 if saturate_pairs else 2
    chunk = ((2**31 - 1) // max(pair_max, 1)) // KC * KC * 2  # k per chunk: int32 sums exact (fits())
    bdt = np.dtype(np.int8 if saturate_pairs else (b.dtype if b.dtype.itemsize == 1 else np.int16))
    panels = packcache.packed(b, ("simdgemm", group, chunk, bdt.str), lambda b: _panels(b, group, chunk, bdt))
    mp = m + (-m) % MR
    total = None
    for k0, bp in zip(range(0, k, chunk), panels):
        k1 = min(k0 + chunk, k)
        par = m * n * (k1 - k0) >= _PARALLEL_MACS
        adt = np.dtype(np.uint8 if saturate_pairs else np.int16)
        if a.dtype == adt and a.shape == (mp, group * bp.shape[1]):  # already the packed layout (one chunk)
            ap = a
        else:
            ap = _pack_a(a, k0, k1, mp, group * bp.shape[1], adt)
        out = _product(ap, bp, m, n, par)
        if total is None:
            total = out.astype(np.int64)
        else:
            total += out
    return np.zeros((m, n), np.int64) if total is None else total


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
    a, b = np.asarray(a, np.float32), np.ascontiguousarray(b, np.float32)
    (m, k), n = a.shape, b.shape[1]
    if k == 0:
        return np.zeros((m, n), np.float32)
    (bp,) = packcache.packed(b, ("simdgemm", 1, k), lambda b: _panels(b, 1, max(k, 1), np.float32))
    par = m * n * k >= _PARALLEL_MACS
    ap = _pack_a(a, 0, k, m + (-m) % MR, k, np.float32)
    return _product(ap, bp, m, n, par)
