"""tails="gain": each layer's choices alone, one probe choice run to the outputs, the others scaled."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from hwsim.graph.builder import Builder
from hwsim.graph.zoo import load_model
from hwsim.sim.runner import ensure_weights
from hwsim.solve.cache import SensitivityCache
from hwsim.solve.choices import parse_choices
from hwsim.solve.data import synthetic
from hwsim.solve.layer_gain import SharedRuns, local_error, per_sample, probe_choice, ratio_values, scaled, slots
from hwsim.solve.layers import solver_layers
from hwsim.solve.output_error import measure

TINY_BERT = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "vocab": 100, "sequence": 8, "batch": 2}
CHOICES = "w=int8,int4;a=int8,int16"


@pytest.fixture(scope="module")
def bert():
    g = ensure_weights(load_model("minilm-l6", TINY_BERT), 0)
    data = synthetic(g, 2)
    chs = parse_choices(CHOICES)
    return g, data, chs, measure(g, chs, data), measure(g, chs, data, tails="gain")


def test_probe_is_the_largest_positive_finite_error():
    assert probe_choice(np.array([1.0, 3.0, np.inf, 2.0])) == 1
    assert probe_choice(np.array([0.0, np.nan, 0.0])) is None


def test_values_scale_with_the_layer_gain():
    got = scaled(np.array([2.0, 4.0, 0.0, 4.0]), 1, 40.0)
    np.testing.assert_array_equal(got, [20.0, 40.0, 0.0, 40.0])  # equal local errors: equal values
    np.testing.assert_array_equal(scaled(np.array([0.0, 0.0]), None, 0.0), [0.0, 0.0])
    assert np.isnan(scaled(np.array([1.0, np.inf]), 0, 3.0)[1])  # measured exactly instead


def test_local_error_sums_every_value_handed_on():
    ref = {"a": np.array([1.0, 2.0]), "b": np.array([0.0])}
    assert local_error({"a": np.array([1.5, 2.0], np.float32), "b": np.array([-2.0])}, ref) == 0.25 + 4.0


def test_probe_exact_others_estimated(bert):
    g, _, chs, exact, gain = bert
    assert gain.layers == exact.layers and np.isfinite(gain.values).all() and (gain.values > 0).all()
    rel = np.abs(gain.values / exact.values - 1)
    assert (rel.min(axis=1) < 1e-4).all()  # each layer's probe runs to the outputs: exact up to float32 roundoff
    assert (rel > 1e-3).any()  # the others are estimated
    assert (gain.values / exact.values > 0.3).all() and (gain.values / exact.values < 3).all()  # measured 0.44-2.5
    assert any("tails=gain" in n for n in gain.notes)


def _chain(batch: int = 8):
    """x -> fc1 -> fc2 -> output, fc2 = 3 x an orthogonal matrix."""
    b = Builder("chain")
    h = b.linear(b.input("x", (batch, 16)), 16, "fc1")
    b.output(b.linear(h, 16, "fc2", bias=False))
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    b.g.set_data("fc2.weight", (3 * q).astype(np.float32))
    return ensure_weights(b.g.verify(), 0)


def test_linear_chain_gains_are_exact():
    """fc1 -> fc2 with fc2 = 3 x an orthogonal matrix: fc1's output error reaches the output
    multiplied by 3 in every direction, so every choice's gain is the probe's; fc2 has no
    descendants (its output is the graph's): measured exactly."""
    g = _chain()
    data, chs = synthetic(g, 8), parse_choices(CHOICES)
    exact, gain = measure(g, chs, data), measure(g, chs, data, tails="gain")
    assert len(set(exact.values[0])) == len(chs)  # four different errors
    np.testing.assert_allclose(gain.values[0], exact.values[0], rtol=1e-5)
    np.testing.assert_array_equal(gain.values[1], exact.values[1])


def test_probe_that_overflows_leaves_the_others_exact(monkeypatch):
    """A probe whose outputs are not finite gives no gain: the layer's other choices are then
    measured exactly (not inf, which the solver would read as 'does not apply')."""
    from hwsim.solve import output_error

    g = _chain()
    data, chs = synthetic(g, 8), parse_choices(CHOICES)
    exact = measure(g, chs, data)
    real, calls = output_error._descendants, []

    def first_overflows(*args, **kwargs):
        outs = real(*args, **kwargs)
        calls.append(len(outs))
        return [{n: v * np.inf for n, v in o.items()} for o in outs] if len(calls) == 1 else outs

    monkeypatch.setattr(output_error, "_descendants", first_overflows)
    gain = measure(g, chs, data, tails="gain")
    assert calls == [1, len(chs) - 1] and np.isinf(gain.values[0]).sum() == 1
    finite = np.isfinite(gain.values[0])
    np.testing.assert_allclose(gain.values[0, finite], exact.values[0, finite], rtol=1e-5)


def test_handed_on_input_has_its_own_gain():
    """fc1 hands its quantized input x on to a concat with its output, and fc2 is block-diagonal
    orthogonal: 3 x on fc1's output, 1 x on x. The output MSE is then exactly
    (9 |d out|^2 + |d x|^2) / N: one gain per handed-on tensor gives the exact table, one gain per
    layer would not (the choices differ in how their error splits between the two)."""
    from hwsim.graph import ops as O

    b = Builder("concat")
    x = b.input("x", (8, 16))
    h = b.linear(x, 16, "fc1")
    cat = b._add(O.Concat(name="cat", axis=1, inputs=(h, x), outputs=("cat.out",)))
    b.output(b.linear(cat, 32, "fc2", bias=False))
    rng = np.random.default_rng(1)
    q1, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    q2, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    w = np.zeros((32, 32), np.float32)
    w[:16, :16], w[16:, 16:] = 3 * q1, q2
    b.g.set_data("fc2.weight", w)
    g = ensure_weights(b.g.verify(), 0)
    data, chs = synthetic(g, 8), parse_choices(CHOICES)
    exact, gain = measure(g, chs, data), measure(g, chs, data, tails="gain")
    np.testing.assert_allclose(gain.values[0], exact.values[0], rtol=1e-4)


def test_shared_runs_run_once():
    import threading

    runs, shared = [], SharedRuns()
    threads = [threading.Thread(target=lambda: shared.get("k", lambda: runs.append(1) or 5.0)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == [1] and shared.get("k", lambda: 0.0) == 5.0 and shared.get("j", lambda: 2.0) == 2.0


def test_gain_values_are_cached_apart(bert, tmp_path):
    g, data, *_ = bert
    chs = parse_choices("w=int4;a=int8")
    cache = SensitivityCache(tmp_path)
    measure(g, chs, data, cache=cache, tails="gain")
    assert measure(g, chs, data, cache=cache).cache_hits == 0
    assert measure(g, chs, data, cache=cache, tails="cut").cache_hits == 0
    assert measure(g, chs, data, cache=cache, tails="gain").cache_hits == len(solver_layers(g))


def test_gain_refuses_other_metrics(bert):
    from hwsim.errors import ConfigError

    g, data, *_ = bert
    with pytest.raises(ConfigError, match="'gain' estimates output_mse only"):
        measure(g, parse_choices("w=int8;a=int8"), data, "task_loss", tails="gain")


def test_cli_offers_every_tails_value(capsys):
    from solve_paths import DIGITS

    from hwsim.cli import main
    from hwsim.solve.sensitivity_table import TAILS

    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    assert "{exact,gain,cut}" in capsys.readouterr().out and set(TAILS) == {"exact", "gain", "cut"}
    assert main(["solve", DIGITS, "--target", "rs-engine", "--budget", "energy_j<=1", "--metric", "proxy",
                 "--tails", "gain", "--quiet"]) == 2
    assert "error: --tails: 'gain' estimates output_mse only" in capsys.readouterr().err


def test_cli_solve_with_gain_tails(tmp_path, capsys):
    """`hwsim solve --tails gain` solves, and its notes say the sensitivity is an estimate."""
    import json

    from solve_paths import CALIB, CHOICES, DIGITS

    from hwsim.cli import main

    assert main(["solve", DIGITS, "--target", "rs-engine", "--choices", CHOICES, "--calib", CALIB, "--samples", "16",
                 "--cache-dir", str(tmp_path), "--quiet", "--budget", "energy_j<=7e-8", "--json",
                 "--tails", "gain"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal" and out["measured"] is not None
    assert any("estimated" in n and "tails=gain" in n for n in out["notes"])


def _tiny_bert(m: int):
    """TINY_BERT built for 2 m samples (the ``batched`` builder of :func:`measure`)."""
    return load_model("minilm-l6", {**TINY_BERT, "batch": 2 * m})


def test_slots_share_the_samples_between_the_choices():
    np.testing.assert_array_equal(slots([0, 2, 3], 8), [0, 2, 3, 0, 2, 3, 0, 2])
    np.testing.assert_array_equal(slots([1], 4), [1, 1, 1, 1])  # one choice: all samples, i.e. exact
    np.testing.assert_array_equal(slots([0, 1, 2], 2), [0, 1, 2, 0])  # more choices than samples: 2 copies
    # per layer: the same shares in an order drawn from the layer's name, the same in every process
    a, b = slots([0, 1, 2], 8, "layer1.0.conv1"), slots([0, 1, 2], 8, "layer1.0.conv2")
    np.testing.assert_array_equal(a, slots([0, 1, 2], 8, "layer1.0.conv1"))
    assert sorted(a.tolist()) == sorted(b.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert len({tuple(slots([0, 1, 2], 8, f"l{i}")) for i in range(10)}) > 5


def test_per_sample_errors_follow_the_first_axis():
    ref = {"a": np.zeros((4, 3)), "b": np.zeros(4)}
    v = {"a": np.arange(12.0).reshape(4, 3), "b": np.array([1.0, 0.0, 2.0, 0.0], np.float32)}
    # 2 samples: rows 0-1 and 2-3 of each array
    np.testing.assert_array_equal(per_sample(v, ref, 2), [sum(x * x for x in range(6)) + 1,
                                                          sum(x * x for x in range(6, 12)) + 4])


def test_ratio_values_scale_each_choice_by_its_own_samples():
    local = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0], [0.0, 5.0, 0.0, 5.0]])
    pick = np.array([0, 1, 2, 0])  # choice 0 in samples 0 and 3, 1 in sample 1, 2 in sample 2
    out = np.array([10.0, 7.0, 3.0, 30.0])
    got = ratio_values(local, out, pick, size=2)
    np.testing.assert_allclose(got[:2], [(10 + 30) / (1 + 4) * 10 / 2, 7 / 1 * 4 / 2])
    assert np.isnan(got[2])  # no local error in its own sample: measured exactly instead
    assert np.isnan(ratio_values(local, out, np.array([0, 0, 0, 0]), 2)[1])  # no sample: measured exactly


def test_identical_samples_give_the_exact_table():
    """With every sample the same, a choice's output error over its local error is the same in
    each sample, so the by-sample estimate is exact (up to the tails' float32 roundoff), however
    differently the choices' errors reach the outputs; one descendant run per layer."""
    from hwsim.solve import output_error
    from hwsim.solve.data import CalibData

    g = ensure_weights(_tiny_bert(1), 0)
    one = synthetic(g, 2)
    data = CalibData({k: np.concatenate([v[:1]] * 2) for k, v in one.inputs.items()}, None, "one sample twice", [])
    chs = parse_choices("w=int8,int4;a=int8")  # 2 choices, 2 samples: one run of one copy per layer
    exact = measure(g, chs, data, batched=_tiny_bert)
    runs = []
    real = output_error._descendants
    output_error._descendants = lambda *a, **k: runs.append(len(a[4])) or real(*a, **k)
    try:
        gain = measure(g, chs, data, tails="gain", batched=_tiny_bert)
    finally:
        output_error._descendants = real
    np.testing.assert_allclose(gain.values, exact.values, rtol=1e-3)
    assert (gain.values != exact.values).any()  # estimated, not measured
    tails = [x for x in gain.layers if nx.descendants(g.nx, x)]  # a layer feeding only outputs has none
    assert runs == [1] * len(tails) and len(tails) >= len(gain.layers) - 1


def test_by_sample_gains_on_a_linear_chain_are_exact():
    """fc1's error reaches the output multiplied by 3 in every sample: the by-sample estimate is
    exact for every choice."""
    g = _chain()
    data, chs = synthetic(g, 8), parse_choices(CHOICES)
    exact = measure(g, chs, data)
    gain = measure(g, chs, data, tails="gain", batched=lambda m: _chain(8 * m))
    np.testing.assert_allclose(gain.values, exact.values, rtol=1e-5)
