"""Silicon area of a target that describes a chip: MAC array, PE registers, on-chip SRAM, the rest.

- MAC array: the gate model of :mod:`hwsim.cost.arith` (2-input gate equivalents per MAC) times the
  MACs the unit issues per cycle, for the pair that needs the most gates (assumption: every pair
  the unit supports runs on one shared datapath, so the largest mode sets its size), plus the
  unit's ``register_bytes`` as flip-flops. Gates become mm^2 through a gate area per node.
- Gate area: Horowitz, ISSCC 2014, 45 nm: an 8-bit multiply is 282 um^2 and a 32-bit add 137 um^2;
  in the gate model they are 428 and 220 gates, and the least-squares fit gives
  :data:`GATE_AREA_45NM_UM2` (both within 5%). Other nodes scale with the SRAM bitcell area of the
  node (assumption: logic density tracks bitcell density across these nodes).
- SRAM: the levels a target lists in ``area.sram_levels``, ``size_bytes x 8`` bitcells of the
  node's published 6T high-density bitcell area (:data:`BITCELL_UM2`), divided by the array
  efficiency of a compiled macro (:data:`SRAM_ARRAY_EFFICIENCY`) for decoders, sense amplifiers
  and I/O. Between tabulated nodes the bitcell area is interpolated log-log; outside them it is
  scaled as node^2 from the nearest one (assumption).
- The rest (vector unit, control, DMA, PHYs): the target's ``area.other_mm2``, cited or assumed there.
"""

from __future__ import annotations

import math

from pydantic import Field

from hwsim.cost import arith
from hwsim.records import Record

#: least-squares fit of Horowitz's 45 nm areas (int8 multiply 282 um^2, int32 add 137 um^2) to the gate model
GATE_AREA_45NM_UM2 = (428 * 282.0 + 220 * 137.0) / (428 ** 2 + 220 ** 2)

#: node (nm) -> (6T high-density SRAM bitcell area in um^2, source)
BITCELL_UM2: dict[float, tuple[float, str]] = {
    65: (0.570, "Intel 65 nm, Bai et al., IEDM 2004"),
    45: (0.346, "Intel 45 nm, Mistry et al., IEDM 2007"),
    32: (0.171, "Intel 32 nm, Natarajan et al., IEDM 2008"),
    22: (0.092, "Intel 22 nm, Auth et al., VLSI 2012"),
    16: (0.070, "TSMC 16 nm FinFET, Wu et al., IEDM 2013"),
    14: (0.0588, "Intel 14 nm, Natarajan et al., IEDM 2014"),
    10: (0.0312, "Intel 10 nm, Auth et al., IEDM 2017"),
    7: (0.027, "TSMC 7 nm, Wu et al., IEDM 2016"),
    5: (0.021, "TSMC 5 nm, Yeap et al., IEDM 2019"),
}
#: assumption: bitcells fill 60% of a compiled SRAM macro (typical macros reach 50-75%)
SRAM_ARRAY_EFFICIENCY = 0.6


class AreaReport(Record):
    """Area of a chip target, mm^2, by part."""

    mac_array_mm2: float = Field(description="MAC datapaths (gate model x gate area).")
    registers_mm2: float = Field(description="The unit's register_bytes as flip-flops.")
    sram_mm2: float = Field(description="On-chip SRAM levels (bitcells / array efficiency).")
    other_mm2: float = Field(description="The target's fixed rest (area.other_mm2).")
    area_mm2: float = Field(description="Sum of the parts.")
    gate_area_um2: float = Field(description="Area of one 2-input gate equivalent at the node, um^2.")


def bitcell_um2(technology_nm: float) -> float:
    """6T SRAM bitcell area at ``technology_nm``, um^2 (table, log-log interpolation, node^2 outside)."""
    nodes = sorted(BITCELL_UM2)
    if technology_nm in BITCELL_UM2:
        return BITCELL_UM2[technology_nm][0]
    if technology_nm < nodes[0] or technology_nm > nodes[-1]:
        ref = nodes[0] if technology_nm < nodes[0] else nodes[-1]
        return BITCELL_UM2[ref][0] * (technology_nm / ref) ** 2
    hi = min(n for n in nodes if n > technology_nm)
    lo = max(n for n in nodes if n < technology_nm)
    f = math.log(technology_nm / lo) / math.log(hi / lo)
    return math.exp(math.log(BITCELL_UM2[lo][0]) * (1 - f) + math.log(BITCELL_UM2[hi][0]) * f)


def gate_area_um2(technology_nm: float) -> float:
    """Area of one 2-input gate equivalent, um^2 (Horowitz 45 nm fit scaled with the bitcell)."""
    return GATE_AREA_45NM_UM2 * bitcell_um2(technology_nm) / bitcell_um2(45)


def mac_array_gates(target) -> float:
    """Gate equivalents of the MAC datapaths: the largest (rate x gates per MAC) over the pairs, all cores."""
    cu = target.compute
    return cu.cores * max(r.macs_per_cycle * arith.mac_gates(r.activation, r.weight, r.accumulator).total
                          for r in cu.rates)


def sram_mm2(size_bytes: float, technology_nm: float) -> float:
    """Area of an SRAM of ``size_bytes`` at the node, mm^2."""
    return size_bytes * 8 * bitcell_um2(technology_nm) / SRAM_ARRAY_EFFICIENCY * 1e-6


def area(target) -> AreaReport | None:
    """Area of ``target`` by part, or None when the target does not describe silicon (no ``area:``)."""
    spec = target.area
    if spec is None:
        return None
    node = target.technology_nm
    gate = gate_area_um2(node)
    mac = mac_array_gates(target) * gate * 1e-6
    regs = target.compute.cores * target.compute.register_bytes * 8 * arith.FF * gate * 1e-6
    levels = {m.name: m for m in target.memory}
    sram = sum(sram_mm2(levels[name].size_bytes, node) for name in spec.sram_levels)
    return AreaReport(mac_array_mm2=mac, registers_mm2=regs, sram_mm2=sram, other_mm2=spec.other_mm2,
                      area_mm2=mac + regs + sram + spec.other_mm2, gate_area_um2=gate)
