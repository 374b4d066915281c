"""Reading targets: bundled names, YAML paths, ``extends:`` and error messages that say the fix."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hwsim.errors import ConfigError, UnknownTargetError
from hwsim.targets.schema import Target
from hwsim.yamlio import brief, read_mapping, read_text, validation_message

_MAX_DEPTH = 8


def _bundled_dir():
    return resources.files("hwsim._targets")


@functools.lru_cache(maxsize=1)
def _bundled_files() -> dict[str, str]:
    return {e.name[:-5]: e.read_text() for e in sorted(_bundled_dir().iterdir(), key=lambda p: p.name)
            if e.name.endswith(".yaml")}


def bundled_targets() -> dict[str, Target]:
    """Name -> Target of every YAML file shipped in ``targets/``."""
    return {name: load_target(name) for name in _bundled_files()}


def _read_raw(ref: str, base: Path | None) -> tuple[dict, str, Path | None]:
    """Raw mapping of a target reference (bundled name or path), its origin and directory."""
    files = _bundled_files()
    if ref in files:
        text, origin, where = files[ref], f"targets/{ref}.yaml", None
    else:
        path = Path(ref)
        if not path.is_absolute() and base is not None and (base / path).is_file():
            path = base / path
        if not (ref.endswith((".yaml", ".yml")) and path.is_file()):
            raise UnknownTargetError(f"unknown target {ref!r}: use a bundled name ({', '.join(files)}) "
                                     f"or the path of a target .yaml file (see `hwsim targets`)")
        text, origin, where = read_text(path, str(path)), str(path), path.parent
    raw = read_mapping(text, origin, "schema_version, name, compute, memory, ...")
    return raw, origin, where


def _merge(base: Any, over: Any) -> Any:
    """Deep merge of mappings; lists and scalars in ``over`` replace those of ``base``."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return over


def _resolve(ref: str, base: Path | None, depth: int = 0) -> tuple[dict, str]:
    raw, origin, where = _read_raw(ref, base)
    parent = raw.get("extends")
    if parent is None:
        return raw, origin
    if depth >= _MAX_DEPTH:
        raise ConfigError(f"{origin}: 'extends' chain deeper than {_MAX_DEPTH} (a cycle?); fix the extends: lines")
    try:
        parent_raw, _ = _resolve(str(parent), where, depth + 1)
    except UnknownTargetError as exc:  # say whose extends: line names it
        raise UnknownTargetError(f"{origin}: extends: {exc}") from None
    parent_raw = {k: v for k, v in parent_raw.items() if k not in ("name", "description")}
    return _merge(parent_raw, raw), origin


def _field_hint(model: type[BaseModel], loc: tuple) -> str:
    """For an unknown key, name the field with a unit it probably meant."""
    key = str(loc[-1])
    m: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or m is None:
            continue
        f = m.model_fields.get(str(part))
        ann = getattr(f, "annotation", None)
        args = getattr(ann, "__args__", ())
        m = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if m is None:
        return ""
    near = [f for f in m.model_fields if f.startswith(key + "_")]
    if near:
        return f"; '{key}' has no unit: write {' or '.join(repr(n) for n in near)} (units are part of field names)"
    return f"; remove it or use one of {', '.join(m.model_fields)}"


def _explain(e: dict) -> str:
    """The message for one validation error of a target, with the fix spelled out."""
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key" + _field_hint(Target, tuple(e["loc"]))
    elif e["type"] in ("float_parsing", "float_type", "int_parsing", "finite_number"):
        msg += "; give a plain number in the unit the field name states (e.g. 51.2e9 for bytes_per_s)"
    elif e["type"] in ("greater_than", "greater_than_equal"):
        msg += f" (got {brief(e.get('input'))}); fix the value"
    elif e["type"] == "missing":
        msg = "missing; add it (see targets/*.yaml for examples)"
    return msg


def load_target(target: str | Path | Target) -> Target:
    """Resolve a target argument: a :class:`Target`, a bundled name or a YAML path.

    Raises
    ------
    UnknownTargetError
        Neither bundled nor an existing YAML file.
    ConfigError
        Malformed YAML; the message names the field and the fix.
    """
    if isinstance(target, Target):
        return target
    ref = str(target)
    return _load_bundled(ref) if ref in _bundled_files() else _load(ref)


@functools.lru_cache(maxsize=64)
def _load_bundled(ref: str) -> Target:
    return _load(ref)


def _load(ref: str) -> Target:
    return target_from_mapping(*target_mapping(ref))


def target_mapping(ref: str | Path) -> tuple[dict, str]:
    """The raw mapping of a bundled name or YAML path with ``extends:`` resolved, and its origin.

    What :class:`Target` validates; ``hwsim.sweep`` edits copies of it field by field.
    """
    return _resolve(str(ref), None)


def target_from_mapping(raw: dict, origin: str) -> Target:
    """Validate a raw target mapping; ConfigError naming ``origin``, the field and the fix."""
    try:
        return Target(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {validation_message(exc, _explain)}") from None
