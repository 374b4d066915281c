"""Bundled model zoo and model loading.

A model is named three ways: a zoo name with optional parameters (``llama2-7b:phase=decode,
context=2048``), a path to a model YAML (same schema as the bundled ``models/*.yaml``), or a
path to an ``.onnx`` file. The bundled zoo is exactly the YAML files shipped in ``models/``;
each names a *family* from the explicit registry :data:`FAMILIES`.
"""

from __future__ import annotations

import functools
import inspect
import math
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hwsim.errors import ConfigError, UnknownModelError
from hwsim.graph.ir import Graph
from hwsim.graph.zoo_cnn import alexnet, conv2d, gemm, mobilenet_v1, mobilenet_v2, resnet, vgg16
from hwsim.graph.zoo_transformer import bert, llama, vit
from hwsim.yamlio import brief, load_yaml, parse_versioned, read_mapping, read_text

#: family name -> builder(name, **params) -> Graph
FAMILIES: dict[str, Callable[..., Graph]] = {
    "resnet": resnet,
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "bert": bert,
    "vit": vit,
    "llama": llama,
    "gemm": gemm,
    "conv2d": conv2d,
    "alexnet": alexnet,
    "vgg16": vgg16,
}


class ModelSpec(BaseModel):
    """Schema of a model YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(description="Schema version; this hwsim reads version 1.")
    name: str = Field(description="Model name shown in reports.")
    family: str = Field(description=f"Builder family, one of {sorted(FAMILIES)}.")
    description: str = Field("", description="What the model is.")
    source: str = Field(description="Where the architecture and its published counts come from.")
    params: dict[str, Any] = Field(default_factory=dict, description="Builder parameters.")


def _bundled_dir():
    return resources.files("hwsim._models")


def bundled_models() -> dict[str, ModelSpec]:
    """Name -> spec of every model YAML shipped in ``models/``."""
    return dict(_bundled_models())


@functools.lru_cache(maxsize=1)
def _bundled_models() -> dict[str, ModelSpec]:
    """Parsed once per process: the bundled files do not change while it runs, specs are frozen."""
    out = {}
    for entry in sorted(_bundled_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            spec = read_model_yaml(entry.read_text(), entry.name)
            out[spec.name] = spec
    return out


def read_model_yaml(text: str, origin: str) -> ModelSpec:
    raw = read_mapping(text, origin, "schema_version, name, family, source, params")
    spec = parse_versioned(ModelSpec, raw, origin)
    if spec.family not in FAMILIES:
        raise ConfigError(f"{origin}: unknown family {brief(spec.family)}; known: {', '.join(sorted(FAMILIES))}")
    return spec


def _coerce(value: str) -> Any:
    """Parse a CLI parameter value as YAML scalar (ints, floats, bools, lists; else string)."""
    try:
        return load_yaml(value)
    except (yaml.YAMLError, ValueError):
        return value


def parse_params(text: str, origin: str) -> dict[str, Any]:
    """``key=value,key=value`` -> dict (values typed as YAML scalars)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ConfigError(f"{origin}: parameter {part!r} must be key=value")
        k, v = part.split("=", 1)
        out[k.strip()] = _coerce(v.strip())
    return out


def build(spec: ModelSpec, overrides: dict[str, Any] | None = None) -> Graph:
    """Build a graph from a spec with parameter overrides, checking parameter names."""
    builder = FAMILIES[spec.family]
    params = {**spec.params, **(overrides or {})}
    accepted = set(inspect.signature(builder).parameters) - {"name"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(f"model {spec.name!r}: unknown parameter(s) {unknown}; accepted: {sorted(accepted)}")
    _check_params(spec.name, builder, params)
    try:
        graph = builder(spec.name, **params)
    except TypeError as exc:
        raise ConfigError(f"model {spec.name!r}: bad parameter value ({exc})") from None
    return graph.verify()


#: largest accepted size parameter (int32 range): larger ones overflow shapes and index types
_MAX_SIZE = 2**31 - 1


def _bad(model: str, key: str, value: Any, want: str, default: Any) -> ConfigError:
    example = (f"in a model YAML params: {{{key}: {list(default)}}}" if isinstance(default, tuple)
               else f"{model}:{key}={default}")
    return ConfigError(f"model {model!r}: parameter {key}={brief(value)} must be {want}; e.g. {example}")


def _check_params(model: str, builder: Callable[..., Graph], params: dict[str, Any]) -> None:
    """Type and range of builder parameters, judged by the builder's annotation and default."""
    sig = inspect.signature(builder).parameters
    for key, value in params.items():
        ann, default = str(sig[key].annotation), sig[key].default
        if ann.startswith("int") or isinstance(default, tuple):
            lo = 0 if key == "pad" else 1
            if value is None and "None" in ann:
                continue
            items = list(value) if isinstance(default, tuple) and isinstance(value, (list, tuple)) else [value]
            if not items or not all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= _MAX_SIZE
                                    for v in items):
                kind = "a list of integers" if isinstance(default, tuple) else "an integer"
                raise _bad(model, key, value, f"{kind} in [{lo}, {_MAX_SIZE}]", lo if default is None else default)
        elif ann == "float" and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value) and value > 0):
            raise _bad(model, key, value, "a finite number > 0", default)
        elif ann == "bool" and not isinstance(value, bool):
            raise _bad(model, key, value, "true or false", str(default).lower())
        elif ann == "str" and not isinstance(value, str):
            raise _bad(model, key, value, "a string", default)


def load_model(model: str | Path | Graph, shapes: dict | None = None, values: dict | None = None) -> Graph:
    """Resolve a model argument (zoo name with parameters, model YAML path, ONNX path, or Graph).

    ``values`` (input arrays by name) give an ONNX model its input shapes and control values."""
    if isinstance(model, Graph):
        return model
    text = str(model)
    path = Path(text)
    if text.endswith(".onnx"):
        if not path.is_file():
            raise UnknownModelError(f"ONNX file {text!r} not found")
        from hwsim.graph.onnx import load_onnx

        return load_onnx(path, shapes or {}, values=values)
    if text.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise UnknownModelError(f"model YAML {text!r} not found")
        return build(read_model_yaml(read_text(path, text), text), shapes)
    name, _, param_text = text.partition(":")
    zoo = bundled_models()
    if name not in zoo:
        raise UnknownModelError(
            f"unknown model {name!r}: use a bundled name ({', '.join(zoo)}), a model .yaml or an .onnx path")
    overrides = parse_params(param_text, text)
    if shapes:
        overrides.update(shapes)
    return build(zoo[name], overrides)
