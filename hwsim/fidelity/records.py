"""Measurement records (JSONL, one record per run) that ``hwsim validate`` and ``hwsim calibrate`` read.

One line = one run of one workload on real hardware (or one published measurement):

    {"id": "gemm-bf16-m64-k4096-n4096", "kind": "gemm", "model": "gemm:m=64,k=4096,n=4096",
     "activations": "bf16", "weights": "bf16", "params": {"m": 64, "k": 4096, "n": 4096},
     "latency_s": 1.45e-05, "energy_j": 0.0093,
     "conditions": {"runtime": "torch 2.11.0, CUDA 13.0, cuda-graph", "device": "NVIDIA H100 80GB HBM3",
                    "energy_scope": "board", "sm_clock_mhz": 1980, "power_w": 640, ...}}

``model`` is what :func:`hwsim.estimate` reads (zoo name with parameters, or a model file); a record
whose workload hwsim cannot express has ``model: null`` and is reported, never predicted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hwsim.errors import ConfigError

EnergyScope = Literal["board", "chip", "core"]


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Conditions(_Rec):
    """How a measurement was taken."""

    runtime: str = Field(description="Software that ran it (framework, library, CUDA graphs or eager, "
                                     "'published' for numbers read from a paper).")
    device: str = Field(description="Hardware as the runtime names it.")
    energy_scope: EnergyScope | None = Field(None, description="What energy_j covers: the whole board (NVML, "
                                             "wall meter), the chip (package RAPL, die) or the compute core.")
    energy_source: str | None = Field(None, description="Counter or instrument the energy came from.")
    cuda_graph: bool | None = Field(None, description="Launched as a captured CUDA graph.")
    threads: int | None = Field(None, ge=1, description="CPU threads used (host measurements).")
    sm_clock_mhz: float | None = Field(None, gt=0, description="Mean core clock during the window, MHz.")
    sm_clock_min_mhz: float | None = Field(None, gt=0, description="Lowest core clock seen, MHz.")
    max_sm_clock_mhz: float | None = Field(None, gt=0, description="Highest clock the device allows, MHz.")
    power_w: float | None = Field(None, ge=0, description="Mean power over the window (energy / time), W.")
    power_limit_w: float | None = Field(None, gt=0, description="Enforced power limit, W.")
    idle_power_w: float | None = Field(None, gt=0, description="Power of the same device idling at its running "
                                       "clock, measured in the same session (energy over a quiet window), W.")
    temperature_c: float | None = Field(None, description="Highest temperature seen, C.")
    window_s: float | None = Field(None, gt=0, description="Length of the timed window, s.")
    replays: int | None = Field(None, ge=1, description="Replays (or calls) in the window.")
    run_min_s: float | None = Field(None, gt=0, description="Fastest whole run, s, where latency_s is built "
                                    "otherwise (per-node minima on a shared machine).")
    run_median_s: float | None = Field(None, gt=0, description="Median whole run, s (with run_min_s).")
    load_average: float | None = Field(None, ge=0, description="1-minute load average of the machine when "
                                       "measured (os.getloadavg), for shared machines.")
    ops_per_replay: int | None = Field(None, ge=1, description="Copies of the workload per replay.")


class Measurement(_Rec):
    """One measured (or published) run."""

    id: str = Field(min_length=1, description="Unique name of the run within its file.")
    kind: Literal["gemm", "conv2d", "network", "op", "layer"] = Field(description="Workload class.")
    family: str = Field("", description="Sub-group used in reports (llm, cnn, transformer, ...).")
    model: str | None = Field(description="hwsim model reference (zoo name with parameters or a model file "
                                          "relative to the measurement file); null when hwsim cannot express it.")
    activations: str = Field(description="Activation format as hwsim names it (bf16, fp8_e4m3fn, int8, fp32).")
    weights: str = Field(description="Weight format as hwsim names it.")
    params: dict[str, int | float | str] = Field(default_factory=dict, description="Batch and shape parameters.")
    scope: Literal["all", "mac_inputs"] | None = Field(None, description="Which activations the activation "
                                                       "format quantizes (hwsim.graph.annotate); null = hwsim's "
                                                       "default.")
    formats_from_file: bool = Field(False, description="True: the model file carries its own formats (an ONNX "
                                    "QDQ, QLinear or integer-op model) and is priced as written; activations and "
                                    "weights then only describe it.")
    weights_resident: bool = Field(True, description="False when the run streamed its weights from the "
                                   "outermost memory every time (rotated past the caches), as hwsim then "
                                   "prices them; True when they may stay cached between runs.")
    library: str = Field("", description="Kernel library / implementation that ran it.")
    latency_s: float = Field(gt=0, description="Measured time per run, s.")
    energy_j: float | None = Field(None, gt=0, description="Measured energy per run, J (scope in conditions).")
    conditions: Conditions
    source: str = Field("", description="Where a published number comes from (paper, table); empty for runs "
                                        "made by the script named in library / the file's folder.")


def load_measurements(path: str | Path) -> tuple[Measurement, ...]:
    """Read a JSONL file of :class:`Measurement` records (blank lines and ``#`` lines skipped).

    Raises
    ------
    ConfigError
        Unreadable file, a line that is not JSON or not a valid record, duplicate ids, or no records.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read measurement file {str(p)!r}: {exc.strerror or exc}") from None
    out, seen = [], set()
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rec = Measurement.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}:{no}: not JSON ({exc.msg}); write one JSON object per line") from None
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()[:3])
            raise ConfigError(f"{p}:{no}: not a measurement record ({errs}); see hwsim/fidelity/records.py") from None
        if rec.id in seen:
            raise ConfigError(f"{p}:{no}: duplicate id {rec.id!r}; ids must be unique within a file")
        seen.add(rec.id)
        out.append(rec)
    if not out:
        raise ConfigError(f"measurement file {str(p)!r} holds no records")
    return tuple(out)
