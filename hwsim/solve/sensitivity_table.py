"""The sensitivity table every metric fills: one value per (layer, choice), lower is better.

Metrics: ``output_mse`` and ``task_loss`` are simulated (:mod:`hwsim.solve.output_error`);
``proxy`` is estimated from statistics without simulation (:mod:`hwsim.solve.proxy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from hwsim.solve.choices import Choice

Metric = Literal["output_mse", "task_loss", "proxy"]
METRICS = ("output_mse", "task_loss", "proxy")

#: how simulated output_mse reaches the outputs: every layer's descendants run (``exact``), or
#: most values are scaled from the error at the next cut of the graph (``cut``,
#: :mod:`hwsim.solve.cut_gain`), or each layer's choices are scaled from one exact choice by the
#: layer's own gain (``gain``, :mod:`hwsim.solve.layer_gain`); ``cut`` and ``gain`` are estimates
Tails = Literal["exact", "cut", "gain"]
TAILS = ("exact", "cut", "gain")

#: progress callback: ``(done, total, what)`` after each (layer, choice) is measured or read
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SensitivityTable:
    """Values of one metric for every (layer, choice); lower is better.

    Attributes
    ----------
    layers : list of str
        Layer (op) names, rows.
    choices : list of Choice
        Columns.
    values : numpy.ndarray, shape (L, C)
        Metric value; ``inf`` where the choice does not apply to the layer.
    metric : str
    notes : list of str
    measured_s : float
        Wall time of the measurement, s.
    cache_hits : int
        Values read from the sensitivity cache instead of simulated.
    """

    layers: list[str]
    choices: list[Choice]
    values: np.ndarray
    metric: str
    notes: list[str] = field(default_factory=list)
    measured_s: float = 0.0
    cache_hits: int = 0
