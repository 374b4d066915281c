"""tails="cut": cuts of the graph, probes exact, the other values scaled by the probe's gain."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.graph.zoo import load_model
from hwsim.sim.runner import ensure_weights
from hwsim.solve.cache import SensitivityCache
from hwsim.solve.choices import parse_choices
from hwsim.solve.cut_gain import cut_points, first_cuts, probe_rows, scaled_values
from hwsim.solve.data import synthetic
from hwsim.solve.layers import solver_layers
from hwsim.solve.output_error import measure

TINY_BERT = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "vocab": 100, "sequence": 8, "batch": 2}


@pytest.fixture(scope="module")
def bert():
    g = ensure_weights(load_model("minilm-l6", TINY_BERT), 0)
    return g, synthetic(g, 2)


def test_cuts_are_the_residual_stream(bert):
    g, _ = bert
    cuts = set(cut_points(g).values())
    for i in range(2):
        assert {f"encoder.layer.{i}.attention.output.LayerNorm.out", f"encoder.layer.{i}.output.LayerNorm.out"} <= cuts
    assert not any(".attention.self." in c for c in cuts)  # q, k and v run side by side: no cut between
    first = first_cuts(g, solver_layers(g))
    attn = {first[f"encoder.layer.0.attention.{n}"] for n in ("self.query", "self.key", "self.value", "output.dense")}
    assert len(attn) == 1 and next(iter(attn))[1] == "encoder.layer.0.attention.residual.out"


def test_probe_is_the_median_positive_error():
    errors = np.array([[3.0, 0.0, np.inf], [1.0, 0.0, 2.0], [2.0, 0.0, np.inf], [5.0, 0.0, 1.0]])
    assert probe_rows(errors) == [2, None, 3]  # lower median of the positive finite errors


def test_values_scale_with_the_probe_gain():
    errors = np.array([[2.0, 0.0], [4.0, 1.0], [np.inf, 3.0]])
    got = scaled_values(errors, [1, 1], {0: 40.0, 1: 5.0})
    np.testing.assert_array_equal(got, [[20.0, 0.0], [40.0, 5.0], [np.inf, 15.0]])


def test_probes_exact_and_single_layers_exact(bert):
    g, data = bert
    chs = parse_choices("w=int8,int4;a=int8")
    exact = measure(g, chs, data)
    cut = measure(g, chs, data, tails="cut")
    layers = solver_layers(g)
    first = first_cuts(g, layers)
    groups = {}
    for i, layer in enumerate(layers):
        groups.setdefault(first.get(layer, layer), []).append(i)  # no cut after it: alone
    assert any(len(rows) > 1 for rows in groups.values())
    for rows in groups.values():
        for j in range(len(chs)):
            rel = np.abs(cut.values[rows, j] / exact.values[rows, j] - 1)
            if len(rows) == 1:
                assert rel[0] < 1e-12  # alone at its cut: measured exactly
            else:  # the probe: exact up to float32 roundoff; the others estimated
                assert rel.min() < 1e-3 and (rel > 1e-3).any()
    assert np.isfinite(cut.values).all() and (cut.values[:, 0] < cut.values[:, 1]).all()
    assert any("tails=cut" in n for n in cut.notes)


def test_cut_values_are_cached_apart_from_exact(bert, tmp_path):
    g, data = bert
    chs = parse_choices("w=int4;a=int8")
    cache = SensitivityCache(tmp_path)
    measure(g, chs, data, cache=cache, tails="cut")
    assert measure(g, chs, data, cache=cache).cache_hits == 0
    assert measure(g, chs, data, cache=cache, tails="cut").cache_hits == len(solver_layers(g))


def test_cut_refuses_other_metrics(bert):
    from hwsim.solve import tables

    g, data = bert
    with pytest.raises(ConfigError, match="output_mse only"):
        measure(g, parse_choices("w=int8;a=int8"), data, "task_loss", tails="cut")
    with pytest.raises(ConfigError, match="output_mse only"):
        tables(g, "int8-npu", metric="proxy", tails="cut")
    with pytest.raises(ConfigError, match="unknown"):
        measure(g, parse_choices("w=int8;a=int8"), data, tails="block")


def test_cli_tails_flag(capsys):
    from solve_paths import DIGITS

    from hwsim.cli import main

    assert main(["solve", DIGITS, "--target", "rs-engine", "--budget", "energy_j<=1", "--metric", "proxy",
                 "--tails", "cut", "--quiet"]) == 2
    assert "error: --tails: 'cut' estimates output_mse only" in capsys.readouterr().err
