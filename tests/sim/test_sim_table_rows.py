"""Embedding tables quantized row by row as they are read (hwsim.sim.qspec.TableRows): the values,
per-layer metrics and notes of quantizing the whole table first."""

import numpy as np
import pytest

from hwsim.errors import InputDataError
from hwsim.graph.annotate import quantize_graph
from hwsim.graph.quant import QuantSpec
from hwsim.graph.weights import synthesize_weights
from hwsim.graph.zoo import load_model
from hwsim.sim import qspec, run
from hwsim.solve.data import synthetic

TABLE = "embeddings.word_embeddings.weight"


def _model(table_spec=None):
    g = quantize_graph(synthesize_weights(load_model("minilm-l6", {"batch": 2, "sequence": 16}), 0), "int8", "int8")
    if table_spec == "rows with zero points":  # per row, given scales (float32 values) and zero points
        rows = g.tensors[TABLE].shape[0]
        rng = np.random.default_rng(1)
        scale = rng.uniform(0.01, 0.05, rows).astype(np.float32)
        table_spec = QuantSpec(format="uint8", granularity="channel", axis=0, scale=tuple(scale.tolist()),
                               zero_point=tuple(rng.integers(100, 156, rows).tolist()))
    if table_spec is not None:
        g.set_quant(TABLE, table_spec)
    return g, synthetic(g, 2, 0).inputs


@pytest.mark.parametrize("table_spec", [None, QuantSpec(format="int8"), QuantSpec(format="uint8"),
                                        QuantSpec(format="int4", granularity="channel", axis=0),
                                        QuantSpec(format="int8", scale=(0.05,), zero_point=(3,)),
                                        "rows with zero points"])
def test_rows_equal_the_whole_table(monkeypatch, table_spec):
    g, inputs = _model(table_spec)
    taken = []
    take = qspec.TableRows.take
    monkeypatch.setattr(qspec.TableRows, "take", lambda self, ids: taken.append(ids.size) or take(self, ids))
    rows = run(g, inputs, requant="exact")
    assert taken and all(n == 2 * 16 for n in taken)  # the rows path ran, on the ids only
    monkeypatch.setattr(qspec, "table_rows_apply", lambda *a: False)
    whole = run(g, inputs, requant="exact", reference=rows.reference)
    for n, v in whole.output_values.items():
        np.testing.assert_array_equal(rows.output_values[n], v)
    assert [(e.name, e.mse, e.sqnr_db) for e in rows.layers] == [(e.name, e.mse, e.sqnr_db) for e in whole.layers]
    assert rows.notes == whole.notes


def test_nan_anywhere_in_the_table_is_refused_as_before(monkeypatch):
    g, inputs = _model()
    data = g.tensors[TABLE].data.copy()
    used = set(np.asarray(inputs["input_ids"]).reshape(-1).tolist())
    data[next(i for i in range(data.shape[0]) if i not in used), 5] = np.nan  # a row no id reads
    g.set_data(TABLE, data)
    with pytest.raises(InputDataError) as rows:
        run(g, inputs, requant="exact")
    monkeypatch.setattr(qspec, "table_rows_apply", lambda *a: False)
    with pytest.raises(InputDataError) as whole:
        run(g, inputs, requant="exact")
    assert str(rows.value) == str(whole.value)


def test_take_of_rows_equals_the_quantized_table_gathered():
    """TableRows.take on its own: ids of any shape, negative ids, repeated ids and none at all."""
    rng = np.random.default_rng(3)
    table = rng.standard_normal((50, 7)).astype(np.float32)
    for spec in (QuantSpec(format="int8", scale=(0.02,), zero_point=(-4,)),
                 qspec.calibrate(QuantSpec(format="int4", granularity="channel", axis=0), table)):
        whole = qspec.quantize(table.astype(np.float64), spec)
        rows = qspec.TableRows(table, spec)
        ids = np.array([[3, -1, 3], [49, 0, -50]])
        np.testing.assert_array_equal(rows.take(ids), whole[ids])
        assert rows.take(np.zeros((2, 0), np.int64)).shape == (2, 0, 7)
