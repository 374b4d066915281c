"""Mixed-precision and pruning planning under hardware budgets.

- :func:`mckp` -- exact multiple-choice knapsack with several budgets (MILP, HiGHS).
"""

from hwsim.solve.mckp import MCKPResult, mckp

__all__ = ["MCKPResult", "mckp"]
