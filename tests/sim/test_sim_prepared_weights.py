"""Weights prepared once for the runs that share a FloatCache with ``prepared`` (solve's plans)."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from hwsim import sim
from hwsim.graph.annotate import LayerRule, QuantConfig, apply_config
from hwsim.graph.zoo import load_model
from hwsim.sim import qspec
from hwsim.sim.runner import ensure_weights
from hwsim.solve.data import synthetic

SMALL_BERT = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "vocab": 100, "sequence": 16,
              "pooler": False, "batch": 2}


def _configs():
    g = ensure_weights(load_model("minilm-l6", SMALL_BERT), 0)  # one set of weight arrays for both
    cfgs = [QuantConfig(defaults=LayerRule(weights="int8", activations=a)) for a in ("int8", "int16")]
    return g, [apply_config(g, c) for c in cfgs]


def test_runs_sharing_prepared_weights_give_the_same_outputs_and_prepare_each_once(monkeypatch):
    g, graphs = _configs()
    inputs = synthetic(g, 2, 0).inputs
    ref = sim.run(graphs[0], inputs, metrics=False).reference
    own = [sim.run(q, inputs, reference=ref, metrics=False).output_values for q in graphs]
    calls = []
    prepare = qspec.prepare_constant
    monkeypatch.setattr(qspec, "prepare_constant", lambda t, *a: calls.append(t.name) or prepare(t, *a))
    shared = dataclasses.replace(ref, prepared={})
    got = [None, None]

    def run(i):
        got[i] = sim.run(graphs[i], inputs, reference=shared, metrics=False).output_values

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]  # at once: each made once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for mine, theirs in zip(got, own):
        assert mine.keys() == theirs.keys()
        for n in mine:
            np.testing.assert_array_equal(mine[n], theirs[n])
    assert calls and len(calls) == len(set(calls)) == len(shared.prepared)
    values = [v[0] for v in (slot.get(None) for slot in shared.prepared.values())]
    arrays = [a for v in values for a in ((v.codes, v.real()) if isinstance(v, qspec.Coded) else (v,))]
    assert any(isinstance(v, qspec.Coded) for v in values)  # MAC weights: codes made in the quantizing pass
    assert all(not a.flags.writeable for a in arrays)
    sim.run(graphs[1], inputs, reference=shared, metrics=False)
    assert len(calls) == len(set(calls))  # a later run prepares nothing again
