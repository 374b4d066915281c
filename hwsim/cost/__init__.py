"""Cost model: gate-level MAC energy (:mod:`hwsim.cost.arith`), memory traffic per level, latency
with the bottleneck named, data-dependent savings, and :func:`estimate` returning a CostReport."""

from hwsim.cost.arith import GateCount, mac_energy_pj, mac_gates
from hwsim.cost.estimate import estimate
from hwsim.cost.layer import COSTS, register_cost
from hwsim.cost.report import CostReport, CostTotal, LayerCost

__all__ = ["estimate", "CostReport", "CostTotal", "LayerCost", "GateCount", "mac_gates", "mac_energy_pj",
           "COSTS", "register_cost"]
