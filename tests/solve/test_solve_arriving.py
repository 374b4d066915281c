"""The float reference read while it is computed (hwsim.sim.arriving) and its use by measure."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hwsim.graph.zoo import load_model
from hwsim.solve import output_error
from hwsim.sim.arriving import ArrivingReference, ReferenceFailed, reference_names
from hwsim.solve.choices import parse_choices
from hwsim.solve.data import synthetic
from hwsim.solve.output_error import float_values, measure


@pytest.mark.parametrize("model, shapes", [("resnet18", {"batch": 2, "resolution": 32, "width": 8}),
                                           ("minilm-l6", {"batch": 1, "sequence": 8, "layers": 1})])
def test_names_are_those_of_the_finished_reference(model, shapes):
    g = load_model(model, shapes)
    g, ref = float_values(g, synthetic(g, shapes["batch"], 0))
    assert reference_names(g) == set(ref)


def test_a_reader_waits_for_a_value_and_reads_it_as_stored():
    go = threading.Event()

    def compute(into):
        into["a"] = np.ones(2)
        go.wait(5)
        into["b"] = np.full(2, 2.0)

    ref = ArrivingReference({"a", "b"}, compute)
    got = []
    reader = threading.Thread(target=lambda: got.append(ref["b"]))
    reader.start()
    np.testing.assert_array_equal(ref["a"], [1, 1])
    assert "b" in ref and "c" not in ref and not got
    go.set()
    reader.join(5)
    np.testing.assert_array_equal(got[0], [2, 2])
    ref.result()
    assert sorted(ref) == ["a", "b"] and "b" in ref
    with pytest.raises(KeyError):
        ref["c"]


def test_a_failing_reference_fails_its_readers_and_result_raises_its_error():
    def compute(into):
        into["a"] = np.ones(1)
        raise MemoryError("no room for the reference")

    ref = ArrivingReference({"a", "b"}, compute)
    with pytest.raises(ReferenceFailed, match="no room"):
        ref["b"]
    np.testing.assert_array_equal(ref["a"], [1])
    with pytest.raises(MemoryError, match="no room"):
        ref.result()


def test_measure_raises_the_references_own_error(monkeypatch):
    g = load_model("resnet18", {"batch": 2, "resolution": 32, "width": 8})
    data = synthetic(g, 2, 0)

    def broken(graph, data, seed=0, into=None):
        into["input"] = data.inputs["input"]
        raise MemoryError("the reference does not fit")

    monkeypatch.setattr(output_error, "float_values", broken)
    with pytest.raises(MemoryError, match="does not fit"):
        measure(g, parse_choices("w=int8;a=int8"), data)


def test_measure_with_the_reference_arriving_equals_it_given_whole(monkeypatch):
    """The layers start while the reference is computed; the values equal those measured on the
    finished reference (the reference computed before, handed to a compute that stores it at once)."""
    g = load_model("resnet18", {"batch": 2, "resolution": 32, "width": 8})
    data = synthetic(g, 2, 0)
    chs = parse_choices("w=int8,int4;a=int8")
    arriving = measure(g, chs, data).values
    whole = float_values(g, data)[1]
    given = measure(g, chs, data, reference=lambda into: into.update(whole) or whole).values
    np.testing.assert_array_equal(arriving, given)


@pytest.mark.parametrize("model, shapes", [("resnet18", {"batch": 2, "resolution": 32, "width": 8}),
                                           ("minilm-l6", {"batch": 2, "sequence": 8, "layers": 2, "hidden": 32,
                                                          "heads": 2, "intermediate": 64, "vocab": 100})])
def test_layers_go_on_while_the_reference_outputs_are_missing(monkeypatch, model, shapes):
    """Every layer's outputs are scored against the reference's outputs, which the reference makes
    last: a layer whose tail is done before them is finished later (measure scores it then) and
    its thread goes on to the next layer. Here the reference holds its outputs back until every
    layer's tail has run (it would wait forever if a layer's thread waited for them), and the
    values equal those measured on the finished reference."""
    monkeypatch.setattr(output_error, "threads_at_once", lambda: 2)
    g = load_model(model, shapes)
    data = synthetic(g, shapes["batch"], 0)
    chs = parse_choices("w=int8,int4;a=int8")
    whole = float_values(g, data)[1]
    layers = [n for n in output_error.solver_layers(g) if output_error.nx.descendants(g.nx, n)]
    tails, all_run = [], threading.Event()
    real = output_error._tail_runs

    def counted(*a, **k):
        out = real(*a, **k)
        tails.append(a[1])
        if len(set(tails)) == len(layers):
            all_run.set()
        return out

    monkeypatch.setattr(output_error, "_tail_runs", counted)

    def late_outputs(into):
        into.update({n: v for n, v in whole.items() if n not in g.outputs})
        assert all_run.wait(30), "a layer's thread waited for the reference's outputs"
        into.update({n: whole[n] for n in g.outputs})
        return whole

    got = measure(g, chs, data, reference=late_outputs).values
    assert all_run.is_set()
    monkeypatch.setattr(output_error, "_tail_runs", real)
    np.testing.assert_array_equal(got, measure(g, chs, data, reference=lambda into: into.update(whole) or whole).values)


def test_outputs_held_for_later_are_bounded(monkeypatch):
    """Layers finished later hold their outputs meanwhile: at most DEFER_MAX_BYTES over a
    measure's threads; beyond it a layer's thread waits for the reference as before (0: never
    later), and the values do not change."""
    monkeypatch.setattr(output_error, "threads_at_once", lambda: 2)
    g = load_model("resnet18", {"batch": 2, "resolution": 32, "width": 8})
    data = synthetic(g, 2, 0)
    chs = parse_choices("w=int8,int4;a=int8")
    whole = float_values(g, data)[1]
    later = []
    real = output_error._group_values
    monkeypatch.setattr(output_error, "_group_values",
                        lambda *a, **k: (lambda v: later.append(callable(v)) or v)(real(*a, **k)))

    def slow(into):  # the outputs come last, after a pause: layers are done before them
        into.update({n: v for n, v in whole.items() if n not in g.outputs})
        threading.Event().wait(1.0)
        into.update({n: whole[n] for n in g.outputs})
        return whole

    free = measure(g, chs, data, reference=slow).values
    assert any(later)
    monkeypatch.setattr(output_error, "DEFER_MAX_BYTES", 0)
    later.clear()
    bounded = measure(g, chs, data, reference=slow).values
    assert later and not any(later)
    np.testing.assert_array_equal(free, bounded)
