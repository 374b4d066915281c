"""Per-layer choices: weight format x activation format x pruning.

Pruning is the 0-bit end of the same choice (as in Bayesian Bits): a layer may keep all weights
at 8 bits, fewer weights at 8 bits, or all weights at 2 bits, and the solver weighs them alike.

The text spelling (the ``choices`` parameter; ``--choices`` on the CLI) is ``"w=int8,int4,int2;a=int8;prune=0,2:4"``: the cross product of the three
lists. Defaults come from the target: every (activation, weight) pair its compute unit has a rate
for, with the pruning it can exploit (its N:M patterns; 50% unstructured when it skips zero
weights), and no pruning.
"""

from __future__ import annotations

import itertools

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hwsim.errors import ConfigError
from hwsim.graph.quant import Pruning, canonical_format


class Choice(BaseModel):
    """One option for one layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight_format: str = Field(description="Weight format name, e.g. int8, int4.")
    activation_format: str = Field(description="Format of the layer's activation inputs, e.g. int8.")
    pruning: Pruning = Field(Pruning(), description="Weight pruning applied before quantization.")

    @field_validator("weight_format", "activation_format")
    @classmethod
    def _fmt(cls, v: str) -> str:
        return canonical_format(v)

    @property
    def label(self) -> str:
        """``w4a8`` style label, with ``/2:4`` when pruned."""
        tail = "" if self.pruning.kind == "none" else f"/{self.pruning.label}"
        return f"w={self.weight_format},a={self.activation_format}{tail}"

    @property
    def weight_bits(self) -> float:
        from hwsim import formats

        return float(formats.get(self.weight_format).bits_per_element)

    @property
    def activation_bits(self) -> float:
        from hwsim import formats

        return float(formats.get(self.activation_format).bits_per_element)


def _split_list(key: str, text: str) -> list[str]:
    items = [v.strip() for v in text.split(",") if v.strip()]
    if not items:
        raise ConfigError(f"choices: '{key}=' lists nothing; e.g. w=int8,int4", param="choices")
    return items


def parse_choices(text: str, defaults: list[Choice] | None = None) -> list[Choice]:
    """Parse ``"w=int8,int4;a=int8;prune=0,2:4"`` into the cross product of choices.

    Keys left out take their values from ``defaults`` (their distinct weight formats, activation
    formats or prunings); ``prune`` defaults to ``0`` when there are no defaults.
    """
    parts: dict[str, list[str]] = {}
    aliases = {"w": "w", "weights": "w", "a": "a", "activations": "a", "prune": "prune", "p": "prune",
               "pruning": "prune"}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in aliases:
            raise ConfigError(f"choices: part {part!r} must be w=..., a=... or prune=...; "
                              'e.g. "w=int8,int4,int2;a=int8;prune=0,2:4"', param="choices")
        if aliases[key] in parts:
            raise ConfigError(f"choices: {aliases[key]}= twice (at {part!r}); list every value once, "
                              'e.g. "w=int8,int4;a=int8"', param="choices")
        parts[aliases[key]] = _split_list(key, value)
    d = defaults or []
    ws = parts.get("w") or list(dict.fromkeys(c.weight_format for c in d))
    acts = parts.get("a") or list(dict.fromkeys(c.activation_format for c in d))
    prunes = parts.get("prune") or (list(dict.fromkeys(c.pruning.label for c in d)) or ["0"])
    if not ws or not acts:
        raise ConfigError("choices: name weight formats (w=...) and activation formats (a=...); "
                          "the target gives no defaults", param="choices")
    out = [Choice(weight_format=w, activation_format=a, pruning=Pruning.parse(p))
           for w, a, p in itertools.product(ws, acts, prunes)]
    return list(dict.fromkeys(out))


def target_choices(target) -> list[Choice]:
    """Default choices of a target: its supported (activation, weight) pairs x exploitable pruning."""
    prunes = [Pruning()]
    feats = target.features
    prunes += [Pruning(kind="nm", n=p.n, m=p.m) for p in feats.nm_sparsity]
    if feats.skip_zero_weights:
        prunes.append(Pruning(kind="unstructured", amount=0.5))
    out = []
    for rate in target.compute.rates:
        try:
            w, a = canonical_format(rate.weight), canonical_format(rate.activation)
        except Exception:  # a rate spelled in a way the format registry does not know: skip it
            continue
        out += [Choice(weight_format=w, activation_format=a, pruning=p) for p in prunes]
    return list(dict.fromkeys(out))


def choices_for(text: str | None, target) -> list[Choice]:
    """The choices of a solve: ``--choices`` text over the target's defaults."""
    defaults = target_choices(target)
    if not text:
        if not defaults:
            raise ConfigError(f"choices: target {target.name!r} lists no format pairs; name the choices",
                              param="choices")
        return defaults
    return parse_choices(text, defaults)
