"""Reading user YAML files: one place that turns parse and validation failures into ConfigError."""

from __future__ import annotations

from typing import Any, Callable

import yaml
from pydantic import BaseModel, ValidationError

from hwsim.errors import ConfigError


def read_text(path, origin: str) -> str:
    """Contents of a YAML file; ConfigError if it is not UTF-8 text (a binary file given by mistake)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{origin}: not a text YAML file (binary content); give the path of a YAML file") from None


def read_mapping(text: str, origin: str, expected: str) -> dict[str, Any]:
    """Parse YAML ``text`` that must be a mapping.

    Parameters
    ----------
    text : str
        File contents.
    origin : str
        File name used in messages.
    expected : str
        What the mapping should hold, e.g. ``"schema_version, name, family, source, params"``.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping with {expected}")
    return raw


def parse_versioned(model: type[BaseModel], raw: dict[str, Any], origin: str, version: int = 1):
    """Validate ``raw`` as ``model`` and check its ``schema_version``; ConfigError naming the fields."""
    try:
        obj = model(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {validation_message(exc)}") from None
    if obj.schema_version != version:
        raise ConfigError(f"{origin}: schema_version {obj.schema_version} is not supported; use {version}")
    return obj


def validation_message(exc: ValidationError, explain: Callable[[dict], str] | None = None) -> str:
    """One line per failing field: ``field 'a.b': message``.

    ``explain(error)``, when given, returns the message for one pydantic error dict (to add hints
    such as the unit a field name carries); by default pydantic's own ``msg``.
    """
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        parts.append(f"field '{loc}': {explain(e) if explain else e['msg']}")
    return "; ".join(parts)
