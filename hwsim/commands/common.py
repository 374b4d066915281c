"""Argument groups and loading steps shared by the CLI commands."""

from __future__ import annotations

import argparse

from hwsim.errors import ConfigError


def parse_shape_args(text: str | list[str] | None) -> dict[str, int | tuple[int, ...]]:
    """``batch=1,sequence=128`` -> {'batch': 1, 'sequence': 128}; ``x=1x3x48x192`` binds the whole
    input ``x`` (as trtexec does) -> {'x': (1, 3, 48, 192)}. A list (``--shape`` given several
    times) is read as one comma-joined text; a name bound twice to different values is refused."""
    if isinstance(text, list):
        text = ",".join(text)
    out: dict[str, int | tuple[int, ...]] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"--shape entry {part!r} must be name=value, e.g. --shape batch=1,sequence=128 "
                              "or --shape input=1x3x224x224")
        try:
            dims = tuple(int(v) for v in value.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--shape {key}: {value!r} is not an integer or a shape like 1x3x224x224") from None
        value = dims if "x" in value.lower() else dims[0]
        if out.get(key.strip(), value) != value:
            raise ConfigError(f"--shape binds {key.strip()!r} twice, to {out[key.strip()]} and {value}; give it once")
        out[key.strip()] = value
    return out


def add_model_args(p: argparse.ArgumentParser, quant: bool = True) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="zoo name with optional parameters (llama2-7b:phase=decode,context=2048), "
                        "a model .yaml, or an .onnx file")
    p.add_argument("--shape", metavar="K=V,...", action="append",
                   help="bind dynamic ONNX dims / override zoo parameters, e.g. batch=1,sequence=128; "
                        "NAME=1x3x48x192 binds a whole ONNX input (repeatable)")
    if quant:
        p.add_argument("--weights", metavar="FMT", help="weight format for every layer, e.g. int8, int4, fp8_e4m3fn")
        p.add_argument("--activations", metavar="FMT", help="activation format for every layer, e.g. int8")
        p.add_argument("--config", metavar="Q.yaml", help="quant config YAML (defaults + per-layer overrides)")
        p.add_argument("--scope", metavar="SCOPE", help="which activations --activations (or the config's default) "
                       "quantizes: mac_inputs (the activation inputs of conv/linear/matmul/LSTM; other tensors "
                       "stay fp32), all (every activation, attention-mask arithmetic and softmax inputs "
                       "included), or op kinds, e.g. linear,matmul,softmax. Default: the config's scope, else "
                       "the target's activation_scope where a target prices the model (all for every bundled "
                       "target), else mac_inputs")


def add_inputs_arg(p: argparse.ArgumentParser) -> None:
    """--inputs for commands that do not run the model: input shapes and control values."""
    p.add_argument("--inputs", metavar="IN.npz", help="input arrays by graph input name: an ONNX model takes its "
                   "input shapes and control values (e.g. an If on a sample-rate input) from them")


def input_values(args: argparse.Namespace) -> dict | None:
    """The arrays of --inputs named like the graph inputs of an ONNX MODEL (its shapes and control
    values; other members are not decompressed), or None."""
    path = getattr(args, "inputs", None)
    if not path or not str(args.model).endswith(".onnx"):
        return None
    if getattr(args, "_input_values", None) is None:
        from hwsim.graph.onnx import input_names
        from hwsim.sim.boundary import read_npz

        args._input_values = read_npz(path, names=input_names(args.model))
    return args._input_values


def check_shape_inputs(args: argparse.Namespace) -> None:
    """For commands that take only shapes and control values from --inputs (summary, estimate,
    solve): the file's arrays must be ones the model reads (or 'labels'), and a zoo / YAML model,
    whose shapes come from its parameters, must have the shapes given; refused as simulate
    refuses them, instead of pricing another shape."""
    path = getattr(args, "inputs", None)
    if not path:
        return
    from types import SimpleNamespace

    from hwsim.graph.onnx import input_names
    from hwsim.graph.zoo import load_model
    from hwsim.sim.boundary import check_input, check_names
    from hwsim.sim.npzio import npz_names, read_npz

    if str(args.model).endswith(".onnx"):  # shapes come from the file; its names must be the model's
        check_names(SimpleNamespace(inputs=list(input_names(args.model)), tensors={}), npz_names(path),
                    extra=("labels",))
        return
    graph = load_model(args.model, parse_shape_args(getattr(args, "shape", None)))
    check_names(graph, npz_names(path), extra=("labels",))
    for name, arr in read_npz(path, names=graph.inputs).items():
        check_input(graph.tensors[name], arr)


def load_graph(args: argparse.Namespace):
    """Model argument + --shape (+ --inputs) + quant options -> verified, annotated Graph."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.zoo import load_model

    graph = load_model(args.model, parse_shape_args(getattr(args, "shape", None)), values=input_values(args))
    return quantize_graph(graph, getattr(args, "weights", None), getattr(args, "activations", None),
                          getattr(args, "config", None), getattr(args, "scope", None))


def seed_int(text: str) -> int:
    """argparse type of --seed: an integer >= 0 (numpy seeds cannot be negative)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0, e.g. --seed 0")
    return value


def positive_int(text: str) -> int:
    """argparse type of counts such as --samples: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def check_output(path: str | None, option: str, plot: bool = False) -> None:
    """Fail before any work if ``path`` cannot be written: a directory, a missing parent, a plot suffix
    matplotlib cannot write."""
    import os
    from pathlib import Path

    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {path!r} is a directory; give a file name, e.g. {option} out.png"
                          if plot else f"{option} {path!r} is a directory; give a file name")
    if plot:
        known = ("png", "svg", "pdf", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")
        if p.suffix.lower().lstrip(".") not in known:
            raise ConfigError(f"{option} {path!r}: unknown image suffix {p.suffix or '(none)'!r}; end the name in "
                              f".png (or {', '.join('.' + k for k in known[1:])})")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{option} {path!r}: directory {str(parent)!r} does not exist; create it or pick "
                          "another path")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {path!r}: directory {str(parent)!r} is not writable; pick another path")


def write_output(path: str, option: str, write) -> None:
    """Write an output file exactly at ``path`` with ``write(path)`` and say so on stderr.

    Existing files are replaced, as compilers and converters do (``-o``), and the line says it:
    ``--out: wrote o.npz (replaced the existing file)``. stdout stays the command's data (tables,
    JSON). A failed write becomes a ConfigError naming the option.
    """
    import os
    import sys

    existed = os.path.lexists(path)
    try:
        write(path)
    except OSError as exc:
        raise write_error(path, option, exc) from None
    print(f"{option}: wrote {path}" + (" (replaced the existing file)" if existed else ""), file=sys.stderr)


def write_error(path: str, option: str, exc: OSError) -> ConfigError:
    """ConfigError for a write that failed at the end of a command."""
    return ConfigError(f"{option}: cannot write {path!r} ({exc.strerror or exc}); pick a writable path")
