"""layer_output_error: single-layer errors order as the choices should, from one float reference."""

import numpy as np

import hwsim
from hwsim.graph.weights import synthesize_weights
from hwsim.sim import layer_output_error, run
from hwsim.sim.prune import prune_channels, prune_nm, prune_unstructured


def test_single_layer_errors_order_by_precision_and_pruning():
    g = synthesize_weights(hwsim.load_model("resnet18:resolution=32"), 0)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    ref = run(g, {"input": x}).reference
    e = {c: layer_output_error(g, ref, "layer2.0.conv1", *c).sqnr_db
         for c in [(None, None), ("int8", "int8"), ("int4", "int8"), ("int8", "int8", "2:4")]}
    assert e[(None, None)] > 100  # fp32 choice: only float32 rounding
    assert 30 < e[("int8", "int8")] < 50
    assert e[("int4", "int8")] < e[("int8", "int8")] - 10
    assert e[("int8", "int8", "2:4")] < e[("int8", "int8")]


def test_pruning_functions_keep_the_promised_counts():
    w = np.random.default_rng(1).standard_normal((8, 3, 3, 3))
    assert np.count_nonzero(prune_unstructured(w, 0.5)) == w.size - w.size // 2
    nm = prune_nm(w, 2, 4).reshape(8, -1)
    assert all(np.count_nonzero(r[i:i + 4]) <= 2 for r in nm for i in range(0, 24, 4))
    ch = prune_channels(w, 0.25)
    zero_rows = [i for i in range(8) if not ch[i].any()]
    norms = np.linalg.norm(w.reshape(8, -1), axis=1)
    assert sorted(zero_rows) == sorted(np.argsort(norms)[:2].tolist())
