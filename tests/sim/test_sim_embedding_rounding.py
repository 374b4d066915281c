"""The embedding executor rounds the rows it gathers (registry own_rounding), not its whole table:
the same outputs as the runner rounding the table first (plans session 7)."""

import numpy as np

import hwsim
from hwsim.sim import ortfused, registry, run
from hwsim.sim.boundary import random_inputs

_MODEL = "minilm-l6:layers=1,sequence=16,vocab=2000,hidden=64,heads=2,intermediate=128"


def test_embedding_rounds_gathered_rows_with_the_same_outputs(monkeypatch):
    g = hwsim.quantize_graph(hwsim.load_model(_MODEL), "int8", "int16")
    x = random_inputs(g, np.random.default_rng(0))
    shapes = []
    real_rounding = ortfused.rounded_f32
    monkeypatch.setattr(ortfused, "rounded_f32", lambda a: (shapes.append(np.shape(a)), real_rounding(a))[1])
    new = run(g, x, metrics=False)
    assert (2000, 64) not in shapes and (1, 16, 64) in shapes  # rows rounded, the table not
    monkeypatch.setattr(registry, "OWN_ROUNDING", set())  # the runner rounds the whole table, as before
    shapes.clear()
    old = run(g, x, metrics=False)
    assert (2000, 64) in shapes
    for name, v in old.output_values.items():
        np.testing.assert_array_equal(new.output_values[name], v)
