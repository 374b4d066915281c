"""Read ``.safetensors`` weight files with numpy alone, and load them into a graph by name.

The format (https://github.com/huggingface/safetensors, "Format"): 8 bytes little-endian unsigned
header length N, then N bytes of UTF-8 JSON mapping each tensor name to ``{"dtype", "shape",
"data_offsets": [begin, end]}`` (offsets in bytes, relative to the byte after the header), plus an
optional ``"__metadata__"`` mapping of strings; then the raw little-endian row-major data. Floating
tensors are returned as float32 (F16 and BF16 widened exactly), integer tensors keep their type.

:func:`load_weights` puts the values into a graph's parameters, checking every shape. Names are
matched as they are; ``name_map`` renames file tensors (``None`` drops one), so a checkpoint with a
prefix or extra buffers (Hugging Face's ``embeddings.position_ids``) loads without editing it.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.graph.ir import Graph

#: safetensors dtype -> little-endian numpy dtype as stored (BF16 is read as its uint16 bits)
DTYPES: dict[str, str] = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
#: header size cap of the reference implementation (100 MB), so a corrupt length fails fast
MAX_HEADER_BYTES = 100_000_000
_ROLES = ("weight", "bias", "buffer")


def _bad(path, why: str) -> InputDataError:
    return InputDataError(f"{path}: not a valid safetensors file ({why}); re-export it with "
                          f"safetensors.numpy.save_file or torch's save_file")


def read_header(path: str | Path) -> tuple[dict[str, dict], int]:
    """The tensor entries of a safetensors file and the byte offset where its data starts.

    Returns
    -------
    entries : dict of str to dict
        Tensor name -> ``{"dtype", "shape", "data_offsets"}`` (``__metadata__`` left out), checked.
    data_start : int
        Absolute offset (bytes) of the data buffer in the file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"safetensors file {str(path)!r} not found")
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _bad(path, f"{size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise _bad(path, f"header length {n} does not fit in a file of {size} bytes")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise _bad(path, "header is not a JSON object")
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    for name, e in entries.items():
        _check_entry(path, name, e, size - 8 - n)
    return entries, 8 + n


def _check_entry(path, name: str, e, data_bytes: int) -> None:
    if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= set(e):
        raise _bad(path, f"entry {name!r} needs dtype, shape and data_offsets")
    if e["dtype"] not in DTYPES:
        raise _bad(path, f"entry {name!r} has dtype {e['dtype']!r}; readable: {', '.join(DTYPES)}")
    shape, offs = e["shape"], e["data_offsets"]
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise _bad(path, f"entry {name!r} has shape {shape!r}, not a list of non-negative integers")
    if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)):
        raise _bad(path, f"entry {name!r} has data_offsets {offs!r}, not [begin, end]")
    begin, end = offs
    want = math.prod(shape) * np.dtype(DTYPES[e["dtype"]]).itemsize
    if not 0 <= begin <= end <= data_bytes:
        raise _bad(path, f"entry {name!r} data_offsets {offs} outside the {data_bytes}-byte data buffer")
    if end - begin != want:
        raise _bad(path, f"entry {name!r} spans {end - begin} bytes but {e['dtype']} {shape} needs {want}")


def _decode(buf: bytes, dtype: str, shape: list[int]) -> np.ndarray:
    a = np.frombuffer(buf, dtype=DTYPES[dtype]).reshape(shape)
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        return (a.astype(np.uint32) << 16).view(np.float32)
    if dtype in ("F16", "F64"):
        return a.astype(np.float32)
    return a.astype(a.dtype.newbyteorder("="))


def read_safetensors(path: str | Path, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file (only ``names`` when given), floats as float32.

    Raises
    ------
    InputDataError
        Missing file, a truncated or malformed header, an unknown dtype, or offsets that do not
        match the shape or the file.
    """
    entries, start = read_header(path)
    out = {}
    with Path(path).open("rb") as f:
        for name, e in entries.items():
            if names is not None and name not in names:
                continue
            begin, end = e["data_offsets"]
            f.seek(start + begin)
            out[name] = _decode(f.read(end - begin), e["dtype"], e["shape"])
    return out


def load_weights(graph: Graph, path: str | Path, name_map: dict[str, str | None] | None = None) -> Graph:
    """A copy of ``graph`` whose parameters hold the values stored in a safetensors file.

    Parameters
    ----------
    graph : Graph
    path : str or Path
        The ``.safetensors`` file.
    name_map : dict of str to (str or None), optional
        File tensor name -> graph tensor name; ``None`` skips that file tensor.

    Raises
    ------
    ConfigError
        A file tensor with no graph parameter of that name, a graph parameter the file does not
        hold, or a shape that differs; the message lists the names on both sides.
    """
    name_map = name_map or {}
    entries, _ = read_header(path)
    wanted = {n: name_map.get(n, n) for n in entries if name_map.get(n, n) is not None}
    params = {n for n, t in graph.tensors.items() if t.role in _ROLES}
    extra = sorted(n for n, g in wanted.items() if g not in params)
    missing = sorted(params - set(wanted.values()))
    if extra or missing:
        raise ConfigError(f"{path}: names do not match model '{graph.name}': file tensors with no graph parameter "
                          f"{extra[:8]}{' ...' if len(extra) > 8 else ''}; graph parameters not in the file "
                          f"{missing[:8]}{' ...' if len(missing) > 8 else ''}. Map file names with "
                          f"name_map={{file_name: graph_name}} (None skips a file tensor)")
    bad = [f"{n}: file {entries[n]['shape']} vs graph {list(graph.tensors[g].shape)}"
           for n, g in wanted.items() if tuple(entries[n]["shape"]) != graph.tensors[g].shape]
    if bad:
        raise ConfigError(f"{path}: shapes differ from model '{graph.name}': {'; '.join(bad[:8])}; "
                          f"build the model with the checkpoint's configuration")
    g = graph.copy()
    for name, value in read_safetensors(path, set(wanted)).items():
        g.set_data(wanted[name], value)
    g.notes = [n for n in g.notes if "synthetic" not in n] + [f"weights loaded from {Path(path).name}"]
    return g
