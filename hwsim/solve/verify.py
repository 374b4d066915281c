"""Whole plans simulated: the error a plan's summed sensitivities predict, measured.

The solver minimises the *sum* of per-layer sensitivities, each measured with only that layer
quantized and the rest of the model in float. A whole plan runs every layer at its choice
together, and it also quantizes the tensors no solver layer chooses (norm and softmax inputs,
the attention products, the residual stream: the plan's defaults), which no sensitivity sees.
Where that matters the sum mispredicts the plan. Measured case (MiniLM-L6, sequence 128,
int8-npu, 8 synthetic samples): with those tensors at int16, the attention product softmax @ V
multiplies int16 by int16 codes and its int32 accumulators overflow (5.7% of them in layer 2,
93% in layer 5, where attention is flat and the softmax's per-tensor scale small), so every
such plan simulated to an output MSE of about 1.37 whatever its layers, while the sum predicted
0.001; at int8 the same budget's plan simulated to 0.0042.

:class:`PlanMeter` simulates a plan as a whole, bit-accurately (:func:`hwsim.sim.run`), on the
calibration samples the sensitivities were measured on, with the same metric, reusing their
float reference. :func:`hwsim.solve.plan.solve_tables` uses it to choose among plans that meet
every budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.graph.annotate import QuantConfig, apply_config
from hwsim.graph.ir import Graph
from hwsim.solve.data import CalibData


@dataclass
class PlanMeter:
    """Simulates whole plans on the calibration samples (see module docstring).

    Attributes
    ----------
    graph : Graph
        The model built for the samples, with its weights (as the sensitivities were measured).
    data : CalibData
        The calibration samples.
    metric : str
        ``output_mse`` or ``task_loss`` (what :func:`hwsim.solve.output_error.measure` scores).
    seed : int
        Seed of the simulator (stochastic rounding, KV caches).
    memory_limit_bytes : int, optional
        As :func:`hwsim.sim.run` (default: the memory available now); a plan that would need more
        raises :class:`hwsim.errors.MemoryLimitError` before anything is allocated.
    """

    graph: Graph
    data: CalibData
    metric: str
    seed: int = 0
    memory_limit_bytes: int | None = None
    _reference: object = field(default=None, repr=False)
    _errors: dict = field(default_factory=dict, repr=False)

    def reference(self, into: dict | None = None) -> dict[str, np.ndarray]:
        """Float reference values of every tensor on the samples (computed once, on first use;
        ``into`` as :func:`hwsim.solve.output_error.float_values`)."""
        return self._float(into).values

    def _float(self, into: dict | None = None):
        from hwsim.sim.runner import FloatCache
        from hwsim.solve.output_error import float_values

        if self._reference is None:
            self._reference = FloatCache(values=float_values(self.graph, self.data, self.seed, into)[1], inputs={})
        return self._reference

    def error(self, config: QuantConfig, target_scope: str) -> float:
        """The metric of the whole model under ``config`` (as priced with ``target_scope``);
        ``inf`` where its outputs are not finite. Each distinct config is simulated once."""
        from hwsim import sim
        from hwsim.solve.output_error import score

        key = (config.model_dump_json(), target_scope)
        if key not in self._errors:
            g = apply_config(self.graph, config, target_scope=target_scope)
            ref = self._float()
            out = sim.run(g, self.data.inputs, seed=self.seed, reference=ref, metrics=False,
                          memory_limit_bytes=self.memory_limit_bytes).output_values
            value = score(self.metric, out, {n: ref.values[n] for n in out}, self.data.labels)
            self._errors[key] = value if np.isfinite(value) else float("inf")
        return self._errors[key]

    def describe(self) -> str:
        """Where plans are simulated, for notes."""
        return f"{self.data.samples} samples from {self.data.source}"
