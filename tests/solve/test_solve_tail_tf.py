"""The transformer tail's float32 executors (hwsim.solve.tail_tf) against plain numpy."""

import numpy as np
import pytest

from hwsim.solve.tail_tf import _matmul


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("sa, sb", [((24, 128, 12, 32), None), ((1, 12, 5, 7), (1, 12, 7, 3)),
                                    ((3, 1, 5, 7), (1, 4, 7, 3)), ((9, 5, 7), (9, 7, 3)),
                                    ((2, 3, 4, 5, 7), (2, 3, 4, 7, 2))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stacked_products_equal_numpy_matmul(rng, sa, sb, dtype):
    if sb is None:  # attention heads: transposed views of a linear's output, not copied
        b, s, h, d = sa
        a = rng.standard_normal((b, s, h * d)).astype(np.float32).reshape(b, s, h, d).transpose(0, 2, 1, 3)
        k = rng.standard_normal((b, s, h * d)).astype(np.float32).reshape(b, s, h, d).transpose(0, 2, 3, 1)
    else:
        a, k = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    got = _matmul(a, k, np.dtype(dtype))
    want = np.matmul(a.astype(np.float64), k.astype(np.float64))
    assert got.dtype == np.float32 and got.shape == want.shape
    tol = 1e-5 if dtype == "float32" else 1e-7  # float32 sums / one rounding of float64 sums
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_products_other_than_float32_stacks_are_not_taken(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    assert _matmul(a, rng.standard_normal((4, 5)).astype(np.float32), np.dtype("float32")) is None
    assert _matmul(a.astype(np.float64), a.transpose(0, 2, 1), np.dtype("float32")) is None


@pytest.mark.parametrize("shapes", [((24, 12, 128, 32), (24, 12, 32, 128), (24, 12, 128, 32)),
                                    ((2, 3, 5, 7), (2, 3, 7, 6), (2, 3, 6, 4)),
                                    ((1, 3, 5, 7), (2, 1, 7, 6), (1, 1, 6, 4)), ((3, 5, 7), (3, 7, 6), (3, 6, 2))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scaled", [True, False])
def test_attention_chain_equals_its_ops_one_by_one(rng, shapes, dtype, scaled):
    """One task per block (scores, softmax in place, product with v) gives what the products and
    the softmax give op by op, element for element."""
    from hwsim import float32_ops
    from hwsim.solve.tail_tf import _attention, _rowwise

    q, k, v = ((rng.standard_normal(s) * 3).astype(np.float32) for s in shapes)
    if shapes[0][0] == 24:  # heads as transposed views of a linear's output, as in a tail
        q = q.transpose(0, 2, 1, 3).copy().transpose(0, 2, 1, 3)
        k = k.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)
    scale = np.float32(0.17677669) if scaled else None
    arithmetic = "float32" if dtype == "float32" else "float64"
    scores = _matmul(q, k, np.dtype(dtype))
    probs = _rowwise(lambda x, out: float32_ops.softmax(x, scale, out, arithmetic), scores)
    want = _matmul(probs, v, np.dtype(dtype))
    got = _attention(q, k, scale, v, np.dtype(dtype), arithmetic)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want)
    s = np.matmul(q.astype(np.float64), k.astype(np.float64)) * (1.0 if scale is None else float(scale))
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    formula = np.matmul(e / e.sum(axis=-1, keepdims=True), v.astype(np.float64))  # plain numpy, float64
    np.testing.assert_allclose(got, formula, rtol=1e-4, atol=1e-5 * np.abs(formula).max())


def _tiny_bert(sequence: int, batch: int):
    """A tiny two-layer BERT (zoo minilm-l6 shape) with weights, and its float reference's graph
    inputs as float32: what a tail is fed."""
    from hwsim.graph.zoo import load_model
    from hwsim.sim.runner import ensure_weights
    from hwsim.solve import output_error
    from hwsim.solve.data import synthetic

    tiny = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "vocab": 100, "sequence": sequence,
            "batch": batch}
    g = ensure_weights(load_model("minilm-l6", tiny), 0)
    ref = output_error.float_values(g, synthetic(g, batch))[1]
    return g, {n: np.asarray(ref[n], np.float32) for n in g.inputs}


@pytest.mark.parametrize("products", ["float32", "float64"])
def test_attention_chains_of_a_tail_give_its_values_op_by_op(monkeypatch, products):
    """float32_outputs of a tiny two-layer BERT takes each layer's attention as one chain, and its
    outputs equal those of the same tail run op by op (the chain not taken), element for element."""
    from hwsim.solve import tail_tf
    from hwsim.solve.tail import float32_outputs

    g, feed = _tiny_bert(8, 3)
    chains = []
    real = tail_tf._attention
    monkeypatch.setattr(tail_tf, "_attention", lambda *a: chains.append(1) or real(*a))
    got = float32_outputs(g, feed, 0, products)
    assert len(chains) == 2
    monkeypatch.setattr(tail_tf.Transformer, "_attention_chain", lambda *a: None)
    want = float32_outputs(g, feed, 0, products)
    assert len(chains) == 2 and set(got) == set(want) == set(g.outputs)
    for name in g.outputs:
        assert np.array_equal(got[name], want[name]), name


def test_tails_read_linear_and_layernorm_weights_without_copies(monkeypatch):
    """float32_outputs reads the float32 weights of linears and LayerNorms as the model's own
    arrays (read-only views, no float64 round trip through const_real), leaves them unchanged, and
    gives the values it gives with the copies."""
    from hwsim.sim import qspec
    from hwsim.solve import tail

    g, feed = _tiny_bert(8, 2)
    shared = tail._shared_constants(g)
    linears = {t for op in g.ops() if op.op in ("linear", "layernorm") for t in op.inputs[1:]}
    assert shared and shared <= linears and all(g.tensors[n].data.dtype == np.float32 for n in shared)
    before = {n: g.tensors[n].data.copy() for n in shared}
    read = []
    real = qspec.const_real
    monkeypatch.setattr(qspec, "const_real", lambda t: read.append(t.name) or real(t))
    got = tail.float32_outputs(g, feed)
    assert not set(read) & shared
    assert all(np.array_equal(g.tensors[n].data, before[n]) for n in shared)
    monkeypatch.setattr(tail, "_shared_constants", lambda graph: set())
    want = tail.float32_outputs(g, feed)
    assert set(read) >= shared
    for name in g.outputs:
        assert np.array_equal(got[name], want[name]), name


@pytest.mark.parametrize("products", ["float32", "float64"])
def test_epilogues_in_their_linears_blocks_give_the_values_op_by_op(monkeypatch, products):
    """float32_outputs of a tiny two-layer BERT runs each FFN's GELU inside its first linear's row
    blocks, and each residual add with its LayerNorm inside the linear before them (float32
    products; the float64 re-run keeps them apart), and its outputs equal those of the same tail
    with those ops run on their own, element for element. Rows enough for several sub-blocks per
    block (batch 3 x sequence 96 = 288 rows), sub-blocks that do not divide the blocks."""
    from hwsim.solve import tail_tf
    from hwsim.solve.tail import float32_outputs

    g, feed = _tiny_bert(96, 3)
    fused = []
    real = tail_tf._linear
    monkeypatch.setattr(tail_tf, "_linear", lambda op, value, dtype, rows=None:
                        (fused.append(op.name) if rows else None) or real(op, value, dtype, rows))
    monkeypatch.setattr(tail_tf, "_EPILOGUE_ROWS", 40)
    got = float32_outputs(g, feed, 0, products)
    n = 6 if products == "float32" else 0  # per layer: the GELU's, the attention's and the FFN's residual
    assert len(fused) == n, fused
    real_init = tail_tf.Transformer.__init__

    def apart(self, *a, **k):
        real_init(self, *a, **k)
        self.epilogue_of = {}

    monkeypatch.setattr(tail_tf.Transformer, "__init__", apart)
    want = float32_outputs(g, feed, 0, products)
    assert len(fused) == n and set(got) == set(want) == set(g.outputs)
    for name in g.outputs:
        assert np.array_equal(got[name], want[name]), name
