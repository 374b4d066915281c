"""Reading user YAML files: one place that turns parse and validation failures into ConfigError.

User YAML is read with bounds, so a small file cannot make a large problem:

- a key given twice in one mapping is refused (PyYAML keeps the last one silently);
- nesting deeper than :data:`MAX_DEPTH` is refused (PyYAML's composer recurses: 20,000 levels
  ended in RecursionError);
- aliases may expand to at most :data:`MAX_ALIAS_NODES` nodes in all, counted while composing,
  before any value is built (a 400-byte "billion laughs" file expands to millions of nodes);
  an alias inside its own anchor (a cyclic value) is refused.

Messages quote user values through :func:`brief`, never a bare ``repr`` of unbounded input.
"""

from __future__ import annotations

import reprlib
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ValidationError

from hwsim.errors import ConfigError


#: deepest nesting of mappings and lists accepted in a user YAML file (bundled files use < 6)
MAX_DEPTH = 64
#: nodes that aliases may add in all when expanded (a shared citation costs one node per use)
MAX_ALIAS_NODES = 10_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """A bound of this module was exceeded; the message lacks only the file name."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader with the bounds of the module docstring."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)
        self._expanded = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise _Refused(f"line {mark.line + 1}: an alias inside its own anchor (a cyclic value); "
                               "write the value out instead")
            self._expanded += size[0]
            if self._expanded > MAX_ALIAS_NODES:
                raise _Refused(f"line {mark.line + 1}: aliases expand to more than {MAX_ALIAS_NODES} values; "
                               "write the values out instead of nesting aliases")
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Refused(f"line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels; hwsim files need a few")
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._sizes[id(node)] = self._measure(node)
        return node

    def _measure(self, node) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, 1
        children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value))
        sizes = [self._sizes.get(id(c), (1, 1)) for c in children]
        depth = 1 + max((d for _, d in sizes), default=0)
        if depth > MAX_DEPTH:
            raise _Refused(f"line {node.start_mark.line + 1}: aliases nest values deeper than {MAX_DEPTH} levels")
        return 1 + sum(n for n, _ in sizes), depth

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _Refused(f"key {brief(key)} given twice (lines {seen[key]} and {line}); keep one")
                seen[key] = line
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the bounds of the module docstring.

    Raises
    ------
    yaml.YAMLError
        Text that is not YAML.
    ValueError
        A bound exceeded; the message says which and where (line numbers), not the file name.
    """
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    finally:
        loader.dispose()


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters: how messages quote user values."""
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 6, 6, 6, 6
    r.maxstring = r.maxother = r.maxlong = limit
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML ({exc})") from None
    except ValueError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
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
        msg = (explain(e) if explain else e["msg"]).removeprefix("Value error, ")
        parts.append(f"field '{loc}': {msg}")
    return "; ".join(parts)
