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
(a weight) is packed once: :mod:`hwsim.kernels.packcache` keeps the panels, found by content. The
tile is LLVM IR (:mod:`hwsim.kernels.tileir`). :func:`requant_product` requantizes the last K
block's registers straight into 8-bit codes (onnxruntime's requantization in the GEMM epilogue).
Available when the host has AVX2 and numba JIT is on (:func:`available`); callers fall back to the
float32 BLAS path of :mod:`hwsim.kernels.intgemm` otherwise. Plain-numpy references:
tests/kernels/reference.py.
"""

import functools

import numba
import numpy as np
from llvmlite import binding as _llvm
from numba import njit, prange

from hwsim.kernels import packcache
from hwsim.kernels.canon import readonly
from hwsim.kernels.tileir import MR, NR, _tile, _tile_rq
from hwsim.kernels.workqueue import PARALLEL_MIN, claim, pick, serial


@functools.lru_cache(maxsize=1)
def _host_avx2() -> bool:
    return bool(_llvm.get_host_cpu_features().get("avx2", False))


def available() -> bool:
    """True when the AVX2 kernels can run here (host CPU with AVX2, numba JIT on, host target)."""
    cpu = numba.config.CPU_NAME
    return not numba.config.DISABLE_JIT and (cpu is None or cpu == "host") and _host_avx2()


# Blocking (Goto-style): a work item is a block of up to _ITEM_PANELS panels x _ITEM_TILES row
# tiles; within it, for each block of KC pairs/quads of k, each block of _L2_TILES row tiles of A
# (128 KiB at KC=256, kept in L2) meets every panel of the item (a B block of 8 KiB for 8-bit
# panels, 16 KiB for int16, kept in L1).
KC = 256
_L2_TILES, _ITEM_PANELS, _ITEM_TILES = 32, 8, 128


@njit(cache=True, nogil=True)
def _item_grid(mp, npan):
    """(items, column groups, row tiles) of a product with ``mp`` rows and ``npan`` panels."""
    nt = mp // MR
    ngrp = (npan + _ITEM_PANELS - 1) // _ITEM_PANELS
    return ngrp * ((nt + _ITEM_TILES - 1) // _ITEM_TILES), ngrp, nt


@njit(cache=True, nogil=True, parallel=True)
def _gemm(a, b, out, epi, counter, threads):
    """``out`` (Mp, NR*P) = packed ``a`` (Mp, group*Kq) times panels ``b`` (P, Kq, group*NR), Kq > 0,
    by :func:`~hwsim.kernels.tileir._tile` (its kind set by the dtypes of ``a`` and ``b``);
    ``out`` is written, never read before. With ``epi`` (not None; see
    :func:`~hwsim.kernels.tileir._tile_rq`) the last block of K is requantized in the registers
    into ``epi[0]`` instead, and ``out`` holds only the partial sums of the blocks before it.
    ``threads`` workers claim the work items from ``counter`` (int64, zeroed) in turn, a
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
                fresh = np.int64(q0 == 0)
                for m0 in range(t0, t1, _L2_TILES):
                    for p in range(p0, p1):
                        for ib in range(m0, min(m0 + _L2_TILES, t1)):
                            i0, pp, k0, k1 = np.int64(ib * MR), np.int64(p), np.int64(q0), np.int64(q1)
                            if epi is None:
                                _tile(a, b, out, i0, pp, k0, k1, fresh)
                            elif q1 < kq:
                                _tile(a, b, out, i0, pp, k0, k1, fresh)
                            else:
                                _tile_rq(a, b, out, i0, pp, k0, k1, fresh, epi)


#: rows of k per block when packing: a block's rows of ``b`` are read across every panel before the
#: next block (a few pages at a time instead of one cache line of every row of ``b`` per panel)
_PACK_ROWS = 64


@njit(cache=True, nogil=True, inline="always")
def _put(dst, di, src, si, size):
    """Element ``si`` of bytes ``src`` to element ``di`` of bytes ``dst``, elements of ``size`` (1
    or 2) bytes, spelled out: the branch is hoisted out of the loops and they vectorise."""
    if size == 1:
        dst[di] = src[si]
    else:
        dst[2 * di] = src[2 * si]
        dst[2 * di + 1] = src[2 * si + 1]


@njit(cache=True, nogil=True)
def _pack_b(b, trans, k0, k1, group, size, out):
    """Rows k0..k1 of B into zeroed panels ``out`` (P, Kq, group*NR*size) of bytes, B = ``b``
    (K, N*size) or ``b.T`` for ``b`` (N, K*size) with ``trans``, bytes (read-only) of elements of
    ``size`` (1 or 2) bytes: element [p, q, group*c + h] of the panels is B[k0 + group*q + h, NR*p + c] where B has
    that element. Only copies bytes (the wrapper passes uint8 views: one compiled kernel for
    every element type, for a weight and its transpose), and it runs once per weight
    (:mod:`hwsim.kernels.packcache`), on one thread: no threaded twin to compile, and threads
    did not pay (4608 x 512 int8 at load 8: 17 ms CPU, 50 ms wall on two threads, 4 / 11 ms on
    one; 7501310)."""
    npan, kq, _ = out.shape
    n = b.shape[0] if trans else b.shape[1] // size
    if trans:  # rows of b (w) are columns of B: read each once, along k
        for p in range(npan):
            for c in range(min(NR, n - NR * p)):
                row = b[NR * p + c]
                for q in range(kq):
                    dst = out[p, q]
                    for h in range(group):
                        kk = k0 + group * q + h
                        if kk < k1:
                            _put(dst, group * c + h, row, kk, size)
        return
    for qb in range(0, kq, _PACK_ROWS):
        for p in range(npan):
            c0 = NR * p
            cols = min(NR, n - c0)
            for q in range(qb, min(kq, qb + _PACK_ROWS)):
                dst = out[p, q]
                for h in range(group):
                    kk = k0 + group * q + h
                    if kk < k1:
                        row = b[kk]
                        for c in range(cols):
                            _put(dst, group * c + h, row, c0 + c, size)


@njit(cache=True, nogil=True)
def _pack_f32_block(b, q0, q1, p0, p1, buf):
    """``b[q0:q1]`` columns ``NR*p0`` to ``NR*p1`` into ``buf`` (>= p1-p0, >= q1-q0, NR) as panels:
    buf[p, q, c] = b[q0 + q, NR*(p0 + p) + c], zero past the last column of ``b``."""
    n = b.shape[1]
    for q in range(q1 - q0):
        row = b[q0 + q]
        for p in range(p1 - p0):
            c0 = NR * (p0 + p)
            dst = buf[p, q]
            if c0 + NR <= n:
                for c in range(NR):
                    dst[c] = row[c0 + c]
            else:
                for c in range(NR):
                    dst[c] = row[c0 + c] if c0 + c < n else np.float32(0.0)


@njit(cache=True, nogil=True, parallel=True)
def _gemm_f32(a, b, out, counter, threads):
    """``out`` (Mp, NR*P) = packed ``a`` (Mp, K) times ``b`` (K, N) float32 as it is (C order),
    K > 0, by :func:`~hwsim.kernels.tileir._tile` "fma32" in the work items, blocks and order of
    :func:`_gemm`. Each work item packs its KC x (up to _ITEM_PANELS panels) block of ``b`` into
    its thread's buffer (128 KiB, in L2) right before its tiles read it: no packed copy of ``b``
    is written to memory and read back (64 MiB each way for 4096 x 4096, plus a fresh array's
    page faults: 45-50 ms of CPU of a 0.2 s product). A block is packed once per item, so once
    for every Mp/512 rows."""
    k, n = b.shape
    npan = out.shape[1] // NR
    items, ngrp, nt = _item_grid(a.shape[0], npan)
    for _ in prange(threads):
        buf = np.empty((_ITEM_PANELS, KC, NR), np.float32)
        while True:
            it = claim(counter)
            if it >= items:
                break
            p0, t0 = (it % ngrp) * _ITEM_PANELS, (it // ngrp) * _ITEM_TILES
            p1, t1 = min(p0 + _ITEM_PANELS, npan), min(t0 + _ITEM_TILES, nt)
            ov = out[:, NR * p0:NR * p1]
            for q0 in range(0, k, KC):
                q1 = min(q0 + KC, k)
                _pack_f32_block(b, q0, q1, p0, p1, buf)
                av = a[:, q0:q1]
                fresh, kb = np.int64(q0 == 0), np.int64(q1 - q0)
                for m0 in range(t0, t1, _L2_TILES):
                    for p in range(p1 - p0):
                        for ib in range(m0, min(m0 + _L2_TILES, t1)):
                            _tile(av, buf, ov, np.int64(ib * MR), np.int64(p), np.int64(0), kb, fresh)


# the same kernels without threads, for small products: a parallel region costs milliseconds when
# other processes hold the cores
_gemm_1, _gemm_f32_1 = (serial(f) for f in (_gemm, _gemm_f32))
_PARALLEL_MACS = PARALLEL_MIN


def _panels(b, group, chunk, dtype, trans=False):
    """B packed for :func:`_gemm`, B = ``b`` (K, N) or ``b.T`` with ``trans``: one array of panels
    (P, Kq, group*NR) of ``dtype`` per chunk of ``chunk`` rows of k. ``b``'s values fit ``dtype``
    (the caller checks); it is converted first where its type differs."""
    b = np.ascontiguousarray(b, dtype)
    k, n = b.shape[::-1] if trans else b.shape
    raw, size, out = readonly(b.view(np.uint8)), b.dtype.itemsize, []
    if size not in (1, 2):
        raise ValueError(f"_panels packs 8- and 16-bit elements, not {b.dtype}")
    for k0 in range(0, k, chunk):
        k1 = min(k0 + chunk, k)
        bp = np.zeros((-(-n // NR), -(-(k1 - k0) // group), group * NR), dtype)
        _pack_b(raw, trans, k0, k1, group, size, bp.view(np.uint8))
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
    kernel(ap, bp, out, None, *split)
    return out[:m, :n]


def _packed_b(b, pair_max: int, saturate_pairs: bool):
    """(group, chunk, panels, packed A dtype) of ``b`` for :func:`_gemm`: k in groups of
    ``group``, chunks of ``chunk`` k whose int32 sums are exact (:func:`fits`), one array of
    panels per chunk (kept by :mod:`hwsim.kernels.packcache`)."""
    group = 4 if saturate_pairs else 2
    chunk = ((2**31 - 1) // max(pair_max, 1)) // KC * KC * 2  # k per chunk: int32 sums exact (fits())
    bdt = np.dtype(np.int8 if saturate_pairs else (b.dtype if b.dtype.itemsize == 1 else np.int16))
    if b.flags.f_contiguous and not b.flags.c_contiguous:  # a transposed weight (w.T): keyed by w itself, no copy
        panels = packcache.packed(b.T, ("simdgemm", group, chunk, bdt.str, "T"),
                                  lambda bt: _panels(bt, group, chunk, bdt, trans=True))
    else:
        panels = packcache.packed(np.ascontiguousarray(b), ("simdgemm", group, chunk, bdt.str),
                                  lambda b: _panels(b, group, chunk, bdt))
    return group, chunk, panels, np.dtype(np.uint8 if saturate_pairs else np.int16)


def _packed_a(a, k0, k1, mp, width, adt):
    """``a[:, k0:k1]`` packed for :func:`_gemm` (``a`` itself when it already is)."""
    if a.dtype == adt and a.shape == (mp, width) and k0 == 0:
        return a
    return _pack_a(a, k0, k1, mp, width, adt)


def _run(a, b, pair_max: int, saturate_pairs: bool) -> np.ndarray:
    (m, k), n = a.shape, b.shape[1]
    group, chunk, panels, adt = _packed_b(b, pair_max, saturate_pairs)
    mp = m + (-m) % MR
    total = None
    for k0, bp in zip(range(0, k, chunk), panels):
        k1 = min(k0 + chunk, k)
        out = _product(_packed_a(a, k0, k1, mp, group * bp.shape[1], adt), bp, m, n, m * n * (k1 - k0) >= _PARALLEL_MACS)
        if total is None:
            total = out.astype(np.int64)
        else:
            total += out
    return np.zeros((m, n), np.int64) if total is None else total


#: the longest K :func:`requant_product` takes: one chunk of exact int32 sums of 8-bit x 8-bit
#: pairs (``(2**31 - 1) // (2 * 255 * 255)`` pairs, whole KC blocks of them)
MAX_K_FUSED = ((2**31 - 1) // (2 * 255 * 255)) // KC * KC * 2


def requant_product(a, b, saturate_pairs: bool, col, row, mult, zp, lo: int, hi: int) -> np.ndarray:
    """8-bit codes ``requant(a @ b + col + row)``, the requantization done in the registers of
    the GEMM's last K block (no array of accumulators): ``y[i, j] = zp[j] + rint(clamp(
    float32(s[i, j]) * mult[j], lo - zp[j], hi - zp[j]))``, half to even, with ``s`` the int32
    sum of the product (:func:`maddubs`'s saturated pairs if ``saturate_pairs``, else the exact
    :func:`madd16` product) plus ``col[j] + row[i]``: onnxruntime's ``MlasRequantizeOutput``
    (:func:`hwsim.kernels.requant._requant_ort`) without its int64 input.

    ``a`` (M, K) and ``b`` (K, N) 8-bit (uint8 x int8 with ``saturate_pairs``; ``b`` in any
    layout, a transposed weight ``w.T`` is packed from ``w`` without a copy), K within one
    chunk (K <= :data:`MAX_K_FUSED`); ``col`` (N,), ``row`` (M,) or None, int32 values; ``mult`` (N,) float32;
    ``zp`` (N,) int; [lo, hi] within uint8 or int8 (the output type). The caller bounds
    ``|s|`` below 2**31 (it is not checked here). Returns (M, N) codes, a view of a padded
    array when N is not a multiple of 16. Requires :func:`available`.
    """
    (m, k), n = a.shape, b.shape[1]
    dt = np.uint8 if lo >= 0 and hi <= 255 else np.int8
    if not (np.iinfo(dt).min <= lo <= hi <= np.iinfo(dt).max) or a.dtype.itemsize != 1 or b.dtype.itemsize != 1:
        raise ValueError("requant_product takes 8-bit operands and an 8-bit output range")
    group, chunk, panels, adt = _packed_b(b, 32768 if saturate_pairs else 2 * 255 * 255, saturate_pairs)
    if not 0 < k <= MAX_K_FUSED:
        raise ValueError(f"requant_product needs 0 < K <= {MAX_K_FUSED}, got {k}")
    (bp,) = panels
    mp, np_ = m + (-m) % MR, NR * bp.shape[0]
    ap = _packed_a(np.ascontiguousarray(a), 0, k, mp, group * bp.shape[1], adt)

    def per_col(v, dtype):
        out = np.zeros(np_, dtype)
        out[:n] = v
        return out

    zp32 = per_col(zp, np.int32)
    rows = np.zeros(mp, np.int32)
    if row is not None:
        rows[:m] = row
    codes = np.empty((mp, np_), dt)
    epi = (codes, per_col(col, np.int32), rows, per_col(mult, np.float32),
           (lo - zp32).astype(np.float32), (hi - zp32).astype(np.float32), zp32)
    scratch = np.empty((mp, np_) if bp.shape[1] > KC else (1, 1), np.int32)  # partial sums between K blocks
    kernel, split = pick(_gemm, _gemm_1, m * n * k)
    kernel(ap, bp, scratch, epi, *split)
    return codes[:m, :n]


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
    a, b = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32)
    (m, k), n = a.shape, b.shape[1]
    if k == 0:
        return np.zeros((m, n), np.float32)
    ap = _packed_a(a, 0, k, m + (-m) % MR, k, np.dtype(np.float32))
    out = np.empty((ap.shape[0], NR * -(-n // NR)), np.float32)
    kernel, split = pick(_gemm_f32, _gemm_f32_1, m * n * k)
    kernel(ap, b, out, *split)
    return out[:m, :n]
