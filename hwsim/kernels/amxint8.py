"""uint8 x int8 GEMMs with onnxruntime's requantization in the epilogue, on Intel AMX-INT8 tiles.

The exact 8-bit route of :func:`hwsim.kernels.simdgemm.requant_product_stack` ("dpbusd": uint8 A,
int8 B, every product exact, int32 sums) on TDPBUSD where the host has AMX-INT8, with the same
operands and the same values:

* B is the route's packed weight as it is, one panel of 16 columns per tile: a panel's rows are
  quads of k, each 64 bytes (16 columns x 4 k), which is a TDPBUSD B tile row, so the 16 rows of
  one step of 64 k are one 1 KiB tile at stride 64 (:func:`applies`: the quads a multiple of 16,
  K padded by the packing to a multiple of 64).
* A is the packed uint8 A (int8 codes flipped to ``a + 128``, as for VPDPBUSD), rows padded to a
  multiple of 32 and starting on 64-byte boundaries (:func:`operand`).
* Four C tiles hold 32 rows x 32 columns of int32 sums (tiles 0-3; A rows i and i + 16 in tiles
  4, 5; panels j and j + 1 in tiles 6, 7); TDPBUSD adds each quad's four exact products into an
  int32 lane, and the int32 adds wrap, as VPDPBUSD's do. Every sum is an integer, so the order of
  the additions cannot change it: the result is the VNNI tiles' result whenever the final sum
  fits int32, which :func:`~hwsim.kernels.simdgemm.requant_product` requires of its caller.
* After the last step the tiles are stored to a 32 x 32 int32 block and requantized as
  ``MlasRequantizeOutput`` (:func:`_epilogue`, the formula of
  :func:`hwsim.kernels.tileir._requant_regs`): ``float32(acc + col[j] + row[i])`` (int32 adds,
  wrapping) times ``mult[j]``, clamped to ``[fmin[j], fmax[j]]``, rounded half-even, plus ``zp[j]``.

Work items are a block of 32 columns times a group of row blocks, claimed from a counter by the
threads (:mod:`hwsim.kernels.workqueue`); each thread loads the tile configuration of
:mod:`hwsim.kernels.amxgemm` (eight tiles of 16 rows x 64 bytes) and releases the tiles at its end.

Used only where it runs (:func:`available`): AMX-TILE and AMX-INT8 on the host, granted to the
process (:func:`hwsim.kernels.amxgemm._granted`), numba's JIT on and compiling for the host.
Tests switch it off by patching :func:`_host_amx_int8`; they compare it with the plain-numpy
oracles of tests/kernels/reference.py and with the VNNI tiles.
"""

import functools

import numba
import numpy as np
from llvmlite import binding as _llvm
from numba import njit, prange

from hwsim.kernels import amxgemm
from hwsim.kernels.amxgemm import (_CFG, _lda0, _lda1, _ldb0, _ldb1, _ldtilecfg, _stc0, _stc1, _stc2, _stc3,
                                   _tileop, _tilerelease, _zc0, _zc1, _zc2, _zc3)
from hwsim.kernels.workqueue import claim, pick, serial

#: row blocks (32 rows each) per work item: a group's rows of A stay in L2 while a block of 32
#: columns passes over them
_GROUP = 8
#: fewest multiply-adds worth the tiles (below, the VNNI tiles' ~10 us per call is less than the
#: padding and the per-thread tile configuration)
MIN_MACS = 1 << 18

_dp00, _dp01, _dp10, _dp11 = (_tileop("llvm.x86.tdpbusd", c, a, b) for c, a, b in
                              ((0, 4, 6), (1, 4, 7), (2, 5, 6), (3, 5, 7)))


@functools.lru_cache(maxsize=1)
def _host_amx_int8() -> bool:
    """The host CPU has AMX-TILE and AMX-INT8 and this process may use the tiles."""
    features = _llvm.get_host_cpu_features()
    return all(features.get(f, False) for f in ("amx-tile", "amx-int8")) and amxgemm._granted()


def available() -> bool:
    """True when the tiles run here (module docstring)."""
    cpu = numba.config.CPU_NAME
    return (not numba.config.DISABLE_JIT and (cpu is None or cpu == "host") and not numba.config.CPU_FEATURES
            and _host_amx_int8())


def applies(kq: int, panels: int, macs: int) -> bool:
    """True for a product whose packed B has ``kq`` quads of k per panel (a multiple of 16: whole
    64-k tile steps), an even number of ``panels`` (blocks of 32 columns), and at least
    :data:`MIN_MACS` multiply-adds, on a host where :func:`available`."""
    return kq > 0 and kq % 16 == 0 and panels % 2 == 0 and macs >= MIN_MACS and available()


def operand(a: np.ndarray, rows: int, width: int, flip: bool) -> np.ndarray:
    """``a`` (B, M, K) 8-bit as the tiles' A: (B, rows, width) uint8 starting on a 64-byte boundary
    (a tile load of rows that straddle cache lines takes ~6x as long), ``a`` (``a + 128`` when
    ``flip``: int8 codes read as uint8) in the top-left corner, zeros elsewhere."""
    nb, m, k = a.shape
    out = amxgemm._aligned((nb, rows, width), np.uint8)
    out[:, m:] = 0
    out[:, :m, k:] = 0
    if flip:
        np.bitwise_xor(a.view(np.uint8), np.uint8(0x80), out=out[:, :m, :k])
    else:
        out[:, :m, :k] = a
    return out


@njit(cache=True, nogil=True, inline="always")
def _epilogue(acc, codes, i0, j0, colc, rowc, mult, fmin, fmax, zp):
    """Rows ``i0..i0+31``, columns ``j0..j0+31`` of ``codes`` from the int32 sums ``acc`` (32, 32):
    :func:`hwsim.kernels.tileir._requant_regs`' formula (module docstring). Unsigned indices and
    no branches, so that the columns vectorise (a scalar loop with signed indices cost 2.5 ns per
    element, five times the tiles' products for BERT's 128 x 768 x 768, 2026-11-28)."""
    ju = np.uint64(j0)
    for r in range(np.uint64(32)):
        row = np.uint64(i0) + r
        rv = rowc[row]
        for c in range(np.uint64(32)):
            j = ju + c
            v = np.int32(acc[r, c] + colc[j] + rv)  # int32 adds, wrapping
            f = min(max(np.float32(v) * mult[j], fmin[j]), fmax[j])
            codes[row, j] = np.int32(np.rint(f)) + zp[j]


@njit(cache=True, nogil=True, parallel=True)
def _gemm_rq(a, b, codes, colc, rowc, mult, fmin, fmax, zp, acc, cfg, counter, threads):
    """``codes`` (Mp, 16P) = requantized ``a`` (Mp, W) uint8 times the panels ``b`` (P, Kq, 64)
    int8 (module docstring), Mp a multiple of 32, P even, Kq = W / 4 a multiple of 16; ``colc``
    (16P,) and ``rowc`` (Mp,) int32 terms, ``mult``, ``fmin``, ``fmax`` (16P,) float32, ``zp``
    (16P,) int32; ``acc`` (threads, 1024) int32, each row on a 64-byte boundary (a thread's
    block of sums). ``threads`` workers claim the work items from ``counter``."""
    mp, w = a.shape
    kq = b.shape[1]
    steps, ncb, nrb = kq // 16, b.shape[0] // 2, mp // 32
    items = ncb * ((nrb + _GROUP - 1) // _GROUP)
    a1, b1 = a.reshape(-1), b.reshape(-1)
    for t in prange(threads):
        block = acc[t]
        sums = block.reshape(32, 32)
        _ldtilecfg(cfg)
        while True:
            it = claim(counter)
            if it >= items:
                break
            g, j = it // ncb, it % ncb
            b0 = 2 * j * kq * 64
            for ib in range(g * _GROUP, min(g * _GROUP + _GROUP, nrb)):
                _zc0()
                _zc1()
                _zc2()
                _zc3()
                ai = ib * 32 * w
                for s in range(steps):
                    _lda0(a1, ai + 64 * s, w)
                    _lda1(a1, ai + 16 * w + 64 * s, w)
                    _ldb0(b1, b0 + 1024 * s, 64)
                    _ldb1(b1, b0 + kq * 64 + 1024 * s, 64)
                    _dp00()
                    _dp01()
                    _dp10()
                    _dp11()
                _stc0(block, 0, 128)
                _stc1(block, 16, 128)
                _stc2(block, 512, 128)
                _stc3(block, 528, 128)
                _epilogue(sums, codes, ib * 32, j * 32, colc, rowc, mult, fmin, fmax, zp)
        _tilerelease()


_gemm_rq_1 = serial(_gemm_rq)


def requant_gemm(a: np.ndarray, panels: np.ndarray, epi: tuple, macs: int) -> None:
    """``epi[0]`` (the codes, (Mp, 16P)) = the requantized product of :func:`operand`'s ``a`` (Mp, W)
    and ``panels`` (P, Kq, 64) int8, ``epi`` = (codes, colc, rowc, mult, fmin, fmax, zp) as
    :func:`hwsim.kernels.tileir._tile_rq` takes it; threads as ``macs`` multiply-adds warrant."""
    kernel, (counter, threads) = pick(_gemm_rq, _gemm_rq_1, macs)
    acc = amxgemm._aligned((threads, 1024), np.int32)
    kernel(a, panels, *epi, acc, _CFG, counter, threads)
