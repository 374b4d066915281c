"""Mixed-precision and pruning planning under hardware budgets.

- :func:`solve` -- per-layer weight format, activation format and pruning minimising summed
  sensitivity under budgets (latency_s, energy_j, size_bytes, bops), verified by re-estimating.
- :func:`pareto` -- plans along one budget; :func:`tables` -- the sensitivity and cost tables.
- :func:`mckp` -- exact multiple-choice knapsack with several budgets (MILP, HiGHS).

The package itself is callable: ``hwsim.solve(model, target, budgets)`` is :func:`solve`, so the
top-level API reads naturally while ``hwsim.solve.mckp`` and ``import hwsim.solve.costs`` keep
working (a function bound to ``hwsim.solve`` would hide the subpackage).
"""

import sys as _sys
import types as _types

from hwsim.solve.api import Tables, pareto, plan_from, solve, tables
from hwsim.solve.choices import Choice, choices_for, parse_choices, target_choices
from hwsim.solve.knapsack import MCKPResult, mckp
from hwsim.solve.plan import Plan, PlanLayer

__all__ = ["Choice", "MCKPResult", "Plan", "PlanLayer", "Tables", "choices_for", "mckp", "parse_choices",
           "pareto", "plan_from", "solve", "tables", "target_choices"]


class _CallablePackage(_types.ModuleType):
    """``hwsim.solve(...)`` calls :func:`hwsim.solve.solve`."""

    def __call__(self, *args, **kwargs):
        return solve(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
