"""The SPEC of ``hwsim sweep``: models x hardware points x quantization, sampling, objectives.

A SPEC is YAML validated here (pydantic, unknown keys refused, each field described)::

    models: [resnet18]
    targets:
      - base: int8-npu                       # bundled name or target YAML path
        vary:                                # dotted path into the target -> values
          compute.rows: [16, 32, 64]         # a list of values
          memory.sram.size_bytes: {log_range: [64KiB, 8MiB], points: 8}
          clock_hz: {range: [4.0e8, 1.0e9], points: 4}
    quantization:
      - {weights: int8, activations: int8}   # uniform formats
      - {config: plan.yaml}                  # a quant config
      - solve: {budgets: {latency_s: 2.0e-3, area_mm2: 12}, choices: "w=int8,int4;a=int8"}
    sampling: {method: grid}                 # or random / sobol / lhs with n and seed
    objectives: [latency_s, energy_j, area_mm2]
    accuracy: {metric: proxy}                # optional: an accuracy proxy column

Paths: mapping keys by name, list entries by index, memory levels by their ``name``
(``memory.sram.size_bytes``), rates by index (``compute.rates.1.macs_per_pe_per_cycle``).
Sizes may carry binary or decimal byte units (``64KiB``, ``8MiB``, ``2GB``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hwsim.errors import ConfigError

#: what rows can be ranked on; all are minimised
OBJECTIVES = ("latency_s", "energy_j", "area_mm2", "weight_bytes", "accuracy_proxy")
#: solve budgets a sweep accepts: the solver's, plus the hardware point's area
SWEEP_BUDGETS = ("latency_s", "energy_j", "size_bytes", "bops", "area_mm2")

_UNITS = {"": 1, "B": 1, "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40,
          "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def quantity(value: Any) -> int | float:
    """A number, or a string with a byte unit (``64KiB`` = 65536, ``2MB`` = 2e6) -> number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number or a size like 64KiB, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not finite")
        return value
    m = _QUANTITY.match(value)
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"{value!r} is not a number or a size (units: KiB, MiB, GiB, KB, MB, GB)")
    x = float(m.group(1)) * _UNITS[m.group(2).upper()]
    return int(x) if x == int(x) and (m.group(2) or "." not in m.group(1)) else x


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _bounds(v, positive: bool) -> tuple:
    lo, hi = quantity(v[0]), quantity(v[1])
    if not (0 < lo < hi if positive else lo < hi):
        raise ValueError(f"needs {'0 < ' if positive else ''}lo < hi, got [{v[0]}, {v[1]}]")
    return lo, hi


class _Span(_Spec):
    """Values from lo to hi (both included), evenly (range) or geometrically (log_range) spaced."""

    points: int | None = Field(None, ge=2, description="How many values (grid sampling: required; random, "
                                                       "sobol and lhs then draw among these values).")

    @property
    def bounds(self) -> tuple:
        raise NotImplementedError

    def at(self, u: float) -> float:
        """The value at fraction ``u`` in [0, 1] of the span."""
        lo, hi = self.bounds
        return lo * (hi / lo) ** u if isinstance(self, LogRange) else lo + u * (hi - lo)


class Range(_Span):
    """Evenly spaced values from lo to hi."""

    range: tuple[Any, Any] = Field(description="[lo, hi]; numbers or sizes (64KiB).")

    _check = field_validator("range")(classmethod(lambda cls, v: _bounds(v, positive=False)))

    @property
    def bounds(self) -> tuple:
        return self.range


class LogRange(_Span):
    """Geometrically spaced values from lo to hi (both > 0)."""

    log_range: tuple[Any, Any] = Field(description="[lo, hi], lo > 0; numbers or sizes (64KiB, 8MiB).")

    _check = field_validator("log_range")(classmethod(lambda cls, v: _bounds(v, positive=True)))

    @property
    def bounds(self) -> tuple:
        return self.log_range


Values = Union[list[Any], LogRange, Range]


class TargetSpec(_Spec):
    """A base target and the fields varied on it."""

    base: str = Field(description="Bundled target name (hwsim targets) or a target YAML path.")
    vary: dict[str, Values] = Field(default_factory=dict, description="Dotted field path -> a list of values, "
                                    "{range: [lo, hi], points: N} or {log_range: [lo, hi], points: N}.")
    label: str | None = Field(None, description="Name of this hardware family in the rows (default: base).")

    @field_validator("vary", mode="before")
    @classmethod
    def _values(cls, v):
        """Each entry: a non-empty list, {range: ...} or {log_range: ...}; one message per bad entry."""
        if not isinstance(v, dict):
            return v
        out = {}
        for path, values in v.items():
            if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", path):
                raise ValueError(f"{path!r} is not a dotted field path like compute.rows")
            out[path] = _vary_values(path, values)
        return out


def _vary_values(path: str, values: Any):
    if isinstance(values, list):
        if not values:
            raise ValueError(f"{path}: the list of values is empty")
        return values
    kind = LogRange if isinstance(values, dict) and "log_range" in values else Range
    if not isinstance(values, dict) or not ({"range", "log_range"} & set(values)):
        raise ValueError(f"{path}: give a list of values, {{range: [lo, hi], points: N}} or "
                         f"{{log_range: [lo, hi], points: N}}")
    try:
        return kind(**values)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        msg = "unknown field; remove it" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        raise ValueError(f"{path}{'.' + where if where else ''}: {msg}") from None


class Budgets(_Spec):
    """'<=' limits of a solve-based quantization entry."""

    latency_s: float | None = Field(None, gt=0, description="Total latency, s.")
    energy_j: float | None = Field(None, gt=0, description="Total energy, J.")
    size_bytes: float | None = Field(None, gt=0, description="Stored weight bytes.")
    bops: float | None = Field(None, gt=0, description="MACs x weight bits x activation bits.")
    area_mm2: float | None = Field(None, gt=0, description="Area of the hardware point, mm^2 (a hardware "
                                                           "point above it is infeasible whatever the plan).")

    def limits(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SolveSpec(_Spec):
    """Best plan per hardware point (hwsim solve) under budgets."""

    budgets: Budgets = Field(description="At least one '<=' limit.")
    choices: str | None = Field(None, description='Per-layer options, e.g. "w=int8,int4;a=int8" (default: the '
                                                  "pairs of the first target's base).")

    @model_validator(mode="after")
    def _some(self):
        if not self.budgets.limits():
            raise ValueError("budgets: give at least one limit, e.g. {latency_s: 2.0e-3}")
        return self


class Quant(_Spec):
    """One quantization entry: uniform formats, a quant config file, or a solve."""

    weights: str | None = Field(None, description="Weight format of every layer (int8, int4, fp8_e4m3fn, ...).")
    activations: str | None = Field(None, description="Activation format of every layer.")
    config: str | None = Field(None, description="Path of a quant config YAML.")
    solve: SolveSpec | None = Field(None, description="Solve for the best plan at every hardware point.")

    @field_validator("weights", "activations")
    @classmethod
    def _fmt(cls, v):
        from hwsim.errors import HwsimError
        from hwsim.graph.quant import canonical_format

        try:
            return None if v is None else canonical_format(v)
        except HwsimError as exc:
            raise ValueError(str(exc).split(";")[0]) from None

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k, on in (("weights/activations", self.weights or self.activations),
                                 ("config", self.config), ("solve", self.solve)) if on]
        if len(kinds) != 1:
            raise ValueError("give exactly one of weights/activations, config or solve "
                             f"(got {' and '.join(kinds) or 'none'})")
        if self.config is not None and not Path(self.config).is_file():
            raise ValueError(f"config {self.config!r} is not a file")
        return self

    @property
    def label(self) -> str:
        if self.solve is not None:
            return "solve(" + ",".join(f"{k}<={v:g}" for k, v in self.solve.budgets.limits().items()) + ")"
        if self.config is not None:
            return f"config={self.config}"
        return f"w={self.weights or '-'},a={self.activations or '-'}"


class Sampling(_Spec):
    """How hardware points are drawn from each target's vary space."""

    method: Literal["grid", "random", "sobol", "lhs"] = Field("grid", description="grid: every combination; "
                                                              "random / sobol / lhs: n points per target entry.")
    n: int | None = Field(None, ge=1, description="Points per target entry (random, sobol, lhs).")
    seed: int = Field(0, ge=0, description="Seed of random, sobol (scrambled) and lhs draws.")

    @model_validator(mode="after")
    def _n(self):
        if self.method == "grid" and self.n is not None:
            raise ValueError("n applies to random, sobol and lhs; grid takes every combination (remove n)")
        if self.method != "grid" and self.n is None:
            raise ValueError(f"method {self.method} needs n (points per target entry), e.g. n: 64")
        return self


class Accuracy(_Spec):
    """An accuracy proxy per row: summed per-layer sensitivity of the point's formats (lower is better)."""

    metric: Literal["proxy", "output_mse"] = Field("proxy", description="proxy: weight/activation quantization "
                                                   "noise, no simulation; output_mse: simulated output MSE.")
    samples: int | None = Field(None, ge=1, description="Calibration samples simulated (output_mse).")
    calib: str | None = Field(None, description="Calibration .npz (default: seeded synthetic inputs).")


class SweepSpec(_Spec):
    """A whole sweep."""

    models: list[str] = Field(min_length=1, description="Zoo names (with parameters), model YAMLs or ONNX paths.")
    targets: list[TargetSpec] = Field(min_length=1, description="Hardware families to sweep.")
    quantization: list[Quant] = Field(min_length=1, description="Formats, configs or solves tried at every point.")
    sampling: Sampling = Field(default_factory=Sampling)
    objectives: list[Literal["latency_s", "energy_j", "area_mm2", "weight_bytes", "accuracy_proxy"]] = Field(
        ["latency_s", "energy_j"], min_length=1, description="Minimised; rows on the front get pareto = true.")
    accuracy: Accuracy | None = Field(None, description="Add accuracy_proxy to every row.")
    seed: int = Field(0, ge=0, description="Seed of synthetic weights and calibration inputs.")

    @model_validator(mode="after")
    def _combinations(self):
        if "accuracy_proxy" in self.objectives and self.accuracy is None:
            raise ValueError("objective accuracy_proxy needs an accuracy: block, e.g. accuracy: {metric: proxy}")
        if self.accuracy is not None and any(q.config for q in self.quantization):
            raise ValueError("accuracy is computed for weights/activations and solve entries; a config entry has "
                             "no per-layer sensitivity here: drop accuracy or the config entries")
        if self.accuracy is not None and any((q.weights is None) != (q.activations is None) for q in self.quantization
                                             if q.solve is None and q.config is None):
            raise ValueError("accuracy needs both weights and activations in every uniform entry (the sensitivity "
                             "of a format pair); add the missing one")
        if self.grid_size() > 10 ** 7:
            raise ValueError(f"the grid has {self.grid_size():.3g} points; sample it (method: random / sobol / lhs)")
        labels = [q.label for q in self.quantization]
        if len(set(labels)) != len(labels):
            raise ValueError(f"quantization lists an entry twice: {labels}")
        return self

    def grid_size(self) -> int:
        n = 0
        for t in self.targets:
            n += math.prod(len(v) if isinstance(v, list) else (v.points or 1) for v in t.vary.values())
        return n * len(self.models) * len(self.quantization)

    @property
    def solves(self) -> list[Quant]:
        return [q for q in self.quantization if q.solve is not None]


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_spec(raw: Any, origin: str) -> SweepSpec:
    """Validate a SPEC mapping; ConfigError naming ``origin`` and each bad field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: a sweep SPEC is a mapping with models, targets, quantization, ...")
    try:
        return SweepSpec(**raw)
    except ValidationError as exc:
        errs = []
        for e in exc.errors():
            where = _location(tuple(e["loc"]))
            msg = "unknown field; remove it" if e["type"] == "extra_forbidden" else e["msg"]
            errs.append(f"{where}: {msg.removeprefix('Value error, ')}")
        raise ConfigError(f"{origin}: " + "; ".join(dict.fromkeys(errs))) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a SPEC YAML file (structure only; :func:`hwsim.sweep.space.plan` checks the rest)."""
    from hwsim.yamlio import load_yaml, read_text

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep SPEC {str(path)!r} is not a file")
    try:
        raw = load_yaml(read_text(p, str(p)))
    except ConfigError:
        raise
    except Exception as exc:  # a YAML syntax error
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_spec(raw, str(p))
