"""The float reference's products whose right operand is a weight held as integer codes, on AMX-BF16.

A weight ``w`` held as codes ``q`` of at most 8 bits with a zero point ``z`` and a scale ``s`` per
tensor or per output channel (:class:`~hwsim.sim.qspec.Coded`) is ``s[o] * (q - z)``. Where
:func:`hwsim.kernels.amxgemm.available`, the float32 reference computes ``x . w`` as
``float32(s[o] * (x . (q - z)))``: ``x`` split exactly into three bfloat16 limbs, ``q - z`` exact
in bfloat16, every product exact, the sums float32 (:mod:`hwsim.kernels.amxgemm`). Elsewhere (no
AMX, JIT off, float64 reference, per-group scales, codes of more than 8 bits), and for an ``x``
holding an inf or a NaN or values large enough that a sum might overflow, the product is
``x . float32(s[o] * (q - z))`` on float32 BLAS (:mod:`hwsim.sim.refblas`). Both are float32-level
(relative error ~1e-7..1e-6 against float64); they differ in the last bits (benchmarks/RESULTS.md,
"Tenth session: amx").

The panels of ``q - z`` are made once per weight and kept by :mod:`hwsim.kernels.packcache`
(found by the codes' bytes and the spec). Column blocks of a large product run on
:mod:`hwsim.sim.refblas`'s pool (on the calling thread beside the other thread of a simulate run,
:mod:`hwsim.sim.lanes`); the values do not depend on the blocks.
"""

from __future__ import annotations

import numpy as np

from hwsim import formats
from hwsim.kernels import amxgemm, packcache
from hwsim.sim import qspec, refblas

#: the most significant bits of a code (|q - z| <= 256 is exact in bfloat16)
MAX_BITS = 8
#: fewest output columns and depth (K) of a product taken here: the limbs of ``x`` cost a pass over
#: it, paid back by N columns of products, and each block of 32 x 32 outputs has a fixed cost
#: paid back by K. One thread against sgemm, the Xeon of 2026-11-27 (benchmarks/RESULTS.md, "Tenth
#: session: amx"): 8 x 512 x 1000 1.8x, 128 x 384 x 384 1.6x, 128 x 768 x 3072 2.9x, 1024 x 768 x 768
#: 1.5x, 392 x 960 x 320 1.7x; 392 x 160 x 960 1.0-1.2x, 1568 x 384 x 64 0.6x, 100352 x 32 x 16 0.1x
MIN_COLUMNS = MIN_DEPTH = 256


def applies(ctx, w, out_axis: int) -> bool:
    """Whether the reference's product with the weight ``w`` (2-D) runs here: a float32 reference on
    an AMX host, ``w`` codes of at most 8 bits with a scale per tensor or per channel along
    ``out_axis`` (the output axis of ``w``), enough output columns and depth."""
    if not isinstance(w, qspec.Coded) or w.ndim != 2 or np.dtype(ctx.reference_dtype) != np.float32:
        return False
    spec = w.spec
    if spec.scale is None or w.codes.dtype.kind not in "iu" or w.shape[out_axis] < MIN_COLUMNS \
            or w.shape[1 - out_axis] < MIN_DEPTH:
        return False
    fmt = formats.get(spec.format)
    if not fmt.integer_codes or getattr(fmt, "bits", 64) > MAX_BITS:
        return False
    if spec.granularity not in ("tensor", "channel") or (spec.granularity == "channel" and spec.axis % 2 != out_axis):
        return False
    return amxgemm.available()


def _panels(w: qspec.Coded, out_axis: int):
    """The kept panels of ``q - z`` (K, N) of ``w``, or None where some |q - z| > 256."""
    spec = w.spec
    key = ("reference amx-bf16", out_axis, spec.format, spec.zero_point, spec.granularity, spec.axis)

    def make(codes: np.ndarray):
        z = 0 if spec.zero_point is None else np.asarray(spec.zero_point, np.int64)
        d = codes.astype(np.int64)
        d = (d - np.reshape(z, (-1, 1))).T if out_axis == 0 else d - np.reshape(z, (1, -1))
        if d.size and np.abs(d).max() > 256:
            return np.zeros(0, np.uint16)  # kept as "not exact in bfloat16"
        b = amxgemm.panels(d)
        b.flags.writeable = False
        return b

    b = packcache.packed(np.ascontiguousarray(w.codes), key, make)
    return b if b.size else None


def dot(x2: np.ndarray, w: qspec.Coded, out_axis: int) -> np.ndarray | None:
    """float32 ``x2 . w`` of float32 ``x2`` (M, K) and the weight ``w`` ((N, K) for ``out_axis`` 0,
    a linear's; (K, N) for 1, a matmul's) where :func:`applies`; None where it cannot (the caller
    takes the float32 BLAS path)."""
    b = _panels(w, out_axis)
    if b is None:
        return None
    n = w.shape[out_axis]
    scale = qspec.scale_array(w.spec.scale)
    scale = np.broadcast_to(scale.reshape(-1), (n,)) if scale.size == 1 else scale.reshape(-1)
    m, k = x2.shape
    split = refblas.col_blocks(m, k, n) is not None or len(refblas.row_blocks(m, k, n)) > 1
    return amxgemm.dot(x2, b, n, np.ascontiguousarray(scale), refblas.run_tasks if split else None,
                       refblas.COLS_PER_TASK if split else 1 << 30)
