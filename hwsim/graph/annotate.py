"""Quant configs: set formats (and pruning) on a graph's tensors and layers.

A quant-config YAML::

    schema_version: 1
    defaults:            # apply to every layer
      weights: int8      # weight format of conv2d / linear / embedding weights
      activations: int8  # format of every activation (graph inputs, layer inputs and outputs, KV cache)
      weight_granularity: channel   # tensor | channel | group (group needs group_size)
    layers:              # overrides, applied in order; later matches win
      - match: "layer1.*"        # fnmatch glob on layer (op) names
        weights: int4
      - match: "fc"
        weights: int8
        activations: int8
        pruning: "2:4"           # 0 | 50% | 2:4 | ch25%
        accumulator: int32

Rules (documented because they are choices):
- ``scope`` (top level) says which activations ``defaults.activations`` sets. Unset, it is the
  target's ``activation_scope`` where a target prices the model (estimate, solve, validate, sweep;
  ``all`` for every bundled target) and ``mac_inputs`` (:data:`DEFAULT_SCOPE`) where none does
  (simulate, summary, export, compare); :func:`effective_scope` decides. Values: ``mac_inputs``
  only the activation inputs of MAC ops (conv, linear, matmul, LSTM/GRU: what onnxruntime's
  quantizers restricted to MatMul/Conv quantize; softmax inputs, attention masks, norms, residual
  sums and the outputs of non-MAC ops that no MAC op reads stay fp32 and are priced at 4 bytes),
  ``all`` every activation-like tensor (graph inputs, every op output, KV caches: what an integer
  engine that keeps every tensor in its integer format stores; on transformers this quantizes the
  attention-mask arithmetic and the softmax input too, and accuracy collapses), or a list of op
  kinds (``[linear, matmul, softmax]``) whose activation inputs it sets. Both ``mac_inputs`` and a
  list follow an input back through value-preserving views (reshape, transpose, KV-cache
  read/append) to the tensor that is stored. A per-layer ``activations``
  sets that layer's activation inputs. A tensor read by two layers with different formats keeps
  the one with more bits (the producer must write what the more precise reader needs).
- Weights default to the format's ``weight_granularity``: per output channel (axis 0) for integer
  and pow2, per tensor for float, block, ternary, binary and codebook formats (MX blocks carry
  their own scales).
- Biases of a layer with integer weights *and* integer activations become ``int32`` (scale
  ``s_x * s_w``), as integer engines store them; otherwise they stay ``fp32``.
- Integer id inputs (token ids) and constants keep their types.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hwsim.errors import ConfigError, HwsimError, UnknownFormatError
from hwsim.graph.ir import Graph
from hwsim.graph.quant import Pruning, QuantSpec, canonical_format
from hwsim.yamlio import parse_versioned, read_mapping, read_text

SCOPES = ("all", "mac_inputs")
DEFAULT_SCOPE = "mac_inputs"  # the one place the default scope is decided


class LayerRule(BaseModel):
    """Formats and pruning for the layers a rule matches; unset fields leave the layer as is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field("*", description="fnmatch glob on layer names, e.g. 'layer1.*'.")
    weights: str | None = Field(None, description="Weight format name.")
    activations: str | None = Field(None, description="Activation format name.")
    weight_granularity: Literal["tensor", "channel", "group"] | None = None
    group_size: int | None = Field(None, ge=1, description="Weights per scale group (granularity group).")
    accumulator: str | None = Field(None, description="Accumulator format, e.g. int32, fp32, fp16.")
    pruning: str | None = Field(None, description="0, 50%, 2:4 or ch25%.")

    @field_validator("weights", "activations", "accumulator")
    @classmethod
    def _fmt(cls, v):
        return None if v is None else _as_value_error(canonical_format, v)

    @field_validator("weights", "activations")
    @classmethod
    def _operand(cls, v):
        """A MAC operand format: the scale type e8m0 (unsigned, no zero) is refused by the format."""
        from hwsim import formats

        if v is not None:
            _as_value_error(lambda name: formats.get(name).mac_operand_spec(), v)
        return v

    @field_validator("pruning", mode="before")
    @classmethod
    def _prune(cls, v):
        return None if v is None else _as_value_error(lambda t: Pruning.parse(t).label, str(v))


def _as_value_error(fn, value):
    """``fn(value)`` with a HwsimError turned into the one-line ValueError pydantic puts under the field's
    name (so the message says file and field: ``q.yaml: field 'layers.1.pruning': ...``)."""
    try:
        return fn(value)
    except HwsimError as exc:
        raise ValueError(str(exc)) from None


class QuantConfig(BaseModel):
    """Schema of a quant-config YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(1, description="This hwsim reads version 1.")
    scope: Literal["all", "mac_inputs"] | tuple[str, ...] | None = Field(
        None, description="Which activations the default 'activations' format quantizes: 'mac_inputs' "
                           "(the activation inputs of MAC ops: conv, linear, matmul, LSTM/GRU...), "
                           "'all' (every activation, attention-mask arithmetic and softmax inputs included), "
                           "or a list of op kinds whose activation inputs it quantizes; unset: the target's "
                           "activation_scope where a target prices the model, else 'mac_inputs'; "
                           "e.g. [linear, matmul, softmax].")
    defaults: LayerRule = Field(default_factory=LayerRule)
    layers: tuple[LayerRule, ...] = ()

    @field_validator("scope", mode="before")
    @classmethod
    def _scope(cls, v):
        return parse_scope(v) if isinstance(v, (str, list, tuple)) else v

    @classmethod
    def load(cls, path: str | Path) -> "QuantConfig":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"quant config {str(path)!r} not found")
        raw = read_mapping(read_text(p, str(path)), str(path), "schema_version, defaults, layers")
        return parse_versioned(cls, raw, str(path))

    def dump(self) -> str:
        """YAML text of this config (what ``--write-config`` writes)."""
        data = self.model_dump(exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def simple(cls, weights: str | None, activations: str | None, scope: str | tuple[str, ...] | None = None
               ) -> "QuantConfig":
        try:
            return cls(defaults=LayerRule(weights=weights, activations=activations), scope=scope)
        except ValidationError as exc:
            raise UnknownFormatError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def weight_spec(fmt: str, granularity: str | None, group_size: int | None, axis_len: int | None = None) -> QuantSpec:
    """The QuantSpec of a weight for a format and requested granularity (see module rules).

    ``axis_len``: length of the weight's last axis (groups run along it); a larger group_size is
    refused, since no group could be filled (and padding to it could exhaust memory).
    """
    from hwsim import formats

    gran = granularity or formats.get(fmt).weight_granularity
    if gran == "group" and group_size is None:
        raise ConfigError("weight_granularity 'group' needs group_size, e.g. group_size: 128")
    if gran == "group" and axis_len is not None and group_size > axis_len:
        raise ConfigError(f"group_size {group_size} is larger than the {axis_len} weights along the last axis "
                          f"(groups run along it); use group_size <= {axis_len} or weight_granularity: channel")
    if gran == "tensor":
        return QuantSpec(format=fmt)
    if gran == "channel":
        return QuantSpec(format=fmt, granularity="channel", axis=0)
    return QuantSpec(format=fmt, granularity="group", axis=-1, group_size=group_size)


def _merge(rules: list[LayerRule]) -> dict:
    out: dict = {}
    for r in rules:
        out.update({k: v for k, v in r.model_dump(exclude={"match"}).items() if v is not None})
    return out


def apply_config(graph: Graph, config: QuantConfig, origin: str = "quant config",
                 target_scope: str | None = None) -> Graph:
    """A copy of ``graph`` with formats and pruning set by ``config``; verified. ``origin`` (the
    config's file) starts every error message; ``target_scope`` is the pricing target's
    ``activation_scope`` (:func:`effective_scope`)."""
    from hwsim import formats

    g = graph.copy()
    _check_rules(g, config, origin)
    d = config.defaults
    fixed = _runtime_quant_tensors(g)
    if fixed:
        g.notes.append("layers with run-time scales and zero points keep their model's quantization: "
                       + ", ".join(o.name for o in g.layers() if getattr(o, "runtime_quant", ())))
    scope = effective_scope(config.scope, target_scope)
    if d.activations:
        for name in scoped_activations(g, scope):
            if name not in fixed:
                g.set_quant(name, QuantSpec(format=d.activations))
    act_claims: dict[str, str] = {}
    for op in g.ops():
        if not _takes_rules(op):
            continue
        rule = _merge([d] + [r for r in config.layers if fnmatch.fnmatchcase(op.name, r.match)])
        w = g.weight(op)
        if w is not None and rule.get("weights"):
            try:
                spec = weight_spec(rule["weights"], rule.get("weight_granularity"), rule.get("group_size"),
                                   w.shape[-1] if w.shape else None)
            except ConfigError as exc:
                raise ConfigError(f"{origin}: layer '{op.name}': {exc}".replace(
                    "along the last axis", f"along the last axis of '{w.name}'")) from None
            if spec.granularity == "channel":  # the weight's output-channel axis (1 for conv_transpose)
                spec = spec.model_copy(update={"axis": type(op).weight_out_axis})
            _set_constant_spec(g, w.name, spec)
        if op.is_compute:
            updates = {}
            if rule.get("accumulator"):
                updates["accumulator"] = rule["accumulator"]
            if rule.get("pruning") and op.op != "matmul":
                updates["pruning"] = Pruning.parse(rule["pruning"])
            if updates:
                g.replace_op(op.model_copy(update=updates))
            own = _merge([r for r in config.layers if fnmatch.fnmatchcase(op.name, r.match)]).get("activations")
            in_scope = scope in SCOPES or op.op in scope
            acts = own or (d.activations if in_scope else None)
            if acts:
                for t in g.activation_inputs(op):
                    prev = act_claims.get(t.name)
                    fmt = acts
                    if prev and formats.get(prev).bits_per_element > formats.get(fmt).bits_per_element:
                        fmt = prev
                    act_claims[t.name] = fmt
                    if not t.dtype.startswith(("int", "uint", "bool")):
                        for name in stored_as(g, t.name):  # the layer's input is stored so at its source
                            g.set_quant(name, QuantSpec(format=fmt))
    _set_biases(g)
    return g.verify()


def _kind(fmt: str) -> str:
    from hwsim import formats

    return formats.get(fmt).kind


def _takes_rules(op) -> bool:
    """Ops a rule can change: compute layers and embeddings (formats and pruning act on these only),
    except layers quantized by scales and zero points their model gives at run time (``runtime_quant``):
    their formats and parameters are the model's."""
    return (op.is_compute or op.op == "embedding") and not getattr(op, "runtime_quant", ())


def _runtime_quant_tensors(g: Graph) -> set[str]:
    """Every input of the layers with run-time scales / zero points: codes and their parameters,
    which a quant config must not round (they are the model's quantization, not its data)."""
    return {t for op in g.layers() if getattr(op, "runtime_quant", ()) for t in op.inputs}


def _check_rules(g: Graph, config: QuantConfig, origin: str) -> None:
    """Refuse a rule that matches no op, or only ops no rule field can change (it would do nothing)."""
    ops = list(g.ops())
    for i, r in enumerate(config.layers):
        hit = [o for o in ops if fnmatch.fnmatchcase(o.name, r.match)]
        where = f"{origin}: layers[{i}] (match '{r.match}')"
        if not hit:
            raise ConfigError(f"{where} matches no layer of model '{g.name}'; layer names look like "
                              f"{[o.name for o in g.layers()[:3]]}")
        if not any(_takes_rules(o) for o in hit):
            shown = ", ".join(f"{o.op} '{o.name}'" for o in hit[:3]) + (", ..." if len(hit) > 3 else "")
            raise ConfigError(f"{where} matches only ops without weights or MACs ({shown}), whose formats follow "
                              "their neighbours; match the conv2d / linear / matmul / embedding layers instead")


def _set_biases(g: Graph) -> None:
    for op in g.layers():
        slots = type(op).bias_slots
        if not slots or len(op.inputs) <= slots[0]:
            continue
        w, xs = g.weight(op), g.activation_inputs(op)
        integer = (w is not None and _kind(w.quant.format) in ("int", "pow2")
                   and xs and all(_kind(x.quant.format) == "int" for x in xs))
        _set_constant_spec(g, op.inputs[slots[0]], QuantSpec(format="int32" if integer else "fp32"))


def _set_constant_spec(g: Graph, name: str, spec: QuantSpec) -> None:
    """Set a weight's or bias's spec; a constant that holds the integer codes of the model's own
    quantization (a QDQ / QLinear file's int8 weights, int32 biases) first becomes the real
    values they stand for, so the new spec quantizes those (before, the codes were read as real
    values: ``--weights int8`` on a QDQ model gave 0 dB SQNR)."""
    from dataclasses import replace

    from hwsim import formats

    t = g.tensors[name]
    if t.data is not None and spec != t.quant and np.asarray(t.data).dtype.kind in "iu" \
            and t.quant.scale is not None and formats.get(t.quant.format).integer_codes:
        from hwsim.sim.qspec import const_real

        g.tensors[name] = replace(t, data=const_real(t).astype(np.float32), dtype="float32")
    g.set_quant(name, spec)




def parse_scope(value) -> str | tuple[str, ...]:
    """``all``, ``mac_inputs`` or op kinds (a list, or one comma-separated string); ValueError
    naming the valid kinds otherwise."""
    from hwsim.graph.ops import OP_CLASSES

    if isinstance(value, str) and value.strip() in SCOPES:
        return value.strip()
    kinds = tuple(k.strip() for k in (value.split(",") if isinstance(value, str) else value) if str(k).strip())
    bad = [k for k in kinds if k not in OP_CLASSES]
    if bad or not kinds:
        raise ValueError(f"scope {value!r}: use 'all', 'mac_inputs' or op kinds among {', '.join(sorted(OP_CLASSES))}"
                         + (f" (unknown: {', '.join(map(str, bad))})" if bad else ""))
    return kinds


def effective_scope(scope: str | tuple[str, ...] | None, target_scope: str | None = None) -> str | tuple[str, ...]:
    """The scope that applies: the one given (``--scope`` or the config's ``scope``), else the
    pricing target's ``activation_scope``, else :data:`DEFAULT_SCOPE` (``mac_inputs``)."""
    return scope or target_scope or DEFAULT_SCOPE


def scoped_activations(g: Graph, scope: str | tuple[str, ...]) -> list[str]:
    """Names of the float activation tensors (graph inputs, op outputs, KV caches) a scope quantizes.

    ``all``: every one. ``mac_inputs``: those read as activation inputs by MAC ops (``is_compute``:
    conv, linear, matmul, LSTM, GRU...), as onnxruntime's quantizers restricted to MatMul/Conv do.
    Op kinds: those read as activation inputs by ops of these kinds. Both follow such an input back
    through value-preserving views (reshape, transpose, KV-cache read/append: ``_SAME_VALUE_VIEWS``)
    to the tensor that is stored.
    """
    def floats(ts):
        return [t.name for t in ts if t.role in ("input", "activation", "kv_cache")
                and not t.dtype.startswith(("int", "uint", "bool"))]

    if scope == "all":
        return floats(g.tensors.values())
    picked = [op for op in g.ops() if (op.is_compute if scope == "mac_inputs" else op.op in scope)]
    return list(dict.fromkeys(s for op in picked for n in floats(g.activation_inputs(op)) for s in stored_as(g, n)))


def stored_as(g: Graph, name: str) -> list[str]:
    """``name`` and the float activations it is a value-preserving view of (``_SAME_VALUE_VIEWS``,
    followed back to the tensor a layer writes): a format set on a view is set on these too."""
    names = [name]
    for n in names:  # grows while walked
        p = g.producer(n)
        if p is not None and g.op(p).op in _SAME_VALUE_VIEWS:
            names += [t.name for t in g.activation_inputs(g.op(p)) if t.name not in names
                      and not t.dtype.startswith(("int", "uint", "bool"))]
    return names


#: views that move values without changing them: the tensor they read holds the same values (the
#: linear output a reshape/transpose hands to attention, the KV cache an append extends), so a
#: quantized view is stored quantized at its source (same per-tensor range; a KV cache read by
#: attention is kept in the activation format, not in fp32)
_SAME_VALUE_VIEWS = frozenset({"reshape", "transpose", "flatten", "squeeze", "unsqueeze",
                               "kv_cache_read", "kv_cache_append"})


def quantize_graph(graph: Graph, weights: str | None = None, activations: str | None = None,
                   config: QuantConfig | str | Path | None = None, scope: str | None = None,
                   target_scope: str | None = None) -> Graph:
    """Apply ``weights``/``activations`` or a config (not both) to a graph; ``scope``
    replaces the config's scope of the default activation format; ``target_scope`` (the pricing
    target's ``activation_scope``) applies where neither sets one."""
    for option, value in (("weights", weights), ("activations", activations)):
        if value is not None and not str(value).strip():
            raise ConfigError(f"{option} is empty; give a format name such as int8 (or leave it out)", param=option)
    if config is not None and (weights or activations):
        raise ConfigError("give either config or weights/activations, not both", param="config")
    if scope is not None:
        try:
            scope = parse_scope(scope)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    origin = "quant config"
    if config is None:
        if not weights and not activations:
            return graph
        config = QuantConfig.simple(weights, activations, scope)
    elif not isinstance(config, QuantConfig):
        origin = str(config)
        config = QuantConfig.load(config)
    if scope is not None:
        config = config.model_copy(update={"scope": scope})
    return apply_config(graph, config, origin, target_scope)
