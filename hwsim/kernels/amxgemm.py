"""float32 x small-integer products on Intel AMX-BF16 tiles, exact but for float32 sums.

For ``x`` float32 (M, K) and ``d`` integers with ``|d| <= 256`` (K, N) (weight codes minus their
zero point), :func:`dot` computes ``x @ d`` with every product exact and float32 accumulation:

* ``x`` is split into three bfloat16 limbs, ``x = h0 + h1 + h2`` (:func:`split`): ``h0`` is ``x``
  truncated to its top 16 bits, ``h1`` the difference truncated the same way, ``h2`` what is left.
  The differences are exact and the three limbs hold the 24 significant bits of a float32 exactly
  when ``|x| >= 2**-103``; ``d`` is exact in bfloat16 (8 significant bits).
* TDPBF16PS multiplies bf16 pairs exactly and adds them into float32 tiles: C += h_l . d for
  l = 0, 1, 2 at each step of 32 k. The only roundings are the tiles' float32 additions (in an
  order fixed by the kernel, independent of the thread count and the blocking of N) and the
  product with the scale (once, :func:`dot`). The additions are not those of a sequential IEEE
  float32 sum over k: with one limb and fp8 operands (every product exact), 0-21 of 2,000-6,000
  outputs at K = 512-2048 differed from one (and from a sum of each pair rounded, then added, and
  from each pair added with one rounding), the Xeon of 2026-11-28 (benchmarks/RESULTS.md,
  "Eighteenth session"): float32-level, as the reference needs, but not a model of another
  accumulator.
* Tiny values: AMX reads bfloat16 denormals as zero and flushes float32 denormal results. A limb
  below ``2**-126`` is therefore lost: the ``x`` the tiles multiply differs from ``x`` by less than
  ``2**-126`` (and not at all for ``|x| >= 2**-103``), and each of the 3K additions may flush a
  partial sum below ``2**-126``, so an output moves by less than ``K * 260 * 2**-126`` (1e-32 at
  K = 3072) beyond the float32 sums' rounding: nothing a float32 reference of real-valued
  activations can show.

Tiles (16 rows x 64 bytes each): four float32 C tiles (32 rows x 32 columns), two A tiles (rows i
and i + 16 of one limb, read from the row-major limbs of :func:`split`) and two B tiles (32 k x 16
columns each, k in VNNI pairs, :func:`panels`: the 2 KiB of one step of a column block side by
side). K in blocks of :data:`KC`; rows in groups whose limbs stay in L2 (:data:`_L2_LIMBS`), each
block of 32 columns passing over a group (its panels stay in L2 for the group). After the last
block of K the four C tiles are scaled straight into the output (partial sums of earlier blocks
in a float32 array). Padding to 32 rows, 32 columns and 32 k is zeros.

Used only where it runs (:func:`available`): the host CPU has AMX-TILE and AMX-BF16, numba's JIT
is on and compiles for the host CPU, and the kernel granted the process the tile data state
(arch_prctl ``ARCH_REQ_XCOMP_PERM``, checked with ``ARCH_GET_XCOMP_PERM``: without the grant the
first tile instruction is SIGILL). The tile kernels are compiled only after that check (LLVM
cannot select tile instructions for a CPU without them). Tests switch the route off by patching
:func:`_host_amx`. Plain-numpy references: tests/kernels/test_amxgemm.py.
"""

import ctypes
import functools
import platform
import sys

import numba
import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: rows, columns and k of the padded operands are multiples of this
STEP = 32
#: k per block: the sums of a block of KC k go to a float32 array between blocks (none for K <= KC)
KC = 1024
#: bytes of limbs of a group of row blocks, kept in L2 while every column block passes
_L2_LIMBS = 1 << 20
_MASK = np.uint32(0xFFFF0000)
_ALIGN = 64  # bytes: every tile row loaded or stored starts on a cache line
_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA = 158, 0x1022, 0x1023, 18


def _granted() -> bool:
    """Ask Linux for the AMX tile data state of this process (x86-64 only) and check it holds it."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)
        perm = ctypes.c_uint64(0)
        if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, ctypes.byref(perm)) != 0:
            return False
        return bool(perm.value >> _XFEATURE_XTILEDATA & 1)
    except (OSError, AttributeError):
        return False


@functools.lru_cache(maxsize=1)
def _host_amx() -> bool:
    """The host CPU has AMX-TILE and AMX-BF16 and this process may use the tiles."""
    features = _llvm.get_host_cpu_features()
    return all(features.get(f, False) for f in ("amx-tile", "amx-bf16")) and _granted()


def available() -> bool:
    """True when the tile kernels run here: numba JIT on, compiling for the host CPU (no
    NUMBA_CPU_NAME / NUMBA_CPU_FEATURES of another), on a host with AMX-BF16 granted to the process."""
    cpu = numba.config.CPU_NAME
    return (not numba.config.DISABLE_JIT and (cpu is None or cpu == "host") and not numba.config.CPU_FEATURES
            and _host_amx())


# ------------------------------------------------------------------ tile instructions (LLVM IR)
_I8, _I64 = ir.IntType(8), ir.IntType(64)
_I8P = _I8.as_pointer()


def _call(builder, name, args_t, args):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), args_t), name)
    builder.call(fn, args)


@intrinsic
def _ldtilecfg(typingctx, cfg):
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        _call(builder, "llvm.x86.ldtilecfg", [_I8P], [builder.bitcast(data, _I8P)])
    return types.void(cfg), codegen


@intrinsic
def _tilerelease(typingctx):
    def codegen(context, builder, sig, args):
        _call(builder, "llvm.x86.tilerelease", [], [])
    return types.void(), codegen


def _memop(name, tile):
    """Tile ``tile`` loaded from / stored to element ``offset`` of a 1-D array, rows ``stride`` bytes apart."""
    @intrinsic
    def op(typingctx, arr, offset, stride):
        def codegen(context, builder, sig, args):
            data = context.make_array(sig.args[0])(context, builder, args[0]).data
            ptr = builder.bitcast(builder.gep(data, [args[1]]), _I8P)
            _call(builder, name, [_I8, _I8P, _I64], [ir.Constant(_I8, tile), ptr, args[2]])
        return types.void(arr, types.int64, types.int64), codegen
    return op


def _tileop(name, *tiles):
    @intrinsic
    def op(typingctx):
        def codegen(context, builder, sig, args):
            _call(builder, name, [_I8] * len(tiles), [ir.Constant(_I8, t) for t in tiles])
        return types.void(), codegen
    return op


# tiles 0-3: C (rows i, i+16) x (columns j, j+16); 4, 5: A rows i, i+16; 6, 7: B panels j, j+16
_ldc0, _ldc1, _ldc2, _ldc3, _lda0, _lda1, _ldb0, _ldb1 = (_memop("llvm.x86.tileloadd64", t) for t in range(8))
_stc0, _stc1, _stc2, _stc3 = (_memop("llvm.x86.tilestored64", t) for t in range(4))
_zc0, _zc1, _zc2, _zc3 = (_tileop("llvm.x86.tilezero", t) for t in range(4))
_dp00, _dp01, _dp10, _dp11 = (_tileop("llvm.x86.tdpbf16ps", c, a, b) for c, a, b in
                              ((0, 4, 6), (1, 4, 7), (2, 5, 6), (3, 5, 7)))


def _config() -> np.ndarray:
    """The 64-byte tile configuration: palette 1, eight tiles of 16 rows x 64 bytes."""
    cfg = np.zeros(64, np.uint8)
    cfg[0] = 1
    cfg[16:32] = np.tile(np.array([64, 0], np.uint8), 8)  # colsb, little-endian uint16 per tile
    cfg[48:56] = 16  # rows
    return cfg


_CFG = _config()
_CFG.flags.writeable = False


# ------------------------------------------------------------------ kernels
@njit(cache=True, nogil=True)
def _split(x, out):
    """``x`` (M, K) float32, or float64 rounded to float32 first (as ``astype``), C-contiguous, into
    limbs ``out`` (3, Mp, ld) of bfloat16 bits (uint16, :func:`split`), zero past M and K. Returns
    the largest exponent field of float32 ``x`` (255: an inf or NaN, the limbs then meaningless)."""
    m, k = x.shape
    row = np.empty(k, np.float32)
    bits = row.view(np.uint32)
    top = np.empty(k, np.uint32)
    topf = top.view(np.float32)
    rest = np.empty(k, np.float32)
    restu = rest.view(np.uint32)
    worst = np.uint32(0)
    for i in range(m):
        src = x[i]
        for j in range(k):
            row[j] = np.float32(src[j])
        h0, h1, h2 = out[0, i], out[1, i], out[2, i]
        for j in range(k):
            worst = max(worst, bits[j] & np.uint32(0x7F800000))
            top[j] = bits[j] & _MASK
            h0[j] = np.uint16(top[j] >> 16)
        for j in range(k):
            rest[j] = row[j] - topf[j]
        for j in range(k):
            top[j] = restu[j] & _MASK
            h1[j] = np.uint16(top[j] >> 16)
        for j in range(k):
            rest[j] = rest[j] - topf[j]
        for j in range(k):
            h2[j] = np.uint16(restu[j] >> 16)
        for limb in range(3):
            out[limb, i, k:] = 0
    out[:, m:, :] = 0
    return worst >> 23


@njit(cache=True, nogil=True, inline="always")
def _epilogue(acc, s, out, i, j, cols):
    """Rows ``32i...`` columns ``32j...`` (``cols`` of them) of ``out`` = ``acc`` (32, 32) times ``s``."""
    for r in range(min(32, out.shape[0] - 32 * i)):
        dst, src = out[32 * i + r], acc[r]
        if cols == 32:  # a constant trip count: vectorised whole
            for c in range(32):
                dst[32 * j + c] = src[c] * s[32 * j + c]
        else:
            for c in range(cols):
                dst[32 * j + c] = src[c] * s[32 * j + c]


@njit(cache=True, nogil=True)
def _gemm(a, b, s, out, part, acc, j0, j1, cfg):
    """Columns ``j0:j1`` (``j0`` a multiple of 32) of ``out`` (M, N) float32 = ``s`` (N,) times the
    sum over the limbs of ``a`` (3, Mp, ld) times the panels ``b`` (Np/32, Kp/32, 2, 16, 32)
    (module docstring), each sum rounded once by its scale (in float64 for a float64 ``s``).
    ``part`` (Mp, Np) float32 holds the sums between blocks of :data:`KC` k (unused, any shape,
    for one block); ``acc`` (32, 32) float32 the four C tiles before the scale. ``a``, ``b``,
    ``part`` and ``acc`` start on 64-byte boundaries (:func:`_aligned`)."""
    limbs, mp, ld = a.shape
    ksteps = b.shape[1]
    a1, b1, p1 = a.reshape(-1), b.reshape(-1), part.reshape(-1)
    sa, sp, bblock = 2 * ld, 4 * part.shape[1], ksteps * 1024
    acc1 = acc.reshape(-1)
    kc = KC // 32
    group = max(1, _L2_LIMBS // (limbs * 2 * min(ld, KC)) // 32)  # row blocks whose limbs stay in L2
    _ldtilecfg(cfg)
    for k0 in range(0, ksteps, kc):
        k1 = min(k0 + kc, ksteps)
        for i0 in range(0, mp // 32, group):
            for j in range(j0 // 32, -(-j1 // 32)):
                for i in range(i0, min(i0 + group, mp // 32)):
                    pi = 32 * i * part.shape[1] + 32 * j
                    if k0 == 0:
                        _zc0()
                        _zc1()
                        _zc2()
                        _zc3()
                    else:
                        _ldc0(p1, pi, sp)
                        _ldc1(p1, pi + 16, sp)
                        _ldc2(p1, pi + 16 * part.shape[1], sp)
                        _ldc3(p1, pi + 16 * part.shape[1] + 16, sp)
                    for ks in range(k0, k1):
                        bi = j * bblock + ks * 1024
                        _ldb0(b1, bi, 64)
                        _ldb1(b1, bi + 512, 64)
                        for limb in range(limbs):
                            ai = (limb * mp + 32 * i) * ld + 32 * ks
                            _lda0(a1, ai, sa)
                            _lda1(a1, ai + 16 * ld, sa)
                            _dp00()
                            _dp01()
                            _dp10()
                            _dp11()
                    if k1 < ksteps:
                        _stc0(p1, pi, sp)
                        _stc1(p1, pi + 16, sp)
                        _stc2(p1, pi + 16 * part.shape[1], sp)
                        _stc3(p1, pi + 16 * part.shape[1] + 16, sp)
                    else:
                        _stc0(acc1, 0, 128)
                        _stc1(acc1, 16, 128)
                        _stc2(acc1, 512, 128)
                        _stc3(acc1, 528, 128)
                        _epilogue(acc, s, out, i, j, min(32, j1 - 32 * j))
    _tilerelease()


# ------------------------------------------------------------------ wrappers
def _up(n: int) -> int:
    return -(-n // STEP) * STEP


def _aligned(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary: a tile load of
    rows that straddle cache lines took 6x as long here (47 against 7.5 cycles a 1 KiB tile;
    numpy aligns to 16 or 32 bytes)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + size].view(dtype).reshape(shape)


def split(x: np.ndarray) -> tuple[np.ndarray, int]:
    """(limbs, largest exponent field of ``x``: 255 for an inf or NaN) of ``x`` (M, K) rounded to
    float32 (float64 in one pass with the split, other types converted first): limbs
    (3, Mp, Kp + 32) uint16 of bfloat16 bits, ``[l, i, k]`` the limb l of x[i, k], zero past M and K
    (rows 32 elements longer than K's padding: 16 rows of a tile then fall in other L1 sets)."""
    x = np.asarray(x)
    x = np.ascontiguousarray(x, x.dtype if x.dtype in (np.float32, np.float64) else np.float32)
    out = _aligned((3, _up(x.shape[0]), _up(x.shape[1]) + STEP), np.uint16)
    return out, int(_split(x, out))


def panels(d: np.ndarray) -> np.ndarray:
    """``d`` (K, N) integers, ``|d| <= 256``, as bfloat16 (exact) in VNNI-pair panels (Np/32, Kp/32,
    2, 16, 32): element [j // 32, k // 32, (j // 16) % 2, (k % 32) // 2, 2 * (j % 16) + k % 2] is d[k, j]."""
    k, n = d.shape
    if d.size and np.abs(d).max() > 256:
        raise ValueError("panels: |d| > 256 is not exact in bfloat16")
    bits = np.zeros((_up(k), _up(n)), np.uint16)
    bits[:k, :n] = (d.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    kp, npad = bits.shape
    tiles = bits.reshape(kp // 32, 16, 2, npad // 32, 2, 16).transpose(3, 0, 4, 1, 5, 2)  # jb, ks, h, t, c, pair
    out = _aligned((npad // 32, kp // 32, 2, 16, 32), np.uint16)
    out[...] = tiles.reshape(out.shape)
    return out


def column_blocks(n: int, cols: int) -> list[tuple[int, int]]:
    """(start, stop) columns, multiples of 32 but for the last stop (``n``), of about ``cols`` each."""
    step = max(STEP, cols // STEP * STEP)
    return [(j, min(j + step, n)) for j in range(0, n, step)]


def _fits(exponent: int, k: int, scale: np.ndarray) -> bool:
    """Whether no float32 sum of k products |x| * 256 (|x| < 2**(exponent - 126)) nor its product
    with ``scale`` can overflow."""
    if exponent >= 255:
        return False
    smax = float(np.abs(scale).max()) if scale.size else 0.0
    return k * 256.0 * 2.0 ** (exponent - 126) * max(1.0, smax) < 2.0**126


def dot(x: np.ndarray, b: np.ndarray, n: int, scale: np.ndarray, run=None, cols: int = 1 << 30) -> np.ndarray | None:
    """float32 ``(x @ d) * scale`` of float32 ``x`` (M, K; float64 rounded to float32 on the way) and
    the panels ``b`` of ``d`` (K, N)
    (:func:`panels`), ``scale`` (N,) float32 or float64 (the product rounded once to float32).
    None where ``x`` holds an inf or NaN, or values so large that a sum might overflow: callers
    take their float32 BLAS path then, with its inf / NaN. Only where :func:`available`.

    ``run`` (a callable taking a list of callables, e.g. a thread pool's) runs the blocks of about
    ``cols`` columns; by default one after another. The values do not depend on the blocks."""
    if not available():  # also what grants the tiles: a tile instruction before the grant is SIGILL
        raise RuntimeError("amxgemm.dot: no AMX-BF16 here (check amxgemm.available() first)")
    limbs, exponent = split(x)
    m, k = x.shape
    if not _fits(exponent, k, scale):
        return None
    out = np.empty((m, n), np.float32)
    part = _aligned((limbs.shape[1], b.shape[0] * STEP) if k > KC else (1, 1), np.float32)

    def task(j0: int, j1: int) -> None:
        _gemm(limbs, b, scale, out, part, _aligned((32, 32), np.float32), j0, j1, _CFG)

    tasks = [functools.partial(task, j0, j1) for j0, j1 in column_blocks(n, cols)]
    (run or (lambda ts: [t() for t in ts]))(tasks)
    return out
