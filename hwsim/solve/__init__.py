"""Mixed-precision and pruning planning under hardware budgets.

- :func:`solve` -- per-layer weight format, activation format and pruning minimising summed
  sensitivity under budgets (latency_s, energy_j, size_bytes, bops), verified by re-estimating.
- :func:`pareto` -- plans along one budget; :func:`tables` -- the sensitivity and cost tables.
- :func:`mckp` -- exact multiple-choice knapsack with several budgets (MILP, HiGHS).

Call it as ``hwsim.solve.solve(model, target, budgets)``. The names below resolve on first use
(a plain module ``__getattr__``), so ``import hwsim.solve.choices`` does not load the simulator.
"""

import importlib

#: public name -> submodule that defines it
_WHERE = {"Tables": "api", "pareto": "api", "plan_from": "api", "solve": "api", "tables": "api",
          "Choice": "choices", "choices_for": "choices", "parse_choices": "choices", "target_choices": "choices",
          "MCKPResult": "knapsack", "mckp": "knapsack", "Plan": "plan", "PlanLayer": "plan"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'hwsim.solve' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hwsim.solve.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
