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
            self._reference = FloatCache(values=float_values(self.graph, self.data, self.seed, into)[1], inputs={},
                                         prepared={})  # the plans share most of their weights
        return self._reference

    def error(self, config: QuantConfig, target_scope: str) -> float:
        """The metric of the whole model under ``config`` (as priced with ``target_scope``);
        ``inf`` where its outputs are not finite. Each distinct config is simulated once."""
        return self.errors([config], target_scope)[0]

    def errors(self, configs: list[QuantConfig], target_scope: str) -> list[float]:
        """:meth:`error` of each config. Those not simulated yet run at once, one per CPU (see
        :func:`_simulate_all`), where their estimated memory fits together; else one by one.
        The values do not depend on the threads (each run is the same deterministic simulation)."""
        from hwsim.sim.runner import check_memory

        keys = [(c.model_dump_json(), target_scope) for c in configs]
        todo = {k: c for k, c in zip(keys, configs) if k not in self._errors}
        if todo:
            ref = self._float()
            graphs = {k: apply_config(self.graph, c, target_scope=target_scope) for k, c in todo.items()}
            needs = [check_memory(g, self.memory_limit_bytes).total_bytes for g in graphs.values()]
            together = len(graphs) > 1 and _fits(sum(needs), self.memory_limit_bytes)
            values = _simulate_all(lambda g: self._simulate(g, ref), list(graphs.values()), together)
            self._errors.update(zip(graphs, values))
        return [self._errors[k] for k in keys]

    def _simulate(self, g: Graph, ref) -> float:
        from hwsim import sim
        from hwsim.solve.output_error import score

        out = sim.run(g, self.data.inputs, seed=self.seed, reference=ref, metrics=False,
                      memory_limit_bytes=self.memory_limit_bytes).output_values
        value = score(self.metric, out, {n: ref.values[n] for n in out}, self.data.labels)
        return value if np.isfinite(value) else float("inf")

    def describe(self) -> str:
        """Where plans are simulated, for notes."""
        return f"{self.data.samples} samples from {self.data.source}"


def _fits(total_bytes: int, limit_bytes: int | None) -> bool:
    """True if ``total_bytes`` fit under ``limit_bytes`` (as :func:`hwsim.sim.run`: None the memory
    available now, 0 no limit)."""
    from hwsim.sim.memory import available_bytes

    limit = available_bytes() if limit_bytes is None else limit_bytes
    return not limit or total_bytes <= limit


def _simulate_all(fn, graphs: list[Graph], together: bool) -> list[float]:
    """``fn(g)`` of each graph, in order. BLAS is held at one thread meanwhile: a whole-model run
    makes many small products (MiniLM-L6's attention, one per sample and head) that OpenBLAS
    splits over threads which then wait for each other; measured on the 2-core machine at load
    6-8 (2026-11-26), MiniLM-L6's int16 plan took 20-21 s of CPU with BLAS's threads and 8.6-9.8 s
    on one (resnet18's plans 7.6-7.9 s either way). ``together``: one graph per CPU at once, each on
    one thread (numba's thread count is per thread), so no run waits for another's work items."""
    from concurrent.futures import ThreadPoolExecutor

    import numba

    from hwsim.sim.refblas import one_blas_thread, threads_at_once

    workers = min(threads_at_once(), len(graphs)) if together else 1
    with one_blas_thread():
        if workers < 2:
            return [fn(g) for g in graphs]

        def alone(g):
            numba.set_num_threads(1)  # this worker thread only
            return fn(g)

        with ThreadPoolExecutor(workers, thread_name_prefix="hwsim-plans") as pool:
            return list(pool.map(alone, graphs))
