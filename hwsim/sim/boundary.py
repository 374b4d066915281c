"""Graph boundary: arrays in the user's types <-> real values inside the simulator.

How tensors travel in ``.npz`` files and in :func:`hwsim.sim.run` input / output dicts:

- integer-typed graph tensors (int8, uint8, int32, int4, ...) travel as integer *codes*; int4/int2
  in int8 arrays, uint4/uint2 in uint8 arrays. Inside, ``real = scale * (code - zero_point)``
  (scale 1, zero point 0 when the tensor has none);
- fp8 / fp6 / fp4 / bf16-typed tensors travel as float32 arrays of the format's values (unscaled);
  float16 and float64 keep their numpy types; everything else is float32.
"""

from __future__ import annotations

import numpy as np

from hwsim import formats
from hwsim.errors import InputDataError
from hwsim.graph.ir import Graph, Tensor
from hwsim.sim import qspec

_LOWP_FLOAT = ("float8", "bfloat16", "float4", "float6")


def read_npz(path: str, what: str = "inputs", names=None) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file (see :func:`hwsim.sim.npzio.read_npz`)."""
    from hwsim.sim.npzio import read_npz as _read

    return _read(path, what, names)


def _key(dtype: str) -> str:
    return dtype.lower().replace("_", "")


def container_dtype(dtype: str) -> np.dtype:
    """numpy dtype that carries a graph type at the boundary (see module docstring)."""
    key = _key(dtype)
    if key.startswith(_LOWP_FLOAT):
        return np.dtype(np.float32)
    if key in ("int4", "int2"):
        return np.dtype(np.int8)
    if key in ("uint4", "uint2"):
        return np.dtype(np.uint8)
    if key == "bool":
        return np.dtype(bool)
    try:
        return np.dtype(key)
    except TypeError:
        return np.dtype(np.float32)


#: ops an index tensor may pass through on its way to the table it indexes
_INDEX_PATH = ("cast", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "slice", "concat")


def index_bound(graph: Graph, name: str) -> int | None:
    """Rows of the smallest table that tensor ``name`` indexes (an embedding table, or the gathered
    axis of a Gather), following it through casts and reshapes; None when it indexes none."""
    bounds, todo, seen = [], [name], {name}
    while todo:
        t = todo.pop()
        for op in graph.consumers(t):
            if op.op == "embedding" and op.inputs[0] == t:
                bounds.append(graph.tensors[op.inputs[1]].shape[0])
            elif op.op == "gather" and op.inputs[1] == t:
                data = graph.tensors[op.inputs[0]].shape
                bounds.append(data[op.axis % len(data)])
            elif op.op in _INDEX_PATH and op.outputs[0] not in seen:
                seen.add(op.outputs[0])
                todo.append(op.outputs[0])
    return min(bounds) if bounds else None


def input_rule(graph: Graph, name: str) -> tuple[str, int | None]:
    """How :func:`random_inputs` fills input ``name``: ("mask", None) ones for attention masks;
    ("positions", bound) 0, 1, 2, ... along the last axis for position ids; ("ids", vocab) token
    ids in [0, vocab) for integer inputs that index an embedding table; ("integers", 100) other
    integer inputs; ("bool", 2); ("normal", None) N(0, 1) for float inputs."""
    t = graph.tensors[name]
    key = name.lower().replace("-", "_")
    kind = container_dtype(t.dtype).kind
    bound = index_bound(graph, name) if kind in "iu" else None
    if "mask" in key:
        return "mask", None
    if kind in "iu" and ("position" in key or key in ("pos_ids", "pos")):
        return "positions", bound
    if kind == "b":
        return "bool", 2
    if kind in "iu":
        return ("ids", bound) if bound else ("integers", 100)
    return "normal", None


def describe_inputs(graph: Graph) -> str:
    """One phrase per input saying how :func:`random_inputs` fills it (for notes)."""
    words = {"mask": "ones", "positions": "0, 1, 2, ...", "bool": "random 0/1", "normal": "N(0, 1)"}
    parts = []
    for name in graph.inputs:
        kind, bound = input_rule(graph, name)
        text = {"ids": f"ids in [0, {bound})", "integers": f"integers in [0, {bound})"}.get(kind, words.get(kind))
        parts.append(f"{name} {text}")
    return ", ".join(parts)


def random_inputs(graph: Graph, rng: np.random.Generator, batch: int | None = None) -> dict[str, np.ndarray]:
    """Seeded inputs for models without data, in their boundary containers (see :func:`input_rule`).

    ``batch`` replaces the leading dimension.
    """
    out = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        shape = t.shape if batch is None else (batch,) + tuple(t.shape[1:])
        dt = container_dtype(t.dtype)
        kind, bound = input_rule(graph, name)
        if kind == "mask":
            out[name] = np.ones(shape, dt)
        elif kind == "positions":
            pos = np.arange(shape[-1]) if shape else np.zeros(())
            out[name] = np.broadcast_to(np.minimum(pos, (bound or pos.size) - 1), shape).astype(dt)
        elif kind in ("ids", "integers", "bool"):
            out[name] = rng.integers(0, bound, shape).astype(dt)
        else:
            out[name] = rng.standard_normal(shape).astype(dt)
    return out


def is_integer_type(dtype: str) -> bool:
    return container_dtype(dtype).kind in "iub"


def _integer_range(dtype: str) -> tuple[int, int]:
    key = _key(dtype)
    if key in ("int4", "int2", "uint4", "uint2"):
        fmt = formats.get(key)
        return fmt.qmin, fmt.qmax
    if key == "bool":
        return 0, 1
    info = np.iinfo(container_dtype(dtype))
    return int(info.min), int(info.max)


def _int_spec(t: Tensor):
    """The tensor's spec if it is an integer format with a scale, else None (codes are values)."""
    q = t.quant
    return q if q.scale is not None and formats.get(q.format).integer_codes else None


def to_real(t: Tensor, arr: np.ndarray) -> np.ndarray:
    """Boundary array of tensor ``t`` -> real float64 values."""
    if is_integer_type(t.dtype):
        spec = _int_spec(t)
        return qspec.from_codes(arr, spec) if spec is not None else np.asarray(arr).astype(np.float64)
    x = np.asarray(arr, dtype=np.float64)
    if _key(t.dtype).startswith(_LOWP_FLOAT) and t.quant.scale is not None:
        scale = qspec.spec_params(t.quant, x.shape)[0]
        s = qspec._broadcast(scale, t.quant, x.shape, 1.0)
        x = x * s.astype(np.float64)
    return x


def from_real(t: Tensor, real: np.ndarray) -> np.ndarray:
    """Real float64 values of tensor ``t`` -> boundary array (codes or values)."""
    dt = container_dtype(t.dtype)
    if dt.kind in "iub":
        spec = _int_spec(t)
        c = qspec.codes(real, spec) if spec is not None else np.rint(np.nan_to_num(real)).astype(np.int64)
        lo, hi = _integer_range(t.dtype)
        return np.clip(c, lo, hi).astype(dt)
    if _key(t.dtype).startswith(_LOWP_FLOAT) and t.quant.scale is not None:
        return qspec.unscaled(real, t.quant).astype(dt)
    return np.asarray(real).astype(dt)


def check_input(t: Tensor, arr) -> np.ndarray:
    """Validate one input array against its graph tensor; raises InputDataError naming both."""
    want = container_dtype(t.dtype)
    try:
        arr = np.asarray(arr)
    except Exception as exc:  # ragged lists and the like
        raise InputDataError(f"input '{t.name}': not an array ({exc})") from None
    if tuple(arr.shape) != tuple(t.shape):
        raise InputDataError(f"input '{t.name}' has shape {tuple(arr.shape)}; the model expects "
                             f"{tuple(t.shape)} (load the model with its dynamic dims bound to this shape)",
                             param="shapes")
    if want.kind in "iub":
        if arr.dtype.kind not in "iub":
            raise InputDataError(f"input '{t.name}' has dtype {arr.dtype}; the model expects integer "
                                 f"type {t.dtype} (pass {want} codes)")
        lo, hi = _integer_range(t.dtype)
        if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
            raise InputDataError(f"input '{t.name}' holds values outside [{lo}, {hi}] of type {t.dtype}")
    elif arr.dtype.kind != "f":
        raise InputDataError(f"input '{t.name}' has dtype {arr.dtype}; the model expects {t.dtype} "
                             f"(pass a {want} array)")
    return arr


def check_names(graph: Graph, names, extra: tuple[str, ...] = ()) -> None:
    """InputDataError for names that are neither graph inputs nor tensors (KV caches) nor ``extra``."""
    unknown = sorted(set(names) - set(graph.inputs) - set(graph.tensors) - set(extra))
    if unknown:
        raise InputDataError(f"unknown input name(s) {unknown}; the model's inputs are {graph.inputs}")


def read_inputs(graph: Graph, inputs: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    """Check and convert every graph input; returns real values and notes (none so far: what
    rounding does to NaN / inf inputs is said by :func:`hwsim.sim.metrics.rounding_notes` in run)."""
    if not isinstance(inputs, dict):
        raise InputDataError("inputs must be a mapping of input name -> array")
    missing = [n for n in graph.inputs if n not in inputs]
    if missing:
        want = ", ".join(f"{n} {graph.tensors[n].shape} {graph.tensors[n].dtype}" for n in missing)
        raise InputDataError(f"missing input(s): {want}; the model's inputs are {graph.inputs}")
    check_names(graph, inputs)
    real, notes = {}, []
    for name in graph.inputs:
        t = graph.tensors[name]
        arr = check_input(t, inputs[name])
        if t.data is not None and not np.array_equal(arr, t.data):  # the graph was specialized to a value
            raise InputDataError(f"input '{name}' decides the model's control flow and the model was imported "
                                 f"for the value {np.asarray(t.data).reshape(-1)[:4].tolist()}; import it again "
                                 "with these inputs")
        real[name] = to_real(t, arr)
    return real, notes
