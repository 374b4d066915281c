"""Pareto flags and the incremental Parquet store."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwsim.errors import ConfigError
from hwsim.sweep.store import Store, front, schema


def _brute(points):
    n = len(points)
    return [i for i in range(n) if not any(
        np.all(points[j] <= points[i]) and np.any(points[j] < points[i]) for j in range(n))]


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 30), st.integers(1, 3)),
              elements=st.integers(0, 6).map(float)))
def test_front_is_the_non_dominated_set(points):
    assert front(points) == _brute(points)


SCHEMA = schema({"compute.rows": "int64"}, ["sram", "dram"], ["latency_s"])


def _row(i, lat, model="m", status="ok"):
    return {"point": i, "point_id": f"id{i}", "model": model, "target": "t", "quantization": "q",
            "compute.rows": 16 * i, "status": status, "message": "", "latency_s": lat, "energy_j": 1.0 / lat,
            "area_mm2": None, "weight_bytes": 1.0, "accuracy_proxy": None, "macs": 10}


def test_rows_survive_without_finish_and_merge_sorted_once(tmp_path):
    out = tmp_path / "r.parquet"
    s = Store(out, SCHEMA, resume=False)
    assert s.append([_row(3, 3.0), _row(1, 1.0)]) == 2
    assert s.append([_row(1, 1.0), _row(2, 2.0, status="error")]) == 1  # id1 again: not duplicated
    assert len(list(s.parts.glob("*.parquet"))) == 2  # whole files on disk before finish
    s2 = Store(out, SCHEMA, resume=True)  # as after a killed client
    assert s2.done == {"id1", "id2", "id3"}
    t = s2.finish(["latency_s", "energy_j"])
    assert t.column("point").to_pylist() == [1, 2, 3]
    assert t.column("pareto").to_pylist() == [True, False, True]  # the error row is never on the front
    assert pq.read_table(out).equals(t) and not s2.parts.exists()


def test_resume_refuses_a_file_of_another_spec(tmp_path):
    out = tmp_path / "r.parquet"
    s = Store(out, SCHEMA, resume=False)
    s.append([_row(1, 1.0)])
    s.finish(["latency_s"])
    with pytest.raises(ConfigError, match="another SPEC"):
        Store(out, schema({}, ["sram"], []), resume=True)


def test_without_resume_an_existing_file_is_replaced_not_merged(tmp_path):
    out = tmp_path / "r.parquet"
    old = Store(out, schema({}, ["sram"], []), resume=False)  # rows of another SPEC
    old.append([{**_row(7, 7.0), "point_id": "old"}])
    old.finish(["latency_s"])
    s = Store(out, SCHEMA, resume=False)
    s.append([_row(1, 1.0)])
    assert s.finish(["latency_s"]).column("point_id").to_pylist() == ["id1"]
