"""A layer alone at each choice (output_error._alone): the choices side by side in one simulator
run give exactly the values of one run per choice."""

from __future__ import annotations

import numpy as np
import pytest
from solve_paths import CALIB, DIGITS

from hwsim.errors import MemoryLimitError
from hwsim.graph.annotate import apply_config
from hwsim.graph.zoo import load_model
from hwsim.solve import output_error as oe
from hwsim.solve.choices import parse_choices
from hwsim.solve.configs import layer_config
from hwsim.solve.data import load_npz, synthetic
from hwsim.solve.layers import prunable, solver_layers

TINY_BERT = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "vocab": 100, "sequence": 8, "batch": 2}


@pytest.fixture(scope="module", params=["digits", "bert"])
def model(request):
    from hwsim.sim.runner import ensure_weights

    if request.param == "digits":
        g = load_model(DIGITS, {"batch": 16})
        data = load_npz(CALIB, g, 16)
    else:
        g = ensure_weights(load_model("minilm-l6", TINY_BERT), 0)
        data = synthetic(g, 2)
    return g, oe.float_values(g, data)[1]


def _each(g, layer, chs, ref):
    after = oe.nx.descendants(g.nx, layer)
    one, feed = oe._one_op(g, layer, after, ref)
    return oe._alone_each([apply_config(one, layer_config(layer, ch)) for ch in chs], layer, chs, feed, ref, 0)


def _same(a: list[dict], b: list[dict]) -> bool:
    return all(set(x) == set(y) and all(x[n].dtype == y[n].dtype and np.array_equal(x[n], y[n]) for n in x)
               for x, y in zip(a, b)) and len(a) == len(b)


def test_side_by_side_equals_one_run_per_choice(model):
    g, ref = model
    chs = parse_choices("w=int8,int4;a=int8,int16;prune=0,50%")
    for layer in solver_layers(g):
        mine = [ch for ch in chs if prunable(g, layer, ch)]
        firsts, _ = oe._alone(g, layer, mine, ref, 0)
        assert _same(firsts, _each(g, layer, mine, ref)), layer


def test_side_by_side_shares_what_choices_hold_alike(model):
    """One graph input per activation format, one weight tensor per weight format; each choice
    its own op and outputs."""
    g, ref = model
    layer = solver_layers(g)[0]
    chs = parse_choices("w=int8,int4;a=int8,int16")
    one, _ = oe._one_op(g, layer, oe.nx.descendants(g.nx, layer), ref)
    both, renames = oe._side_by_side([apply_config(one, layer_config(layer, ch)) for ch in chs],
                                     [ch.label for ch in chs])
    assert len(both.ops()) == 4 and len(both.inputs) == 2 * len(one.inputs)
    w = g.weight(g.op(layer)).name
    assert len({r[w] for r in renames}) == 2 and renames[0][w] == w
    assert len({r[t] for r in renames for t in g.op(layer).outputs}) == 4


def test_side_by_side_that_fails_runs_one_by_one(model, monkeypatch):
    from hwsim import sim

    g, ref = model
    layer = solver_layers(g)[-1]
    chs = parse_choices("w=int8,int4;a=int8")
    real, refused = sim.run, []

    def small_machine(graph, inputs, **kw):
        if len(graph.ops()) > 1:
            refused.append(graph)
            raise MemoryLimitError("needs more memory than available")
        return real(graph, inputs, **kw)

    want = oe._alone(g, layer, chs, ref, 0)[0]
    monkeypatch.setattr(sim, "run", small_machine)
    assert _same(oe._alone(g, layer, chs, ref, 0)[0], want) and refused


def test_layers_on_one_reference_calibrate_each_activation_once(model, monkeypatch):
    """On an arriving reference the layers share one calibration memo under the model's tensor
    names: an activation read by several layers, at an 8-bit and a 16-bit format, gets one pass
    for its statistic; the values equal those of layers each calibrating on their own."""
    from hwsim.sim import qspec
    from hwsim.sim.arriving import ArrivingReference, reference_names

    g, ref = model
    chs = parse_choices("w=int8,int4;a=int8,int16")
    layers = solver_layers(g)
    alone = [oe._alone(g, layer, chs, ref, 0)[0] for layer in layers]  # a plain dict: no shared memo
    arriving = ArrivingReference(reference_names(g), lambda into: into.update(ref))
    arriving.result()
    spans, real_span = [], qspec.finite_span
    monkeypatch.setattr(qspec, "finite_span", lambda x: spans.append(x.shape) or real_span(x))
    shared = [oe._alone(g, layer, chs, arriving, 0)[0] for layer in layers]
    assert all(_same(a, b) for a, b in zip(alone, shared))
    read = {t for layer in layers for t in g.op(layer).inputs[:1]}
    assert len(spans) == len(read) < 2 * len(layers)  # one statistic per activation, both formats
    assert {k[0] for k in arriving.calibrated if k[1] == "finite span"} == read
