"""Solver choices written as quant configs (:class:`hwsim.graph.annotate.QuantConfig`).

Layer names are matched as globs by configs, so every rule that names one layer escapes it
(:func:`glob_escape`): a layer called ``fc[0]`` must never match ``fc0``.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter

from hwsim.graph.annotate import LayerRule, QuantConfig
from hwsim.graph.ir import Graph
from hwsim.solve.choices import Choice
from hwsim.solve.layers import prunable


def glob_escape(name: str) -> str:
    """A glob that matches exactly ``name`` (fnmatch metacharacters bracketed)."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def layer_config(layer: str, choice: Choice) -> QuantConfig:
    """A config setting only ``layer`` to ``choice`` (everything else stays as it is)."""
    return QuantConfig(layers=(_rule(glob_escape(layer), choice),))


def uniform_config(graph: Graph, layers: list[str], choice: Choice) -> QuantConfig:
    """Every solver layer at ``choice`` (pruning left out where it cannot apply)."""
    rules = [LayerRule(match=glob_escape(n), pruning="0") for n in layers if not prunable(graph, n, choice)]
    return QuantConfig(defaults=LayerRule(weights=choice.weight_format, activations=choice.activation_format,
                                          pruning=choice.pruning.label), layers=tuple(rules))


def plan_config(graph: Graph, layers: list[str], picks: list[Choice], default: Choice) -> QuantConfig:
    """The quant config of a plan.

    Defaults are the ``default`` choice (what the base cost was priced with: formats of weights
    and activations that no solver layer chooses); one rule per group of layers that share a
    name pattern (digits as ``*``, e.g. ``model.layers.*.mlp.up_proj``) when the pattern matches
    exactly that group among all ops, set to the group's most common choice and followed by one
    rule per layer that differs (later rules win); else one rule per layer.
    """
    names = [o.name for o in graph.ops()]
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(layers):
        groups.setdefault(re.sub(r"\d+", "*", glob_escape(n)), []).append(i)
    rules = []
    for pattern, idx in groups.items():
        common, count = Counter(picks[i] for i in idx).most_common(1)[0]
        if count > 1 and sum(fnmatch.fnmatchcase(n, pattern) for n in names) == len(idx):
            rules.append(_rule(pattern, common))  # the group's most common choice, then its exceptions
            rules += [_rule(glob_escape(layers[i]), picks[i]) for i in idx if picks[i] != common]
        else:
            rules += [_rule(glob_escape(layers[i]), picks[i]) for i in idx]
    return QuantConfig(defaults=LayerRule(weights=default.weight_format, activations=default.activation_format,
                                          pruning="0"), layers=tuple(rules))


def _rule(match: str, c: Choice) -> LayerRule:
    return LayerRule(match=match, weights=c.weight_format, activations=c.activation_format, pruning=c.pruning.label)
