"""Rows on disk: written as they arrive, merged into one sorted Parquet file with Pareto flags.

While a sweep runs, every finished batch is written as its own small Parquet file in
``OUT.parts/`` (written to a temporary name, then renamed: a file there is always whole), so an
interrupt, even a killed client, keeps every finished row. :meth:`Store.finish` merges ``OUT``
(rows of an earlier run, when resuming) and the parts, keeps one row per ``point_id``, sorts by
point, sets the ``pareto`` flags and replaces ``OUT`` in one rename.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError

_METRICS = ("latency_s", "energy_j", "area_mm2", "weight_bytes", "accuracy_proxy")


def schema(param_types: dict[str, str], levels: list[str], budget_names: list[str]):
    """The pyarrow schema of the rows (same for every run of a SPEC)."""
    import pyarrow as pa

    kinds = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    fields = [("point", pa.int64()), ("point_id", pa.string()), ("model", pa.string()), ("target", pa.string()),
              ("quantization", pa.string())]
    fields += [(k, kinds[v]) for k, v in param_types.items()]
    fields += [("status", pa.string()), ("message", pa.string())]
    fields += [(k, pa.float64()) for k in _METRICS] + [("macs", pa.int64())]
    fields += [(f"bound_{k}", pa.float64()) for k in ["compute", *levels]]
    fields += [(f"min_{k}", pa.float64()) for k in budget_names]
    fields += [("pareto", pa.bool_())]
    return pa.schema(fields)


def _cell(value, kind):
    import json

    import pyarrow as pa

    if value is None or kind != pa.string() or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def to_table(rows: list[dict], sch):
    """Rows (dicts) -> a pyarrow Table of ``sch`` (non-scalar parameter values as JSON text)."""
    import pyarrow as pa

    cols = {f.name: [_cell(r.get(f.name), f.type) for r in rows] for f in sch}
    cols["pareto"] = [False] * len(rows)
    return pa.Table.from_pydict(cols, schema=sch)


class Store:
    """Incremental writer of one sweep's rows (see module docstring)."""

    def __init__(self, out: str | Path, sch, resume: bool):
        self.out, self.schema = Path(out), sch
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.resume = resume  # without it, rows already in ``out`` are replaced, never merged
        if not resume:
            shutil.rmtree(self.parts, ignore_errors=True)
        self.parts.mkdir(parents=True, exist_ok=True)
        self.done = self._present() if resume else set()

    def _tables(self) -> list:
        import pyarrow.parquet as pq

        files = ([self.out] if self.resume and self.out.is_file() else []) + sorted(self.parts.glob("*.parquet"))
        out = []
        for f in files:
            try:
                t = pq.read_table(f)
            except Exception as exc:  # not a Parquet file, or one from another tool
                raise ConfigError(f"resume: cannot read {str(f)!r} ({exc}); remove it or run without resuming", param="resume")
            if t.schema.remove_metadata() != self.schema:
                raise ConfigError(f"resume: {str(f)!r} holds rows of another SPEC (columns differ); use another "
                                  "output path or run without resuming", param="resume")
            out.append(t)
        return out

    def _present(self) -> set[str]:
        ids: set[str] = set()
        for t in self._tables():
            ids.update(t.column("point_id").to_pylist())
        return ids

    def append(self, rows: list[dict]) -> int:
        """Write the rows not yet present as one part file; returns how many were new."""
        import pyarrow.parquet as pq

        new = [r for r in rows if r["point_id"] not in self.done]
        if not new:
            return 0
        tmp = self.parts / f".{uuid.uuid4().hex}.tmp"
        pq.write_table(to_table(new, self.schema), tmp)
        os.replace(tmp, self.parts / f"{uuid.uuid4().hex}.parquet")
        self.done.update(r["point_id"] for r in new)
        return len(new)

    def finish(self, objectives: list[str]):
        """Merge everything into ``out`` (sorted, one row per point, Pareto flags); returns the table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = self._tables()
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        table = table.sort_by([("point", "ascending"), ("point_id", "ascending")])
        seen: set[str] = set()
        keep = [i for i, pid in enumerate(table.column("point_id").to_pylist())
                if not (pid in seen or seen.add(pid))]
        if len(keep) != table.num_rows:
            table = table.take(keep)
        flags = pareto_flags(table, objectives)
        table = table.set_column(table.schema.get_field_index("pareto"), "pareto", pa.array(flags, pa.bool_()))
        tmp = self.out.with_name(f".{self.out.name}.{uuid.uuid4().hex}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.out)
        shutil.rmtree(self.parts, ignore_errors=True)
        return table


def pareto_flags(table, objectives: list[str]) -> list[bool]:
    """True for ok rows that no other ok row of the same model beats on every objective (all minimised)."""
    n = table.num_rows
    flags = [False] * n
    status = table.column("status").to_pylist()
    models = table.column("model").to_pylist()
    vals = np.array([[np.nan if v is None else v for v in table.column(o).to_pylist()] for o in objectives],
                    dtype=float).T.reshape(n, len(objectives))
    for model in dict.fromkeys(models):
        idx = [i for i in range(n) if models[i] == model and status[i] == "ok" and np.isfinite(vals[i]).all()]
        for i in front(vals[idx]):
            flags[idx[i]] = True
    return flags


def front(points: np.ndarray) -> list[int]:
    """Indices of the non-dominated rows of ``points`` (n, k), all objectives minimised.

    Rows are visited in lexicographic order, so a row can only be dominated by one visited before
    it; each is compared with the front found so far. Equal rows are all kept.
    """
    if len(points) == 0:
        return []
    order = np.lexsort(points.T[::-1])
    kept: list[int] = []
    for i in order:
        p = points[i]
        if kept:
            f = points[kept]
            if np.any(np.all(f <= p, axis=1) & np.any(f < p, axis=1)):
                continue
        kept.append(int(i))
    return sorted(kept)
