"""8-bit integer GEMM on the x86 multiply-add instructions onnxruntime's MLAS kernels use (AVX2,
and AVX-512 VNNI where the host has it).

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

On a host with AVX-512 F/BW and VNNI (:func:`wide`) the exact products run on the ZMM tiles
instead, same results: 8-bit x 8-bit on VPDPBUSD (uint8 quads times int8 quads, four exact
products into an int32 lane; int8 A is multiplied as ``a + 128`` and uint8 B as ``b - 128``, the
difference taken back with row sums of A and column sums of the packed B, in int64 or, under the
requantization, in wrapping int32 whose final sum fits), wider int16 operands on VPDPWSSD, and
:func:`seq_fp32` on 16-lane FMAs. ``maddubs`` models VPMADDUBSW's saturation (x86 without VNNI)
whatever the host; there it runs VPMADDUBSW on zmm registers, the pairs added by VPDPWSSD by ones.

The AVX2 micro-kernel keeps a 4-row x 16-column tile in eight 8-lane int32 registers over a block
of K (the ZMM one 8 rows x 32 columns in sixteen 16-lane registers; B packed in panels of 16
columns, pairs or quads of k interleaved per column; A rows read as one int32 per pair or quad
and broadcast); blocks of A stay in L2 while they meet every panel of a
work item (see ``KC``), and the threads take work items from an atomic counter. A constant B
(a weight) is packed once: :mod:`hwsim.kernels.packcache` keeps the panels, found by content. The
tile is LLVM IR (:mod:`hwsim.kernels.tileir`). :func:`requant_product` requantizes the last K
block's registers straight into 8-bit codes (onnxruntime's requantization in the GEMM epilogue).
Available when the host has AVX2 and numba JIT is on (:func:`available`); callers fall back to the
float32 BLAS path of :mod:`hwsim.kernels.intgemm` otherwise. Plain-numpy references:
tests/kernels/reference.py.
"""

import functools
from types import FunctionType
from typing import NamedTuple

import numba
import numpy as np
from llvmlite import binding as _llvm
from numba import njit, prange

from hwsim.kernels import amxint8, packcache
from hwsim.kernels.canon import readonly
from hwsim.kernels.codesums import k_sums
from hwsim.kernels.tileir import MR, MRW, NR, ZMM, _tile, _tile_rq, _wstile, _wstile_rq, _wtile, _wtile_rq
from hwsim.kernels.workqueue import PARALLEL_MIN, claim, pick, serial


@functools.lru_cache(maxsize=1)
def _host_avx2() -> bool:
    return bool(_llvm.get_host_cpu_features().get("avx2", False))


@functools.lru_cache(maxsize=1)
def _host_vnni() -> bool:
    features = _llvm.get_host_cpu_features()
    return all(features.get(f, False) for f in ("avx512f", "avx512bw", "avx512vnni"))


def available() -> bool:
    """True when the AVX2 kernels can run here (host CPU with AVX2, numba JIT on, host target)."""
    cpu = numba.config.CPU_NAME
    return not numba.config.DISABLE_JIT and (cpu is None or cpu == "host") and _host_avx2()


def wide() -> bool:
    """True when the AVX-512 tiles (:data:`~hwsim.kernels.tileir.ZMM`: VPDPBUSD, VPDPWSSD, 16-lane
    FMA) run here: :func:`available` on a host with AVX-512 F/BW and VNNI. Every kernel here takes
    them then, and the AVX2 tiles otherwise, with the same results (tests switch this off to
    cover both routes on one host). The saturating "maddubs" pairs model x86 without VNNI
    whatever the host: here they run as VPMADDUBSW on zmm registers, saturated the same way.
    False where NUMBA_CPU_FEATURES names the features numba compiles for (they may lack these)."""
    return available() and not numba.config.CPU_FEATURES and _host_vnni()


# Blocking (Goto-style): a work item is a block of up to _ITEM_PANELS panels x _ITEM_TILES row
# tiles; within it, for each block of KC pairs/quads of k, each block of _L2_TILES row tiles of A
# (128 KiB at KC=256, kept in L2) meets every panel of the item (a B block of 8 KiB for 8-bit
# panels, 16 KiB for int16, kept in L1).
KC = 256
_L2_TILES, _ITEM_PANELS, _ITEM_TILES = 32, 8, 128
_TILE_PANELS = 1  # panels one tile covers (AVX2; the ZMM variants below: 2)


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
                    for p in range(p0, p1, _TILE_PANELS):
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
                    for p in range(0, p1 - p0, _TILE_PANELS):
                        for ib in range(m0, min(m0 + _L2_TILES, t1)):
                            _tile(av, buf, ov, np.int64(ib * MR), np.int64(p), np.int64(0), kb, fresh)


def _variant(kernel, name, **names):
    """A copy of the compiled ``kernel`` (same code and options, cached on disk) named ``name``
    whose global ``names`` are replaced (numba's cache is keyed by name and code, so each variant has its own
    name): the drivers above for the ZMM tile, without a second copy of their loops."""
    f = getattr(kernel, "py_func", kernel)  # the function itself under NUMBA_DISABLE_JIT=1
    twin = FunctionType(f.__code__.replace(co_name=name, co_qualname=name), {**f.__globals__, **names}, name,
                        f.__defaults__, f.__closure__)
    twin.__qualname__, twin.__doc__ = name, f.__doc__
    # cache=True is not among the kernel's target options: without it here each process compiled
    # the threaded ZMM drivers again at their first threaded call (1.4-2.7 s; a 2.7 s MobileNetV2
    # run in 12, 2026-11-27)
    options = {k: v for k, v in getattr(kernel, "targetoptions", {}).items() if k != "nopython"}
    return njit(cache=True, **options)(twin)


# the drivers for the AVX-512 tile (8 rows x 2 panels): the same blocks of A (128 rows in L2, 512 a
# work item) and of B; panels come in pairs (packed to an even count). Compiled only where called.
_ZMM_NAMES = {"MR": MRW, "_ITEM_TILES": _ITEM_TILES * MR // MRW, "_L2_TILES": _L2_TILES * MR // MRW,
              "_TILE_PANELS": ZMM.panels, "_tile": _wtile, "_tile_rq": _wtile_rq}
_item_grid_w = _variant(_item_grid, "_item_grid_w", **_ZMM_NAMES)
_gemm_w = _variant(_gemm, "_gemm_w", _item_grid=_item_grid_w, **_ZMM_NAMES)
_gemm_ws = _variant(_gemm, "_gemm_ws", _item_grid=_item_grid_w,  # the saturating pairs on zmm
                    **{**_ZMM_NAMES, "_tile": _wstile, "_tile_rq": _wstile_rq})
# float32: work items of 32 panels, so that packing reads 2 KiB of each row of ``b`` at a time instead
# of 512 bytes (one thread, 512x4096x4096 at load 2: 147 ms against 167 ms with 8 panels, 154 with
# 16; the 512 KiB buffer stays in L2)
_ZMM_F32 = {**_ZMM_NAMES, "_ITEM_PANELS": 32}
_gemm_f32_w = _variant(_gemm_f32, "_gemm_f32_w", _item_grid=_variant(_item_grid, "_item_grid_f32_w", **_ZMM_F32),
                       **_ZMM_F32)

# the same kernels without threads, for small products: a parallel region costs milliseconds when
# other processes hold the cores
_gemm_1, _gemm_f32_1, _gemm_w_1, _gemm_ws_1, _gemm_f32_w_1 = (serial(f) for f in (_gemm, _gemm_f32, _gemm_w, _gemm_ws,
                                                                                   _gemm_f32_w))
_PARALLEL_MACS = PARALLEL_MIN


def _panels(b, group, chunk, dtype, trans=False, even=False):
    """B packed for :func:`_gemm`, B = ``b`` (K, N) or ``b.T`` with ``trans``: one array of panels
    (P, Kq, group*NR) of ``dtype`` per chunk of ``chunk`` rows of k (P even with ``even``, a zero
    panel last where N needs an odd count). ``b``'s values fit ``dtype`` (the caller checks); it is
    converted first where its type differs."""
    b = np.ascontiguousarray(b, dtype)
    k, n = b.shape[::-1] if trans else b.shape
    raw, size, out = readonly(b.view(np.uint8)), b.dtype.itemsize, []
    if size not in (1, 2):
        raise ValueError(f"_panels packs 8- and 16-bit elements, not {b.dtype}")
    npan = -(-n // NR)
    for k0 in range(0, k, chunk):
        k1 = min(k0 + chunk, k)
        bp = np.zeros((npan + (npan % 2 if even else 0), -(-(k1 - k0) // group), group * NR), dtype)
        _pack_b(raw, trans, k0, k1, group, size, bp.view(np.uint8))
        out.append(bp)
    return out


def _pack_a(a, k0, k1, rows, width, dtype, flip=False):
    """``a[:, k0:k1]`` as ``dtype`` in (rows, width), the rest 0: one numpy casting copy
    (values already fit ``dtype``; the caller checks); with ``flip`` int8 ``a`` as ``a + 128``
    (its bits with the top one flipped) in uint8. A numba parallel pass took 8 ms here for
    512 x 4096 (waking the threads), numpy's copy 0.3 ms."""
    out = np.empty((rows, width), dtype)  # only the padding is zeroed (np.zeros wrote all of it first)
    m, k = a.shape[0], k1 - k0
    out[m:] = 0
    out[:m, k:] = 0
    if flip:
        np.bitwise_xor(a[:, k0:k1].view(np.uint8), np.uint8(0x80), out=out[:m, :k])
    else:
        out[:m, :k] = a[:, k0:k1]
    return out


def _product(ap, bp, m, n, par, pk):
    """int32 (m, n) view of packed ``ap`` times panels ``bp`` by :func:`_gemm`; on a ZMM route
    (``pk``: :class:`Packed`) by its ZMM variant, int64 (each block of K summed exactly in int32,
    then added in int64: no chunks of K needed)."""
    out = np.empty((ap.shape[0], NR * bp.shape[0]), np.int64 if pk.zmm else np.int32)
    if bp.shape[1] == 0:
        out[:] = 0
        return out[:m, :n]
    kernel, split = pick(*pk.drivers, PARALLEL_MIN if par else 0)
    kernel(ap, bp, out, None, *split)
    return out[:m, :n]


class Packed(NamedTuple):
    """B packed for one route (:func:`_packed_b`), and how A must be packed to meet it."""
    route: str  # "maddubs", "madd" (AVX2 tiles), "dpbusd", "dpwssd", "maddubs-zmm" (ZMM tiles)
    group: int  # k per step of a tile
    chunk: int  # k per chunk: each chunk's int32 sums are exact
    panels: list  # one (P, Kq, group*NR) array per chunk
    adt: np.dtype  # packed A's element type
    rows: int  # A's rows padded to a multiple of this (the tile's rows)
    shift_a: int  # packed A = a + shift_a (int8 A to uint8 for VPDPBUSD)
    shift_b: int  # packed B = b + shift_b (uint8 B to int8 for VPDPBUSD)
    colsums: list | None  # per chunk, the column sums of packed B (NR*P,) int64 (route "dpbusd")

    @property
    def zmm(self) -> bool:
        return self.route in ("dpbusd", "dpwssd", "maddubs-zmm")

    @property
    def drivers(self):
        """(threaded, serial) :func:`_gemm` of the route's tile."""
        if self.route == "maddubs-zmm":
            return _gemm_ws, _gemm_ws_1
        return (_gemm_w, _gemm_w_1) if self.zmm else (_gemm, _gemm_1)


def _route(a_dtype, b_dtype, saturate_pairs: bool) -> str:
    """The arithmetic and the tile of a product: the saturating pairs model x86 without VNNI
    whatever the host (on zmm registers where the host has them: the same pairs, saturated the
    same way); exact sums on VPDPBUSD / VPDPWSSD where the host has AVX-512 VNNI."""
    if saturate_pairs:
        return "maddubs-zmm" if wide() else "maddubs"
    if not wide():
        return "madd"
    return "dpbusd" if a_dtype.itemsize == 1 and b_dtype.itemsize == 1 else "dpwssd"


def _pack_b_quads(bb, chunk, flip, trans):
    """:func:`_panels` of 8-bit ``bb`` in quads of int8 for VPDPBUSD (uint8 ``bb`` as ``bb - 128``
    with ``flip``), panels even, and each chunk's column sums after them."""
    panels = _panels(np.bitwise_xor(bb, np.uint8(0x80)).view(np.int8) if flip else bb, 4, chunk, np.int8, trans, True)
    starts = range(0, bb.shape[1 if trans else 0], chunk)
    return panels + [_column_sums(bb, k0, chunk, flip, trans, NR * p.shape[0]) for k0, p in zip(starts, panels)]


def _column_sums(bb, k0, chunk, flip, trans, width):
    """int64 (width,) sums over rows k0..k0+chunk of packed B (``bb``, or ``bb.T`` with ``trans``;
    uint8 ``bb`` packed as ``bb - 128`` with ``flip``) for each column, 0 for the padding columns:
    from ``bb`` itself, 10x faster than summing the quad panels (4.1-5.3 ms for a 384 x 1536 int8
    weight here, which solve packs anew for every choice of a layer)."""
    part = bb[:, k0:k0 + chunk] if trans else bb[k0:k0 + chunk]
    col = part.sum(1 if trans else 0, dtype=np.int64)
    if flip:
        col -= 128 * part.shape[1 if trans else 0]
    out = np.zeros(width, np.int64)
    out[:col.size] = col
    return out


def _layout(a_dtype, b_dtype, k: int, pair_max: int, saturate_pairs: bool) -> tuple[Packed, np.dtype, bool]:
    """(a :class:`Packed` without its panels and column sums, the panels' element type, whether the
    panel count is even) of a (K, N) B of ``b_dtype`` for a product by an ``a_dtype`` A: the route
    (:func:`_route`), k in groups of ``group``, chunks of ``chunk`` k whose int32 sums are exact
    (:func:`fits`; VPDPBUSD: |packed a * packed b| <= 255 * 128; one chunk on the ZMM routes, which
    add each block's int32 sums into int64), and how A is packed to meet it."""
    a_dtype, b_dtype = np.dtype(a_dtype), np.dtype(b_dtype)
    route = _route(a_dtype, b_dtype, saturate_pairs)
    if route == "dpbusd":  # uint8 B as B - 128 in int8, int8 A as A + 128 in uint8
        shift_a, shift_b = (128 if a_dtype == np.int8 else 0), (-128 if b_dtype == np.uint8 else 0)
        return Packed(route, 4, max(k, 1), [], np.dtype(np.uint8), MRW, shift_a, shift_b, []), np.dtype(np.int8), True
    group = 4 if saturate_pairs else 2
    even = route in ("dpwssd", "maddubs-zmm")
    chunk = max(k, 1) if even else ((2**31 - 1) // max(pair_max, 1)) // KC * KC * 2  # k per chunk: int32 sums exact
    bdt = np.dtype(np.int8 if saturate_pairs else (b_dtype if b_dtype.itemsize == 1 else np.int16))
    return (Packed(route, group, chunk, [], np.dtype(np.uint8 if saturate_pairs else np.int16), MRW if even else MR,
                   0, 0, None), bdt, even)


def _packed_b(b, a_dtype, pair_max: int, saturate_pairs: bool) -> Packed:
    """:class:`Packed` ``b`` for a product by an ``a_dtype`` A (:func:`_layout`), one array of panels
    per chunk, kept by :mod:`hwsim.kernels.packcache` (with the column sums of packed B on the
    "dpbusd" route)."""
    pk, bdt, even = _layout(a_dtype, b.dtype, b.shape[0], pair_max, saturate_pairs)
    trans = b.flags.f_contiguous and not b.flags.c_contiguous  # a transposed weight (w.T): keyed by w itself, no copy
    src = b.T if trans else np.ascontiguousarray(b)
    if pk.route == "dpbusd":
        # the column sums are kept with the panels whatever A is: a uint8 A's zero point takes them
        # too (:func:`requant_product`), found with the panels by one comparison of b's bytes
        packed = packcache.packed(src, ("simdgemm", pk.route, pk.chunk, trans, True),
                                  lambda bb: _pack_b_quads(bb, pk.chunk, bool(pk.shift_b), trans))
        nch = len(packed) // 2
        return pk._replace(panels=packed[:nch], colsums=packed[nch:])
    panels = packcache.packed(src, ("simdgemm", pk.group, pk.chunk, bdt.str, trans, even),
                              lambda bb: _panels(bb, pk.group, pk.chunk, bdt, trans, even))
    return pk._replace(panels=panels)


def _packed_a(a, k0, k1, mp, width, pk: Packed):
    """``a[:, k0:k1]`` packed for :func:`_gemm` (``a`` itself when it already is; uint16 ``a``
    read as int16, its values below 2**15 as :func:`fits` requires)."""
    if a.dtype.itemsize == pk.adt.itemsize and a.dtype.kind in "iu" and a.shape == (mp, width) and k0 == 0 \
            and not pk.shift_a:
        return a.view(pk.adt)
    return _pack_a(a, k0, k1, mp, width, pk.adt, flip=pk.shift_a != 0)


def _shift_terms(a, k0, k1, pk: Packed, ci: int):
    """(row term (M, 1) or 0, column term (N,) or 0) that take chunk ``ci`` (k0..k1) of the packed
    product back to ``a @ b``: with a' = a + sa, b' = b + sb, sum a b = sum a' b' - sb rowsum(a')
    - sa colsum(b') + K sa sb."""
    sa, sb, kc = pk.shift_a, pk.shift_b, k1 - k0
    row = 0 if not sb else -sb * (a[:, k0:k1].sum(1, dtype=np.int64) + sa * kc)[:, None]
    col = 0 if not sa else -sa * pk.colsums[ci] + kc * sa * sb
    return row, col


def _run(a, b, pair_max: int, saturate_pairs: bool) -> np.ndarray:
    (m, k), n = a.shape, b.shape[1]
    pk = _packed_b(b, a.dtype, pair_max, saturate_pairs)
    mp = m + (-m) % pk.rows
    total = np.zeros((m, n), np.int64) if not pk.zmm or k == 0 else None
    for ci, (k0, bp) in enumerate(zip(range(0, k, pk.chunk), pk.panels)):
        k1 = min(k0 + pk.chunk, k)
        part = _product(_packed_a(a, k0, k1, mp, pk.group * bp.shape[1], pk), bp, m, n,
                        m * n * (k1 - k0) >= _PARALLEL_MACS, pk)
        if pk.zmm:  # the only chunk, int64 already
            total = np.ascontiguousarray(part)
        else:
            total += part
        row, col = _shift_terms(a, k0, k1, pk, ci)
        total += row
        total += col[:n] if pk.shift_a else 0
    return total


#: the longest K :func:`requant_product` takes: one chunk of exact int32 sums of 8-bit x 8-bit
#: pairs (``(2**31 - 1) // (2 * 255 * 255)`` pairs, whole KC blocks of them)
MAX_K_FUSED = ((2**31 - 1) // (2 * 255 * 255)) // KC * KC * 2


def requant_product(a, b, saturate_pairs: bool, col, row, mult, zp, lo: int, hi: int,
                    a_zero_point: int = 0) -> np.ndarray:
    """8-bit codes ``requant(a @ b + col + row)``, the requantization done in the registers of
    the GEMM's last K block (no array of accumulators): ``y[i, j] = zp[j] + rint(clamp(
    float32(s[i, j]) * mult[j], lo - zp[j], hi - zp[j]))``, half to even, with ``s`` the int32
    sum of the product (:func:`maddubs`'s saturated pairs if ``saturate_pairs``, else the exact
    :func:`madd16` product) plus ``col[j] + row[i]``: onnxruntime's ``MlasRequantizeOutput``
    (:func:`hwsim.kernels.requant._requant_ort`) without its int64 input.

    ``a`` (M, K) and ``b`` (K, N) 8-bit (uint8 x int8 with ``saturate_pairs``; ``b`` in any
    layout, a transposed weight ``w.T`` is packed from ``w`` without a copy), K within one
    chunk (K <= :data:`MAX_K_FUSED`); ``col`` (N,), ``row`` (M,) or None, int32 values; ``mult`` (N,) float32;
    ``zp`` (N,) int; [lo, hi] within uint8 or int8 (the output type). ``a_zero_point``: ``col``
    less ``a_zero_point`` times ``b``'s column sums (those kept with the packed weight on the
    "dpbusd" route, no pass over ``b``; else :func:`hwsim.kernels.codesums.k_sums`) is the column term. The caller bounds ``|s|`` below 2**31 (it is
    not checked here). Returns (M, N) codes, a view of a padded
    array when N is not a multiple of 16. Requires :func:`available`.
    """
    col = None if col is None else np.reshape(col, (1, -1))
    row = None if row is None else np.reshape(row, (1, -1))
    return requant_product_stack(a[None], b[None], saturate_pairs, col, row, mult, zp, lo, hi, a_zero_point, True)[0]


def requant_product_stack(a, b, saturate_pairs: bool, col, row, mult, zp, lo: int, hi: int,
                          a_zero_point: int = 0, keep: bool = False) -> np.ndarray:
    """:func:`requant_product` of each matrix of stacks ``a`` (B, M, K) and ``b`` (B, K, N)
    (attention's per-head products), ``col`` (B, N) or None and ``row`` (B, M) or None per matrix,
    ``mult``, ``zp`` and the range shared: (B, M, N) codes (contiguous; for one matrix a view of
    the padded codes, as :func:`requant_product` returns them). The checks,
    the packing of A and B and the epilogue's terms are made once for the whole stack (numpy
    passes over it: a per-matrix product spent ~80 us per head on them for BERT's 128 x 64 x 128,
    against ~10 us in the kernel); only the kernel runs per matrix. Without ``keep`` B is packed
    anew (an activation: one head's K^T or V); with it each ``b[i]`` is found in or kept by
    :mod:`hwsim.kernels.packcache`, as a weight is."""
    (nb, m, k), n = a.shape, b.shape[2]
    dt = np.uint8 if lo >= 0 and hi <= 255 else np.int8
    if not (_LIMITS[dt][0] <= lo <= hi <= _LIMITS[dt][1]) or a.dtype.itemsize != 1 or b.dtype.itemsize != 1:
        raise ValueError("requant_product takes 8-bit operands and an 8-bit output range")
    if not 0 < k <= MAX_K_FUSED:
        raise ValueError(f"requant_product needs 0 < K <= {MAX_K_FUSED}, got {k}")
    pair_max = 32768 if saturate_pairs else 2 * 255 * 255
    if keep:  # one weight broadcast over the stack (stride 0): packed, or found, once
        packs = [_packed_b(b[0], a.dtype, pair_max, saturate_pairs)] * nb if b.strides[0] == 0 and nb else \
            [_packed_b(b[i], a.dtype, pair_max, saturate_pairs) for i in range(nb)]
        pk, panels = packs[0], [p.panels[0] for p in packs]
        sums = np.stack([p.colsums[0] for p in packs]) if pk.colsums is not None else None
    else:
        pk, panels, sums = _stack_packed_b(b, a.dtype, pair_max, saturate_pairs)
    npan, kq = panels[0].shape[:2]
    amx = pk.route == "dpbusd" and amxint8.applies(kq, npan, m * n * k)  # the same sums on AMX-INT8 tiles
    mp, np_ = m + (-m) % (32 if amx else pk.rows), NR * npan
    if amx:
        ap = amxint8.operand(a, mp, pk.group * kq, bool(pk.shift_a))
    elif nb == 1:  # one matrix: a itself where it is packed already (a large conv's patches are not copied)
        ap = _packed_a(np.ascontiguousarray(a[0]), 0, k, mp, pk.group * kq, pk)[None]
    else:
        ap = np.zeros((nb, mp, pk.group * kq), pk.adt)
        if pk.shift_a:
            np.bitwise_xor(a.view(np.uint8), np.uint8(0x80), out=ap[:, :m, :k].view(np.uint8))
        else:
            ap[:, :m, :k] = a
    rows, cols = _stack_terms(a, b, col, row, pk, sums, a_zero_point, mp, np_)
    zp32 = _per_col(zp, n, np_, np.int32)
    shared = (_per_col(mult, n, np_, np.float32), (lo - zp32).astype(np.float32), (hi - zp32).astype(np.float32), zp32)
    codes = np.empty((nb, mp, np_), dt)
    scratch = np.empty((mp, np_) if kq > KC and not amx else (1, 1), np.int32)  # partial sums between K blocks
    for i in range(nb):
        if amx:
            amxint8.requant_gemm(ap[i], panels[i], (codes[i], cols[i], rows[i]) + shared, m * n * k)
            continue
        kernel, split = pick(*pk.drivers, m * n * k)
        kernel(ap[i], panels[i], scratch, (codes[i], cols[i], rows[i]) + shared, *split)
    return codes[:, :m, :n] if nb == 1 else np.ascontiguousarray(codes[:, :m, :n])


def _stack_terms(a, b, col, row, pk: Packed, sums, a_zero_point: int, mp: int, np_: int):
    """(row terms (B, mp), column terms (B, np_)), int32 wrapped, of the products of stacks ``a``
    (B, M, K) and ``b`` (B, K, N) packed as ``pk``: the caller's ``row`` (B, M) and ``col`` (B, N)
    (or None), less ``shift_b`` times the row sums of packed A, ``shift_a`` times the column sums
    of packed B (``sums``, (B, np_), or None) plus ``K shift_a shift_b``, and ``a_zero_point`` times
    the column sums of ``b``. The int32 sums wrap, and the whole sum fits int32 (the caller's
    bound), so the terms are wrapped too."""
    (nb, m, k), n = a.shape, b.shape[2]
    sa, sb = pk.shift_a, pk.shift_b
    rows = np.zeros((nb, mp), np.int32)
    if row is not None or sb:
        r = np.zeros((nb, m), np.int64) if row is None else np.array(row, np.int64).reshape(nb, m)
        if sb:
            r -= sb * (a.sum(2, dtype=np.int64) + sa * k)
        rows[:, :m] = _wrap32(r)
    cols = np.zeros((nb, np_), np.int64)
    if col is not None:
        cols[:, :n] = col
    if sums is not None:
        if sa:
            cols -= sa * sums
            cols += k * sa * sb
        if a_zero_point:
            cols[:, :n] -= a_zero_point * (sums[:, :n] - sb * k)
    elif a_zero_point:
        cols[:, :n] -= a_zero_point * k_sums(b)
    return rows, _wrap32(cols).astype(np.int32)


def _stack_packed_b(b, a_dtype, pair_max: int, saturate_pairs: bool):
    """(a :class:`Packed` of the route without its panels (:func:`_layout`), panels (B, P, Kq,
    group*NR), column sums of packed B (B, NR*P) or None) of each matrix of ``b`` (B, K, N), 8-bit,
    K within one chunk: the panels :func:`_packed_b` makes for each matrix (:func:`_panels`:
    ``[i, p, q, group*c + h]`` is ``b[i, group*q + h, NR*p + c]``, zeros outside ``b``), made by
    :func:`_pack_b` matrix by matrix, not kept."""
    k, n = b.shape[1:]
    pk, bdt, even = _layout(a_dtype, b.dtype, k, pair_max, saturate_pairs)
    flip = pk.shift_b != 0
    npan = -(-n // NR)
    npan += npan % 2 if even else 0
    panels = np.zeros((b.shape[0], npan, -(-k // pk.group), pk.group * NR), bdt)
    src = np.bitwise_xor(b, np.uint8(0x80)) if flip else b  # uint8 B as B - 128 in int8: the top bit flipped
    for i in range(b.shape[0]):
        bi = src[i]
        trans = bi.flags.f_contiguous and not bi.flags.c_contiguous  # K^T: a view of (N, K) memory
        raw = readonly((bi.T if trans else np.ascontiguousarray(bi)).view(np.uint8))
        _pack_b(raw, trans, 0, k, pk.group, 1, panels[i].view(np.uint8))
    sums = None
    if pk.colsums is not None:  # the "dpbusd" route keeps them with its panels
        sums = np.zeros((b.shape[0], npan * NR), np.int64)
        sums[:, :n] = k_sums(b) + pk.shift_b * k
    return pk, panels, sums


#: (min, max) of the two 8-bit output types
_LIMITS = {np.uint8: (0, 255), np.int8: (-128, 127)}


def _per_col(v, n: int, width: int, dtype) -> np.ndarray:
    """``v`` (a scalar or (n,)) in the first ``n`` of ``width`` entries of ``dtype``, zeros after."""
    out = np.zeros(width, dtype)
    out[:n] = v
    return out


def _wrap32(v) -> np.ndarray:
    """int64 values wrapped to int32's range (as int64)."""
    return (np.asarray(v, np.int64) + 2**31) % 2**32 - 2**31


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
    zmm, npan = wide(), -(-n // NR)
    rows = MRW if zmm else MR
    if a.shape[0] % rows:
        a = _pack_a(a, 0, k, a.shape[0] + (-a.shape[0]) % rows, k, np.float32)
    out = np.empty((a.shape[0], NR * (npan + npan % 2 if zmm else npan)), np.float32)
    kernel, split = pick(*((_gemm_f32_w, _gemm_f32_w_1) if zmm else (_gemm_f32, _gemm_f32_1)), m * n * k)
    kernel(a, b, out, *split)
    return out[:m, :n]
