"""Argument groups and loading steps shared by the CLI commands."""

from __future__ import annotations

import argparse

from hwsim.errors import ConfigError


def parse_shape_args(text: str | None) -> dict[str, int]:
    """``batch=1,sequence=128`` -> {'batch': 1, 'sequence': 128}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"--shape entry {part!r} must be name=value, e.g. --shape batch=1,sequence=128")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            raise ConfigError(f"--shape {key}: {value!r} is not an integer") from None
    return out


def add_model_args(p: argparse.ArgumentParser, quant: bool = True) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="zoo name with optional parameters (llama2-7b:phase=decode,context=2048), "
                        "a model .yaml, or an .onnx file")
    p.add_argument("--shape", metavar="K=V,...",
                   help="bind dynamic ONNX dims / override zoo parameters, e.g. batch=1,sequence=128")
    if quant:
        p.add_argument("--weights", metavar="FMT", help="weight format for every layer, e.g. int8, int4, fp8_e4m3fn")
        p.add_argument("--activations", metavar="FMT", help="activation format for every layer, e.g. int8")
        p.add_argument("--config", metavar="Q.yaml", help="quant config YAML (defaults + per-layer overrides)")


def load_graph(args: argparse.Namespace):
    """Model argument + --shape + quant options -> verified, annotated Graph."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.zoo import load_model

    graph = load_model(args.model, parse_shape_args(getattr(args, "shape", None)))
    return quantize_graph(graph, getattr(args, "weights", None), getattr(args, "activations", None),
                          getattr(args, "config", None))
