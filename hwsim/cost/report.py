"""Typed results of :func:`hwsim.estimate`: one :class:`LayerCost` per op, totals, JSON."""

from __future__ import annotations

import json

from pydantic import Field

from hwsim.cost.area import AreaReport
from hwsim.records import Record


#: keys of every energy_breakdown_j, in report order; memory levels are itemised in memory_energy_j
ENERGY_COMPONENTS = ("mac", "decode", "memory", "static")


class LayerCost(Record):
    """Cost of one op on one target."""

    name: str = Field(description="Op name.")
    op: str = Field(description="Op kind (conv2d, linear, matmul, kv_cache_read, ...).")
    macs: int = Field(description="Multiply-accumulates of the op as the IR counts them.")
    executed_ops: float = Field(description="MAC-equivalent operations actually executed after zero-skipping, "
                                            "N:M and repetition reuse (= macs on a dense unit).")
    latency_s: float = Field(description="max(compute_s, every transfer_s) + per-layer overhead, s.")
    energy_j: float = Field(description="Sum of energy_breakdown_j, J.")
    bottleneck: str = Field(description="'compute' or the name of the memory level that sets latency.")
    utilization: float = Field(description="Fraction of the unit's MAC slots doing useful work (mapping).")
    compute_s: float = Field(description="Compute time including decode/unpack work, s.")
    transfer_s: dict[str, float] = Field(description="Transfer time per memory level, s.")
    bytes: dict[str, float] = Field(description="Bytes read + written per memory level.")
    energy_breakdown_j: dict[str, float] = Field(
        description="Components, always the keys of ENERGY_COMPONENTS: 'mac' (arithmetic), 'decode' (unpack / "
                    "table look-ups), 'memory' (all levels, = sum of memory_energy_j), 'static'.")
    memory_energy_j: dict[str, float] = Field(
        description="Energy per memory level (read + write), J; kept apart from energy_breakdown_j so a level "
                    "may have any name.")
    formats: str = Field(description="Formats the unit ran, e.g. 'int8 x int4 -> int32'; '' for non-MAC ops.")
    weight_density: float = Field(1.0, description="Fraction of non-zero weights (1 when not measured).")
    note: str = Field("", description="Fallbacks and assumptions that apply to this op.")

    @property
    def arithmetic_intensity(self) -> float:
        """MACs x 2 per byte of the outermost level moved (ops/byte), for the roofline."""
        outer = list(self.bytes.values())[-1] if self.bytes else 0.0
        return 2 * self.macs / outer if outer else float("inf")


class CostTotal(Record):
    """Sums over the layers."""

    latency_s: float = Field(description="Sum of layer latencies, s (layers run one after another).")
    energy_j: float = Field(description="Sum of layer energies, J.")
    macs: int = Field(description="Total MACs.")
    weight_bytes: float = Field(description="Stored weight bytes at their formats (scales included).")
    energy_breakdown_j: dict[str, float] = Field(description="Energy per component (ENERGY_COMPONENTS) summed "
                                                             "over layers, J.")
    memory_energy_j: dict[str, float] = Field(description="Energy per memory level summed over layers, J.")


class CostReport(Record):
    """What :func:`hwsim.estimate` returns."""

    model: str = Field(description="Model name.")
    target: str = Field(description="Target name.")
    total: CostTotal
    layers: tuple[LayerCost, ...]
    notes: tuple[str, ...] = Field((), description="Report-wide notes (default formats, synthetic weights).")
    area: AreaReport | None = Field(None, description="Silicon area by part (hwsim.cost.area), for targets "
                                                      "that describe a chip; None otherwise.")

    def to_json(self) -> dict:
        """The documented JSON shape: model, target, total, layers (each with energy_breakdown_j), notes,
        and area (mm^2 by part) for targets that describe a chip."""
        return {
            "model": self.model, "target": self.target,
            "total": self.total.model_dump(),
            "layers": [layer.model_dump() for layer in self.layers],
            "notes": list(self.notes),
            **({"area": self.area.model_dump()} if self.area is not None else {}),
        }

    def dumps(self, indent: int | None = None) -> str:
        return json.dumps(self.to_json(), indent=indent)

    def layer(self, name: str) -> LayerCost:
        """The row of op ``name``."""
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(f"no layer named {name!r} in the report of {self.model}")
