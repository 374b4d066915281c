"""Shared pieces of the per-op cost functions: the context, the registry, and turning work into a row.

A cost function takes ``(op, ctx)`` and returns a :class:`~hwsim.cost.report.LayerCost`; it is
pure (reads the graph, the target and cached statistics only). Register one per op kind with
``@register_cost("conv2d")``; :data:`COSTS` must cover :data:`hwsim.graph.ops.OP_CLASSES`.

latency = max(compute_s, transfer_s of every level, dynamic energy / (power_cap_w - busy power))
          + target.layer_overhead_s (elementwise_overhead_s for non-MAC layers, convolution_overhead_s for
          convolutions, where set) per kernel the layer launches + the kernel's fixed time (depthwise_overhead_s) + the separate
          conversion nodes the runtime runs for it (qdq_nodes)
energy  = arithmetic + decode + memory + busy power x latency, where busy power = idle_power_w
          + (static_power_w - idle_power_w) x occupancy (the fraction of cores the layer's kernel holds,
          :func:`hwsim.cost.unit.occupancy`; held from launch to tail) and
          memory = sum over levels (read bits x read pJ/bit + written bits x write pJ/bit), itemised per
          level apart from the other components (a level may be called 'mac' or 'static')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from hwsim.cost.report import LayerCost
from hwsim.graph.ir import Graph
from hwsim.graph.ops import OpBase
from hwsim.targets.schema import NON_MEMORY_BOTTLENECKS, Target

CostFn = Callable[[OpBase, "Ctx"], LayerCost]
#: op kind -> cost function
COSTS: dict[str, CostFn] = {}


def register_cost(kind: str) -> Callable[[CostFn], CostFn]:
    """Decorator: the cost function of op kind ``kind``."""
    def deco(fn: CostFn) -> CostFn:
        if kind in COSTS:
            raise ValueError(f"cost of op kind {kind!r} registered twice")
        COSTS[kind] = fn
        return fn
    return deco


@dataclass
class Ctx:
    """What a cost function may read: graph, target, per-call caches."""

    graph: Graph
    target: Target
    weight_home: int
    kv_home: int
    streamed: set[str]
    stats: Callable[[OpBase], object | None]
    capacities: list[float] = field(default_factory=list)
    sizes: list[float | None] = field(default_factory=list)
    level_names: list[str] = field(default_factory=list)
    byte_cache: dict[str, float] = field(default_factory=dict)
    roles: dict[str, str] | None = None

    def __post_init__(self):
        t = self.target
        self.sizes = [m.size_bytes for m in t.memory]
        self.level_names = [m.name for m in t.memory]
        self.capacities = [t.compute.register_bytes] + [float(s) for s in self.sizes[:-1]]

    def nbytes(self, tensor: str) -> float:
        """Bytes of ``tensor`` at its format (memoised in ``byte_cache``, which may outlive this Ctx)."""
        b = self.byte_cache.get(tensor)
        if b is None:
            t = self.graph.tensors[tensor]
            b = self.byte_cache[tensor] = t.numel * t.quant.bits / 8.0
        return b

    @property
    def coded_level(self) -> int:
        """Index of the level that stores activations run-length coded (features.fmap_coding), -1 if none."""
        coding = self.target.features.fmap_coding
        return -1 if coding is None else self.level_names.index(coding.level)

    def attention_role(self, op: OpBase) -> str | None:
        """Role of ``op`` in a fused attention kernel ("qk", "inner", "av"; :mod:`hwsim.cost.fusion`), None when
        the target does not fuse attention or ``op`` is in no attention chain."""
        if not self.target.compute.fused_attention:
            return None
        if self.roles is None:
            from hwsim.cost.fusion import attention_roles

            self.roles = attention_roles(self.graph)
        return self.roles.get(op.name)

    def activation_home(self, nbytes: float) -> int:
        from hwsim.cost.traffic import home_level

        return home_level(nbytes, self.sizes)

    def home_of(self, tensor: str, working_set: float) -> int:
        """Home level of an activation: streamed KV data lives innermost, others where they fit."""
        return 0 if tensor in self.streamed else self.activation_home(working_set)


@dataclass
class Work:
    """What an op does, before it is priced into time and energy."""

    macs: int = 0
    executed_ops: float = 0.0
    compute_s: float = 0.0
    arith_pj: float = 0.0
    decode_pj: float = 0.0
    reads: list[float] | None = None
    writes: list[float] | None = None
    utilization: float = 1.0
    formats: str = ""
    density: float = 1.0
    note: str = ""
    overhead: bool = True
    elementwise: bool = False
    convolution: bool = False
    occupancy: float = 1.0
    fixed_s: float = 0.0              # the kernel's own fixed time beyond the per-layer overhead (depthwise_overhead_s)
    extra_s: float = 0.0              # separate runtime nodes the layer brings along (qdq_nodes), overheads included
    extra_reads: list[float] | None = None   # their bytes per level (energy; their time is extra_s)
    extra_writes: list[float] | None = None
    kernels: int = 1


def busy_power_w(t: Target, occupancy: float) -> float:
    """Power beyond the dynamic energy while a layer occupying ``occupancy`` of the cores runs, W: the idle
    floor plus that fraction of the cores' active power."""
    idle_w = t.static_power_w if t.idle_power_w is None else t.idle_power_w
    return idle_w + (t.static_power_w - idle_w) * occupancy


def throttle(t: Target, busy_s: float, bottleneck: str, dynamic_j: float,
             occupancy: float = 1.0) -> tuple[float, str]:
    """(busy time, bottleneck) after the power cap: dynamic power above ``power_cap_w`` less the busy power
    (:func:`busy_power_w`) lowers the clock, which stretches the busy time until the power fits (the
    energy is unchanged)."""
    if t.power_cap_w is None or busy_s <= 0:
        return busy_s, bottleneck
    capped = dynamic_j / (t.power_cap_w - busy_power_w(t, occupancy))
    return (capped, NON_MEMORY_BOTTLENECKS[1]) if capped > busy_s else (busy_s, bottleneck)


def layer_overhead(t: Target, work: Work) -> float:
    """Fixed time ``work`` pays per layer (launch and tail of each of its ``kernels``), s."""
    if not work.overhead:
        return 0.0
    if work.elementwise and t.elementwise_overhead_s is not None:
        return t.elementwise_overhead_s * work.kernels
    if work.convolution and t.convolution_overhead_s is not None:
        return t.convolution_overhead_s * work.kernels
    return t.layer_overhead_s * work.kernels


def level_energy_j(t: Target, reads, writes) -> dict[str, float]:
    """Access energy per memory level of ``reads`` / ``writes`` (bytes per level), J."""
    return {m.name: 8e-12 * (reads[i] * m.read_energy_pj_per_bit + writes[i] * m.write_energy_pj_per_bit)
            for i, m in enumerate(t.memory)}


def finish(op: OpBase, ctx: Ctx, work: Work) -> LayerCost:
    """Price ``work``: transfer times, latency, bottleneck and the energy breakdown."""
    t = ctx.target
    n = len(t.memory)
    reads = work.reads or [0.0] * n
    writes = work.writes or [0.0] * n
    transfer = {m.name: (reads[i] + writes[i]) / m.bandwidth_bytes_per_s for i, m in enumerate(t.memory)}
    bound, bottleneck = work.compute_s, NON_MEMORY_BOTTLENECKS[0]
    for name, s in transfer.items():
        if s > bound:
            bound, bottleneck = s, name
    er, ew = work.extra_reads or [0.0] * n, work.extra_writes or [0.0] * n
    levels = level_energy_j(t, [a + b for a, b in zip(reads, er)], [a + b for a, b in zip(writes, ew)])
    energy = {"mac": work.arith_pj * 1e-12, "decode": work.decode_pj * 1e-12, "memory": sum(levels.values())}
    bound, bottleneck = throttle(t, bound, bottleneck, sum(energy.values()), work.occupancy)
    overhead = layer_overhead(t, work)
    latency = bound + overhead + work.fixed_s + work.extra_s
    # the idle floor plus the occupied cores' active power, for the kernel's whole time (launch and tail too)
    energy["static"] = busy_power_w(t, work.occupancy) * latency
    return LayerCost(
        name=op.name, op=op.op, macs=work.macs, executed_ops=work.executed_ops, latency_s=latency,
        energy_j=sum(energy.values()), bottleneck=bottleneck, utilization=work.utilization,
        compute_s=work.compute_s, transfer_s=transfer,
        bytes={m.name: reads[i] + writes[i] + er[i] + ew[i] for i, m in enumerate(t.memory)},
        energy_breakdown_j=energy, memory_energy_j=levels, formats=work.formats, weight_density=work.density, note=work.note)
