"""Bytes moved at each memory level, from a tiling of the layer into the level below it.

Levels are listed innermost first. Level ``i`` feeds the storage inside it, whose capacity is
``c = size of level i-1`` (the unit's ``register_bytes`` for level 0). Each tensor has a *home*:
the level it lives in between layers. A tensor is read at every level from its home inwards.

Reuse (per level, per group of a grouped or batched product, the groups passing one after another):
if one group's weights, inputs and outputs fit in ``c`` together every byte moves once.
Otherwise the inner storage holds a tile of half its capacity and streams the rest past it:
weight-stationary re-reads the inputs ``ceil(W / (c/2))`` times; input-stationary re-reads the
weights ``ceil(I / (c/2))`` times; output-stationary keeps an ``a x b`` tile of accumulators
(``a*b*acc_bytes <= c/2``, shaped to move the fewest bytes: :func:`_output_tile`) and re-reads the
weights ``ceil(m/a)`` and the inputs ``ceil(n/b)`` times. The cheapest is taken. Under weight-stationary, when one output
channel's weights (``k`` reduction elements) exceed ``c/2`` the reduction is split and partial
sums (at the unit's ``psum_bits``, else the accumulator width) are written and read back ``splits - 1`` times.
A row-stationary array (Eyeriss) works out of its PE scratchpads, so its innermost level moves each MAC's
operands (:func:`scratchpad_traffic`) instead of a register tiling. At a level that stores feature maps
run-length coded (a target's ``features.fmap_coding``) the inputs and
outputs move at their coded size; the tiling above sees them plain (they are decoded on chip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Operands:
    """Bytes of a dot-product layer: weights (or the second matmul operand), inputs, outputs."""

    weight_bytes: float
    input_bytes: float
    output_bytes: float
    column_weight_bytes: float  # one output channel's weights (k elements)
    psum_bytes: float           # all outputs at accumulator width
    m: int                      # output rows (pixels x batch, tokens)
    n: int                      # output channels
    acc_bytes: float            # bytes of one accumulator
    weight_home: int
    input_home: int
    output_home: int
    groups: int = 1             # independent products (grouped convs, batched matmuls), each tiled on its own
    coded_level: int = -1       # level whose inputs / outputs are stored run-length coded (-1: none)
    input_coded: float = 1.0    # stored over plain bytes of the inputs at coded_level
    output_coded: float = 1.0   # the same for the outputs


def reuse(op: Operands, cap: float, dataflow: str | None = None) -> tuple[float, float, int]:
    """(weight passes, input passes, reduction splits) for inner capacity ``cap``.

    ``dataflow`` ("weight_stationary" / "output_stationary") forces that tiling, as a systolic
    array does in its PE registers; None takes the cheapest.
    """
    g = max(1, op.groups)  # one group's operands: the groups run one after another through the storage
    w, i, o, n = op.weight_bytes / g, op.input_bytes / g, op.output_bytes / g, max(1, op.n // g)
    if w + i + o <= cap:
        return 1.0, 1.0, 1
    half = cap / 2
    tile = max(1.0, half / op.acc_bytes)
    options = [
        (1.0, float(math.ceil(w / half)), max(1, math.ceil(op.column_weight_bytes / half))),  # WS
        (float(math.ceil(i / half)), 1.0, 1),                                               # IS
        _output_tile(op.m, n, tile, w, i),                                                  # OS
    ]
    if dataflow == "weight_stationary":
        return options[0]
    if dataflow == "output_stationary":
        return options[2]
    return min(options, key=lambda p: p[0] * w + p[1] * i + 2 * op.psum_bytes * (p[2] - 1))


def _output_tile(m: int, n: int, tile: float, w: float, i: float) -> tuple[float, float, int]:
    """(weight passes, input passes, 1) of the output-stationary tiling: an ``a x b`` block of accumulators
    (``a * b <= tile``, ``a`` of the ``m`` output rows, ``b`` of the ``n`` output channels); the weights pass
    ``ceil(m / a)`` times and the inputs ``ceil(n / b)`` times. The block's shape is the one that moves the fewest
    bytes, ``w * ceil(m / a) + i * ceil(n / b)``, as a mapper (Timeloop, a BLAS blocking) chooses it: near
    ``a = sqrt(tile * w * m / (i * n))`` where the continuous optimum lies, or the square block."""
    def passes(a: float) -> tuple[float, float]:
        a = max(1.0, min(float(m), float(math.floor(a))))
        b = max(1.0, min(float(n), tile // a))
        return float(math.ceil(m / a)), float(math.ceil(n / b))

    best = math.sqrt(tile * w * m / (i * n)) if w > 0 and i > 0 else math.sqrt(tile)
    cands = [math.sqrt(tile), tile // n, best, tile / max(1.0, math.ceil(n * best / tile))]
    for p in (math.floor(m / best), math.ceil(m / best)):  # a row split of the m rows near the optimum
        if p >= 1:
            cands.append(math.ceil(m / p))
    wp, ip = min((passes(a) for a in cands), key=lambda q: w * q[0] + i * q[1])
    return wp, ip, 1


def dot_traffic(op: Operands, capacities: list[float], dataflow: str | None = None
                ) -> tuple[list[float], list[float]]:
    """(read bytes, write bytes) per level for a dot-product layer.

    ``capacities[i]`` is the capacity of the storage inside level ``i``; ``dataflow`` applies to
    the innermost storage (the unit's registers) only.
    """
    reads, writes = [], []
    for lvl, cap in enumerate(capacities):
        wp, ip, splits = reuse(op, cap, dataflow if lvl == 0 else None)
        coded = lvl == op.coded_level  # the tiling sees plain maps; the coded level moves them coded
        r = (op.weight_bytes * wp if lvl <= op.weight_home else 0.0)
        r += op.input_bytes * ip * (op.input_coded if coded else 1.0) if lvl <= op.input_home else 0.0
        wr = op.output_bytes * (op.output_coded if coded else 1.0) if lvl <= op.output_home else 0.0
        if splits > 1 and lvl <= op.output_home:
            r += op.psum_bytes * (splits - 1)
            wr += op.psum_bytes * (splits - 1)
        reads.append(r)
        writes.append(wr)
    return reads, writes


def scratchpad_traffic(macs: float, gated: float, act_bytes: float, weight_bytes: float, psum_bytes: float
                       ) -> tuple[float, float]:
    """(read, write) bytes of a row-stationary PE array's scratchpads: every MAC reads its activation and its
    weight there and reads and writes back its partial sum (Chen et al. ISCA'16 Sec. V energy model: the
    1-D row primitive reuses each operand from the PE's register file, one access per operand per MAC); a MAC
    gated on a zero activation (fraction ``gated``) reads the activation only (JSSC'17 Sec. V-C: data gating
    skips the filter read and the MAC)."""
    live = macs * (1.0 - gated)
    return macs * act_bytes + live * (weight_bytes + psum_bytes), live * psum_bytes


def stream_traffic(n_levels: int, reads: list[tuple[float, int]], writes: list[tuple[float, int]]
                   ) -> tuple[list[float], list[float]]:
    """Streaming ops: each (bytes, home) is read (written) once at every level up to its home."""
    r = [sum(b for b, h in reads if lvl <= h) for lvl in range(n_levels)]
    w = [sum(b for b, h in writes if lvl <= h) for lvl in range(n_levels)]
    return r, w


def home_level(nbytes: float, sizes: list[float | None]) -> int:
    """Innermost level that holds ``nbytes`` (the last level holds anything)."""
    for i, s in enumerate(sizes):
        if s is None or nbytes <= s:
            return i
    return len(sizes) - 1
