"""On-disk cache of simulated sensitivities, keyed by a hash of model, data, metric, layer and choice.

The key also holds hwsim's version and :data:`CACHE_SCHEMA` (the meaning of a value: simulator
semantics, metric definitions, how sensitivity is measured), so an upgrade never reads stale
values. An entry is trusted only if it holds a finite JSON number (non-negative where the metric
is); anything else (NaN, Infinity, a string, a negative MSE, a truncated file) reads as a miss
and is measured again.

Location: the ``cache_dir`` parameter (``--cache-dir``) if given, else ``$XDG_CACHE_HOME/hwsim``, else ``~/.cache/hwsim``
(read when a cache is created, never at import). One small JSON file per entry under
``sensitivity/<2 hex>/<hash>.json``, written atomically (temporary file, then rename), so
concurrent solves never read half an entry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from hwsim.graph.ir import Graph

#: bump when the meaning of a cached value changes (simulator semantics, metric definitions,
#: the measurement itself). 2: tail runs compared against the whole model's float reference;
#: 3: all-float descendants run in float32 arithmetic
CACHE_SCHEMA = 3


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hwsim`` or ``~/.cache/hwsim``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hwsim"


def graph_digest(graph: Graph) -> str:
    """sha256 of a graph's ops (in order, with attributes), tensor annotations and weight values."""
    h = hashlib.sha256()
    for op in graph.ops():
        h.update(op.model_dump_json().encode())
    for name in sorted(graph.tensors):
        t = graph.tensors[name]
        h.update(f"{name}|{t.shape}|{t.role}|{t.dtype}|{t.quant.model_dump_json()}".encode())
        if t.data is not None:
            a = np.ascontiguousarray(t.data)
            h.update(str(a.dtype).encode())
            h.update(a.reshape(-1).view(np.uint8))  # the bytes of tobytes(), without copying them
    h.update("|".join(graph.inputs + ["->"] + graph.outputs).encode())
    return h.hexdigest()


class SensitivityCache:
    """Get / put float values by key (see module docstring)."""

    def __init__(self, directory: str | Path | None = None):
        self.root = (Path(directory) if directory else default_cache_dir()) / "sensitivity"

    @staticmethod
    def key(model_digest: str, data_digest: str, metric: str, seed: int, layer: str, choice) -> str:
        """sha256 of hwsim's version, the cache schema and every input of one measurement."""
        from hwsim import __version__

        text = json.dumps([__version__, CACHE_SCHEMA, model_digest, data_digest, metric, seed, layer,
                           choice.model_dump(mode="json")], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, nonnegative: bool = False) -> float | None:
        """The cached value, or None when absent or not a valid value (see module docstring)."""
        try:
            value = json.loads(self._path(key).read_text())["value"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        value = float(value)
        if not math.isfinite(value) or (nonnegative and value < 0):
            return None
        return value

    def put(self, key: str, value: float) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"value": float(value)}))
            os.replace(tmp, path)
        except OSError:  # a read-only or full cache directory only costs speed
            pass
