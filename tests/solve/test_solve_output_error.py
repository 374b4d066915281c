"""Sensitivity: the tail-graph shortcut equals a full run, the cache and its key, metrics, proxy."""

from __future__ import annotations

import numpy as np
import pytest
from solve_paths import CALIB, DIGITS
from scipy.stats import spearmanr

from hwsim import sim
from hwsim.errors import GraphError, InputDataError
from hwsim.graph.annotate import apply_config
from hwsim.graph.zoo import load_model
from hwsim.solve.cache import SensitivityCache, graph_digest
from hwsim.solve.choices import parse_choices
from hwsim.solve.data import CalibData, load_npz, synthetic
from hwsim.solve.configs import layer_config
from hwsim.solve.output_error import float_values, measure
from hwsim.solve.proxy import measure_proxy
from hwsim.solve.tail import tail_graph


@pytest.fixture(scope="module")
def digits16():
    g = load_model(DIGITS, {"batch": 16})
    return g, load_npz(CALIB, g, 16)


def test_tail_run_equals_full_run(digits16):
    g, data = digits16
    (ch,) = parse_choices("w=int4;a=int8;prune=50%")
    for layer in ("conv2", "fc1"):
        full = sim.run(apply_config(g, layer_config(layer, ch)), data.inputs)
        ref = float_values(g, data)[1]
        table = measure(g, [ch], data, "output_mse")
        i = table.layers.index(layer)
        want = float(np.mean((full.output_values["logits"] - full.reference_outputs["logits"]) ** 2))
        assert table.values[i, 0] == pytest.approx(want, rel=1e-3)
        tail = tail_graph(g, layer)
        assert tail.op(layer) and "conv1" not in tail.nx and set(tail.inputs) <= set(ref)


def test_cache_hits_and_key_changes_with_data(digits16, tmp_path):
    g, data = digits16
    chs = parse_choices("w=int8,int2;a=int8")
    cache = SensitivityCache(tmp_path)
    first = measure(g, chs, data, "output_mse", cache)
    assert first.cache_hits == 0
    again = measure(g, chs, data, "output_mse", cache)
    assert again.cache_hits == first.values.size
    np.testing.assert_array_equal(first.values, again.values)
    other = CalibData({k: v[::-1].copy() for k, v in data.inputs.items()}, data.labels[::-1].copy(), "reversed")
    assert other.digest() != data.digest()
    k1 = cache.key(graph_digest(g), data.digest(), "output_mse", 0, "fc1", chs[0])
    k2 = cache.key(graph_digest(g), other.digest(), "output_mse", 0, "fc1", chs[0])
    k3 = cache.key(graph_digest(g), data.digest(), "output_mse", 0, "fc1", chs[1])
    assert len({k1, k2, k3}) == 3
    assert measure(g, chs, other, "output_mse", cache).cache_hits == 0


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert SensitivityCache().root == tmp_path / "hwsim" / "sensitivity"
    assert SensitivityCache(tmp_path / "x").root == tmp_path / "x" / "sensitivity"


def test_fewer_bits_hurt_more_and_pruning_hurts(digits16):
    g, data = digits16
    chs = parse_choices("w=int8,int4,int2;a=int8;prune=0,75%")
    v = measure(g, chs, data, "output_mse").values
    labels = [c.label for c in chs]
    w8, w4, w2 = (labels.index(f"w={w},a=int8") for w in ("int8", "int4", "int2"))
    assert (v[:, w8] < v[:, w4]).all() and (v[:, w4] < v[:, w2]).all()
    assert (v[:, labels.index("w=int8,a=int8/75%")] > v[:, w8]).all()


def test_task_loss_needs_labels(digits16):
    g, data = digits16
    unlabeled = CalibData(data.inputs, None, "no labels")
    with pytest.raises(InputDataError, match="labels"):
        measure(g, parse_choices("w=int8;a=int8"), unlabeled, "task_loss")
    v = measure(g, parse_choices("w=int2;a=int8"), data, "task_loss").values
    assert (v > 0).all()  # 2-bit weights in any layer raise the cross-entropy


def test_proxy_ranks_like_output_mse(digits16):
    g, data = digits16
    chs = parse_choices("w=int8,int4,int2;a=int8,int4;prune=0,50%")
    mse = measure(g, chs, data, "output_mse").values
    prox = measure_proxy(g, chs, float_values(g, data)[1]).values
    assert spearmanr(mse.ravel(), prox.ravel()).statistic > 0.5


def test_proxy_without_data_dedupes_identical_synthetic_layers():
    g = load_model("llama2-7b", {"layers": 2})
    chs = parse_choices("w=int8,int4;a=int8;prune=0,2:4")
    t = measure_proxy(g, chs)
    q0, q1 = t.layers.index("model.layers.0.self_attn.q_proj"), t.layers.index("model.layers.1.self_attn.q_proj")
    np.testing.assert_array_equal(t.values[q0], t.values[q1])
    assert np.isfinite(t.values).all() and (t.values[:, 1] < t.values[:, 3]).all()  # int8 < int4


def test_npz_errors_say_what_to_store(tmp_path, digits16):
    g, _ = digits16
    p = tmp_path / "bad.npz"
    np.savez(p, a=np.zeros((4, 1, 8, 8)), b=np.zeros(4))
    with pytest.raises(InputDataError, match="no array for graph input"):
        load_npz(p, g)
    assert synthetic(g, 3).inputs["image"].shape == (3, 1, 8, 8)


def test_progress_bar_is_carriage_return_text():
    import io

    from hwsim.render import ProgressBar

    buf = io.StringIO()
    bar = ProgressBar("sensitivity", buf)
    for i in range(4):
        bar(i + 1, 4, f"layer{i}")
    bar.close()
    text = buf.getvalue()
    assert text.count("\r") == 5 and "4/4 layer3" in text and text.endswith("\n")
    assert "[" + "#" * 24 + "]" in text
    quiet = io.StringIO()
    ProgressBar("x", quiet).close()  # nothing measured: nothing drawn
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("error", [TypeError, GraphError])
def test_a_simulator_error_propagates_naming_layer_and_choice(digits16, monkeypatch, error):
    """A simulator bug must not silently become a dropped choice (issue 9)."""
    from hwsim.sim.registry import EXECUTORS

    g, data = digits16
    op = g.op("fc1").op
    real = EXECUTORS[op]

    def broken(ctx, node, xs):
        if not ctx.reference and node.name.startswith("fc1") and ctx.graph.tensors[node.inputs[1]].quant.format == "int4":
            raise error("simulated gap")
        return real(ctx, node, xs)

    monkeypatch.setitem(EXECUTORS, op, broken)
    with pytest.raises(error) as exc:
        measure(g, parse_choices("w=int8,int4;a=int8"), data, "output_mse")
    text = str(exc.value) + " ".join(getattr(exc.value, "__notes__", []))
    assert "simulated gap" in text and "'fc1'" in text and "w=int4,a=int8" in text


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_transformer_with_kv_cache_measures_every_layer(phase):
    g = load_model("llama2-7b", {"layers": 2, "hidden": 32, "heads": 4, "intermediate": 64, "vocab": 50,
                                 "context": 4, "phase": phase, "batch": 2})
    t = measure(g, parse_choices("w=int8,int2;a=int8"), synthetic(g, 2))
    assert not any("failed" in n for n in t.notes)
    assert np.isfinite(t.values).all() and (t.values[:, 0] < t.values[:, 1]).all()


def _two_fc_onnx(path, names):
    """x (4, 8) -> MatMul names[0] -> Relu -> MatMul names[1] -> y, seeded weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w0 = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w0")
    w1 = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "w1")
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["h"], name=names[0]),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w1"], ["y"], name=names[1])]
    graph = helper.make_graph(nodes, "two_fc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])], [w0, w1])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def test_layer_names_are_not_globs(tmp_path):
    """Issue 12 item 3: a layer named 'fc[0]' used to be measured as the glob matching 'fc0'."""
    chs = parse_choices("w=int2;a=int8")
    tricky = load_model(_two_fc_onnx(tmp_path / "a.onnx", ["fc[0]", "fc0"]))
    plain = load_model(_two_fc_onnx(tmp_path / "b.onnx", ["first", "fc0"]))
    a = measure(tricky, chs, synthetic(tricky, 4))
    b = measure(plain, chs, synthetic(plain, 4))
    assert a.layers == ["fc[0]", "fc0"] and b.layers == ["first", "fc0"]
    np.testing.assert_array_equal(a.values, b.values)
    assert a.values[0, 0] != a.values[1, 0]


@pytest.mark.parametrize("stored", ['{"value": NaN}', '{"value": Infinity}', '{"value": -1.0}', '{"value": "0.5"}',
                                    '{"value": true}', '{"value": [1]}', '{"valu', ""])
def test_invalid_cache_entries_are_measured_again(digits16, tmp_path, stored):
    """Issue 12 item 6: NaN, Infinity, negative or string values used to be trusted."""
    g, data = digits16
    chs = parse_choices("w=int4;a=int8")
    cache = SensitivityCache(tmp_path)
    first = measure(g, chs, data, "output_mse", cache)
    paths = sorted(cache.root.rglob("*.json"))
    assert len(paths) == first.values.size
    for p in paths:
        p.write_text(stored)
    again = measure(g, chs, data, "output_mse", cache)
    assert again.cache_hits == 0
    np.testing.assert_array_equal(first.values, again.values)
    assert measure(g, chs, data, "output_mse", cache).cache_hits == first.values.size  # rewritten, valid


def test_cache_key_holds_version_and_schema(digits16, monkeypatch):
    import hwsim
    from hwsim.solve import cache as cache_mod

    g, data = digits16
    (ch,) = parse_choices("w=int4;a=int8")
    args = (graph_digest(g), data.digest(), "output_mse", 0, "fc1", ch)
    k = SensitivityCache.key(*args)
    monkeypatch.setattr(hwsim, "__version__", hwsim.__version__ + ".post1")
    k_version = SensitivityCache.key(*args)
    monkeypatch.setattr(cache_mod, "CACHE_SCHEMA", cache_mod.CACHE_SCHEMA + 1)
    assert len({k, k_version, SensitivityCache.key(*args)}) == 3


def test_negative_task_loss_is_a_valid_cache_value(tmp_path):
    cache = SensitivityCache(tmp_path)
    cache.put("ab" * 32, -0.25)
    assert cache.get("ab" * 32) == -0.25 and cache.get("ab" * 32, nonnegative=True) is None


@pytest.fixture
def simulator_tails(monkeypatch):
    """Descendants always run in the simulator (never the float32 shortcut)."""
    from hwsim.solve import output_error

    monkeypatch.setattr(output_error, "plain_float", lambda graph: False)


def test_stacked_choices_equal_one_run_per_choice(digits16, simulator_tails):
    """The batched descendants run gives the values of one run per choice, bit for bit."""
    g, data = digits16
    chs = parse_choices("w=int8,int4,int2;a=int8,int4;prune=0,50%")
    one = measure(g, chs, data)
    stacked = measure(g, chs, data, batched=lambda m: load_model(DIGITS, {"batch": 16 * m}))
    np.testing.assert_array_equal(one.values, stacked.values)


def test_float32_descendants_match_the_simulator(digits16, monkeypatch):
    """The float32 descendants (stacked or not) give the simulator's values within 2e-3 relative
    (2 eps / r at eps = 1e-6 for these choices, which move the outputs by 1e-3 or more); they
    really run."""
    from hwsim.solve import output_error, tail

    g, data = digits16
    chs = parse_choices("w=int8,int4,int2;a=int8,int4;prune=0,50%")
    calls = []
    monkeypatch.setattr(output_error, "float32_outputs", lambda *a: calls.append(1) or tail.float32_outputs(*a))
    fast = [measure(g, chs, data), measure(g, chs, data, batched=lambda m: load_model(DIGITS, {"batch": 16 * m}))]
    assert len(calls) == 3 * len(chs) + 3  # conv1, conv2, fc1 have descendants: per choice, then stacked
    monkeypatch.setattr(output_error, "plain_float", lambda graph: False)
    exact = measure(g, chs, data).values
    for table in fast:  # the float32 path was taken (calls above) and computed in float32
        np.testing.assert_allclose(table.values, exact, rtol=2e-3)
        assert not np.array_equal(table.values, exact)


def test_tiny_changes_are_measured_in_the_simulator(digits16, monkeypatch):
    """A choice that moves the outputs by less than F32_MIN_CHANGE gets the simulator's value,
    run again with float64 products."""
    from hwsim.solve import output_error, tail

    monkeypatch.setattr(output_error, "F32_MIN_CHANGE", 1e-3)  # fp16 moves these outputs by 1.7e-4 to 2.7e-4
    g, data = digits16
    chs = parse_choices("w=fp16,int4;a=fp16")
    calls = []
    monkeypatch.setattr(output_error, "float32_outputs", lambda *a: calls.append(a[3]) or tail.float32_outputs(*a))
    fast = measure(g, chs, data).values
    # descendants of conv1, conv2, fc1: float32 products for both choices, fp16 again in float64
    assert sorted(calls) == ["float32"] * 6 + ["float64"] * 3
    monkeypatch.setattr(output_error, "plain_float", lambda graph: False)
    exact = measure(g, chs, data).values
    ref = float_values(g, data)[1]["logits"]
    assert np.sqrt(exact[:3, 0] / np.mean(ref ** 2)).max() < output_error.F32_MIN_CHANGE  # fp16: tiny
    np.testing.assert_array_equal(fast[:, 0], exact[:, 0])
    np.testing.assert_allclose(fast[:3, 1], exact[:3, 1], rtol=2e-3)
    assert not np.array_equal(fast[:3, 1], exact[:3, 1])  # int4 weights: float32 descendants


def test_plain_float_only_for_unquantized_unpruned_graphs(digits16):
    from hwsim.graph.quant import Pruning
    from hwsim.solve.tail import plain_float

    g, _ = digits16
    assert plain_float(g)
    (ch,) = parse_choices("w=int8;a=int8")
    assert not plain_float(apply_config(g, layer_config("fc2", ch)))
    pruned = g.copy()
    pruned.replace_op(pruned.op("fc1").model_copy(update={"pruning": Pruning(kind="unstructured", amount=0.5)}))
    assert not plain_float(pruned)


def test_stacked_run_that_does_not_fit_falls_back_to_one_run_per_choice(digits16, monkeypatch, simulator_tails):
    from hwsim import sim
    from hwsim.errors import MemoryLimitError

    g, data = digits16
    chs = parse_choices("w=int8,int2;a=int8")
    want = measure(g, chs, data).values
    real = sim.run

    def small_machine(graph, inputs, **kw):
        if next(iter(inputs.values())).shape[0] > 16:
            raise MemoryLimitError("needs more memory than available")
        return real(graph, inputs, **kw)

    monkeypatch.setattr(sim, "run", small_machine)
    got = measure(g, chs, data, batched=lambda m: load_model(DIGITS, {"batch": 16 * m}))
    np.testing.assert_array_equal(want, got.values)


TINY_BERT = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "vocab": 100, "sequence": 8}


def test_batch_shaped_constants_stack(simulator_tails):
    """A model whose constants have a batch dimension (minilm's position ids) stacks its choices,
    bit-identical to one run per choice."""
    from hwsim.solve.output_error import _Stacked
    from hwsim.sim.runner import ensure_weights

    def build(m):
        return load_model("minilm-l6", {**TINY_BERT, "batch": 2 * m})

    g = ensure_weights(build(1), 0)
    assert g.tensors["position_ids"].shape[0] == 2 and _Stacked(g, build, 0).graph(3) is not None
    chs = parse_choices("w=int8,int4;a=int8,int16")
    data = synthetic(g, 2)
    np.testing.assert_array_equal(measure(g, chs, data).values, measure(g, chs, data, batched=build).values)


def test_float32_tail_of_a_transformer_matches_the_float_run(monkeypatch):
    """float32_outputs of a whole tiny BERT equals the model's float reference within float32
    roundoff, with its float32 ops (hwsim.float32_ops) really taken."""
    from hwsim import float32_ops
    from hwsim.sim.runner import ensure_weights
    from hwsim.solve.tail import float32_outputs

    g = ensure_weights(load_model("minilm-l6", {**TINY_BERT, "batch": 2}), 0)
    ref = float_values(g, synthetic(g, 2))[1]
    calls, scales, arithmetics = [], [], []
    real_softmax = float32_ops.softmax
    monkeypatch.setattr(float32_ops, "softmax", lambda x, scale=None, out=None, arithmetic="float64":
                        scales.append(scale) or arithmetics.append(arithmetic) or real_softmax(x, scale, out, arithmetic))
    for name in ("gelu_erf", "softmax", "layernorm"):
        real = getattr(float32_ops, name)
        monkeypatch.setattr(float32_ops, name, lambda x, *a, real=real, name=name: calls.append(name) or real(x, *a))
    out = float32_outputs(g, {n: ref[n] for n in g.inputs})
    # one encoder layer: one GELU, one softmax, three LayerNorms (embeddings, attention, output)
    assert sorted(set(calls)) == ["gelu_erf", "layernorm", "softmax"]
    assert scales and all(s is not None and s.dtype == np.float32 for s in scales)  # the scale folded in
    assert set(arithmetics) == {"float32"}  # float32 tails: exp in float32 arithmetic (within 3 ulps)
    for name in g.outputs:
        err = np.sqrt(np.mean((out[name] - ref[name]) ** 2) / np.mean(np.asarray(ref[name], np.float64) ** 2))
        assert 0 < err < 1e-6, name


def test_layers_on_threads_give_the_values_of_one_thread(digits16, monkeypatch):
    """Layers measured on one thread per CPU (output_error._each) give the same table, bit for bit,
    as one thread; the float32 descendants and the simulator both run."""
    from hwsim.sim import refblas

    g, data = digits16
    chs = parse_choices("w=int8,int2;a=int8,fp16")
    batched = lambda m: load_model(DIGITS, {"batch": 16 * m})  # noqa: E731
    monkeypatch.setattr(refblas, "cpu_count", lambda: 1)
    one = measure(g, chs, data, batched=batched).values
    monkeypatch.setattr(refblas, "cpu_count", lambda: 2)
    np.testing.assert_array_equal(measure(g, chs, data, batched=batched).values, one)


def test_layer_threads_run_numba_kernels_on_one_thread_each(monkeypatch):
    """On the layer threads (output_error._each) numba's parallel kernels take one thread each
    (the pool has a thread per CPU); the calling thread's numba thread count is left as it was."""
    import numba

    from hwsim.solve import output_error

    if numba.config.DISABLE_JIT or numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba's thread count is 1 here: nothing to tell apart")
    monkeypatch.setattr(output_error, "threads_at_once", lambda: 2)
    before = numba.get_num_threads()
    assert before > 1
    assert list(output_error._each(lambda item: (item, numba.get_num_threads()), range(5))) == \
        [(i, 1) for i in range(5)]
    assert numba.get_num_threads() == before


def test_transformer_reruns_in_float64_match_the_simulator(monkeypatch):
    """Choices that barely move a tiny BERT's outputs, run again with float64 products, get the
    simulator's values (within float32 rounding of the outputs)."""
    from hwsim.solve import output_error

    monkeypatch.setattr(output_error, "F32_MIN_CHANGE", 1e-3)
    g = load_model("minilm-l6", {**TINY_BERT, "batch": 2})
    chs = parse_choices("w=int8,fp16;a=fp16")  # fp16 moves the outputs by 2.7e-4 to 3.8e-4, below 1e-3
    data = synthetic(g, 2)
    calls = []
    real = output_error.float32_outputs
    monkeypatch.setattr(output_error, "float32_outputs", lambda *a: calls.append(a[3]) or real(*a))
    got = measure(g, chs, data).values
    assert "float64" in calls
    monkeypatch.setattr(output_error, "RERUN_PRODUCTS", None)  # the simulator
    want = measure(g, chs, data).values
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_tail_inputs_are_float32_slices_the_stacked_feed_reads_without_a_copy():
    """Each choice's values become float32 (rounded as the feed's concatenation rounds them) in
    one array per name; the stacked feed of consecutive choices is that array, not a copy, and
    equals the concatenation; other selections are concatenated; scored names stay float64."""
    from hwsim.solve.output_error import _as_tail_inputs, _stacked_f32

    rng = np.random.default_rng(0)
    firsts = [{"x": rng.standard_normal((2, 3, 4, 5)).transpose(0, 3, 1, 2), "out": rng.standard_normal((2, 10))}
              for _ in range(3)]
    x64, out64 = [f["x"].copy() for f in firsts], [f["out"] for f in firsts]
    _as_tail_inputs(firsts, {"out"})
    assert all(f["out"] is o for f, o in zip(firsts, out64))
    for f, x in zip(firsts, x64):
        assert f["x"].dtype == np.float32 and np.array_equal(f["x"], x.astype(np.float32))
    for pick in ([0, 1, 2], [1, 2], [0], [0, 2], [2, 1]):
        parts = [firsts[k]["x"] for k in pick]
        got = _stacked_f32(parts)
        want = np.concatenate([x64[k] for k in pick], dtype=np.float32, casting="same_kind")
        assert got.dtype == np.float32 and np.array_equal(got, want)
        assert np.shares_memory(got, parts[0]) == (pick in ([0, 1, 2], [1, 2], [0]))
    ref = rng.standard_normal((2, 5, 3, 4))  # a float64 value from the reference: concatenated
    assert np.array_equal(_stacked_f32([ref, ref]), np.concatenate([ref, ref]).astype(np.float32))
