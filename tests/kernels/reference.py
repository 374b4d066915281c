"""Slow, obviously-right oracles for hwsim.kernels (plain numpy and Python integers)."""

import math
from fractions import Fraction

import numpy as np


def wrap(v, bits):
    """Two's complement wrap of Python/numpy integers to ``bits`` bits."""
    half = 1 << (bits - 1)
    return ((np.asarray(v, dtype=object) + half) % (1 << bits)) - half


def accumulate(acc, v, bits, overflow):
    """One accumulator step on int64 arrays."""
    s = acc + v
    if overflow == "saturate":
        return np.clip(s, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if overflow == "wrap":
        return wrap(s, bits).astype(np.int64)
    return s


def int_matmul(a, b, bits=32, overflow="wrap", pairwise=False):
    """(M, K) @ (K, N), k ascending, one accumulator step per product (or per int16 pair)."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    acc = np.zeros((a.shape[0], b.shape[1]), np.int64)
    step = 2 if pairwise else 1
    for k in range(0, a.shape[1], step):
        v = a[:, k, None] * b[None, k, :]
        if pairwise:
            if k + 1 < a.shape[1]:
                v = v + a[:, k + 1, None] * b[None, k + 1, :]
            v = np.clip(v, -32768, 32767)
        acc = accumulate(acc, v, bits, overflow)
    return acc


def int_conv2d(x, w, stride, pads, dil, groups, bits, overflow, xzp=0, wzp=0):
    """Direct NCHW/OIHW convolution, k = (c, kh, kw) ascending per output."""
    x = x.astype(np.int64) - xzp
    w = w.astype(np.int64) - np.asarray(wzp).reshape(-1, 1, 1, 1)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]), np.int64)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    oh = (xp.shape[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    og = o // groups
    for oc in range(o):
        g = oc // og
        for ci in range(cg):
            for i in range(kh):
                for j in range(kw):
                    patch = xp[:, g * cg + ci, i * dil[0]:i * dil[0] + stride[0] * (oh - 1) + 1:stride[0],
                               j * dil[1]:j * dil[1] + stride[1] * (ow - 1) + 1:stride[1]]
                    out[:, oc] = accumulate(out[:, oc], patch * w[oc, ci, i, j], bits, overflow)
    return out


# --- gemmlowp fixedpoint.h / TFLite, transcribed with Python integers and C semantics ---------

def c_div(a, b):
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul(int32 a, int32 b)."""
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    return c_div(ab + nudge, 1 << 31)


def rounding_divide_by_pot(x, exponent):
    """RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def quantize_multiplier(m, single=False):
    """QuantizeMultiplier via exact rationals: q = m / 2**shift in [0.5, 1), round half away."""
    if m == 0:
        return 0, 0
    fr = Fraction(m)
    shift = 0
    while fr >= 1:
        fr /= 2
        shift += 1
    while fr < Fraction(1, 2):
        fr *= 2
        shift -= 1
    scaled = fr * 2**31
    q = math.floor(scaled) + (1 if scaled - math.floor(scaled) >= Fraction(1, 2) else 0)
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single and shift > 30:
        return 2**31 - 1, 30
    return q, shift


def multiply_by_quantized_multiplier(x, q, shift, single=False):
    if single:
        total = 31 - shift
        return (x * q + (1 << (total - 1))) >> total
    left, right = max(shift, 0), max(-shift, 0)
    xl = int(wrap(x * (1 << left), 32))
    return rounding_divide_by_pot(srdhm(xl, q), right)


def requant_fixed(acc, m, zp, lo, hi, single=False):
    q, shift = quantize_multiplier(m, single)
    return min(max(multiply_by_quantized_multiplier(int(acc), q, shift, single) + zp, lo), hi)


# --- floats ---------------------------------------------------------------------------------

def float_matmul_loop(a, b, ftype):
    """Sequential k-ascending sum of exact float64 products, rounded to ``ftype`` after each add."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = ftype(0)
            for k in range(a.shape[1]):
                acc = ftype(float(acc) + float(a[i, k]) * float(b[k, j]))
            out[i, j] = float(acc)
    return out


def float32_seq_matmul(a, b):
    """:func:`float_matmul_loop` for float32, whole arrays at a time (fast enough for big
    shapes): each step adds an exact float64 product to the float32 sums in float64 and rounds
    to float32 (one rounding: float64 holds every sum of two float32 values to within a
    rounding that float32 cannot see, since 53 >= 2 * 24 + 2)."""
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for k in range(a.shape[1]):
        acc = (acc.astype(np.float64) + np.outer(a[:, k].astype(np.float64), b[k].astype(np.float64))).astype(np.float32)
    return acc.astype(np.float64)


def pairwise_loop(a, b, ftype):
    """Pairwise tree: level 0 rounds each pair of exact products once, odd ones move up."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            p = [float(a[i, k]) * float(b[k, j]) for k in range(a.shape[1])]
            lvl = [float(ftype(p[t] + p[t + 1])) for t in range(0, len(p) - 1, 2)]
            if len(p) % 2:
                lvl.append(float(ftype(p[-1])))
            while len(lvl) > 1:
                nxt = [float(ftype(lvl[t] + lvl[t + 1])) for t in range(0, len(lvl) - 1, 2)]
                lvl = nxt + ([lvl[-1]] if len(lvl) % 2 else [])
            out[i, j] = lvl[0] if lvl else 0.0
    return out


def blocked_loop(a, b, ftype, block):
    out = np.zeros((a.shape[0], b.shape[1]))
    for k0 in range(0, a.shape[1], block):
        part = float_matmul_loop(a[:, k0:k0 + block], b[k0:k0 + block], ftype)
        out = np.vectorize(lambda x, y: float(ftype(x + y)))(out, part)
    return out


def exact_matmul(a, b):
    return np.array([[math.fsum(float(a[i, k]) * float(b[k, j]) for k in range(a.shape[1]))
                      for j in range(b.shape[1])] for i in range(a.shape[0])])


def mx_matmul(a, sa, b, sb, ftype):
    """MX: exact block dots (Fractions) times scales, added into ``ftype`` block by block."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = ftype(0)
            for q in range(sa.shape[1]):
                d = sum(Fraction(float(a[i, k])) * Fraction(float(b[k, j]))
                        for k in range(q * 32, min(a.shape[1], q * 32 + 32)))
                v = Fraction(float(acc)) + d * Fraction(float(sa[i, q])) * Fraction(float(sb[q, j]))
                acc = ftype(float(v))
            out[i, j] = float(acc)
    return out


def requant_ort(acc, mult, zp, lo, hi):
    """onnxruntime MlasRequantizeOutput on an int array whose last axis holds the channels:
    float32(acc) * float32(mult), clamped to [lo - zp, hi - zp] in float32, rounded half to even,
    plus zp."""
    mult, zp = np.asarray(mult, np.float32), np.asarray(zp, np.int64)
    f = np.asarray(acc).astype(np.float32) * mult
    f = np.minimum(np.maximum(f, (lo - zp).astype(np.float32)), (hi - zp).astype(np.float32))
    return np.rint(f).astype(np.int64) + zp
