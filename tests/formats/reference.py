"""Slow, obviously right oracles for the formats tests."""

from __future__ import annotations

import ml_dtypes
import numpy as np

ML_TYPES = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16,
            "fp8_e4m3fn": ml_dtypes.float8_e4m3fn, "fp8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
            "fp8_e5m2": ml_dtypes.float8_e5m2, "fp8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
            "fp6_e2m3fn": ml_dtypes.float6_e2m3fn, "fp6_e3m2fn": ml_dtypes.float6_e3m2fn,
            "fp4_e2m1fn": ml_dtypes.float4_e2m1fn}


def all_values(ml_type) -> np.ndarray:
    """Every value of an ml_dtypes type (or float16), as float64, from its bit patterns."""
    bits = ml_dtypes.finfo(ml_type).bits
    codes = np.arange(1 << bits, dtype=np.uint16 if bits > 8 else np.uint8)
    if bits in (16, 8):
        vals = codes.view(ml_type)
    else:  # sub-byte types are stored one per byte
        vals = codes.astype(np.uint8).view(ml_type)
    return vals.astype(np.float64)


def tie_inputs(ml_type) -> np.ndarray:
    """float32 values at and around every midpoint between neighbouring finite values.

    float32 itself has no midpoints in float32; it gets its extreme values only.
    """
    if ml_type is np.float32:
        fi = np.finfo(np.float32)
        return np.array([fi.max, -fi.max, fi.tiny, fi.smallest_subnormal], np.float32)
    v = np.unique(all_values(ml_type)[np.isfinite(all_values(ml_type))])
    top = v[-1] + (v[-1] - v[-2])  # the value the next code would have
    v = np.concatenate([v, [top, 2 * top], -np.array([top, 2 * top])])
    v = np.unique(v)
    mids = ((v[:-1] + v[1:]) / 2).astype(np.float32)  # exact for these small formats
    out = [mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf)),
           v.astype(np.float32)]
    return np.concatenate(out).astype(np.float32)


def float16_patterns_as_float32() -> np.ndarray:
    """All 65536 float16 bit patterns (NaNs, infs, +-0, subnormals) converted to float32."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def nearest_in_table(x: float, table: np.ndarray) -> float:
    """Round-half-even to the nearest table entry (sorted), by brute force; ties -> even index."""
    d = np.abs(table - x)
    best = np.flatnonzero(d == d.min())
    return float(table[best[0]] if len(best) == 1 or best[0] % 2 == 0 else table[best[1]])


def mx_reference(block: np.ndarray, elem_values: np.ndarray, emax_elem: int) -> np.ndarray:
    """OCP MX v1.0 by the book for one block: X = 2^(floor(log2 amax) - emax_elem), then
    nearest element magnitude (ties to the even code), saturating."""
    amax = max(abs(float(b)) for b in block)
    if amax == 0:
        return np.zeros(len(block))
    e = 0
    while 2.0 ** (e + 1) <= amax:
        e += 1
    while 2.0 ** e > amax:
        e -= 1
    scale = 2.0 ** max(min(e - emax_elem, 127), -127)
    # magnitudes 0, m1, m2, ...: index parity is the parity of the code's last bit (ties to even)
    table = np.unique(np.abs(elem_values[np.isfinite(elem_values)]))
    return np.array([np.copysign(nearest_in_table(abs(float(b)) / scale, table), b) * scale
                     for b in block])


def float_codes_reference(fmt, v):
    """Vectorised numpy codes of representable values (the oracle of the numba kernel)."""
    v = np.asarray(v, dtype=np.float64)
    e_bits, m, bias = fmt.exponent_bits, fmt.mantissa_bits, fmt.bias
    sign = np.signbit(v).astype(np.int64)
    a = np.abs(v)
    finite = np.isfinite(a)
    a0 = np.where(finite, a, 0.0)
    _, k = np.frexp(a0)
    e = k.astype(np.int64) - 1
    normal = a0 >= fmt.min_normal
    expf = np.where(normal, e + bias, 0)
    mant = np.where(normal, np.ldexp(a0, (m - e).astype(np.int32)) - (1 << m),
                    np.ldexp(a0, m - fmt.emin)).astype(np.int64)
    code = (sign << (e_bits + m)) | (expf << m) | mant
    if fmt.nan_policy == "ieee":
        code = np.where(np.isinf(a), (sign << (e_bits + m)) | (((1 << e_bits) - 1) << m), code)
    if fmt.has_nan:
        sign_part = 0 if fmt.nan_policy == "fnuz" else sign << (e_bits + m)
        code = np.where(np.isnan(v), fmt.nan_code | sign_part, code)
    if fmt.nan_policy == "fnuz":  # -0 does not exist; its code is the NaN
        code = np.where((a0 == 0) & ~np.isnan(v), 0, code)
    return code.astype(fmt.code_dtype())


def nearest_centroid_reference(v: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Brute-force nearest codebook row per vector (squared distance, first index on ties)."""
    d = ((v[:, None, :] - cb[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(d, axis=1)
