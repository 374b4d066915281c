"""The compute unit: which MAC rate a format pair runs at, its utilisation per layer shape, its energy.

A pair the unit does not support runs on the nearest supported pair that represents both operands
(int4 weights on an int8 unit, ternary on int2+, VQ on int8 centroids) and pays the unpacking of
sub-byte fields or the table look-ups of codebook formats (:func:`decode_cycles_per_weight`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from hwsim import formats
from hwsim.cost import arith
from hwsim.targets.schema import MacRate, Target

def _covers(have: str, need: str) -> float | None:
    """Excess bits if format ``have`` represents every value of ``need`` exactly, else None."""
    if have == need:
        return 0.0
    return formats.get(have).covers(formats.get(need))


@functools.lru_cache(maxsize=1024)
def select_rate(rates: tuple[MacRate, ...], act: str, weight: str) -> tuple[MacRate, bool]:
    """(rate used, exact) for a pair: exact match, else the cheapest covering pair, else the widest."""
    best, best_key = None, None
    for r in rates:
        ca, cw = _covers(r.activation, act), _covers(r.weight, weight)
        if ca is None or cw is None:
            continue
        # an exact pair wins over an equally exact-valued one (uint8 with a zero point holds int8's 256 values)
        key = (ca + cw, (r.activation, r.weight) != (act, weight), -r.macs_per_cycle)
        if best_key is None or key < best_key:
            best, best_key = r, key
    if best is not None:
        return best, best_key[0] == 0 and best.activation == act and best.weight == weight
    widest = max(rates, key=lambda r: (formats.get(r.activation).bits + formats.get(r.weight).bits,
                                       r.macs_per_cycle))
    return widest, False


def represents(rate: MacRate, act: str, weight: str) -> bool:
    """Whether ``rate``'s operand formats hold every value of ``act`` and ``weight`` (a covering
    fallback), as opposed to the widest pair taken when none does."""
    return _covers(rate.activation, act) is not None and _covers(rate.weight, weight) is not None


def decode_cycles_per_weight(target: Target, weight: str, rate: MacRate) -> float:
    """Extra core cycles per weight element read, to turn stored codes into the unit's operand.

    VQ: one table look-up per element (a table per vector dimension), times the number of
    ``lut_table_entries``-sized tables the codebook spans. Sub-byte integers and discrete codes
    stored narrower than the unit's weight format: one unpack per element. Otherwise 0.
    """
    cu = target.compute
    f = formats.get(weight)
    if f.codebook_entries:
        return math.ceil(f.codebook_entries / cu.lut_table_entries) / cu.lut_lookups_per_cycle
    if weight != rate.weight and f.bits_per_element < formats.get(rate.weight).bits:
        return 1.0 / cu.unpack_weights_per_cycle
    return 0.0


def decode_energy_pj(target: Target, weight: str, rate: MacRate) -> float:
    """Energy per weight element of :func:`decode_cycles_per_weight` work, pJ (gate model)."""
    f = formats.get(weight)
    if decode_cycles_per_weight(target, weight, rate) == 0:
        return 0.0
    if f.codebook_entries:  # read a table entry of 8 bits from registers: a 2^B-input mux tree per bit
        gates = 8 * (f.codebook_entries - 1) * arith.MUX2
    else:
        gates = arith.unpack_gates(max(1, int(round(f.bits_per_element))))
    return gates * gate_energy_fj(target) * 1e-3


def gate_energy_fj(target: Target) -> float:
    """Energy per gate at the target, fJ (the target's override or the Horowitz calibration)."""
    return target.energy_per_gate_fj or arith.energy_per_gate_fj(target.technology_nm)


def mac_arith_energy_pj(target: Target, activation: str, weight: str, accumulator: str) -> float:
    """Arithmetic energy of one MAC (gate model x the target's gate energy), pJ; no overhead."""
    return arith.mac_gates(activation, weight, accumulator).total * gate_energy_fj(target) * 1e-3


def unit_mac_energy_pj(target: Target, rate: MacRate) -> float:
    """Energy of one MAC on the unit running ``rate``'s pair, plus the unit's per-MAC overhead, pJ
    (the measured ``energy_per_mac_pj`` of the pair where the target has one)."""
    if rate.energy_per_mac_pj is not None:
        return rate.energy_per_mac_pj
    return mac_arith_energy_pj(target, rate.activation, rate.weight, rate.accumulator) + target.compute.mac_overhead_pj


def accumulator_bits(rate: MacRate) -> int:
    """Width of the accumulator register of ``rate`` (fx: product bits + 12)."""
    if rate.accumulator == "fx":
        g = arith.mac_gates(rate.activation, rate.weight, "fx")
        return int(g.normalize_accumulate // arith.FF)
    return formats.get(rate.accumulator).bits


@dataclass(frozen=True)
class DotShape:
    """A dot-product layer as the unit sees it: ``groups`` independent (m x k) @ (k x n) products."""

    m: int
    n: int
    k: int
    groups: int = 1
    kernel_h: int = 1
    out_h: int = 1
    convolution: bool = False
    inner: int = 0  # contiguous run of the reduction in memory (k of a linear layer; 0 = not checked)


def op_efficiency(target: Target, rate: MacRate, op_kind: str, depthwise: bool, pointwise: bool = False,
                  attention: bool = False) -> float:
    """Fraction of ``rate``'s peak the kernel library reaches on this op class: depthwise convolutions
    take ``depthwise_efficiency``, 1x1 dense ones ``pointwise_efficiency``, other convolutions
    ``conv_efficiency``, the products of a fused attention ``attention_efficiency``, GEMMs and the rest
    ``efficiency`` (each falling back to ``conv_efficiency``, that to ``efficiency``, then to the unit's
    efficiency)."""
    base = rate.efficiency or target.compute.efficiency
    if attention:
        return rate.attention_efficiency or base
    if op_kind != "conv2d":
        return base
    conv = rate.conv_efficiency or base
    if depthwise:
        return rate.depthwise_efficiency or conv
    return (rate.pointwise_efficiency or conv) if pointwise else conv


def _fold(x: int, width: int) -> float:
    """Fraction of ``ceil(x / width)`` passes of ``width`` lanes doing work."""
    return x / (math.ceil(x / width) * width)


def _ws_groups_fill(s: DotShape, r: int, c: int) -> float:
    """Fraction of a weight-stationary array's r x c weights in use for ``s``.

    Groups whose (k x n) weight block fits the array several times are placed block-diagonally, as
    many per pass as fit on disjoint rows and columns: each column then sums only its own group's
    rows (the other rows hold zeros), so a depthwise 3x3 fills 7 blocks of 9 x 1 on 64 x 64 instead
    of one. Published evidence that WS-class NPUs do at least this: the Edge TPU (64 x 64) runs
    MobileNet v2 in 2.6 ms (coral.ai benchmarks), while one 9 x 1 block per pass would spend about
    7 ms in the depthwise layers alone.
    """
    per_pass = min(r // s.k, c // s.n) if s.groups > 1 else 1
    if per_pass <= 1:
        return _fold(s.k, r) * _fold(s.n, c)
    passes = math.ceil(s.groups / per_pass)
    return s.groups * s.k * s.n / (passes * r * c)


def _vector_tiles(target: Target, s: DotShape) -> tuple[float, int]:
    """(fraction of each tile's MAC slots holding work, tiles after split-K) of the vector mapping."""
    cu = target.compute
    tiles = s.groups * math.ceil(s.m / cu.tile_rows) * math.ceil(s.n / cu.vector_macs)
    fill = s.m * s.n * s.groups / (tiles * cu.tile_rows * cu.vector_macs)
    if cu.split_k_depth and tiles < cu.cores:  # split the reduction over otherwise idle cores
        tiles *= max(1, min(cu.cores // tiles, s.k // cu.split_k_depth))
    return fill, tiles


#: layer note of a GEMM or convolution whose operand rows miss the unit's alignment (hwsim.fidelity reads it)
UNALIGNED_NOTE = "operand rows not a multiple of alignment_bytes: runs at unaligned_efficiency"


def misaligned(target: Target, s: DotShape, act_bits: float, weight_bits: float) -> bool:
    """Whether a weight-bearing GEMM (a linear layer) has an operand row -- its reduction ``inner`` or its
    ``n`` output channels, at the operands' widths -- that is not a multiple of the unit's ``alignment_bytes``
    (vector mapping with unaligned_efficiency only). Convolutions are left out: cuDNN's 3-channel image
    stems and patch embeddings measured far apart (8x slow and on rate), which one factor cannot hold."""
    cu = target.compute
    if cu.mapping != "vector" or cu.unaligned_efficiency is None or s.convolution or not s.inner:
        return False
    rows = (s.inner * act_bits / 8, s.inner * weight_bits / 8, s.n * act_bits / 8)
    return any(r % cu.alignment_bytes for r in rows)


#: layer note of a convolution moved off the matrix units by unaligned input channels
NARROW_CONV_NOTE = "input channels miss alignment_bytes: runs on the fp32 lanes (unaligned_conv_on_fp32)"


def narrow_conv_rate(target: Target, s: DotShape, channels: int, act_bits: float):
    """The fp32 x fp32 rate a groups-1 convolution with ``channels`` input channels (one tap's reduction run,
    at ``act_bits``) off ``alignment_bytes`` runs at where the target sets ``unaligned_conv_on_fp32``; else
    None."""
    cu = target.compute
    if not (cu.unaligned_conv_on_fp32 and cu.mapping == "vector" and s.convolution and s.groups == 1):
        return None
    if channels * act_bits / 8 % cu.alignment_bytes == 0:
        return None
    rate, exact = select_rate(cu.rates, "fp32", "fp32")
    return rate if exact else None


def occupancy(target: Target, s: DotShape) -> float:
    """Fraction of the cores working, averaged over the waves of tiles (vector mapping; 1 otherwise):
    what scales the cores' active power (:func:`hwsim.cost.layer.finish`)."""
    if target.compute.mapping != "vector":
        return 1.0
    _, tiles = _vector_tiles(target, s)
    cores = target.compute.cores
    return tiles / (math.ceil(tiles / cores) * cores)


def utilization(target: Target, s: DotShape) -> float:
    """Fraction of MAC slots doing useful work for shape ``s`` under the unit's mapping."""
    cu = target.compute
    if cu.mapping == "simd":
        lanes = _fold(s.n * s.groups, cu.vector_macs) if s.groups > 1 else _fold(s.n, cu.vector_macs)
        tiles = math.ceil(s.m / cu.tile_rows) * math.ceil(s.n * s.groups / cu.vector_macs)
        return lanes * tiles / (math.ceil(tiles / cu.cores) * cu.cores)
    if cu.mapping == "vector":
        fill, _ = _vector_tiles(target, s)
        return fill * occupancy(target, s)
    r, c = cu.rows, cu.cols
    if cu.dataflow == "weight_stationary":
        return _ws_groups_fill(s, r, c) * s.m / (s.m + r + c)
    if cu.dataflow == "output_stationary":
        return _fold(s.m, r) * _fold(s.n, c) * s.k / (s.k + r + c)
    kh = min(s.kernel_h, r)  # row stationary: filter rows on PE rows (replicated), output rows on columns
    return kh * (r // kh) / r * _fold(s.out_h, c)
