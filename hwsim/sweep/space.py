"""A SPEC expanded into points: hardware points per target entry x models x quantization.

Every hardware point is built and validated here, in the client, before any work is sent, so a
bad path, a value the target schema refuses or an impossible combination fails at once, naming
the field. Points carry a stable ``point_id`` (a hash of what the point is, not of where it sits
in the SPEC), which ``--resume`` matches on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.errors import ConfigError, HwsimError, ShapeError
from hwsim.sweep.spec import LogRange, Range, SweepSpec, TargetSpec, quantity


@dataclass(frozen=True)
class Point:
    """One row to compute: a model, a hardware point (target entry + field values), a quantization."""

    index: int
    point_id: str
    model: str
    target_idx: int
    family: str
    params: tuple[tuple[str, Any], ...]
    quant_idx: int
    quant: str


@dataclass(frozen=True)
class Space:
    """The expanded SPEC: points, the base target mappings and the parameter columns."""

    spec: SweepSpec
    points: list[Point]
    bases: list[tuple[dict, str]]        # per target entry: raw mapping (extends resolved), origin
    param_types: dict[str, str]          # dotted path -> "int64" | "float64" | "string"
    levels: list[str]                    # memory level names over all targets (bottleneck columns)


def _discrete(values) -> list | None:
    """The values of a dimension when it has a finite set (a list, or a range with points), else None."""
    if isinstance(values, list):
        return [_as_value(v) for v in values]
    if values.points is None:
        return None
    return _dedupe([_span_value(values, i / (values.points - 1)) for i in range(values.points)])


def _as_value(v):
    """List entries: sizes with units become numbers (``512KiB`` -> 524288); anything else as written."""
    if isinstance(v, str):
        try:
            return quantity(v)
        except ValueError:
            return v
    return v


def _span_value(span: Range | LogRange, u: float):
    x = span.at(u)
    if all(isinstance(b, int) for b in span.bounds):
        return int(round(x))
    return float(x)


def _dedupe(values: list) -> list:
    out, seen = [], set()
    for v in values:
        key = json.dumps(v, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _unit_draws(method: str, n: int, d: int, seed: int) -> np.ndarray:
    """(n, d) numbers in [0, 1): uniform random, scrambled Sobol or Latin hypercube."""
    if d == 0:
        return np.zeros((n, 0))
    if method == "random":
        return np.random.default_rng(seed).random((n, d))
    import warnings

    from scipy.stats import qmc

    engine = qmc.Sobol(d, scramble=True, seed=seed) if method == "sobol" else qmc.LatinHypercube(d, seed=seed)
    with warnings.catch_warnings():  # Sobol prefers powers of two; any n is still a valid low-discrepancy draw
        warnings.simplefilter("ignore")
        return engine.random(n)


def hardware_points(ts: TargetSpec, method: str, n: int | None, seed: int) -> list[tuple[tuple[str, Any], ...]]:
    """Field values of each hardware point of one target entry, in a fixed order."""
    paths = list(ts.vary)
    dims = [ts.vary[p] for p in paths]
    if method == "grid":
        for path, dim in zip(paths, dims):
            if _discrete(dim) is None:
                raise ConfigError(f"vary.{path}: grid sampling needs points: N on a range")
        combos = itertools.product(*[_discrete(d) for d in dims])
        return [tuple(zip(paths, c)) for c in combos]
    draws = _unit_draws(method, n, len(dims), seed)
    out = []
    for row in draws:
        vals = []
        for dim, u in zip(dims, row):
            levels = _discrete(dim)
            vals.append(levels[min(int(u * len(levels)), len(levels) - 1)] if levels is not None
                        else _span_value(dim, float(u)))
        out.append(tuple(zip(paths, vals)))
    return _dedupe(out) if out and paths else out[:1]


def set_path(raw: dict, path: str, value: Any) -> dict:
    """``raw`` with the dotted ``path`` set to ``value``, as a new mapping: the containers on the path
    are copied, the rest is shared. List entries by index or by their ``name``."""
    return _set(raw, path.split("."), 0, value, path)


def _set(node: Any, parts: list[str], i: int, value: Any, path: str) -> Any:
    part, last, where = parts[i], i == len(parts) - 1, ".".join(parts[:i + 1])
    if isinstance(node, list):
        idx = _list_index(node, part, where)
        out = list(node)
    elif isinstance(node, dict):
        if not last and part not in node:
            raise ConfigError(f"vary.{path}: the target has no {where!r}")
        idx, out = part, dict(node)
    else:
        raise ConfigError(f"vary.{path}: {'.'.join(parts[:i])!r} is a value, not a mapping or list")
    out[idx] = value if last else _set(node[idx], parts, i + 1, value, path)
    return out


def _list_index(node: list, part: str, where: str) -> int:
    if part.isdigit():
        if int(part) >= len(node):
            raise ConfigError(f"vary: {where!r} is past the end of a list of {len(node)}")
        return int(part)
    names = [e.get("name") for e in node if isinstance(e, dict)]
    if part not in names:
        raise ConfigError(f"vary: no entry named {part!r} at {where!r}; entries: {', '.join(map(str, names))}")
    return names.index(part)


def point_id(model: str, family: str, base: str, params, quant: str) -> str:
    """Stable identity of a point: a hash of what it is (not of the order the SPEC lists things in)."""
    text = json.dumps([model, family, base, sorted([k, v] for k, v in params), quant], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def build_target(base: tuple[dict, str], params) -> Any:
    """The validated Target of a hardware point (ConfigError naming the varied fields)."""
    from hwsim.targets.load import target_from_mapping

    raw, origin = base
    for path, value in params:
        raw = set_path(raw, path, value)
    shown = ", ".join(f"{k}={v}" for k, v in params)
    return target_from_mapping(raw, f"{origin} with {shown}" if shown else origin)


def _column_type(values: list) -> str:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float64"
    return "string"


def plan(spec: SweepSpec) -> Space:
    """Expand ``spec`` into points and check every hardware point and model before any work."""
    from hwsim.targets.load import target_mapping

    s = spec.sampling
    bases, hw, levels = [], [], []
    needs_area = "area_mm2" in spec.objectives or any("area_mm2" in q.solve.budgets.limits() for q in spec.solves)
    for i, ts in enumerate(spec.targets):
        try:
            bases.append(target_mapping(ts.base))
            points = hardware_points(ts, s.method, s.n, s.seed + i)
            for params in points:
                t = build_target(bases[-1], params)
                if needs_area and t.area is None:
                    raise ConfigError(f"{t.name} has no area: block, but area_mm2 is an objective or a budget; add "
                                      "area: {sram_levels, other_mm2, source} to the target or drop area_mm2")
                levels += [m.name for m in t.memory if m.name not in levels]
        except HwsimError as exc:
            raise ConfigError(f"targets[{i}] ({ts.base}): {exc}") from None
        hw.append(points)
    _check_models(spec)
    out, param_values = [], {}
    for model in spec.models:
        for i, ts in enumerate(spec.targets):
            family = ts.label or ts.base
            for params in hw[i]:
                for path, v in params:
                    param_values.setdefault(path, []).append(v)
                for j, q in enumerate(spec.quantization):
                    pid = point_id(model, family, ts.base, params, q.label)
                    out.append(Point(len(out), pid, model, i, family, params, j, q.label))
    seen, unique = set(), []
    for p in out:  # random draws of list values can repeat a point: keep the first
        if p.point_id not in seen:
            seen.add(p.point_id)
            unique.append(p)
    types = {k: _column_type(v) for k, v in param_values.items()}
    return Space(spec, unique, bases, types, levels)


def _check_models(spec: SweepSpec) -> None:
    from hwsim.graph.annotate import QuantConfig
    from hwsim.graph.zoo import load_model

    for i, m in enumerate(spec.models):
        try:
            load_model(m)
        except ShapeError as exc:  # its advice (bind it in shapes) has no place in a SPEC
            raise ConfigError(f"models[{i}]: {exc}. A sweep SPEC binds no ONNX dims: give a model whose inputs "
                              "have fixed shapes (e.g. set with onnx.tools.update_model_dims)") from None
        except HwsimError as exc:
            raise ConfigError(f"models[{i}]: {exc}") from None
    for j, q in enumerate(spec.quantization):
        if q.config is not None:
            try:
                QuantConfig.load(q.config)
            except HwsimError as exc:
                raise ConfigError(f"quantization[{j}].config: {exc}") from None
