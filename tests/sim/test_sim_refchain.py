"""The float reference's elementwise chains (hwsim.sim.refchain): a GELU written out as ops gives
the same reference values, outputs and metrics with the chain made in one pass as op by op."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

from hwsim.graph.annotate import quantize_graph
from hwsim.graph.onnx import load_onnx
from hwsim.sim import refchain, run
from hwsim.sim.refvalues import Biased, Product


def _gelu_model(path, form: str) -> None:
    """MatMul + bias -> GELU written out -> MatMul -> times 0.5. ``bert``: BERT's QDQ export order (x * 0.5,
    x * (1 / sqrt 2), Erf, + 1, product), its scalars made by DequantizeLinear of int8 constants;
    ``torch``: torch's (x / sqrt 2, Erf, + 1, x * that, * 0.5)."""
    rng = np.random.default_rng(0)
    n = h.make_node
    f = lambda name, a: nh.from_array(np.asarray(a, np.float32), name)  # noqa: E731
    inits = [f("w1", rng.standard_normal((16, 40)) * 0.3), f("b1", rng.standard_normal(40) * 0.1),
             f("w2", rng.standard_normal((40, 16)) * 0.3), f("one", 1.0), f("rt", np.sqrt(2.0)), f("half", 0.5),
             nh.from_array(np.int8(64), "half_q"), nh.from_array(np.int8(91), "irt_q"),
             f("s_half", 0.5 / 64), f("s_irt", 1 / np.sqrt(2.0) / 91)]
    nodes = [n("MatMul", ["x", "w1"], ["p"]), n("Add", ["p", "b1"], ["a"])]
    if form == "bert":
        nodes += [n("DequantizeLinear", ["half_q", "s_half"], ["half_dq"]),
                  n("Mul", ["a", "half_dq"], ["m1"]),
                  n("DequantizeLinear", ["irt_q", "s_irt"], ["irt_dq"]),
                  n("Mul", ["a", "irt_dq"], ["m2"]), n("Erf", ["m2"], ["e"]),
                  n("Add", ["e", "one"], ["e1"]), n("Mul", ["m1", "e1"], ["g"])]
    else:
        nodes += [n("Div", ["a", "rt"], ["d"]), n("Erf", ["d"], ["e"]), n("Add", ["e", "one"], ["e1"]),
                  n("Mul", ["a", "e1"], ["m"]), n("Mul", ["m", "half"], ["g"])]
    nodes += [n("MatMul", ["g", "w2"], ["y0"]), n("Mul", ["y0", "half"], ["y"])]  # a product times a scalar
    m = h.make_model(h.make_graph(nodes, "gelu", [h.make_tensor_value_info("x", TP.FLOAT, [2, 8, 16])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, [2, 8, 16])], inits),
                     opset_imports=[h.make_opsetid("", 17)])
    onnx.save(m, path)


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, np.float64).reshape(-1).view(np.uint64)


def _with_and_without_chains(monkeypatch, g, x):
    """(run with the reference's chains, run op by op, what each refchain.run call made)."""
    made, plain_run = [], refchain.run
    monkeypatch.setattr(refchain, "run", lambda c, v: made.append(plain_run(c, v)) or made[-1])
    results = {}
    for on in (True, False):
        monkeypatch.setattr(refchain, "enabled", on)
        results[on] = run(g, x, float_reference=True)
    return results[True], results[False], made


@pytest.mark.parametrize("form", ["bert", "torch"])
@pytest.mark.parametrize("quantized", [True, False])
def test_chain_gives_the_op_by_op_values_and_metrics(tmp_path, monkeypatch, form, quantized):
    _gelu_model(tmp_path / "m.onnx", form)
    g = load_onnx(tmp_path / "m.onnx", {})
    if quantized:
        g = quantize_graph(g, "int8", "int8")
    chains = refchain.plan(g)
    assert [(c.x, len(c.ops)) for c in chains] == [("a", 5), ("y0", 1)]
    x = {"x": np.random.default_rng(1).standard_normal((2, 8, 16)).astype(np.float32)}
    if not quantized:  # non-finite values through the chain (an integer grid refuses them)
        x["x"][0, 0, :3] = [np.nan, np.inf, -0.0]
    a, b, made = _with_and_without_chains(monkeypatch, g, x)
    # the GELU made in one pass; the product times 0.5 too where the reference keeps the product as
    # float32 (an op alone over a float64 array is left to numpy)
    assert len(made) == 2 and len(made[0]) == 5
    assert (made[1] is not None) == isinstance(a.reference.values.raw("y0"), Product)
    assert made[1] is not None or quantized  # the float graph keeps its product as float32
    assert isinstance(a.reference.values.raw("a"), Biased)  # the chain read the product and its bias as stored
    assert set(a.reference.values) == set(b.reference.values)
    for name in b.reference.values:
        assert np.array_equal(_bits(a.reference.values[name]), _bits(b.reference.values[name])), name
    for name in a.outputs:
        np.testing.assert_array_equal(a.outputs[name], b.outputs[name])
    assert [(e.name, e.op) for e in a.layers] == [(e.name, e.op) for e in b.layers]
    np.testing.assert_array_equal([(e.sqnr_db, e.mse) for e in a.layers], [(e.sqnr_db, e.mse) for e in b.layers])
    assert a.notes == b.notes


def test_chain_declines_what_the_kernel_does_not_read():
    """A chain whose input is no float array (integer values) is left to the ops one by one."""
    chain = refchain.Chain("x", (4,), ())
    assert refchain.run(chain, {"x": np.arange(4)}) is None
    assert refchain.run(chain, {"x": np.zeros(4)}) is None  # one op (or none) over an array: numpy's
    assert refchain.run(refchain.Chain("x", (4,), (None, None)), {"x": np.zeros(8)[::2]}) is None


def _hardswish_cnn(path) -> None:
    """Conv -> hard-swish written out (Add 3, Clip 0..6, Mul, Div 6), as PP-OCR's float models hold
    it -> Conv -> Relu -> global average pool: the chains' input is a conv's output held channels last."""
    rng = np.random.default_rng(2)
    n = h.make_node
    f = lambda name, a: nh.from_array(np.asarray(a, np.float32), name)  # noqa: E731
    inits = [f("w1", rng.standard_normal((8, 3, 3, 3)) * 0.5), f("b1", rng.standard_normal(8)),
             f("w2", rng.standard_normal((6, 8, 1, 1)) * 0.5), f("b2", rng.standard_normal(6)),
             f("three", 3.0), f("six", 6.0), f("zero", 0.0)]
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), n("Add", ["c1", "three"], ["a"]),
             n("Clip", ["a", "zero", "six"], ["r"]), n("Mul", ["c1", "r"], ["m"]), n("Div", ["m", "six"], ["hs"]),
             n("Conv", ["hs", "w2", "b2"], ["c2"]), n("Relu", ["c2"], ["r2"]), n("GlobalAveragePool", ["r2"], ["y"])]
    m = h.make_model(h.make_graph(nodes, "hs", [h.make_tensor_value_info("x", TP.FLOAT, [2, 3, 9, 7])],
                                  [h.make_tensor_value_info("y", TP.FLOAT, [2, 6, 1, 1])], inits),
                     opset_imports=[h.make_opsetid("", 17)])
    onnx.save(m, path)


def test_hardswish_and_relu_chains_over_channels_last_convs_give_the_op_by_op_values(tmp_path, monkeypatch):
    _hardswish_cnn(tmp_path / "m.onnx")
    g = load_onnx(tmp_path / "m.onnx", {})
    chains = refchain.plan(g)
    assert [(c.x, len(c.ops)) for c in chains] == [("c1", 4), ("c2", 1)]
    x = {"x": np.random.default_rng(3).standard_normal((2, 3, 9, 7)).astype(np.float32) * 3}
    x["x"][0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    a, b, made = _with_and_without_chains(monkeypatch, g, x)
    assert len(made) == 2 and all(m is not None for m in made)  # both read the conv outputs as stored
    assert isinstance(a.reference.values.raw("c1"), Biased)
    assert set(a.reference.values) == set(b.reference.values)
    for name in b.reference.values:  # the same bits, NaN where NaN
        got, want = (np.asarray(r.reference.values[name], np.float64) for r in (a, b))
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
        assert np.array_equal(_bits(np.where(np.isnan(want), 0, got)), _bits(np.where(np.isnan(want), 0, want))), name
    for name in a.outputs:
        np.testing.assert_array_equal(a.outputs[name], b.outputs[name])
    np.testing.assert_array_equal([(e.sqnr_db, e.mse) for e in a.layers], [(e.sqnr_db, e.mse) for e in b.layers])
