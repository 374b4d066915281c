"""Typed results of ``hwsim compare-formats``: frozen pydantic models, one field defined once.

``Comparison.to_json()`` is the ``--json`` output: ``{"rows": [...], "crossover": {...}}`` plus
``"target"`` and ``"model"`` when given. Non-finite numbers (an exact representation has infinite
SQNR) are written as ``null``.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import ConfigDict, Field

from hwsim.cost.arith import GateCount
from hwsim.records import Record


class _Frozen(Record):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="null")


class ScaleSearch(_Frozen):
    """Outcome of the MSE-optimal scale search for one format on one sample."""

    scale: float = Field(description="Scale (real units per unscaled format unit) that minimises the MSE.")
    clip: float = Field(description="Clipping level scale x format.max, in the units of the data.")
    mse: float = Field(description="Mean squared quantization error at that scale, in data units squared.")
    sqnr_db: float = Field(description="Signal-to-quantization-noise ratio at that scale, dB.")
    evaluations: int = Field(description="Quantizations of the sample performed by the search.")


class Crossover(_Frozen):
    """SQNR of an integer and a float format over Student-t nu, and where they swap."""

    family: Literal["student_t"] = Field("student_t", description="Distribution family swept.")
    parameter: Literal["nu"] = Field("nu", description="Tail parameter swept (degrees of freedom).")
    int_format: str = Field(description="Integer format compared (canonical name).")
    float_format: str = Field(description="Float format compared (canonical name).")
    nu: list[float] = Field(description="Degrees of freedom swept, ascending.")
    sqnr_db: dict[str, list[float]] = Field(description="Per format, SQNR in dB at each nu.")
    crossover_nu: float | None = Field(description="nu where the two SQNR curves cross (log-linear "
                                                   "interpolation); None if they do not within the sweep.")
    float_better_below: bool = Field(description="True if the float format wins for nu below the crossover.")
    samples: int = Field(description="Samples per distribution.")
    seed: int = Field(description="Seed of the samples.")


class FormatRow(_Frozen):
    """One (format, accumulator) pair: hardware cost and accuracy side by side."""

    format: str = Field(description="Canonical format name, used for activations and weights alike.")
    accumulator: str = Field(description="Accumulator: fx (fixed point, product range + 12 bits), fp16, fp32.")
    gates: GateCount = Field(description="Gate count of one MAC unit, by stage (hwsim.cost.arith.GateCount).")
    relative_gates_int8: float = Field(description="gates.total / gates of an int8 x int8 MAC with fx accumulator.")
    energy_pj_per_mac: float = Field(description="Energy per MAC in pJ at the target's technology (45 nm without one).")
    macs_per_cycle: float | None = Field(description="MACs per cycle of the whole target (all cores) for this "
                                                       "format pair, or for the pair it falls back to; None without a target.")
    sqnr_db: dict[str, float | None] = Field(description="SQNR in dB at the MSE-optimal scale per distribution "
                                                         "(None where the format cannot quantize).")


class TargetInfo(_Frozen):
    """The target the hardware columns were priced on."""

    name: str = Field(description="Target name.")
    technology_nm: float = Field(description="Process node used for the energy per MAC, nm.")
    clock_hz: float = Field(description="Clock frequency, Hz.")
    cores: int = Field(description="Cores / SMs; macs_per_cycle in the rows is summed over them.")
    peak_macs_per_s: dict[str, float] = Field(description="Per format, peak MAC/s of the whole target: the "
                                                          "row's macs_per_cycle x clock_hz.")
    fallbacks: dict[str, str] = Field(description="Formats the target has no native pair for -> the "
                                                  "'activation x weight' pair it runs them on.")


class LayerAccuracy(_Frozen):
    """SQNR of one compute layer's weights and input activations per format."""

    name: str = Field(description="Layer (op) name.")
    op: str = Field(description="Op kind (conv2d, linear, matmul).")
    weights_sqnr_db: dict[str, float | None] = Field(description="Per format, SQNR of the weight tensor in dB; "
                                                                 "None for layers without weights.")
    activations_sqnr_db: dict[str, float | None] = Field(description="Per format, SQNR of the layer's first "
                                                                     "activation input in dB.")


class ModelEstimate(_Frozen):
    """End-to-end estimate of the model on the target with one format for weights and activations."""

    format: str = Field(description="Format of weights and activations.")
    latency_s: float = Field(description="Estimated latency, seconds.")
    energy_j: float = Field(description="Estimated energy, joules.")


class ModelComparison(_Frozen):
    """Per-layer accuracy (and, with a target, cost) of a model per format."""

    name: str = Field(description="Model name.")
    synthetic_weights: bool = Field(description="True if weights are seeded synthetic values, not trained ones.")
    activation_source: str = Field(description="How activations were obtained (simulator float reference, inputs).")
    max_elements: int = Field(description="Tensors larger than this are subsampled (seeded) before the search.")
    layers: list[LayerAccuracy] = Field(description="Compute layers in topological order.")
    estimates: list[ModelEstimate] = Field(default_factory=list, description="Per format, latency and energy "
                                                                             "on the target (empty without one).")
    notes: list[str] = Field(default_factory=list, description="Caveats (synthetic weights, skipped layers).")


class Comparison(_Frozen):
    """Everything ``hwsim compare-formats`` reports."""

    rows: list[FormatRow] = Field(description="One row per (format, accumulator).")
    crossover: Crossover = Field(description="INT vs FP accuracy over Student-t nu.")
    target: TargetInfo | None = Field(None, description="Target priced on, when given.")
    model: ModelComparison | None = Field(None, description="Model analysis, when given.")

    def to_json(self, indent: int | None = 2) -> str:
        """The ``--json`` document (``target``/``model`` only when given)."""
        data = json.loads(self.model_dump_json(exclude_none=False))
        for key in ("target", "model"):
            if data.get(key) is None:
                data.pop(key, None)
        return json.dumps(data, indent=indent)
